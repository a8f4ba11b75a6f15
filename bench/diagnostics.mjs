// Bench 9 — observability at no cost when unused: core publishes its events on
// node:diagnostics_channel only while a channel has subscribers.
//
//  - getToken(), the hot path, publishes nothing: timed with no subscriber and with a
//    subscriber on every podtoken channel, interleaved (the ratio should be 1.00);
//  - a read of the file (what a rotation, a poll or a 401 costs) publishes read:finished
//    and, for a new token, loaded/refreshed: timed with and without subscribers, to show
//    what listening costs where events are published.
//
// PODTOKEN_BENCH_BASELINE=<path to another build of core's dist/index.js> adds that build's
// getToken() and read as contenders (an A/B against the code before the events existed):
//   git worktree add /tmp/before c4a9aaf && (cd /tmp/before/packages/core && npx tsc -b)
//   PODTOKEN_BENCH_BASELINE=/tmp/before/packages/core/dist/index.js node bench/run.mjs diagnostics
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { DIAGNOSTICS_CHANNELS, FileTokenSource } from '@podtoken/core';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { detail, fmt, heading, median, result, shuffle, tempDir } from './lib/stats.mjs';

const ROUNDS = 21;
let events = 0;
const listener = () => {
  events += 1;
};
const listen = (on) => {
  for (const name of Object.values(DIAGNOSTICS_CHANNELS)) (on ? subscribe : unsubscribe)(name, listener);
};

async function timePerOp(run, batch) {
  const start = process.hrtime.bigint();
  await run(batch);
  return Number(process.hrtime.bigint() - start) / batch;
}

export async function diagnostics() {
  heading('9. Observability: the cost of diagnostics_channel events, unused and used');
  const { dir, cleanup } = await tempDir('diagnostics');
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir });
  await volume.write({ token: await issuer.mint({ expirationSeconds: 3607, extendExpiration: true }) });
  const source = new FileTokenSource({ path: volume.path('token'), pollInterval: 0 });
  await source.ready();
  let sink;
  const getToken = (n) => {
    for (let i = 0; i < n; i++) sink = source.getToken();
  };
  // invalidate() for a token the source does not hold re-reads the file every time (no
  // cooldown applies): one real read, decode skipped (same text), read:finished published.
  const read = async (n) => {
    for (let i = 0; i < n; i++) await source.invalidate('not-the-current-token');
  };
  const contenders = [
    { name: 'getToken(), no subscriber', on: false, run: getToken, batch: 500_000 },
    { name: 'getToken(), every channel subscribed', on: true, run: getToken, batch: 500_000 },
    { name: 'one read of the file, no subscriber', on: false, run: read, batch: 2_000 },
    { name: 'one read of the file, every channel subscribed', on: true, run: read, batch: 2_000 },
  ];
  const baselinePath = process.env.PODTOKEN_BENCH_BASELINE;
  let baseline;
  if (baselinePath) {
    const before = await import(baselinePath);
    baseline = new before.FileTokenSource({ path: volume.path('token'), pollInterval: 0 });
    await baseline.ready();
    contenders.push(
      {
        name: 'baseline build: getToken()',
        on: false,
        batch: 500_000,
        run: (n) => {
          for (let i = 0; i < n; i++) sink = baseline.getToken();
        },
      },
      {
        name: 'baseline build: one read of the file',
        on: false,
        batch: 2_000,
        run: async (n) => {
          for (let i = 0; i < n; i++) await baseline.invalidate('not-the-current-token');
        },
      },
    );
  }
  for (const c of contenders) {
    listen(c.on);
    await c.run(Math.ceil(c.batch / 10));
    listen(false);
  }
  const samples = new Map(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of shuffle([...contenders])) {
      listen(c.on);
      samples.get(c.name).push(await timePerOp(c.run, c.batch));
      listen(false);
    }
  }
  void sink;
  const ns = Object.fromEntries(contenders.map((c) => [c.name, median(samples.get(c.name))]));
  for (const c of contenders) detail(`  ${c.name.padEnd(48)} ${fmt(ns[c.name], 1).padStart(10)} ns  (median of ${ROUNDS} rounds × ${fmt(c.batch, 0)})`);
  detail(`  events received while subscribed: ${fmt(events, 0)}`);
  const hot = ns[contenders[1].name] / ns[contenders[0].name];
  const reads = ns[contenders[3].name] / ns[contenders[2].name];
  result(`getToken() with every channel subscribed vs none: ${hot.toFixed(2)}x (target 1.00: the hot path publishes nothing)`);
  result(`a read of the file with subscribers vs none: ${reads.toFixed(2)}x, ${fmt(ns[contenders[3].name] - ns[contenders[2].name], 0)} ns per read (events are built only for listeners)`);
  if (baseline !== undefined) {
    result(`getToken() now (no subscriber) vs the baseline build: ${(ns[contenders[0].name] / ns[contenders[4].name]).toFixed(2)}x (target 1.00)`);
    result(`a read now (no subscriber) vs the baseline build: ${(ns[contenders[2].name] / ns[contenders[5].name]).toFixed(2)}x`);
    await baseline.close();
  }
  await source.close();
  await cleanup();
}
