// Bench 2 — adapter overhead: requests per second through axios, got, fetch and undici to a
// loopback server (in a child process, so this process's CPU is the bottleneck), with
// withTokenSource (token from a FileTokenSource over the kubelet's layout) against the same
// client with the same token as a fixed header.
//
// Each round runs every contender for a fixed window with a fixed number of requests in
// flight (order below). Two figures per contender, medians over the rounds:
//  - wall-clock requests/s: what the benchmark asks for, but on a shared 2-core machine
//    it swings with whatever else runs;
//  - client CPU per request (process.cpuUsage, all threads of this process): what the adapter
//    adds to each request, much less sensitive to neighbours; its inverse is the requests/s
//    one client core sustains. The overhead is computed from it, per round (each ratio from
//    the same round), and the wall-clock ratio is printed beside it.
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { Agent as HttpAgent } from 'node:http';
import axios from 'axios';
import got from 'got';
import { Agent as UndiciAgent, Dispatcher as UndiciDispatcher, request as undiciRequest } from 'undici';
import { FileTokenSource } from '@podtoken/core';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { detail, fmt, heading, median, result, shuffle, sleep, tempDir } from './lib/stats.mjs';

const ROUNDS = 40;
const WINDOW_MS = 200;
const IN_FLIGHT = 8;

/** Requests/s of `request` during `ms`, `IN_FLIGHT` at a time; counts non-2xx answers. */
async function throughput(request, ms) {
  let done = 0;
  let failed = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      if ((await request()) === 200) done += 1;
      else failed += 1;
    }
  };
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const cpu = process.cpuUsage(cpuStart);
  return { rps: (done / (performance.now() - start)) * 1000, cpuUs: (cpu.user + cpu.system) / (done + failed), done, failed };
}

