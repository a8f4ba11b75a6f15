// Bench 1 — the hot path: what each pattern costs per request to produce the
// Authorization header, with the token file on the real filesystem in the kubelet's layout.
//
// Contenders, each doing exactly what it does on a request and ending with the header set:
//   podtoken:  headers.Authorization = `Bearer ${await source.getToken()}`
//   read-per-request: headers.Authorization = `Bearer ${readFileSync(path, 'utf8').trim()}`
//   client-node FileAuth: await fileAuth.applyAuthentication(user, opts) — the authenticator
//     KubeConfig.loadFromCluster() selects (authProvider { name: 'tokenFile', config: { tokenFile } }):
//     readFileSync at most once every 60 s, new Date() and a header on every call.
import { readFileSync } from 'node:fs';
import { FileTokenSource } from '@podtoken/core';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
// client-node 1.4.0 has no "exports" map; FileAuth is the class its KubeConfig instantiates.
import { FileAuth } from '@kubernetes/client-node/dist/file_auth.js';
import { detail, fmt, heading, median, result, shuffle, tempDir } from './lib/stats.mjs';

const ROUNDS = 21;

// Warm up (JIT, file cache, FileAuth's first read), then interleave the contenders in a
// fresh random order each round; the figure is the median time per call over the rounds.
async function measure(contenders) {
  for (const c of contenders) await c.run(Math.ceil(c.batch / 10));
  const samples = new Map(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of shuffle([...contenders])) {
      const start = process.hrtime.bigint();
      await c.run(c.batch);
      samples.get(c.name).push(Number(process.hrtime.bigint() - start) / c.batch);
    }
  }
  return Object.fromEntries(contenders.map((c) => [c.name, median(samples.get(c.name))]));
}

export async function hotPath() {
  heading('1. Hot path: cost per request of getting the token into the Authorization header');
  const { dir, cleanup } = await tempDir('hot');
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir });
  await volume.write({ token: await issuer.mint({ expirationSeconds: 3607, extendExpiration: true }) });
  const path = volume.path('token');

  const source = new FileTokenSource({ path });
  await source.ready();
  const fileAuth = new FileAuth();
  const user = { name: 'inClusterUser', authProvider: { name: 'tokenFile', config: { tokenFile: path } } };
  if (!fileAuth.isAuthProvider(user)) throw new Error('FileAuth does not recognise the in-cluster user');

  const opts = { headers: {} };
  let sink;
  // "request": what a request handler pays, header set, one await each (an async
  // interceptor awaits the token; read-per-request code awaits nothing but runs in one).
  const perRequest = [
    {
      name: 'podtoken await getToken()',
      batch: 200_000,
      async run(n) {
        for (let i = 0; i < n; i++) opts.headers.Authorization = `Bearer ${await source.getToken()}`;
      },
    },
    {
      name: 'readFileSync + trim',
      batch: 4_000,
      async run(n) {
        for (let i = 0; i < n; i++) opts.headers.Authorization = `Bearer ${await readFileSync(path, 'utf8').trim()}`;
      },
    },
    {
      name: 'client-node FileAuth.applyAuthentication',
      batch: 200_000,
      async run(n) {
        for (let i = 0; i < n; i++) await fileAuth.applyAuthentication(user, opts);
      },
    },
  ];
  // "call": the call alone, in a synchronous loop: the work each pattern does, without the
  // cost of the await that every caller pays alike. (FileAuth's body has no await: it does
  // all its work, header included, before returning its promise.)
  const perCall = [
    {
      name: 'podtoken getToken()',
      batch: 500_000,
      run(n) {
        for (let i = 0; i < n; i++) sink = source.getToken();
      },
    },
    {
      name: 'readFileSync + trim',
      batch: 4_000,
      run(n) {
        for (let i = 0; i < n; i++) sink = readFileSync(path, 'utf8').trim();
      },
    },
    {
      name: 'client-node FileAuth.applyAuthentication',
      batch: 500_000,
      run(n) {
        for (let i = 0; i < n; i++) sink = fileAuth.applyAuthentication(user, opts);
      },
    },
    {
      // Not a contender: the one clock read getToken() makes (its expiry check), for scale.
      name: '(reference) Date.now()',
      batch: 500_000,
      run(n) {
        for (let i = 0; i < n; i++) sink = Date.now();
      },
    },
  ];

  const request = await measure(perRequest);
  const call = await measure(perCall);
  void sink;
  for (const [label, contenders, ns] of [
    ['per request (one await, header set)', perRequest, request],
    ['per call (synchronous loop)', perCall, call],
  ]) {
    detail(`${label}:`);
    for (const c of contenders) {
      detail(`  ${c.name.padEnd(44)} ${fmt(ns[c.name], 1).padStart(9)} ns  (${fmt(1e9 / ns[c.name], 0)}/s; median of ${ROUNDS} rounds × ${fmt(c.batch, 0)})`);
    }
  }
  const ratio = (ns, contenders, i) => ns[contenders[i].name] / ns[contenders[0].name];
  result(`hot path vs read-per-request, per request: ${fmt(ratio(request, perRequest, 1), 0)}x faster; per call: ${fmt(ratio(call, perCall, 1), 0)}x (target >= 100x)`);
  result(`hot path vs client-node FileAuth, per request: ${fmt(ratio(request, perRequest, 2), 2)}x; per call: ${fmt(ratio(call, perCall, 2), 2)}x (target >= 1x: no slower)`);

  await source.close();
  await cleanup();
}
