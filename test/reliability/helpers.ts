import { accessSync, constants, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { tempDir as sharedTempDir } from '../helpers.js';

// Helpers of the reliability suite. Nothing here prints a token: tests compare tokens and
// print counts and timings only.

export { defer, percentile, sleep, until } from '../helpers.js';

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
export function tempDir(prefix = 'podtoken-rel-'): Promise<string> {
  return sharedTempDir(prefix, VOLUME_ROOT);
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
