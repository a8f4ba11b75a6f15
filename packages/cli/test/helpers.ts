import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliIO } from '../src/cliIO.js';

/** A CliIO that collects what a command writes. Tests assert on it with booleans, so a failure never prints a token. */
export interface Captured extends CliIO {
  readonly out: () => string;
  readonly err: () => string;
}

export function capture(options: { now?: number; signal?: AbortSignal; isTTY?: boolean } = {}): Captured {
  let out = '';
  let err = '';
  return {
    stdout: { write: (chunk: string) => (out += chunk), isTTY: options.isTTY ?? false },
    stderr: { write: (chunk: string) => (err += chunk), isTTY: false },
    env: {},
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.now === undefined ? {} : { now: () => options.now! }),
    out: () => out,
    err: () => err,
  };
}

/** Whether `text` holds the token or any of its secret parts (payload, signature, or the whole opaque value). */
export function leaks(text: string, token: string): boolean {
  const parts = token.split('.');
  const secretParts = parts.length === 3 ? [token, parts[1]!, parts[2]!] : [token];
  return secretParts.some((part) => text.includes(part));
}

/** Waits until `check()` is true, polling every 20 ms; throws after `timeout` ms. */
export async function until(check: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How to run pnpm 10 here: the one on PATH, or through npx as .ci/run does on a machine without it. */
export function pnpmCommand(): [string, ...string[]] {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && probe.stdout.startsWith('10.') ? ['pnpm'] : ['npx', '--yes', 'pnpm@10'];
}

// The real bin, as `npx podtoken` runs it: built JavaScript, its shebang, and its signal handling.
const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
export const bin = join(packageDir, 'dist', 'bin.js');

/** Builds the bin when dist/ is missing. CI builds before testing; after changing src/, rebuild (`pnpm --filter @podtoken/cli... build`). */
export function ensureBin(): void {
  if (!existsSync(bin)) {
    execFileSync('pnpm', ['--filter', '@podtoken/cli...', 'build'], { cwd: join(packageDir, '..', '..'), stdio: 'ignore', timeout: 170_000 });
  }
}

/** A running `podtoken` child process and what it wrote so far. */
export interface Run {
  out: () => string;
  err: () => string;
  running: () => boolean;
  exit: Promise<number | null>;
  kill: (signal: NodeJS.Signals) => void;
}

/** Runs the bin with `args`, colours off; killed after `killAfter` ms so that no child outlives a failed assertion. */
export function runBin(args: string[], env: Record<string, string> = {}, killAfter = 25_000): Run {
  const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfter);
  void exit.then(() => clearTimeout(timer));
  return {
    out: () => out,
    err: () => err,
    running: () => child.exitCode === null && child.signalCode === null,
    exit,
    kill: (signal) => child.kill(signal),
  };
}
