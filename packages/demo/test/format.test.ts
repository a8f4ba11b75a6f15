import { describe, expect, it } from 'vitest';
import { formatMs, formatTable } from '../src/internal/format.js';

describe('the demo\'s formatting', () => {
  it('shows latencies with a precision that suits their size', () => {
    expect([formatMs(0.42), formatMs(3.14), formatMs(120.4), formatMs(1520)]).toEqual(['0.42ms', '3.1ms', '120ms', '1.52s']);
  });

  it('aligns table columns', () => {
    expect(formatTable([['client', 'n'], ['axios', '1200']], new Set([1]))).toEqual(['client     n', 'axios   1200']);
  });
});
