const SECOND = 1000;

/** Milliseconds with a precision that suits their size: `0.42ms`, `3.1ms`, `120ms`, `1.52s`. */
export function formatMs(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)}ms`;
  if (ms < 10) return `${ms.toFixed(1)}ms`;
  if (ms < SECOND) return `${Math.round(ms)}ms`;
  return `${(ms / SECOND).toFixed(2)}s`;
}

/** Pads every column to its widest cell; the first row is the header. Numbers align right. */
export function formatTable(rows: ReadonlyArray<ReadonlyArray<string>>, alignRight: ReadonlySet<number> = new Set()): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => (alignRight.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
