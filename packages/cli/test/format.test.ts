import { describe, expect, it } from 'vitest';
import { createStyle } from '../src/style.js';
import { formatDuration, formatLifetime, formatRelative, formatTime, formatTtl } from '../src/internal/format.js';

describe('time formatting', () => {
  it('uses at most two units, rounded down', () => {
    expect(formatDuration(42 * 60_000 + 59_999)).toBe('42m 59s');
    expect(formatDuration(3 * 3_600_000)).toBe('3h');
    expect(formatDuration(365 * 86_400_000 - 1)).toBe('364d 23h');
    expect(formatDuration(12_500)).toBe('12s');
    expect(formatDuration(400)).toBe('0s');
    expect(formatDuration(-90_000)).toBe('1m 30s');
  });

  it('says when, relative to now', () => {
    const now = new Date('2026-11-22T10:00:00Z');
    expect(formatRelative(new Date('2026-11-22T10:42:00Z'), now)).toBe('in 42m');
    expect(formatRelative(new Date('2026-11-22T07:00:00Z'), now)).toBe('3h ago');
    expect(formatRelative(new Date('2026-11-22T10:00:00.500Z'), now)).toBe('now');
  });

  it('keeps every unit of a lifetime, and shows short TTLs precisely', () => {
    expect(formatLifetime(3_607_000)).toBe('1h 7s');
    expect(formatLifetime(365 * 86_400_000)).toBe('365d');
    expect(formatTtl(3_250)).toBe('3.2s');
    expect(formatTtl(0)).toBe('expired');
    expect(formatTtl(600_000)).toBe('10m');
    expect(formatTime(new Date('2026-11-22T10:00:00.123Z'))).toBe('2026-11-22T10:00:00Z');
  });
});

describe('createStyle', () => {
  it('colours a terminal only, never with NO_COLOR or TERM=dumb, always with FORCE_COLOR', () => {
    expect(createStyle({ isTTY: true }, {}).enabled).toBe(true);
    expect(createStyle({ isTTY: false }, {}).enabled).toBe(false);
    expect(createStyle({ isTTY: true }, { NO_COLOR: '1' }).enabled).toBe(false);
    expect(createStyle({ isTTY: true }, { TERM: 'dumb' }).enabled).toBe(false);
    expect(createStyle({ isTTY: false }, { FORCE_COLOR: '1' }).enabled).toBe(true);
    expect(createStyle({ isTTY: true }, { FORCE_COLOR: '0' }).enabled).toBe(false);
    expect(createStyle({ isTTY: true }, {}).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(createStyle({ isTTY: false }, {}).red('x')).toBe('x');
  });
});
