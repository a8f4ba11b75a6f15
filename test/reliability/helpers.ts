import { accessSync, constants, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

// Helpers of the reliability suite. Nothing here prints a token: tests compare tokens and
// print counts and timings only.

const cleanups: Array<() => unknown> = [];

/** Runs `fn` after the current test, in reverse order of registration. */
export function defer(fn: () => unknown): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/**
 * Where projected volumes live in these tests: a kubelet mounts them on tmpfs, so /dev/shm
 * when this machine has it (writes there cost a tenth of the disk's), else the OS temp dir.
 */
export const VOLUME_ROOT = (() => {
  try {
    if (!statSync('/dev/shm').isDirectory()) return tmpdir();
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return tmpdir();
  }
})();

/** A fresh folder under {@link VOLUME_ROOT}, removed after the test. */
export async function tempDir(prefix = 'podtoken-rel-'): Promise<string> {
  const dir = await mkdtemp(join(VOLUME_ROOT, prefix));
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

/** Every message and code in an error's `cause` chain, for leak checks. */
export function errorTexts(error: unknown): string[] {
  const texts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      texts.push(current.message);
      current = current.cause;
    } else {
      texts.push(String(current));
      break;
    }
  }
  return texts;
}

/** Whether `text` holds `secret`, or any 16-character slice of it (a token cut short still leaks). */
export function leaks(text: string, secret: string): boolean {
  if (secret.length < 16) return secret.length >= 8 && text.includes(secret);
  for (let i = 0; i + 16 <= secret.length; i += 8) {
    if (text.includes(secret.slice(i, i + 16))) return true;
  }
  return false;
}
