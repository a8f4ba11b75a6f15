// Bench 6 — the receiving side (@podtoken/verify): what it costs a service to decide whether
// to trust the tokens it receives.
//
//   a. local OIDC verification per token (the issuer's keys cached): µs per verify() and
//      tokens/s per core (process CPU, the thread pool included), beside jose's bare
//      jwtVerify on the same tokens (what the checks around it add);
//   b. a TokenReview per request (cache off), against a local HTTPS stand-in of the API
//      server in another process that verifies each token as kube-apiserver does;
//   c. with the cache: 1,000 requests/s from 50 distinct callers for 10 s, counting the
//      TokenReviews that reach the API server (target: at most one per caller per TTL,
//      i.e. 50), and the same load with the cache off for contrast.
import { fork, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:https';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { createIssuer } from '@podtoken/testing';
import { createTokenVerifier } from '@podtoken/verify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { detail, fmt, heading, median, quantile, result, shuffle, sleep, tempDir } from './lib/stats.mjs';

const AUDIENCE = 'https://orders.shop.svc';
const ROUNDS = 15;

/** A self-signed certificate for 127.0.0.1, made with openssl for this run only. */
function certificate(dir) {
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
  const made = spawnSync('openssl', [...args, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  if (made.status !== 0) throw new Error('openssl could not make a certificate for the TokenReview stand-in');
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

async function startServer(issuer, tls) {
  const child = fork(new URL('./lib/tokenReviewServer.mjs', import.meta.url), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise((resolve) => child.once('message', resolve));
  child.send({ jwks: issuer.jwks, issuer: issuer.issuer, ...tls });
  const { port } = await ready;
  const url = `https://127.0.0.1:${port}`;
  const reviews = () =>
    new Promise((resolve, reject) => {
      get(`${url}/stats`, { ca: tls.cert }, (response) => {
        let text = '';
        response.setEncoding('utf8').on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve(JSON.parse(text).reviews));
      }).on('error', reject);
    });
  return { url, port, child, reviews };
}

/** Wall ns and process CPU µs per item of `run(n)`, medians over rounds, contenders interleaved. */
async function measure(contenders) {
  for (const c of contenders) await c.run(Math.ceil(c.batch / 5));
  const wall = new Map(contenders.map((c) => [c.name, []]));
  const cpu = new Map(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of shuffle([...contenders])) {
      globalThis.gc?.();
      const cpuStart = process.cpuUsage();
      const start = process.hrtime.bigint();
      await c.run(c.batch);
      const elapsed = Number(process.hrtime.bigint() - start);
      const used = process.cpuUsage(cpuStart);
      wall.get(c.name).push(elapsed / c.batch);
      cpu.get(c.name).push((used.user + used.system) / c.batch);
    }
  }
  return Object.fromEntries(contenders.map((c) => [c.name, { wallNs: median(wall.get(c.name)), cpuUs: median(cpu.get(c.name)) }]));
}

/** `perSecond` verify() calls a second for `seconds`, spread over `tokens` (callers) in turn; returns latencies. */
async function load(verifier, tokens, perSecond, seconds) {
  const latencies = [];
  const failures = new Map();
  const pending = new Set();
  const start = performance.now();
  const end = start + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - start) / 1000) * perSecond);
    while (sent < due) {
      const token = tokens[sent % tokens.length];
      sent += 1;
      const began = performance.now();
      const call = verifier.verify(token).then(
        () => latencies.push(performance.now() - began),
        (error) => failures.set(error.code ?? String(error), (failures.get(error.code ?? String(error)) ?? 0) + 1),
      );
      pending.add(call);
      call.finally(() => pending.delete(call));
    }
    await sleep(2);
  }
  await Promise.all(pending);
  return { sent, seconds: (performance.now() - start) / 1000, latencies, failures: Object.fromEntries(failures) };
}

