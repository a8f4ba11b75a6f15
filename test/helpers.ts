import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

// Helpers every cross-package test shares. Nothing here prints a token: tests compare
// tokens and print counts and timings only.

const cleanups: Array<() => unknown> = [];

/** Runs `fn` after the current test, in reverse order of registration. */
export function defer(fn: () => unknown): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A fresh folder under `root` (the OS temp dir by default), removed after the test. */
export async function tempDir(prefix = 'podtoken-', root = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(root, prefix));
  defer(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * Resolves when `predicate` holds, checking every `step` ms. The bound only keeps a broken
 * run from hanging: it is generous, and reaching it fails with `what` in the message.
 */
export async function until(what: string, predicate: () => boolean | Promise<boolean>, bound = 15_000, step = 5): Promise<void> {
  const deadline = performance.now() + bound;
  while (!(await predicate())) {
    if (performance.now() > deadline) throw new Error(`gave up waiting (${bound} ms): ${what}`);
    await sleep(step);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Nearest-rank percentile (0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
