import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSimulatedPod } from '@podtoken/testing';
import { inCluster, main, ORDERS_SERVICE } from '../app.mjs';
import { createTls, startVerifyingServer } from '../simulation.mjs';

describe('examples/grpc-in-pod', () => {
  it('unary calls over TLS carry a valid token across rotations; a revoked token costs one UNAUTHENTICATED and one retry', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    const summary = await main({ calls: 200, log: (line) => lines.push(line) });
    console.log(lines.join('\n'));

    expect(summary.failures).toEqual([]);
    expect(summary.ok).toBe(200);
    expect(summary.server).toEqual({ ok: 200, unauthorized: 0, missing: 0 });
    expect(summary.rotations).toBeGreaterThanOrEqual(3);
    // the kubelet writes the new token as the server refuses the old one: one refusal, one retry, OK
    expect(summary.revoked).toEqual({ status: 'OK', refused: 1, retries: 1 });
    // no new token on disk: the refusal goes back to the caller once, no loop
    expect(summary.stale).toEqual({ status: 'UNAUTHENTICATED', refused: 1, retries: 0 });
    expect(summary.recovered).toBe('OK');
    expect(summary.insecure).toBe('refused');
    expect(summary.printedTokens).toBe(0);
    expect(lines.join('\n')).toMatch(/200\/200 OK/);
  });

  it('--target mode: Health/Check over TLS with the CA file and the token file it is given, and a failure on a refusal', { timeout: 30_000 }, async () => {
    const pod = await startSimulatedPod({ audience: 'orders.shop.svc', expirationSeconds: 600 });
    const tls = createTls();
    const server = await startVerifyingServer({ issuer: pod.issuer, audience: 'orders.shop.svc', service: ORDERS_SERVICE, implementation: { get: () => ({}) }, tls });
    try {
      const ca = join(pod.dir, 'ca.crt');
      await writeFile(ca, tls.ca);
      const lines: string[] = [];
      const options = { target: server.address, ca, token: pod.tokenPath, audience: 'orders.shop.svc', log: (line: string) => lines.push(line) };
      expect(await inCluster({ ...options, rounds: 2, interval: 10 })).toBe(0);
      expect(server.log.map((entry) => [entry.method, entry.outcome])).toEqual([
        ['health', 'ok'],
        ['health', 'ok'],
      ]);
      expect(lines).toEqual([expect.stringMatching(/^round 1: OK SERVING \(2 bytes; source ok, token expires in \d+ s\)$/), expect.stringMatching(/^round 2: OK SERVING /)]);

      server.revoke(pod.kubelet.last!.token); // as when the pod is deleted: every call is refused
      expect(await inCluster(options)).toBe(1);
      expect(lines.at(-1)).toMatch(/^round 1: UNAUTHENTICATED "invalid token" /);

      // the system roots do not know the simulated cluster's CA: no call goes out
      const before = server.log.length;
      expect(await inCluster({ ...options, ca: undefined })).toBe(1);
      expect(lines.at(-1)).toMatch(/^round 1: UNAVAILABLE /);
      expect(server.log.length).toBe(before);
      expect(lines.join('\n')).not.toContain(pod.kubelet.last!.token);
    } finally {
      await server.close();
      await pod.close();
    }
  });
});