export async function verify() {
  heading('6. Receiving side: verifying ServiceAccount tokens (@podtoken/verify)');
  const { dir, cleanup } = await tempDir('verify');
  const issuer = await createIssuer();
  const server = await startServer(issuer, certificate(dir));
  const tls = readFileSync(join(dir, 'cert.pem'), 'utf8');
  try {
    // Distinct tokens, as many callers would send.
    const tokens = await Promise.all(
      Array.from({ length: 2_000 }, (_, i) => issuer.mint({ audience: AUDIENCE, namespace: 'shop', serviceAccount: `caller-${i % 50}`, pod: `caller-${i}`, expirationSeconds: 3600 })),
    );

    // a. Local OIDC verification, keys cached after the first fetch.
    const oidc = createTokenVerifier({ method: 'oidc', audiences: AUDIENCE, issuer: issuer.issuer, jwksUri: `${server.url}/openid/v1/jwks`, ca: tls });
    await oidc.ready();
    const localKeys = createLocalJWKSet(issuer.jwks);
    const joseOptions = { issuer: issuer.issuer, audience: AUDIENCE, algorithms: ['RS256'], clockTolerance: 60, requiredClaims: ['exp', 'sub'] };
    let cursor = 0;
    const next = () => tokens[cursor++ % tokens.length];
    const local = await measure([
      {
        name: '@podtoken/verify oidc verify()',
        batch: 2_000,
        async run(n) {
          for (let i = 0; i < n; i++) await oidc.verify(next());
        },
      },
      {
        name: "jose jwtVerify (local key set)",
        batch: 2_000,
        async run(n) {
          for (let i = 0; i < n; i++) await jwtVerify(next(), localKeys, joseOptions);
        },
      },
    ]);
    const ours = local['@podtoken/verify oidc verify()'];
    const bare = local['jose jwtVerify (local key set)'];
    detail('per token, one at a time (RS256, 2,048-bit key, 2,000 distinct tokens):');
    for (const [name, figure] of Object.entries(local)) {
      detail(`  ${name.padEnd(36)} ${fmt(figure.wallNs / 1000, 1).padStart(7)} µs wall  ${fmt(figure.cpuUs, 1).padStart(7)} µs CPU  (${fmt(1e6 / figure.cpuUs, 0)} tokens/s per core)`);
    }
    // 10 MiB of garbage: refused by its length, before anything reads it.
    const garbage = 'A'.repeat(10 * 1024 * 1024);
    const refusals = 10_000;
    const refuseStart = process.hrtime.bigint();
    for (let i = 0; i < refusals; i++) await oidc.verify(garbage).catch(() => {});
    const refuseNs = Number(process.hrtime.bigint() - refuseStart) / refusals;
    detail(`  ${'10 MiB of garbage, refused'.padEnd(36)} ${fmt(refuseNs / 1000, 2).padStart(7)} µs (TOKEN_TOO_LARGE, ${fmt(refusals, 0)} times)`);
    result(`local OIDC verification: ${fmt(ours.wallNs / 1000, 1)} µs per token, ${fmt(1e6 / ours.cpuUs, 0)} tokens/s per core; checks around jose add ${fmt(((ours.cpuUs - bare.cpuUs) / bare.cpuUs) * 100, 1)} % CPU`);

    // b. A TokenReview per request (cache off).
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'bench', server: server.url, caData: Buffer.from(tls).toString('base64'), skipTLSVerify: false }],
      users: [{ name: 'verifier', token: await issuer.mint({ namespace: 'shop', serviceAccount: 'orders' }) }],
      contexts: [{ name: 'bench', cluster: 'bench', user: 'verifier' }],
      currentContext: 'bench',
    });
    const uncached = createTokenVerifier({ audiences: AUDIENCE, kubeConfig, cacheTtl: 0, rejectionCacheTtl: 0 });
    await uncached.ready();
    const before = await server.reviews();
    const review = await measure([
      {
        name: 'tokenreview verify(), cache off',
        batch: 100,
        async run(n) {
          for (let i = 0; i < n; i++) await uncached.verify(next());
        },
      },
    ]);
    const perReview = review['tokenreview verify(), cache off'];
    const reviewsSent = (await server.reviews()) - before;
    detail(`  ${'tokenreview verify(), cache off'.padEnd(36)} ${fmt(perReview.wallNs / 1e6, 2).padStart(7)} ms wall  ${fmt(perReview.cpuUs, 1).padStart(7)} µs CPU here (${fmt(reviewsSent, 0)} TokenReviews sent)`);
    result(
      `a TokenReview per request: ${fmt(perReview.wallNs / 1e6, 2)} ms per token (loopback HTTPS stand-in); local OIDC is ${fmt(perReview.wallNs / ours.wallNs, 0)}x faster per token, ` +
        `and uses ${fmt(perReview.cpuUs / ours.cpuUs, 1)}x less CPU in this process (the API server's own work not counted)`,
    );

    // c. 1,000 requests/s from 50 distinct callers for 10 s.
    const callers = tokens.slice(0, 50);
    const cached = createTokenVerifier({ audiences: AUDIENCE, kubeConfig });
    await cached.ready();
    const start = await server.reviews();
    const withCache = await load(cached, callers, 1_000, 10);
    const calls = (await server.reviews()) - start;
    detail(
      `with the cache (TTL 10 s): ${fmt(withCache.sent, 0)} verifications in ${fmt(withCache.seconds, 1)} s (${fmt(withCache.sent / withCache.seconds, 0)}/s), ` +
        `${fmt(withCache.latencies.length, 0)} accepted, failures ${JSON.stringify(withCache.failures)}; latency p50 ${fmt(median(withCache.latencies) * 1000, 0)} µs, p99 ${fmt(quantile(withCache.latencies, 0.99), 2)} ms`,
    );
    const nocache = createTokenVerifier({ audiences: AUDIENCE, kubeConfig, cacheTtl: 0, rejectionCacheTtl: 0 });
    await nocache.ready();
    const start2 = await server.reviews();
    const withoutCache = await load(nocache, callers, 1_000, 3);
    const calls2 = (await server.reviews()) - start2;
    detail(
      `without it: ${fmt(withoutCache.sent, 0)} verifications in ${fmt(withoutCache.seconds, 1)} s, ${fmt(calls2, 0)} TokenReviews ` +
        `(${fmt((calls2 / withoutCache.seconds) * 10, 0)} per 10 s); latency p50 ${fmt(median(withoutCache.latencies), 2)} ms, p99 ${fmt(quantile(withoutCache.latencies, 0.99), 2)} ms, failures ${JSON.stringify(withoutCache.failures)}`,
    );
    result(
      `1,000 requests/s from 50 callers: ${fmt(calls, 0)} TokenReviews in 10 s with the cache (${fmt(calls / 50, 2)} per caller per TTL; target <= 1), ` +
        `vs ${fmt((calls2 / withoutCache.seconds) * 10, 0)} per 10 s without it`,
    );
    await Promise.all([oidc.close(), uncached.close(), cached.close(), nocache.close()]);
  } finally {
    server.child.disconnect();
    await cleanup();
  }
}
