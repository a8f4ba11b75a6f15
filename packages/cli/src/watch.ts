import { parseArgs } from 'node:util';
import { DEFAULT_TOKEN_PATH, FileTokenSource, type Token, type TokenErrorCode, type TokenKind, type TokenSourceError } from '@podtoken/core';
import type { CliIO } from './cliIO.js';
import { escapeControlCharacters as esc } from './escapeControlCharacters.js';
import { HELP_OPTION, usageFailure } from './internal/args.js';
import { formatTime, formatTimestamp, formatTtl } from './internal/format.js';
import { toTerminalSafeJson } from './internal/terminalSafeJson.js';
import { createStyle, type Style } from './style.js';

/** The help text of `podtoken watch`. */
export const WATCH_USAGE = `Usage: podtoken watch [options] [path...]

Follows token files the way the SDK does (FileTokenSource: folder events, refresh timer,
poll) and prints one line per token loaded or error, until Ctrl+C (SIGINT) or SIGTERM.
A file that is not there yet is waited for ("waiting"), however long it takes.
An error that repeats with the same code is printed once, until the file changes.

Arguments:
  path               token files (default: ${DEFAULT_TOKEN_PATH})

Options:
  --json             one JSON object per line
  --audience <aud>   expect this audience (repeatable); other tokens are reported as errors
  -h, --help         show this help

Exit codes: 0 when stopped by a signal, 2 usage error.
`;

/**
 * One line of `podtoken watch`: a token loaded (`load` for the first, `refresh` after), a
 * file not there yet (`waiting`: no token was loaded from it so far), or an error the
 * source reported. Never holds the token.
 */
export interface WatchEvent {
  /** When it happened (ISO 8601). */
  readonly time: string;
  readonly event: 'load' | 'refresh' | 'waiting' | 'error';
  /** The token file (absolute). */
  readonly path: string;
  readonly kind?: TokenKind;
  readonly subject?: string;
  readonly expiresAt?: string;
  /** Seconds until `expiresAt`, at `time`. */
  readonly ttlSeconds?: number;
  /** When the source will look for the next token. */
  readonly refreshAt?: string;
  /** `waiting` and `error` events: the `TokenSourceError` code and message (control characters escaped). */
  readonly code?: TokenErrorCode;
  readonly message?: string;
}

/**
 * `podtoken watch [path...]`: follows the files with {@link FileTokenSource} until
 * `io.signal` aborts, then closes the sources and returns 0.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * await runWatch(['/var/run/secrets/tokens/vault-token'], { stdout: process.stdout, stderr: process.stderr, signal: controller.signal });
 * ```
 */
export async function runWatch(args: readonly string[], io: CliIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        ...HELP_OPTION,
        json: { type: 'boolean' },
        audience: { type: 'string', multiple: true },
      },
    }));
  } catch (error) {
    return usageFailure(error, 'watch', io);
  }
  if (values.help) {
    io.stdout.write(WATCH_USAGE);
    return 0;
  }
  const paths = positionals.length > 0 ? positionals : [DEFAULT_TOKEN_PATH];
  const now = io.now ?? Date.now;
  const style = createStyle(io.stdout, io.env);
  const print = (event: WatchEvent) => io.stdout.write(values.json ? `${toTerminalSafeJson(event)}\n` : renderWatchEvent(event, style));

  const sources = paths.map(
    (path) =>
      // readyTimeout 0: a file that is not there yet is reported (with backoff), not given up on.
      new FileTokenSource({ path, readyTimeout: 0, ...(values.audience === undefined ? {} : { audience: values.audience }) }),
  );
  // The source retries a failing read with backoff (and on every change in the folder): one
  // line per error code until something changes, not one per retry.
  const lastError = new Map<string, TokenErrorCode>();
  for (const source of sources) {
    source.onRefresh((token, previous) => {
      lastError.delete(source.path);
      print(tokenEvent(previous === undefined ? 'load' : 'refresh', source.path, token, now()));
    });
    source.onError((error) => {
      if (lastError.get(source.path) === error.code) return;
      lastError.set(source.path, error.code);
      // Before the first token, a missing file is what a pod looks like until the kubelet
      // has mounted the volume: say so, and wait. Once a token was loaded it is an error.
      const waiting = error.code === 'TOKEN_FILE_MISSING' && source.current === undefined;
      print(errorEvent(waiting ? 'waiting' : 'error', source.path, error, now()));
    });
  }
  io.stderr.write(`podtoken watch: following ${paths.length} file${paths.length === 1 ? '' : 's'}; Ctrl+C to stop.\n`);

  // Runs until stopped, whatever the files do. A source holds the event loop only through
  // its folder watcher (its retry timers are unref()ed so that an app can exit), and a
  // folder that is not mounted yet, or was removed, has none: without this handle the
  // process would exit while it waits.
  const keepAlive = setInterval(() => {}, 2 ** 30);
  try {
    await aborted(io.signal);
  } finally {
    clearInterval(keepAlive);
  }
  await Promise.all(sources.map((source) => source.close()));
  io.stderr.write('podtoken watch: stopped.\n');
  return 0;
}

/**
 * The human line for a {@link WatchEvent}, with a newline. Every string in it (path, kind,
 * code, message) is printed with control characters escaped: a token file's content must
 * not be able to act on the terminal.
 */
export function renderWatchEvent(event: WatchEvent, style: Style = createStyle({ isTTY: false }, {})): string {
  const name = esc(String(event.event)).padEnd(7);
  const colour = event.event === 'load' || event.event === 'refresh' ? style.green : event.event === 'waiting' ? style.yellow : style.red;
  const head = `${style.dim(esc(event.time))}  ${colour(name)}  ${esc(event.path)}`;
  if (event.event === 'waiting') return `${head}  ${colour(esc(event.code ?? 'TOKEN_FILE_MISSING'))}  ${esc(event.message ?? '')} Waiting for it to appear.\n`;
  if (event.event !== 'load' && event.event !== 'refresh') return `${head}  ${colour(esc(event.code ?? 'ERROR'))}  ${esc(event.message ?? '')}\n`;
  const parts = [esc(event.kind ?? '?')];
  if (event.expiresAt !== undefined && event.ttlSeconds !== undefined) {
    parts.push(`expires ${formatTime(new Date(event.expiresAt))}`, `ttl ${formatTtl(event.ttlSeconds * 1000)}`);
  } else {
    parts.push('never expires');
  }
  if (event.refreshAt !== undefined) parts.push(`refresh ${formatTime(new Date(event.refreshAt))}`);
  return `${head}  ${parts.join('  ')}\n`;
}

function tokenEvent(event: 'load' | 'refresh', path: string, token: Token, nowMs: number): WatchEvent {
  const exp = token.expiresAt;
  return {
    time: formatTimestamp(new Date(nowMs)),
    event,
    path,
    kind: token.kind,
    ...(token.subject === undefined ? {} : { subject: token.subject }),
    ...(exp === undefined ? {} : { expiresAt: exp.toISOString(), ttlSeconds: (exp.getTime() - nowMs) / 1000 }),
    ...(token.refreshAt === undefined ? {} : { refreshAt: token.refreshAt.toISOString() }),
  };
}

function errorEvent(event: 'waiting' | 'error', path: string, error: TokenSourceError, nowMs: number): WatchEvent {
  return { time: formatTimestamp(new Date(nowMs)), event, path, code: error.code, message: esc(error.message) };
}

function aborted(signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return new Promise(() => {});
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
