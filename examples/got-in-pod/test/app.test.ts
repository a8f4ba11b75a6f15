import { describe, expect, it } from 'vitest';
import { startSimulatedPod } from '@podtoken/testing';
import { inCluster, main } from '../app.mjs';

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

  it('--url mode: calls a real API with the token file it is given, and fails on a refusal', async () => {
    const pod = await startSimulatedPod({ audience: 'https://api.example', expirationSeconds: 600 });
    try {
      const lines: string[] = [];
      const ok = await inCluster({ url: `${pod.server.url}things`, token: pod.tokenPath, audience: 'https://api.example', rounds: 2, interval: 10, log: (line) => lines.push(line) });
      expect(ok).toBe(0);
      expect(pod.server.counts).toEqual({ ok: 2, unauthorized: 0, missing: 0 });
      expect(lines).toEqual([expect.stringMatching(/^round 1: 200 \(token expires /), expect.stringMatching(/^round 2: 200 /)]);
      pod.server.revoke(pod.kubelet.last!.token); // as when the pod is deleted: every call is refused
      const refused = await inCluster({ url: `${pod.server.url}things`, token: pod.tokenPath, log: (line) => lines.push(line) });
      expect(refused).toBe(1);
      expect(lines.at(-1)).toMatch(/^round 1: 401 /);
    } finally {
      await pod.close();
    }
  });
});
