import { describe, expect, it } from 'vitest';
import { main } from '../app.mjs';

describe('examples/got-in-pod', () => {
  it('every request carries a valid token across rotations; a revoked token never reaches the caller as a 401', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const summary = await main({ requests: 200, log: (line) => lines.push(line) });
    console.log(lines.join('\n'));

    expect(summary.failures).toEqual([]);
    expect(summary.ok).toBe(200);
    expect(summary.server).toEqual({ ok: 200, unauthorized: 0, missing: 0 });
    // After the revoke: one 401 and one retry when the watcher had not yet loaded the new
    // token, none when it had. Never more.
    expect(summary.revoked.status).toBe(200);
    expect(summary.revoked.retries).toBeLessThanOrEqual(1);
    expect(summary.revoked.refused).toBe(summary.revoked.retries);
    expect(summary.rotations).toBeGreaterThanOrEqual(4);
    expect(summary.otherOrigin).toBe('missing');
    expect(lines.join('\n')).toMatch(/200\/200 ok/);
  });
});
