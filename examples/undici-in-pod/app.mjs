// undici's global dispatcher in a (simulated) pod.
//
// The part marked "the app" is all a real pod needs: a FileTokenSource on the projected
// token's path, undici's setGlobalDispatcher with @podtoken/undici's withTokenSource, installed
// once at start-up, and a readiness endpoint on the source for the pod's readinessProbe. From
// then on the process calls Node's own global fetch, unwrapped, and every library built on it
// gets the token the same way; only requests to `origins` carry it.
//
// The rest plays the cluster in a temp folder (startSimulatedPod): the service-account
// signer, the kubelet writing the projected volume with its atomic writer, and an API that
// verifies every bearer token against the signer's JWKS; plus a second API elsewhere
// (startTokenServer), which would accept a leaked token.
//
// Time is compressed: tokens live 4 s and the kubelet replaces them every second.
// Token values are never printed.
//
//   pnpm --filter undici-in-pod start      (builds the workspace packages first, then runs this)
//   node app.mjs --url https://billing.internal.example/v1/invoices --token /var/run/secrets/tokens/billing-token

import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Agent, getGlobalDispatcher, setGlobalDispatcher } from 'undici';
import { FileTokenSource, isTokenSourceError, readiness } from '@podtoken/core';
import { withTokenSource } from '@podtoken/undici';
import { startSimulatedPod, startTokenServer } from '@podtoken/testing';

const AUDIENCE = 'https://billing.internal.example';

/**
 * Runs the demo and returns what it measured (see app.d.mts).
 *
 * @param {{ requests?: number, concurrency?: number, minRotations?: number, log?: (line: string) => void }} [options]
 */
