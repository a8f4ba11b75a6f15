import { setTimeout as delay } from 'node:timers/promises';
import axios from 'axios';
import { afterEach, describe, expect, it } from 'vitest';
import type { FileTokenSource } from '@podtoken/core';
import { startSimulatedPod, type SimulatedPod } from '@podtoken/testing';
import { withTokenSource } from '@podtoken/axios';
import { AUDIENCE } from './support.js';

// Issue 3, "it must show" 1: 2,000 requests over several kubelet rotations on the real
// filesystem, 0 answered 401, 0 sent without a token, counted by the server itself.
//
// Tokens live 4 s and the kubelet replaces them every second (rotateAfter 0.25). A token's
// iat is in whole seconds, so it can expire up to 1 s early; that still leaves >= 2 s
// between a new token on disk and the old one expiring, for the watcher to load it.
const REQUESTS = 2_000;
const MIN_ROTATIONS = 4;
const CONCURRENCY = 8;
const PAUSE_MS = 10; // spreads the requests over seconds; the loop also runs until MIN_ROTATIONS happened
const MAX_MS = 60_000;

let pod: SimulatedPod<FileTokenSource> | undefined;
afterEach(async () => {
  await pod?.close();
  pod = undefined;
});

describe.each([
  ['http adapter (follow-redirects)', 'http'],
  ['fetch adapter', 'fetch'],
] as const)('axios %s under rotation', (name, adapter) => {
  it(`sends ${REQUESTS} requests over ${MIN_ROTATIONS}+ rotations with 0 answered 401 and 0 without a token`, { timeout: 120_000 }, async () => {
    pod = await startSimulatedPod({ audience: AUDIENCE, expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start', source: true });
    const { server, kubelet, source } = pod;
    const api = withTokenSource(axios.create({ baseURL: server.url, adapter, validateStatus: () => true }), source, {
      origins: [server.origin],
    });
    const refreshes: number[] = [];
    source.onRefresh(() => refreshes.push(performance.now()));

    const firstRotation = kubelet.rotations;
    const started = performance.now();
    const statuses = new Map<number, number>();
    let sent = 0;
    while ((sent < REQUESTS || kubelet.rotations - firstRotation < MIN_ROTATIONS) && performance.now() - started < MAX_MS) {
      const batch = await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, i) => {
          const n = sent + i;
          const response = n % 2 === 0 ? await api.get(`load/${n}`) : await api.post(`load/${n}`, { n });
          return response.status;
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
      `[axios ${axios.VERSION}, ${name}] ${sent} requests in ${seconds.toFixed(1)} s, ${rotations} rotations, ${refreshes.length} reloads, ` +
        `${tokensSeen} distinct tokens seen by the server, counts ${JSON.stringify(counts)}, statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );

    expect(sent).toBeGreaterThanOrEqual(REQUESTS);
    expect(rotations).toBeGreaterThanOrEqual(MIN_ROTATIONS);
    expect(counts).toEqual({ ok: sent, unauthorized: 0, missing: 0 });
    expect(Object.fromEntries(statuses)).toEqual({ 200: sent });
    expect(tokensSeen).toBeGreaterThanOrEqual(MIN_ROTATIONS);
  });
});
