// The global fetch (undici) in a (simulated) pod.
//
// The part marked "the app" is all a real pod needs: a FileTokenSource on the projected
// token's path and fetch wrapped with withTokenSource. The rest plays the cluster in a temp
// folder (startSimulatedPod): the service-account signer, the kubelet writing the projected
// volume with its atomic writer, and an API that verifies every bearer token against the
// signer's JWKS; plus a second API elsewhere (startTokenServer).
//
// Time is compressed: tokens live 4 s and the kubelet replaces them every second.
// Token values are never printed.
//
//   pnpm --filter fetch-in-pod start      (builds the workspace packages first, then runs this)

import { pathToFileURL } from 'node:url';
import { FileTokenSource, isTokenSourceError } from '@podtoken/core';
import { withTokenSource } from '@podtoken/fetch';
import { startSimulatedPod, startTokenServer } from '@podtoken/testing';

const AUDIENCE = 'https://billing.internal.example';

/**
 * Runs the demo and returns what it measured (see app.d.mts).
 *
 * @param {{ requests?: number, concurrency?: number, minRotations?: number, log?: (line: string) => void }} [options]
 */
export async function main({ requests = 600, concurrency = 4, minRotations = 3, log = console.log } = {}) {
  // The kubelet writes the first token, then a new one every second.
  const pod = await startSimulatedPod({ name: 'fetch-in-pod', audience: AUDIENCE, file: 'billing-token', expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start' });
  const { kubelet, server: billing } = pod;
  let elsewhere;
  let source;
  try {
    elsewhere = await startTokenServer({ issuer: pod.issuer, audience: AUDIENCE }); // would accept a leaked token

    // ---- the app ---------------------------------------------------------------------------
    source = new FileTokenSource({ path: pod.tokenPath, audience: AUDIENCE });
    const billingFetch = withTokenSource(fetch, source, {
      origins: [billing.origin], // the token goes to this API and nowhere else
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
          const response = await billingFetch(`${billing.url}invoices/${index}`, { signal: AbortSignal.timeout(10_000) });
          const body = await response.json();
          if (response.ok && body.ok === true) ok += 1;
          else failures.push(`HTTP ${response.status}`);
        } catch (error) {
          failures.push(isTokenSourceError(error) ? error.code : String(error?.name ?? error));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const rotations = kubelet.rotations - firstRotation;
    const server = billing.counts;
    const distinctTokens = new Set(billing.log.map((entry) => entry.tokenId)).size;

    // 2. The API refuses the token in use (its pod "was deleted") while the kubelet writes a
    //    new one: on the 401 the wrapper re-reads the file and retries once with the new token.
    //    (If the folder watcher loaded the new token first, no 401 happens at all.)
    kubelet.stop();
    billing.revoke(source.current.value);
    await kubelet.rotate();
    const before = billing.counts.unauthorized;
    const revokedResponse = await billingFetch(`${billing.url}invoices/after-revoke`);
    await revokedResponse.arrayBuffer();
    const revoked = { status: revokedResponse.status, refused: billing.counts.unauthorized - before };

    // 3. The API redirects to another origin: the token stays behind.
    const redirect = await billingFetch(`${billing.url}redirect?to=${encodeURIComponent(`${elsewhere.url}moved`)}`);
    await redirect.arrayBuffer();
    const redirected = elsewhere.log[0]?.outcome ?? 'no request';

    // 4. A URL outside `origins` never gets the token.
    await (await billingFetch(`${elsewhere.url}probe`)).arrayBuffer();
    const otherOrigin = elsewhere.log[1]?.outcome ?? 'no request';

    const summary = { requests, ok, failures, server, rotations, distinctTokens, revoked, redirect: { status: redirect.status, arrived: redirected }, otherOrigin };
    log(`fetch-in-pod (global fetch: undici ${process.versions.undici}, node ${process.version})`);
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
    const api = withTokenSource(fetch, source, { origins: [new URL(url).origin] });
    for (let round = 1; round <= rounds; round += 1) {
      if (round > 1) await new Promise((resolve) => setTimeout(resolve, interval));
      let status;
      try {
        const response = await api(url);
        status = response.status;
        await response.arrayBuffer();
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
    const s = await main();
    const healthy = s.ok === s.requests && s.server.unauthorized === 0 && s.server.missing === 0 && s.revoked.status === 200 && s.redirect.arrived === 'missing' && s.otherOrigin === 'missing';
    process.exitCode = healthy ? 0 : 1;
  }
}