export async function main({ requests = 600, concurrency = 4, minRotations = 3, log = console.log } = {}) {
  // The kubelet writes the first token, then a new one every second.
  const pod = await startSimulatedPod({ name: 'undici-in-pod', audience: AUDIENCE, file: 'billing-token', expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start' });
  const { kubelet, server: billing } = pod;
  const written = new Set(); // every token the kubelet wrote, to check that none was printed
  if (kubelet.last !== undefined) written.add(kubelet.last.token);
  const stopWatching = kubelet.onRotate((rotation) => written.add(rotation.token));
  const previousDispatcher = getGlobalDispatcher();
  let elsewhere;
  let source;
  let dispatcher;
  let probe;
  try {
    elsewhere = await startTokenServer({ issuer: pod.issuer, audience: AUDIENCE }); // would accept a leaked token

    // ---- the app ---------------------------------------------------------------------------
    source = new FileTokenSource({ name: 'billing', path: pod.tokenPath, audience: AUDIENCE });
    dispatcher = withTokenSource(new Agent(), source, {
      origins: [billing.origin], // the token goes to this API and nowhere else
    });
    setGlobalDispatcher(dispatcher); // Node's fetch, and every library on it, now sends through it
    probe = createServer(readiness(source)); // readinessProbe: httpGet on this port
    await new Promise((resolve) => probe.listen(0, '127.0.0.1', resolve));
    // -----------------------------------------------------------------------------------------
    const readyUrl = `http://127.0.0.1:${probe.address().port}/ready`;

    // 1. Plain global fetch, spread over several rotations: no wrapper at the call site.
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
          const response = await fetch(`${billing.url}invoices/${index}`, { signal: AbortSignal.timeout(10_000) });
          const body = await response.json();
          if (response.ok && body.ok === true) ok += 1;
          else failures.push(`HTTP ${response.status}`);
        } catch (error) {
          const cause = error?.cause ?? error;
          failures.push(isTokenSourceError(cause) ? cause.code : String(cause?.code ?? cause?.name ?? cause));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const rotations = kubelet.rotations - firstRotation;
    const server = billing.counts;
    const distinctTokens = new Set(billing.log.map((entry) => entry.tokenId)).size;

    // 2. The API refuses the token in use (its pod "was deleted") while the kubelet writes a
    //    new one: on the 401 the dispatcher re-reads the file and sends the request once more
    //    with the new token. (If the folder watcher loaded the new token first, no 401 at all.)
    await kubelet.stop();
    billing.revoke(source.current.value);
    await kubelet.rotate();
    const before = billing.counts.unauthorized;
    const revokedResponse = await fetch(`${billing.url}invoices/after-revoke`);
    await revokedResponse.arrayBuffer();
    const revoked = { status: revokedResponse.status, refused: billing.counts.unauthorized - before };

    // 3. The API redirects to another origin: fetch follows, the token stays behind.
    const redirect = await fetch(`${billing.url}redirect?to=${encodeURIComponent(`${elsewhere.url}moved`)}`);
    await redirect.arrayBuffer();
    const redirected = elsewhere.log[0]?.outcome ?? 'no request';

    // 4. A URL outside `origins`, through the same global fetch: no token.
    await (await fetch(`${elsewhere.url}probe`)).arrayBuffer();
    const otherOrigin = elsewhere.log[1]?.outcome ?? 'no request';

    // 5. The readiness endpoint, as the kubelet's probe calls it; then again once the source is
    //    closed (as on shutdown), when the pod must leave the Service's endpoints.
    const ask = async () => {
      const response = await fetch(readyUrl);
      const text = await response.text();
      const entry = JSON.parse(text).sources?.[0];
      return { status: response.status, state: entry?.state ?? 'none', text };
    };
    const ready = await ask();
    const status = source.status();
    await source.close();
    const closed = await ask();

    const summary = {
      requests,
      ok,
      failures,
      server,
      rotations,
      distinctTokens,
      revoked,
      redirect: { status: redirect.status, arrived: redirected },
      otherOrigin,
      readiness: { status: ready.status, state: ready.state, afterClose: { status: closed.status, state: closed.state } },
      printedTokens: 0,
    };
    const lines = [
      `undici-in-pod (undici ${packageVersion('undici')} as the global dispatcher; Node ${process.version}'s fetch: bundled undici ${process.versions.undici})`,
      `  token file     ${pod.tokenPath} (the kubelet rotates it every second)`,
      `  global fetch   ${ok}/${requests} ok; the API saw ${server.ok} ok, ${server.unauthorized} answered 401, ${server.missing} without a token`,
      `  rotations      ${rotations} during the run; ${distinctTokens} distinct tokens reached the API`,
      `  revoked token  answered ${revoked.status} ${
        revoked.refused === 0 ? '(the watcher had already loaded the new token: no 401)' : `after ${revoked.refused} × 401 and one retry with the new token`
      }`,
      `  redirect       to another origin: it ${redirected === 'missing' ? 'received no token' : `saw ${redirected}`}`,
      `  other origin   ${otherOrigin === 'missing' ? 'received no token' : `saw ${otherOrigin}`}`,
      `  readiness      GET ${readyUrl}: ${ready.status}, source '${status.name}' ${ready.state} (expires in ${Math.round((status.expiresIn ?? 0) / 1000)} s); after close(): ${closed.status}, ${closed.state}`,
    ];
    if (failures.length > 0) lines.push(`  failures       ${failures.join(', ')}`);
    // What leaves this process (printed lines, probe answers) is checked for every token written.
    const outgoing = [...lines, ready.text, closed.text].join('\n');
    summary.printedTokens = [...written].filter((token) => outgoing.includes(token)).length;
    for (const line of lines) log(line);
    return summary;
  } finally {
    stopWatching();
    setGlobalDispatcher(previousDispatcher);
    await source?.close();
    await Promise.all([
      pod.close(), // stops the kubelet and removes the folder
      elsewhere?.close(),
      dispatcher?.close(),
      probe === undefined ? undefined : new Promise((resolve) => probe.close(resolve)),
    ]);
  }
}

/**
 * In a real pod: installs the global dispatcher with the projected token at `token` (default:
 * the ServiceAccount token) for `url`'s origin, serves the readiness probe on `readyPort`,
 * then calls `url` with plain fetch `rounds` times, `interval` ms apart, and prints each
 * status. Resolves with the exit code: 0 when every call was answered 2xx.
 *
 * @param {{ url: string, token?: string, audience?: string, rounds?: number, interval?: number, readyPort?: number, readyHost?: string, log?: (line: string) => void }} options
 */
export async function inCluster({ url, token, audience, rounds = 1, interval = 60_000, readyPort = 8081, readyHost, log = console.log }) {
  const source = new FileTokenSource({ path: token, audience });
  const previousDispatcher = getGlobalDispatcher();
  const dispatcher = withTokenSource(new Agent(), source, { origins: [new URL(url).origin] });
  setGlobalDispatcher(dispatcher);
  const probe = createServer(readiness(source));
  await new Promise((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(readyPort, readyHost, resolve);
  });
  log(`readiness probe on port ${probe.address().port}`);
  let failed = 0;
  try {
    for (let round = 1; round <= rounds; round += 1) {
      if (round > 1) await new Promise((resolve) => setTimeout(resolve, interval));
      let status;
      try {
        const response = await fetch(url);
        status = response.status;
        await response.arrayBuffer();
      } catch (error) {
        const cause = error?.cause ?? error;
        status = isTokenSourceError(cause) ? cause.code : String(cause?.code ?? cause);
      }
      if (!(typeof status === 'number' && status >= 200 && status < 300)) failed += 1;
      const { state, expiresIn } = source.status();
      log(`round ${round}: ${status} (source ${state}${expiresIn === undefined ? '' : `, token expires in ${Math.round(expiresIn / 1000)} s`})`);
    }
  } finally {
    setGlobalDispatcher(previousDispatcher);
    await source.close();
    await Promise.all([dispatcher.close(), new Promise((resolve) => probe.close(resolve))]);
  }
  return failed === 0 ? 0 : 1;
}

/** The installed version of a dependency, from its package.json. */
function packageVersion(name) {
  return createRequire(import.meta.url)(`${name}/package.json`).version;
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
      readyPort: Number(option(argv, '--ready-port') ?? 8081),
    });
  } else {
    const s = await main();
    const healthy =
      s.ok === s.requests &&
      s.server.unauthorized === 0 &&
      s.server.missing === 0 &&
      s.revoked.status === 200 &&
      s.redirect.arrived === 'missing' &&
      s.otherOrigin === 'missing' &&
      s.readiness.status === 200 &&
      s.readiness.state === 'ok' &&
      s.readiness.afterClose.status === 503 &&
      s.printedTokens === 0;
    process.exitCode = healthy ? 0 : 1;
  }
}
