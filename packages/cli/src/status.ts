import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_TOKEN_PATH, DIAGNOSTICS_CHANNELS, FileTokenSource, readiness, type ReadFailedMessage, type ReadinessReport } from '@podtoken/core';
import type { CliIO } from './cliIO.js';
import { audiences, HELP_OPTION, seconds, usageFailure } from './internal/args.js';
import { toTerminalSafeJson } from './internal/terminalSafeJson.js';
import { renderReadinessReport } from './renderReadinessReport.js';
import { createStyle } from './style.js';

/** The help text of `podtoken status`. */
export const STATUS_USAGE = `Usage: podtoken status [options] [path...]

Reads each token file once, the way the SDK does (FileTokenSource), prints each source's
status() and exits 0 when every one serves a token: an exec readiness probe for a pod
without an HTTP server. The JSON is core's readiness() report, what its HTTP handler answers.

Arguments:
  path               token files (default: ${DEFAULT_TOKEN_PATH})

Options:
  --json             the readiness report as one JSON line: {"ready":..,"failing":[..],"sources":[..]}
  --audience <aud>   expect this audience (repeatable); a token for another is not served
  --timeout <s>      give up on a read that has not finished after <s> seconds (default 5)
  -h, --help         show this help

Exit codes: 0 every file serves a token (state ok, refresh-overdue, or failing with a good
token), 1 one does not (missing, expired, malformed, wrong audience, unreadable, too
large, or its read timed out), 2 usage error.
`;

const DEFAULT_TIMEOUT_S = 5;

/**
 * `podtoken status [path...]`: one read of each file with a {@link FileTokenSource} (no
 * watch, no poll), then core's `readiness(...sources).check()` report, printed for people
 * or as JSON. Resolves with 0 when the report is ready, 1 when not, 2 on a usage error.
 *
 * @example
 * ```ts
 * // readinessProbe: { exec: { command: [podtoken, status, /var/run/secrets/tokens/vault-token] } }
 * process.exitCode = await runStatus(['/var/run/secrets/tokens/vault-token'], { stdout: process.stdout, stderr: process.stderr });
 * ```
 */
export async function runStatus(args: readonly string[], io: CliIO): Promise<number> {
  let values, positionals, timeout: number;
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        ...HELP_OPTION,
        json: { type: 'boolean' },
        audience: { type: 'string', multiple: true },
        timeout: { type: 'string' },
      },
    }));
    timeout = values.timeout === undefined ? DEFAULT_TIMEOUT_S * 1000 : seconds(values.timeout, '--timeout');
    audiences(values.audience);
  } catch (error) {
    return usageFailure(error, 'status', io);
  }
  if (values.help) {
    io.stdout.write(STATUS_USAGE);
    return 0;
  }
  const paths = [...new Set((positionals.length > 0 ? positionals : [DEFAULT_TOKEN_PATH]).map((path) => resolve(path)))];

  // Woken by each finished read, done when every source has read its file once: it holds a
  // token or a failure (another source on the same file, in an app, may publish too).
  // Why a read failed comes from read:failed: the report holds codes only, people want the reason.
  const sources: FileTokenSource[] = [];
  const reasons = new Map<string, string>();
  const unread = () =>
    sources.filter((source) => {
      const { state, lastError } = source.status();
      return state === 'loading' && lastError === undefined;
    });
  let firstReadsDone!: () => void;
  const done = new Promise<void>((resolve) => (firstReadsDone = resolve));
  const onFinished = () => {
    if (unread().length === 0) firstReadsDone();
  };
  const onFailed = (message: unknown) => {
    const { source, message: reason } = message as ReadFailedMessage;
    if (paths.includes(source.path)) reasons.set(source.path, reason);
  };
  subscribe(DIAGNOSTICS_CHANNELS.readFinished, onFinished);
  subscribe(DIAGNOSTICS_CHANNELS.readFailed, onFailed);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pending: FileTokenSource[] = [];
  let report: ReadinessReport;
  try {
    for (const path of paths) {
      // One read: no folder watch, no poll, no ready timer; close() stops the retries.
      sources.push(
        new FileTokenSource({ path, watch: false, pollInterval: 0, readyTimeout: 0, ...(values.audience === undefined ? {} : { audience: values.audience }) }),
      );
    }
    // Held open (not unref()ed): the timeout is what keeps the process waiting for a read.
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    report = readiness(...sources).check();
    pending = unread();
  } finally {
    clearTimeout(timer);
    unsubscribe(DIAGNOSTICS_CHANNELS.readFinished, onFinished);
    unsubscribe(DIAGNOSTICS_CHANNELS.readFailed, onFailed);
    // close() waits for the read in flight. One that never answers (a FIFO, a hung network
    // mount) is not waited for: the answer is printed. The process still lives until that
    // read returns (libuv joins its threads at exit, even in process.exit()); an exec
    // probe's timeoutSeconds ends it.
    const closing = Promise.all(sources.map((source) => source.close()));
    if (pending.length === 0) await closing;
  }
  for (const source of pending) reasons.set(source.path, `No answer from the file within ${timeout / 1000} s.`);
  io.stdout.write(
    values.json
      ? `${toTerminalSafeJson(report)}\n`
      : renderReadinessReport(report, { reasons, now: new Date((io.now ?? Date.now)()), style: createStyle(io.stdout, io.env) }),
  );
  return report.ready ? 0 : 1;
}
