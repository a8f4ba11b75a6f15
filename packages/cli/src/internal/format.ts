const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** `2026-11-22T10:00:00Z`: UTC, to the second. */
export function formatTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** `2026-11-22T10:00:00.123Z` when the milliseconds matter (event lines). */
export function formatTimestamp(date: Date): string {
  return date.toISOString();
}

/**
 * A duration in at most two units, rounded down: `364d 23h`, `3h 12m`, `42m 5s`, `12s`.
 * Negative durations are formatted by their magnitude.
 */
export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const units: Array<[number, string]> = [
    [DAY, 'd'],
    [HOUR, 'h'],
    [MINUTE, 'm'],
    [SECOND, 's'],
  ];
  for (let i = 0; i < units.length; i++) {
    const [size, name] = units[i]!;
    if (abs < size && i < units.length - 1) continue;
    const whole = Math.floor(abs / size);
    const next = units[i + 1];
    if (next === undefined) return `${whole}${name}`;
    const rest = Math.floor((abs - whole * size) / next[0]);
    return rest === 0 ? `${whole}${name}` : `${whole}${name} ${rest}${next[1]}`;
  }
  return '0s';
}

/** Every non-zero unit down to the second, for lifetimes: `1h`, `1h 7s`, `10m 1s`, `365d`. */
export function formatLifetime(ms: number): string {
  let rest = Math.floor(Math.abs(ms) / SECOND) * SECOND;
  const parts: string[] = [];
  for (const [size, name] of [
    [DAY, 'd'],
    [HOUR, 'h'],
    [MINUTE, 'm'],
    [SECOND, 's'],
  ] as const) {
    const whole = Math.floor(rest / size);
    rest -= whole * size;
    if (whole > 0) parts.push(`${whole}${name}`);
  }
  return parts.length === 0 ? '0s' : parts.join(' ');
}

/** `in 42m`, `3h ago`, or `now` within a second. */
export function formatRelative(target: Date, now: Date): string {
  const diff = target.getTime() - now.getTime();
  if (Math.abs(diff) < SECOND) return 'now';
  return diff > 0 ? `in ${formatDuration(diff)}` : `${formatDuration(diff)} ago`;
}

/** A short remaining time with a tenth of a second below a minute: `3.2s`, `59m 58s`; `expired` at or below 0. */
export function formatTtl(ms: number): string {
  if (ms <= 0) return 'expired';
  if (ms < MINUTE) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  return formatDuration(ms);
}
