export { runDemo, runDemoScenario, DEMO_USAGE } from './demo.js';
export type { DemoOptions, DemoResult, DemoClientName, DemoClientStats, DemoProgress, LatencySummary } from './demo.js';
export type { DemoIO } from './demoIO.js';
