// Bench 2b — gRPC adapter overhead: unary calls per second through @grpc/grpc-js to a loopback
// TLS server (in a child process, so this process's CPU is the bottleneck), with
// @podtoken/grpc's withTokenSource (call credentials reading a FileTokenSource over the
// kubelet's layout, plus the UNAUTHENTICATED interceptor) against the same call on a plain TLS
// channel with the same token as fixed metadata.
//
// As in bench 2 (adapters.mjs): each round runs both contenders back to back in a random
// order for a fixed window with a fixed number of calls in flight; two figures per contender,
// medians over the rounds: wall-clock calls/s (noisy on a shared machine) and client CPU per
// call (process.cpuUsage), from which the overhead ratio is computed per round. gRPC has no
// transport that answers in-process, so the adapter's own cost is the CPU difference per call,
// in µs, from the same paired rounds.
import { spawnSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor, Metadata } from '@grpc/grpc-js';
import { FileTokenSource } from '@podtoken/core';
import { withTokenSource } from '@podtoken/grpc';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { ECHO } from './lib/grpcService.mjs';
import { detail, fmt, heading, median, result, shuffle, sleep, tempDir } from './lib/stats.mjs';

const ROUNDS = 30;
const WINDOW_MS = 250;
const IN_FLIGHT = 8;

/** A self-signed certificate for 127.0.0.1, made with openssl for this run only. */
function certificate(dir) {
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
  const made = spawnSync('openssl', [...args, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  if (made.status !== 0) throw new Error('openssl could not make a certificate for the gRPC server');
  return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
}

/** Calls/s of `call` during `ms`, `IN_FLIGHT` at a time, and client CPU per call. */
async function throughput(call, ms) {
  let done = 0;
  let failed = 0;
  const end = performance.now() + ms;
  const worker = async () => {
    while (performance.now() < end) {
      if (await call()) done += 1;
      else failed += 1;
    }
  };
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const cpu = process.cpuUsage(cpuStart);
  return { rps: (done / (performance.now() - start)) * 1000, cpuUs: (cpu.user + cpu.system) / (done + failed), done, failed };
}

export async function grpc() {
  heading(`2b. gRPC adapter overhead: unary calls/s to a loopback grpc-js server over TLS, withTokenSource vs fixed metadata (${IN_FLIGHT} in flight)`);
  const { dir, cleanup } = await tempDir('grpc');
  const tls = certificate(dir);
  const server = fork(new URL('./lib/grpcServer.mjs', import.meta.url), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  server.send(tls);
  const [{ port }] = await once(server, 'message');
  const address = `127.0.0.1:${port}`;

  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir: join(dir, 'volume') });
  await volume.write({ token: await issuer.mint({ audience: 'bench', expirationSeconds: 3607, extendExpiration: true }) });
  const source = new FileTokenSource({ path: volume.path('token'), audience: 'bench' });
  const token = await source.getToken();

  const Echo = makeGenericClientConstructor(ECHO, 'Echo');
  const channel = () => credentials.createSsl(Buffer.from(tls.cert));
  const plain = new Echo(address, channel());
  const { credentials: withCredentials, interceptors } = withTokenSource(channel(), source);
  const wrapped = new Echo(address, withCredentials, { interceptors });
  const fixed = new Metadata();
  fixed.set('authorization', `Bearer ${token}`);
  const unary = (client, metadata) =>
    new Promise((resolve) => client.echo({ text: 'hi' }, metadata ?? new Metadata(), (error) => resolve(error === null)));
  const contenders = {
    fixed: () => unary(plain, fixed.clone()),
    with: () => unary(wrapped),
  };

  await throughput(contenders.fixed, 300); // connect, warm up JIT
  await throughput(contenders.with, 300);
  const samples = { fixedRps: [], withRps: [], fixedCpu: [], withCpu: [] };
  let failed = 0;
  let total = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of shuffle(['fixed', 'with'])) {
      const t = await throughput(contenders[variant], WINDOW_MS);
      samples[`${variant}Rps`].push(t.rps);
      samples[`${variant}Cpu`].push(t.cpuUs);
      failed += t.failed;
      total += t.done + t.failed;
    }
  }

  const { fixedRps, withRps, fixedCpu, withCpu } = samples;
  const cpuOverhead = (median(withCpu.map((w, i) => w / fixedCpu[i])) - 1) * 100;
  const wallOverhead = (1 - median(withRps.map((w, i) => w / fixedRps[i]))) * 100;
  const addedUs = median(withCpu.map((w, i) => w - fixedCpu[i]));
  detail(`fixed metadata:  ${fmt(median(fixedCpu), 0).padStart(4)} µs CPU/call (${fmt(1e6 / median(fixedCpu), 0)} calls/s per core), ${fmt(median(fixedRps), 0).padStart(6)} calls/s wall`);
  detail(`withTokenSource: ${fmt(median(withCpu), 0).padStart(4)} µs CPU/call (${fmt(1e6 / median(withCpu), 0)} calls/s per core), ${fmt(median(withRps), 0).padStart(6)} calls/s wall`);
  detail(`${total.toLocaleString('en-US')} calls, ${failed} not answered OK`);
  const pct = (v) => `${v < 0 ? '-' : '+'}${fmt(Math.abs(v), 1)} %`;
  result(`grpc adapter overhead, client CPU per call (median of ${ROUNDS} paired rounds): ${pct(cpuOverhead)} (target within 3 %); wall-clock calls/s: ${pct(wallOverhead)}`);
  result(`grpc adapter's own cost per call: ${fmt(addedUs, 1)} µs CPU (median of the paired differences)`);

  plain.close();
  wrapped.close();
  await source.close();
  server.disconnect();
  await sleep(50);
  await cleanup();
}
