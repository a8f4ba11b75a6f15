import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { parseArgs } from 'node:util';
import { dirname, resolve } from 'node:path';
import { DEFAULT_TOKEN_PATH, DIAGNOSTICS_CHANNELS, FileTokenSource } from '@podtoken/core';
import type { CliIO } from './cliIO.js';
import { audiences, HELP_OPTION, seconds, usageFailure } from './internal/args.js';
import { toTerminalSafeJson } from './internal/terminalSafeJson.js';
import { renderWatchEvent } from './renderWatchEvent.js';
import { createStyle } from './style.js';
import { toStatusEvent, toWatchEvent, type WatchEvent } from './watchEvent.js';

/** The help text of `podtoken watch`. */
export const WATCH_USAGE = `Usage: podtoken watch [options] [path...]

Follows token files the way the SDK does (FileTokenSource: folder events, refresh timer,
poll) and prints each event podtoken publishes on node:diagnostics_channel about them, one
line each, until Ctrl+C (SIGINT) or SIGTERM:

  token:loaded  token:refreshed  token:expired  read:failed  watch:failed  watch:rearmed
  read:finished (with --verbose: every read, polls included)

A file that is not there yet is waited for (read:failed TOKEN_FILE_MISSING, retried with
backoff up to every 30 s), however long it takes.

Arguments:
  path                     token files (default: ${DEFAULT_TOKEN_PATH})

Options:
  --json                   one JSON object per line: {"event":"podtoken:token:refreshed",...}
                           with the message's fields as core publishes them (dates ISO 8601)
  --verbose                also print read:finished for every read
  --status-interval <s>    every <s> seconds, a podtoken:status line per file (its status())
  --audience <aud>         expect this audience (repeatable); other tokens are read:failed
  -h, --help               show this help

Exit codes: 0 when stopped by a signal, 2 usage error.
`;

/**
 * `podtoken watch [path...]`: follows the files with {@link FileTokenSource}, prints every
 * event core publishes about them on `node:diagnostics_channel` (as JSON lines with
 * `--json`, see {@link WatchEvent}) until `io.signal` aborts, then closes the sources and
 * returns 0.
 *
 * Events are those whose `source.path` is one of the files (or, for `watch:*`, whose
 * `folder` holds one), so a program that runs this next to its own sources on the same
 * files sees their events too.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * await runWatch(['--json', '/var/run/secrets/tokens/vault-token'], { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
 * ```
 */
export async function runWatch(args: readonly string[], io: CliIO): Promise<number> {
  let values, positionals, statusInterval: number | undefined;
  try {
    ({ values, positionals } = parseWatchArgs(args));
    statusInterval = values['status-interval'] === undefined ? undefined : seconds(values['status-interval'], '--status-interval');
    audiences(values.audience);
  } catch (error) {
    return usageFailure(error, 'watch', io);
  }
  if (values.help) {
    io.stdout.write(WATCH_USAGE);
    return 0;
  }
  // The sources resolve their paths; events name them so. The same file twice is followed once.
  const paths = [...new Set((positionals.length > 0 ? positionals : [DEFAULT_TOKEN_PATH]).map((path) => resolve(path)))];
  const files = new Set(paths);
  const folders = new Set(paths.map((path) => dirname(path)));
  const now = io.now ?? Date.now;
  const style = createStyle(io.stdout, io.env);
  const print = (event: WatchEvent) => io.stdout.write(values.json ? `${toTerminalSafeJson(event)}\n` : renderWatchEvent(event, style));

  const onMessage = (message: unknown, name: string | symbol) => {
    const { source, folder } = message as { source?: { path?: unknown }; folder?: unknown };
    const ours = source !== undefined ? files.has(source.path as string) : folders.has(folder as string);
    if (ours) print(toWatchEvent(String(name), message));
  };
  // source:closed would only report the watch's own end.
  const channels = Object.values(DIAGNOSTICS_CHANNELS).filter(
    (name) => name !== DIAGNOSTICS_CHANNELS.sourceClosed && (values.verbose || name !== DIAGNOSTICS_CHANNELS.readFinished),
  );
  // Before the sources exist: a folder watch that cannot start is published from the constructor.
  for (const name of channels) subscribe(name, onMessage);

  const sources: FileTokenSource[] = [];
  let statusTimer: ReturnType<typeof setInterval> | undefined;
  // Runs until stopped, whatever the files do. A source holds the event loop only through
  // its folder watcher (its retry timers are unref()ed so that an app can exit), and a
  // folder that is not mounted yet, or was removed, has none: without this handle the
  // process would exit while it waits.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  try {
    io.stderr.write(`podtoken watch: following ${paths.length} file${paths.length === 1 ? '' : 's'}; Ctrl+C to stop.\n`);
    for (const path of paths) {
      // readyTimeout 0: a file that is not there yet is retried (with backoff), never given up on.
      sources.push(new FileTokenSource({ path, readyTimeout: 0, ...(values.audience === undefined ? {} : { audience: values.audience }) }));
    }
    if (statusInterval !== undefined) {
      statusTimer = setInterval(() => {
        for (const source of sources) print(toStatusEvent(source.status(), new Date(now())));
      }, statusInterval);
    }
    await aborted(io.signal);
  } finally {
    clearInterval(keepAlive);
    clearInterval(statusTimer);
    await Promise.all(sources.map((source) => source.close()));
    for (const name of channels) unsubscribe(name, onMessage);
  }
  io.stderr.write('podtoken watch: stopped.\n');
  return 0;
}

function parseWatchArgs(args: readonly string[]) {
  return parseArgs({
    args: [...args],
    allowPositionals: true,
    strict: true,
    options: {
      ...HELP_OPTION,
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      'status-interval': { type: 'string' },
      audience: { type: 'string', multiple: true },
    },
  });
}


function aborted(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return new Promise(() => {});
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
