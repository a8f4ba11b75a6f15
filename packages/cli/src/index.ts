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
export { runWatch, WATCH_USAGE } from './watch.js';
export { renderWatchEvent } from './renderWatchEvent.js';
export { toWatchEvent, toStatusEvent, WATCH_STATUS_EVENT } from './watchEvent.js';
export type { WatchEvent, DiagnosticsEvent, StatusEvent, DiagnosticsMessages, JsonOf } from './watchEvent.js';
export { runStatus, STATUS_USAGE } from './status.js';
export { renderReadinessReport } from './renderReadinessReport.js';
export type { RenderReadinessOptions } from './renderReadinessReport.js';
export { createStyle } from './style.js';
export { escapeControlCharacters } from './escapeControlCharacters.js';
export type { Style } from './style.js';
