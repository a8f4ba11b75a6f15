import { spawnSync } from 'node:child_process';
import type { DemoIO } from '../src/demoIO.js';

/** A DemoIO that collects what the demo writes. */
export interface Captured extends DemoIO {
  readonly out: () => string;
  readonly err: () => string;
}

export function capture(options: { signal?: AbortSignal; isTTY?: boolean } = {}): Captured {
  let out = '';
  let err = '';
  return {
    stdout: { write: (chunk: string) => (out += chunk), isTTY: options.isTTY ?? false },
    stderr: { write: (chunk: string) => (err += chunk) },
    env: {},
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    out: () => out,
    err: () => err,
  };
}

/** Waits until `check()` is true, polling every 20 ms; throws after `timeout` ms. */
export async function until(check: () => boolean, what: string, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The numbers of a row of the demo's summary table (`total`, `server`, `axios`…). */
export function summaryRow(text: string, name: string): number[] | undefined {
  const line = text.split('\n').find((l) => l.trimStart().startsWith(`${name} `));
  return line
    ?.trim()
    .split(/\s+/)
    .slice(1)
    .filter((cell) => cell !== '-')
    .map(Number);
}

/** How to run pnpm 10 here: the one on PATH, or through npx as .ci/run does on a machine without it. */
export function pnpmCommand(): [string, ...string[]] {
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  return probe.status === 0 && probe.stdout.startsWith('10.') ? ['pnpm'] : ['npx', '--yes', 'pnpm@10'];
}