export async function adapters() {
  heading(`2. Adapter overhead: requests/s to a loopback server, withTokenSource vs a fixed header (${IN_FLIGHT} in flight)`);
  const server = fork(new URL('./lib/server.mjs', import.meta.url), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ port }] = await once(server, 'message');
  const base = `http://127.0.0.1:${port}`;

  const { dir, cleanup } = await tempDir('adapters');
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir });
  await volume.write({ token: await issuer.mint({ audience: 'bench', expirationSeconds: 3607, extendExpiration: true }) });
  const source = new FileTokenSource({ path: volume.path('token'), audience: 'bench' });
  const token = await source.getToken();
  const fixed = { authorization: `Bearer ${token}` };

  // The same keep-alive agent for both variants of a client, so connections are not the difference.
  const axiosAgent = new HttpAgent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const gotAgent = new HttpAgent({ keepAlive: true, maxSockets: IN_FLIGHT });
  // Each adapter is loaded on its own: one that fails to load is reported, the others still run.
  const adapter = async (name) => {
    try {
      return (await import(`@podtoken/${name}`)).withTokenSource;
    } catch (error) {
      detail(`${name}: skipped, @podtoken/${name} failed to load (${error instanceof Error ? error.message : String(error)})`);
      return undefined;
    }
  };
  const [withAxios, withGot, withFetch, withUndici] = await Promise.all([adapter('axios'), adapter('got'), adapter('fetch'), adapter('undici')]);

  const pairs = [];
  if (withAxios) {
    const axiosFixed = axios.create({ baseURL: base, headers: fixed, httpAgent: axiosAgent });
    const axiosWith = withAxios(axios.create({ baseURL: base, httpAgent: axiosAgent }), source);
    pairs.push({
      client: 'axios',
      fixed: () => axiosFixed.get('/anything', { validateStatus: null }).then((r) => r.status),
      with: () => axiosWith.get('/anything', { validateStatus: null }).then((r) => r.status),
    });
  }
  if (withGot) {
    const gotFixed = got.extend({ prefixUrl: base, headers: fixed, agent: { http: gotAgent }, retry: { limit: 0 } });
    const gotWith = withGot(got.extend({ prefixUrl: base, agent: { http: gotAgent }, retry: { limit: 0 } }), source);
    pairs.push({
      client: 'got',
      fixed: () => gotFixed.get('anything', { throwHttpErrors: false }).then((r) => r.statusCode),
      with: () => gotWith.get('anything', { throwHttpErrors: false }).then((r) => r.statusCode),
    });
  }
  if (withFetch) {
    const fetchWith = withFetch(globalThis.fetch, source);
    pairs.push({
      client: 'fetch',
      fixed: () => fetch(`${base}/anything`, { headers: fixed }).then(async (r) => (await r.arrayBuffer(), r.status)),
      with: () => fetchWith(`${base}/anything`).then(async (r) => (await r.arrayBuffer(), r.status)),
    });
  }

  // undici's request API on one Agent: the fixed header on the Agent itself, the token through
  // @podtoken/undici's interceptor composed onto the same Agent (same connection pool).
  const undiciAgent = new UndiciAgent({ connections: IN_FLIGHT });
  if (withUndici) {
    const undiciWith = withUndici(undiciAgent, source, { origins: [base] });
    const call = (dispatcher, headers) =>
      undiciRequest(`${base}/anything`, { dispatcher, ...(headers === undefined ? {} : { headers }) }).then(async (r) => (await r.body.dump(), r.statusCode));
    pairs.push({ client: 'undici', fixed: () => call(undiciAgent, fixed), with: () => call(undiciWith) });
  }

  // Each round visits the clients in a fresh random order and, for each, runs its two
  // variants back to back in a random order (AB or BA): the ratio of a round compares
  // windows that are adjacent in time, so a neighbour's load hits both alike.
  const samples = new Map(pairs.map((p) => [p, { fixedRps: [], withRps: [], fixedCpu: [], withCpu: [] }]));
  for (const p of pairs) {
    await throughput(p.fixed, 200); // warm up connections and JIT
    await throughput(p.with, 200);
  }
  let failed = 0;
  let total = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const p of shuffle([...pairs])) {
      const s = samples.get(p);
      for (const variant of shuffle(['fixed', 'with'])) {
        const t = await throughput(p[variant], WINDOW_MS);
        s[`${variant}Rps`].push(t.rps);
        s[`${variant}Cpu`].push(t.cpuUs);
        failed += t.failed;
        total += t.done + t.failed;
      }
    }
  }

  const summary = [];
  for (const p of pairs) {
    const { fixedRps, withRps, fixedCpu, withCpu } = samples.get(p);
    const cpuOverhead = (median(withCpu.map((w, i) => w / fixedCpu[i])) - 1) * 100;
    const wallOverhead = (1 - median(withRps.map((w, i) => w / fixedRps[i]))) * 100;
    summary.push({ client: p.client, cpuOverhead, wallOverhead });
    detail(
      `${p.client.padEnd(6)} fixed header: ${fmt(median(fixedCpu), 0).padStart(4)} µs CPU/request (${fmt(1e6 / median(fixedCpu), 0)} req/s per core), ${fmt(median(fixedRps), 0).padStart(6)} req/s wall`,
    );
    detail(
      `${''.padEnd(6)} withTokenSource: ${fmt(median(withCpu), 0).padStart(4)} µs CPU/request (${fmt(1e6 / median(withCpu), 0)} req/s per core), ${fmt(median(withRps), 0).padStart(6)} req/s wall`,
    );
  }
  detail(`${total.toLocaleString('en-US')} requests, ${failed} not answered 200`);
  const pct = (v) => `${v < 0 ? '-' : '+'}${fmt(Math.abs(v), 1)} %`;
  result(
    `adapter overhead, client CPU per request (median of ${ROUNDS} paired rounds): ` +
      `${summary.map((s) => `${s.client} ${pct(s.cpuOverhead)}`).join(', ')} (target within 3 %)`,
  );
  result(`adapter overhead, wall-clock requests/s (noisy here): ${summary.map((s) => `${s.client} ${pct(s.wallOverhead)}`).join(', ')}`);

  // The adapter's own cost, without the network: the same clients with a transport that
  // answers at once (axios: a custom `adapter`; fetch: a function returning a Response),
  // so the figure is what withTokenSource adds per request, in µs. (got has no such seam.)
  const local = [];
  if (withAxios) {
    const instant = async (config) => ({ data: '', status: 200, statusText: 'OK', headers: {}, config, request: {} });
    const plain = axios.create({ baseURL: base, headers: fixed, adapter: instant });
    const wrapped = withAxios(axios.create({ baseURL: base, adapter: instant }), source);
    local.push({ client: 'axios', fixed: () => plain.get('/anything'), with: () => wrapped.get('/anything') });
  }
  if (withFetch) {
    const instant = async () => new Response('ok');
    const wrapped = withFetch(instant, source);
    local.push({ client: 'fetch', fixed: () => instant(`${base}/anything`, { headers: fixed }), with: () => wrapped(`${base}/anything`) });
  }
  if (withUndici) {
    // A dispatcher that answers at once (onRequestStart … onResponseEnd in a microtask). Both
    // variants go through compose(): the fixed one with a pass-through interceptor, so undici's
    // handler wrapping is paid by both and the difference is the token interceptor alone.
    class Instant extends UndiciDispatcher {
      dispatch(_opts, handler) {
        queueMicrotask(() => {
          const controller = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
          handler.onRequestStart?.(controller, {});
          handler.onResponseStart?.(controller, 200, {}, 'OK');
          handler.onResponseData?.(controller, Buffer.from('ok'));
          handler.onResponseEnd?.(controller, {});
        });
        return true;
      }
      async close() {}
      async destroy() {}
    }
    const plain = new Instant().compose((dispatch) => (opts, handler) => dispatch(opts, handler));
    const wrapped = withUndici(new Instant(), source, { origins: [base] });
    const call = (dispatcher, headers) =>
      undiciRequest(`${base}/anything`, { dispatcher, ...(headers === undefined ? {} : { headers }) }).then((r) => r.body.dump());
    local.push({ client: 'undici', fixed: () => call(plain, fixed), with: () => call(wrapped) });
  }
  for (const l of local) {
    const perCall = async (fn, n) => {
      const start = process.hrtime.bigint();
      for (let i = 0; i < n; i++) await fn();
      return Number(process.hrtime.bigint() - start) / n / 1000;
    };
    await perCall(l.fixed, 2_000);
    await perCall(l.with, 2_000);
    const added = [];
    for (let round = 0; round < 21; round++) {
      const [a, b] = shuffle(['fixed', 'with']);
      const first = await perCall(l[a], 2_000);
      const second = await perCall(l[b], 2_000);
      const t = { [a]: first, [b]: second };
      added.push(t.with - t.fixed);
    }
    detail(`${l.client.padEnd(6)} without the network: withTokenSource adds ${fmt(median(added), 1)} µs per request (median of 21 paired rounds)`);
    l.addedUs = median(added);
  }
  if (local.length > 0) {
    result(`adapter's own cost per request, no network: ${local.map((l) => `${l.client} ${fmt(l.addedUs, 1)} µs`).join(', ')}`);
  }

  await source.close();
  axiosAgent.destroy();
  gotAgent.destroy();
  await undiciAgent.close();
  server.disconnect();
  await sleep(50);
  await cleanup();
}
