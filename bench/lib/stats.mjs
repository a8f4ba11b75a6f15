// Small helpers shared by the benchmarks: order statistics, formatting, the volume setup.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

/** The q-quantile (0..1) of `values`, nearest-rank on a sorted copy. */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index];
}

export const median = (values) => quantile(values, 0.5);

/** Fisher–Yates, in place: interleave contenders in a fresh order each round. */
export function shuffle(array) {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [array[i], array[j]] = [array[j], array[i]];
  }
  return array;
}

/** `1234567` → `1,234,567`; fractional numbers keep `digits` significant decimals. */
export function fmt(value, digits = 1) {
  if (!Number.isFinite(value)) return String(value);
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

/** Milliseconds as a human figure: `0.42 ms`, `12.3 ms`, `31.2 s`. */
export function ms(value) {
  if (value >= 1000) return `${fmt(value / 1000, 1)} s`;
  if (value >= 10) return `${fmt(value, 1)} ms`;
  return `${fmt(value, 2)} ms`;
}

/** A fresh temporary folder, removed by the returned `cleanup`. */
export async function tempDir(prefix) {
  const dir = await mkdtemp(join(tmpdir(), `podtoken-bench-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Prints a benchmark's heading. */
export function heading(title) {
  console.log(`\n## ${title}`);
}

/** Prints one result line: the figure a reader looks for, on a line of its own. */
export function result(text) {
  console.log(`  => ${text}`);
}

/** Prints a detail line. */
export function detail(text) {
  console.log(`     ${text}`);
}
