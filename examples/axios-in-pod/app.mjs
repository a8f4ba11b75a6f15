// axios in a (simulated) pod.
//
// The part marked "the app" is all a real pod needs: a FileTokenSource on the projected
// token's path and an axios instance wrapped with withTokenSource. The rest plays the
// cluster in a temp folder (startSimulatedPod): the service-account signer, the kubelet
// writing the projected volume with its atomic writer, and an API that verifies every bearer
// token against the signer's JWKS; plus a second API elsewhere (startTokenServer).
//
// Time is compressed: tokens live 4 s and the kubelet replaces them every second.
// Token values are never printed.
//
//   pnpm --filter axios-in-pod start      (builds the workspace packages first, then runs this)
//
// callService() is the same app pointed at a service of your own, such as
// examples/verify-service, which checks each token it receives. In a pod:
//
//   node app.mjs --target https://verify-service.shop.svc:8080 --token /var/run/secrets/tokens/verify-token --audience https://verify-service.shop.svc

import { pathToFileURL } from 'node:url';
import axios from 'axios';
import { FileTokenSource, isTokenSourceError } from '@podtoken/core';
import { withTokenSource } from '@podtoken/axios';
import { startSimulatedPod, startTokenServer } from '@podtoken/testing';

const AUDIENCE = 'https://inventory.internal.example';

/**
 * Runs the demo and returns what it measured (see app.d.mts).
 *
 * @param {{ requests?: number, concurrency?: number, minRotations?: number, log?: (line: string) => void }} [options]
 */
