import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { FileTokenSource } from '@podtoken/core';
import { startSimulatedPod, type SimulatedPod } from '@podtoken/testing';
import { clients } from './clients.js';

// 2,000 requests over several kubelet rotations on the real filesystem, through each way of
// using the interceptor: 0 answered 401, 0 sent without a token, counted by the server itself.
// Tokens live 4 s and the kubelet replaces them every second (rotateAfter 0.25), as in
// @podtoken/fetch's rotation test.
const REQUESTS = 2_000;
const MIN_ROTATIONS = 4;
const CONCURRENCY = 8;
const PAUSE_MS = 10;
const MAX_MS = 60_000;
const AUDIENCE = 'https://kubernetes.default.svc';

let pod: SimulatedPod<FileTokenSource> | undefined;
afterEach(async () => {
  await pod?.close();
  pod = undefined;
});

// One client for request (the redirect-interceptor order does not matter without redirects).
describe.each(clients.filter((client) => !client.name.includes('outside')))('$name under rotation', (client) => {
  it(`sends ${REQUESTS} requests over ${MIN_ROTATIONS}+ rotations with 0 answered 401 and 0 without a token`, { timeout: 120_000 }, async () => {
    pod = await startSimulatedPod({ audience: AUDIENCE, expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start', source: true });
    const { server, kubelet, source } = pod;
    const dispatcher = client.dispatcher(source, { origins: [server.origin] });
    const refreshes: number[] = [];
    source.onRefresh(() => refreshes.push(performance.now()));
    try {
      const firstRotation = kubelet.rotations;
      const started = performance.now();
      const statuses = new Map<number, number>();
      let sent = 0;
      while ((sent < REQUESTS || kubelet.rotations - firstRotation < MIN_ROTATIONS) && performance.now() - started < MAX_MS) {
        const batch = await Promise.all(
          Array.from({ length: CONCURRENCY }, async (_, i) => {
            const reply = await client.call(dispatcher, `${server.url}load/${sent + i}`, i % 2 === 0 ? {} : { method: 'POST', body: `request ${sent + i}` });
            return reply.status;
          }),
        );
        for (const status of batch) statuses.set(status, (statuses.get(status) ?? 0) + 1);
        sent += batch.length;
        await delay(PAUSE_MS);
      }
      const seconds = (performance.now() - started) / 1000;
      const rotations = kubelet.rotations - firstRotation;
      const counts = server.counts;
      const tokensSeen = new Set(server.log.map((entry) => entry.tokenId)).size;
      console.log(
        `[${client.name}] ${sent} requests in ${seconds.toFixed(1)} s, ${rotations} rotations, ${refreshes.length} reloads, ` +
          `${tokensSeen} distinct tokens seen by the server, counts ${JSON.stringify(counts)}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
      expect(sent).toBeGreaterThanOrEqual(REQUESTS);
      expect(rotations).toBeGreaterThanOrEqual(MIN_ROTATIONS);
      expect(counts).toEqual({ ok: sent, unauthorized: 0, missing: 0 });
      expect(Object.fromEntries(statuses)).toEqual({ 200: sent });
      expect(tokensSeen).toBeGreaterThanOrEqual(MIN_ROTATIONS);
    } finally {
      await dispatcher.close();
    }
  });
});
