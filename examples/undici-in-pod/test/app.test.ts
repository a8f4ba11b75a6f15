import { describe, expect, it } from 'vitest';
import { startSimulatedPod } from '@podtoken/testing';
import { inCluster, main } from '../app.mjs';

describe('examples/undici-in-pod', () => {
  it('the global fetch carries a valid token across rotations, to its origin only, and the probe reports the source', { timeout: 120_000 }, async () => {
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
    expect(summary.readiness).toEqual({ status: 200, state: 'ok', afterClose: { status: 503, state: 'closed' } });
    expect(summary.printedTokens).toBe(0);
    expect(lines.join('\n')).toMatch(/240\/240 ok/);
  });

  it('--url mode: plain fetch through the global dispatcher, a readiness probe, and a failure on a refusal', async () => {
    const pod = await startSimulatedPod({ audience: 'https://api.example', expirationSeconds: 600 });
    try {
      const lines: string[] = [];
      const url = `${pod.server.url}things`;
      const ok = await inCluster({ url, token: pod.tokenPath, audience: 'https://api.example', rounds: 2, interval: 10, readyPort: 0, readyHost: '127.0.0.1', log: (line) => lines.push(line) });
      expect(ok).toBe(0);
      expect(pod.server.counts).toEqual({ ok: 2, unauthorized: 0, missing: 0 });
      expect(lines).toEqual([expect.stringMatching(/^readiness probe on port \d+$/), expect.stringMatching(/^round 1: 200 \(source ok, token expires in \d+ s\)$/), expect.stringMatching(/^round 2: 200 /)]);
      pod.server.revoke(pod.kubelet.last!.token); // as when the pod is deleted: every call is refused
      const refused = await inCluster({ url, token: pod.tokenPath, readyPort: 0, readyHost: '127.0.0.1', log: (line) => lines.push(line) });
      expect(refused).toBe(1);
      expect(lines.at(-1)).toMatch(/^round 1: 401 /);
      expect(lines.join('\n')).not.toContain(pod.kubelet.last!.token);
    } finally {
      await pod.close();
    }
  });
});
