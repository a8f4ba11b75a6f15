export { main, USAGE } from './main.js';
export type { CliIO, OutputStream } from './cliIO.js';
export { runInspect, inspectFile, INSPECT_USAGE } from './inspect.js';
export { buildInspectReport, exitCodeOf } from './inspectReport.js';
export type {
  InspectReport,
  InspectInput,
  InspectReportOptions,
  TokenSummary,
  Finding,
  FindingCode,
  FindingLevel,
  VolumeInfo,
  ObjectRef,
} from './inspectReport.js';
export { renderInspectReport, renderInspectJson } from './renderInspectReport.js';
export type { RenderInspectOptions } from './renderInspectReport.js';
export { runWatch, renderWatchEvent, WATCH_USAGE } from './watch.js';
export type { WatchEvent } from './watch.js';
export { createStyle } from './style.js';
export { escapeControlCharacters } from './escapeControlCharacters.js';
export type { Style } from './style.js';
