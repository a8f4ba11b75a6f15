import { describe, expect, it } from 'vitest';
import { main } from '../app.mjs';

describe('examples/axios-in-pod', () => {
  it('every request carries a valid token across rotations, and the token never leaves its origin', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const summary = await main({ requests: 240, log: (line) => lines.push(line) });
    console.log(lines.join('\n'));

    expect(summary.failures).toEqual([]);
    expect(summary.ok).toBe(240);
    expect(summary.server).toEqual({ ok: 240, unauthorized: 0, missing: 0 });
    expect(summary.rotations).toBeGreaterThanOrEqual(3);
    // one 401 then one retry when the watcher had not loaded the new token yet, none when it had
    expect(summary.revoked.status).toBe(200);
    expect(summary.revoked.refused).toBeLessThanOrEqual(1);
    expect(summary.redirect).toEqual({ status: 401, arrived: 'missing' });
    expect(summary.otherOrigin).toBe('missing');
    expect(lines.join('\n')).toMatch(/240\/240 ok/);
  });
});
