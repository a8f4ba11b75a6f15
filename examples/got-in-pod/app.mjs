// got in a (simulated) pod.
//
// In a real pod you would only write the part marked "the app": a FileTokenSource on the
// projected token's path and a got instance wrapped with withTokenSource. Everything else
// here plays the cluster (startSimulatedPod): a token issuer (the API server's signer), the
// kubelet writing the projected volume with its atomic writer into a temp folder, and an API
// that verifies each bearer token against the issuer's keys, as an API server verifies OIDC
// tokens; plus a second API elsewhere (startTokenServer).
//
// Time is compressed: tokens live 2 s and the kubelet rotates them every 0.5 s, so a few
// seconds cover several rotations. Token values are never printed.
//
//   pnpm --filter got-in-pod start        (builds the workspace packages, then runs this)

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readFileSync } from 'node:fs';
import got from 'got';
import { FileTokenSource, isTokenSourceError } from '@podtoken/core';
import { withTokenSource } from '@podtoken/got';
import { startSimulatedPod, startTokenServer } from '@podtoken/testing';

const AUDIENCE = 'https://orders.internal.example';

/**
 * Runs the demo and returns what it measured.
 *
 * @param {{ requests?: number, concurrency?: number, minRotations?: number, log?: (line: string) => void }} [options]
 * @returns {Promise<{ requests: number, ok: number, failures: string[], server: { ok: number, unauthorized: number, missing: number },
 *   rotations: number, distinctTokens: number, revoked: { status: number, retries: number, refused: number }, otherOrigin: string }>}
 */
export async function main({ requests = 400, concurrency = 4, minRotations = 4, log = console.log } = {}) {
  // The kubelet writes the first token, then a new one every half second.
  const pod = await startSimulatedPod({ name: 'got-in-pod', audience: AUDIENCE, file: 'orders-token', expirationSeconds: 2, rotateAfter: 0.25, kubelet: 'start' });
  const { kubelet, server: orders } = pod;
  let elsewhere;
  let source;
  try {
    elsewhere = await startTokenServer({ issuer: pod.issuer, audience: 'someone-else' });

    // ---- the app ---------------------------------------------------------------------------
    source = new FileTokenSource({ path: pod.tokenPath, audience: AUDIENCE });
    const api = withTokenSource(got.extend({ prefixUrl: orders.url, timeout: { request: 10_000 } }), source, {
      origins: [orders.origin], // the token goes to this API and nowhere else
    });
    // -----------------------------------------------------------------------------------------

    // 1. Requests spread over several rotations.
    const firstRotation = kubelet.rotations;
    const perRotation = Math.ceil(requests / (minRotations + 1));
    let next = 0;
    let ok = 0;
    const failures = [];
    const worker = async () => {
      while (next < requests) {
        const index = next++;
        while (Math.floor(index / perRotation) > kubelet.rotations - firstRotation) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        try {
          const reply = await api.get(`orders/${index}`).json();
          if (reply.ok === true) ok += 1;
        } catch (error) {
          failures.push(isTokenSourceError(error) ? error.code : String(error?.code ?? error));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const rotations = kubelet.rotations - firstRotation;
    const server = orders.counts;
    const distinctTokens = new Set(orders.log.map((entry) => entry.tokenId)).size;

    // 2. The API refuses the token in use (as when it is revoked) right as the kubelet writes
    //    a new one: the adapter re-reads on the 401 and retries once with the new token.
    kubelet.stop();
    orders.revoke(source.current.value);
    await kubelet.rotate();
    // (If the folder watcher loads the new token before the request goes out, no 401 happens at all.)
    const before = orders.counts.unauthorized;
    const revokedResponse = await api.get('orders/after-revoke', { throwHttpErrors: false });
    const revoked = { status: revokedResponse.statusCode, retries: revokedResponse.retryCount, refused: orders.counts.unauthorized - before };

    // 3. A URL outside `origins` never sees the token.
    await api.get(`${elsewhere.url}probe`, { throwHttpErrors: false });
    const otherOrigin = elsewhere.log[0]?.outcome ?? 'no request';

    const summary = { requests, ok, failures, server, rotations, distinctTokens, revoked, otherOrigin };
    log(`got-in-pod (got ${gotVersion()}, node ${process.version})`);
    log(`  token file     ${pod.tokenPath} (kubelet rotates every 0.5 s)`);
    log(`  requests       ${ok}/${requests} ok; server saw ${server.ok} ok, ${server.unauthorized} answered 401, ${server.missing} without a token`);
    log(`  rotations      ${rotations} during the run; ${distinctTokens} distinct tokens reached the API`);
    log(
      `  revoked token  answered ${revoked.status} ${
        revoked.retries === 0 ? '(the watcher had already loaded the new token: no 401)' : `after ${revoked.refused} × 401 and ${revoked.retries} retry with the new token`
      }`,
    );
    log(`  other origin   ${otherOrigin === 'missing' ? 'received no token' : `saw ${otherOrigin}`}`);
    if (failures.length > 0) log(`  failures       ${failures.join(', ')}`);
    return summary;
  } finally {
    await source?.close();
    await Promise.all([pod.close(), elsewhere?.close()]); // pod.close() stops the kubelet and removes the folder
  }
}

function gotVersion() {
  try {
    // got's exports map has no ./package.json: find it next to its entry point (dist/source/index.js).
    const entry = createRequire(import.meta.url).resolve('got');
    return JSON.parse(readFileSync(join(dirname(entry), '..', '..', 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

/**
 * In a real pod: calls `url` every `interval` ms, `rounds` times, with the projected token at
 * `token` (default: the ServiceAccount token), and prints each answer's status. Resolves
 * with the exit code: 0 when every call was answered 2xx.
 *
 * @param {{ url: string, token?: string, audience?: string, rounds?: number, interval?: number, log?: (line: string) => void }} options
 */
export async function inCluster({ url, token, audience, rounds = 1, interval = 60_000, log = console.log }) {
  const source = new FileTokenSource({ path: token, audience });
  let failed = 0;
  try {
    const api = withTokenSource(got.extend({ timeout: { request: 10_000 } }), source, { origins: [new URL(url).origin] });
    for (let round = 1; round <= rounds; round += 1) {
      if (round > 1) await new Promise((resolve) => setTimeout(resolve, interval));
      let status;
      try {
        const response = await api.get(url, { throwHttpErrors: false });
        status = response.statusCode;
      } catch (error) {
        status = isTokenSourceError(error) ? error.code : String(error?.code ?? error);
      }
      if (!(typeof status === 'number' && status >= 200 && status < 300)) failed += 1;
      log(`round ${round}: ${status} (token ${source.current ? `expires ${source.current.expiresAt?.toISOString() ?? 'never'}, refresh at ${source.current.refreshAt?.toISOString() ?? 'never'}` : 'not loaded'})`);
    }
  } finally {
    await source.close();
  }
  return failed === 0 ? 0 : 1;
}

/** `--name value` from argv, or undefined. */
function option(argv, name) {
  const index = argv.indexOf(name);
  return index === -1 ? undefined : argv[index + 1];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const url = option(argv, '--url');
  if (url !== undefined) {
    process.exitCode = await inCluster({
      url,
      token: option(argv, '--token'),
      audience: option(argv, '--audience'),
      rounds: Number(option(argv, '--rounds') ?? 1),
      interval: Number(option(argv, '--interval') ?? 60_000),
    });
  } else {
    const summary = await main();
    const healthy = summary.ok === summary.requests && summary.server.unauthorized === 0 && summary.server.missing === 0 && summary.revoked.status === 200;
    process.exitCode = healthy ? 0 : 1;
  }
}
