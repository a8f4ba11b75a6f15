import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import got from 'got';
import { isTokenSourceError, type FileTokenSource } from '@podtoken/core';
import { startSimulatedPod, type FakeKubelet, type SimulatedPod, type TokenServer } from '@podtoken/testing';
import { withTokenSource } from '@podtoken/got';

// (a) 2,000 requests through got while a FakeKubelet rotates short-lived tokens on the real
// filesystem, in the kubelet's atomic-writer layout. The server's own counts decide.

const AUDIENCE = 'https://kubernetes.default.svc';
const REQUESTS = 2_000;
const WORKERS = 8;
// The issuer floors iat to the second, so a 2 s token may live only 1 s of real time; with a
// rotation every 0.5 s a fresh token is on disk long before the old one expires.
const EXPIRATION_SECONDS = 2;
const ROTATE_AFTER = 0.25;
const MIN_ROTATIONS = 4;

let pod: SimulatedPod<FileTokenSource> | undefined;
let server: TokenServer;
let kubelet: FakeKubelet;
let source: FileTokenSource;

beforeAll(async () => {
  pod = await startSimulatedPod({
    audience: AUDIENCE,
    expirationSeconds: EXPIRATION_SECONDS,
    rotateAfter: ROTATE_AFTER,
    kubelet: 'start',
    source: { readyTimeout: 10_000 },
  });
  ({ server, kubelet, source } = pod);
});

afterAll(async () => {
  await pod?.close();
});

describe('got + FileTokenSource + FakeKubelet rotating every 0.5 s (real filesystem)', () => {
  it(`${REQUESTS} requests over several rotations: 0 answered 401, 0 sent without a token`, { timeout: 180_000 }, async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url, timeout: { request: 10_000 } }), source);
    const startRotations = kubelet.rotations;
    const startedAt = performance.now();
    let next = 0;
    let ok = 0;
    const failures: string[] = [];
    // Paced so the run spans several rotations even on a fast machine: each worker waits until
    // the kubelet has rotated often enough for its share of requests (bounded by the test timeout).
    const perRotation = Math.ceil(REQUESTS / (MIN_ROTATIONS + 1));
    const worker = async () => {
      while (next < REQUESTS) {
        const index = next++;
        while (Math.floor(index / perRotation) > kubelet.rotations - startRotations) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        try {
          const response = await api.get(`anything?i=${index}`).json<{ ok: boolean }>();
          if (response.ok) ok += 1;
        } catch (error) {
          // Codes and statuses only: never an error that could carry a header.
          failures.push(isTokenSourceError(error) ? error.code : String((error as { code?: unknown }).code));
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, worker));
    const seconds = (performance.now() - startedAt) / 1000;
    const rotations = kubelet.rotations - startRotations;
    const counts = server.counts;
    console.log(
      `[got rotation] ${REQUESTS} requests in ${seconds.toFixed(1)} s across ${rotations} rotations: ` +
        `server ok=${counts.ok} unauthorized=${counts.unauthorized} missing=${counts.missing}; client failures=${failures.length}`,
    );

    expect(failures).toEqual([]);
    expect(ok).toBe(REQUESTS);
    expect(counts).toEqual({ ok: REQUESTS, unauthorized: 0, missing: 0 });
    expect(rotations).toBeGreaterThanOrEqual(MIN_ROTATIONS);
    // Several different tokens were actually used (the server logs ids, never tokens).
    const tokensUsed = new Set(server.log.map((entry) => entry.tokenId)).size;
    console.log(`[got rotation] distinct tokens seen by the server: ${tokensUsed}`);
    expect(tokensUsed).toBeGreaterThanOrEqual(MIN_ROTATIONS);
  });
});
