export { runDemo, runDemoScenario, DEMO_USAGE } from './demo.js';
export type {
  DemoOptions,
  DemoResult,
  DemoClientName,
  DemoClientStats,
  DemoProgress,
  DemoEventCounts,
  DemoReadiness,
  DemoSourceStatus,
  LatencySummary,
} from './demo.js';
export type { DemoIO } from './demoIO.js';