export async function main({ requests = 600, concurrency = 4, minRotations = 3, log = console.log } = {}) {
  // The kubelet writes the first token, then a new one every second.
  const pod = await startSimulatedPod({ name: 'axios-in-pod', audience: AUDIENCE, file: 'inventory-token', expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start' });
  const { kubelet, server: inventory } = pod;
  let elsewhere;
  let source;
  try {
    elsewhere = await startTokenServer({ issuer: pod.issuer, audience: AUDIENCE }); // would accept a leaked token

    // ---- the app ---------------------------------------------------------------------------
    source = new FileTokenSource({ path: pod.tokenPath, audience: AUDIENCE });
    const api = withTokenSource(axios.create({ baseURL: inventory.url, timeout: 10_000 }), source, {
      origins: [inventory.origin], // the token goes to this API and nowhere else
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
        // pace the requests so that they span minRotations rotations
        while (Math.floor(index / perRotation) > kubelet.rotations - firstRotation) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        try {
          const { data } = await api.get(`items/${index}`);
          if (data.ok === true) ok += 1;
        } catch (error) {
          failures.push(isTokenSourceError(error) ? error.code : axios.isAxiosError(error) ? `HTTP ${error.response?.status ?? error.code}` : String(error));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const rotations = kubelet.rotations - firstRotation;
    const server = inventory.counts;
    const distinctTokens = new Set(inventory.log.map((entry) => entry.tokenId)).size;

    // 2. The API refuses the token in use (its pod "was deleted") while the kubelet writes a
    //    new one: on the 401 the adapter re-reads the file and retries once with the new token.
    //    (If the folder watcher loaded the new token first, no 401 happens at all.)
    kubelet.stop();
    inventory.revoke(source.current.value);
    await kubelet.rotate();
    const before = inventory.counts.unauthorized;
    const revokedResponse = await api.get('items/after-revoke', { validateStatus: () => true });
    const revoked = { status: revokedResponse.status, refused: inventory.counts.unauthorized - before };

    // 3. The API redirects to another origin: the token stays behind.
    const redirect = await api.get(`redirect?to=${encodeURIComponent(`${elsewhere.url}moved`)}`, { validateStatus: () => true });
    const redirected = elsewhere.log[0]?.outcome ?? 'no request';

    // 4. A URL outside `origins` never gets the token.
    await api.get(`${elsewhere.url}probe`, { validateStatus: () => true });
    const otherOrigin = elsewhere.log[1]?.outcome ?? 'no request';

    const summary = { requests, ok, failures, server, rotations, distinctTokens, revoked, redirect: { status: redirect.status, arrived: redirected }, otherOrigin };
    log(`axios-in-pod (axios ${axios.VERSION}, node ${process.version})`);
    log(`  token file     ${pod.tokenPath} (the kubelet rotates it every second)`);
    log(`  requests       ${ok}/${requests} ok; the API saw ${server.ok} ok, ${server.unauthorized} answered 401, ${server.missing} without a token`);
    log(`  rotations      ${rotations} during the run; ${distinctTokens} distinct tokens reached the API`);
    log(
      `  revoked token  answered ${revoked.status} ${
        revoked.refused === 0 ? '(the watcher had already loaded the new token: no 401)' : `after ${revoked.refused} × 401 and one retry with the new token`
      }`,
    );
    log(`  redirect       to another origin: it ${redirected === 'missing' ? 'received no token' : `saw ${redirected}`}`);
    log(`  other origin   ${otherOrigin === 'missing' ? 'received no token' : `saw ${otherOrigin}`}`);
    if (failures.length > 0) log(`  failures       ${failures.join(', ')}`);
    return summary;
  } finally {
    await source?.close();
    await Promise.all([pod.close(), elsewhere?.close()]); // pod.close() stops the kubelet and removes the folder
  }
}

/**
 * The app, pointed at `target`: a FileTokenSource on the projected token at `tokenPath` and an
 * axios instance wrapped with withTokenSource, sending `requests` GETs to `path` (the token
 * goes to the target's origin only). Returns what came back (see app.d.mts); never a token.
 *
 * @param {{ target: string, tokenPath: string, audience?: string, requests?: number, concurrency?: number, path?: string, interval?: number }} options
 */
export async function callService({ target, tokenPath, audience, requests = 10, concurrency = 2, path = 'whoami', interval = 0 }) {
  const origin = new URL(target).origin;
  const source = new FileTokenSource({ path: tokenPath, ...(audience === undefined ? {} : { audience }) });
  try {
    const api = withTokenSource(axios.create({ baseURL: target, timeout: 10_000, validateStatus: () => true }), source, { origins: [origin] });
    const statuses = {};
    const callers = new Set();
    let next = 0;
    const worker = async () => {
      while (next < requests) {
        next += 1;
        try {
          const response = await api.get(path);
          statuses[response.status] = (statuses[response.status] ?? 0) + 1;
          if (response.status === 200 && typeof response.data?.caller === 'string') callers.add(response.data.caller);
        } catch (error) {
          const code = isTokenSourceError(error) ? error.code : axios.isAxiosError(error) ? (error.code ?? 'network error') : String(error);
          statuses[code] = (statuses[code] ?? 0) + 1;
        }
        if (interval > 0) await new Promise((resolve) => setTimeout(resolve, interval));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { requests, statuses, callers: [...callers] };
  } finally {
    await source.close();
  }
}

/** `--name value` from argv, or undefined. */
function flag(name) {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? undefined : process.argv[index + 1];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && flag('target') !== undefined) {
  const tokenPath = flag('token') ?? '/var/run/secrets/kubernetes.io/serviceaccount/token';
  const result = await callService({
    target: flag('target'),
    tokenPath,
    audience: flag('audience'),
    requests: Number(flag('requests') ?? 10),
    interval: Number(flag('interval') ?? 0),
  });
  console.log(`axios-in-pod → ${flag('target')}: ${JSON.stringify(result.statuses)} (token from ${tokenPath}); the service saw ${result.callers.join(', ') || 'no caller'}`);
  process.exitCode = result.statuses['200'] === result.requests ? 0 : 1;
} else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const s = await main();
  const healthy = s.ok === s.requests && s.server.unauthorized === 0 && s.server.missing === 0 && s.revoked.status === 200 && s.redirect.arrived === 'missing' && s.otherOrigin === 'missing';
  process.exitCode = healthy ? 0 : 1;
}
