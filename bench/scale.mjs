// Bench 5 — scale: 1, 10, 100 and 1,000 sources over files in one folder (one projected
// volume holding that many tokens, the kubelet's layout).
//
// - Watchers: OS file-watch handles the process holds ('FSEventWrap' in
//   process.getActiveResourcesInfo()), and core's own count of folder watchers
//   (openFolderWatchCount, @internal: read from the built module core's index itself loads).
// - Memory per source: V8 heap in use after full GCs, before and after, divided by N (the
//   first folder watcher's own cost is in the N = 1 figure; the N = 1,000 one is the
//   marginal cost). Only the heap: external memory (read buffers) is freed lazily.
// - Idle CPU: process.cpuUsage() (user + system) over 10 s with every source loaded and
//   nothing changing, default options (60 s poll, so no poll falls in the window; the cost
//   of one poll round is measured apart and spread over its minute).
// - Many sources on ONE file (1, 100, 10,000, with four kinds of audience options): file
//   reads (node's fs.promises.open wrapped in place, the production path) and time from the
//   `..data` swap until every source serves the new token.
import * as fs from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FileTokenSource } from '@podtoken/core';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { detail, fmt, heading, result, sleep, tempDir } from './lib/stats.mjs';

const SIZES = [1, 10, 100, 1_000];
const ONE_FILE_SIZES = [1, 100, 10_000];
const AUDIENCES = [undefined, 'bench', 'other', ['x', 'other']];
const IDLE_MS = 10_000;
const POLL_MS = 60_000;

// run.mjs starts each benchmark with --expose-gc; alone, turn it on here.
if (typeof globalThis.gc !== 'function') setFlagsFromString('--expose-gc');
const gc = globalThis.gc ?? runInNewContext('gc');

const signed = (value, digits = 1) => `${value < 0 ? '-' : '+'}${fmt(Math.abs(value), digits)}`;
const watchHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;

// Full GCs with pauses between, so concurrent sweeping is done before we read.
async function memory() {
  for (let i = 0; i < 3; i++) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage().heapUsed;
}

// Process CPU (user + system, all threads) over IDLE_MS, read every second, and the time V8
// spent collecting garbage meanwhile (its memory reducer runs a few seconds after a burst of
// allocation: that is V8 tidying up after the setup, not the sources working).
async function idleCpu() {
  let gcMs = 0;
  let gcs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcMs += entry.duration;
      gcs += 1;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  const seconds = [];
  let last = process.cpuUsage();
  for (let i = 0; i < IDLE_MS / 1000; i++) {
    await sleep(1000);
    const d = process.cpuUsage(last);
    last = process.cpuUsage();
    seconds.push((d.user + d.system) / 1000);
  }
  await sleep(0); // let the observer deliver the last entries
  observer.disconnect();
  const sorted = [...seconds].sort((a, b) => a - b);
  return { total: seconds.reduce((a, b) => a + b, 0), medianSecond: sorted[Math.floor(sorted.length / 2)], gcMs, gcs };
}

export async function scale() {
  heading('5. Scale: N sources over N token files in one folder; N sources on one file');
  // Resolved from core's own dist, so it is the module instance the index uses.
  const { openFolderWatchCount } = await import(new URL('../packages/core/dist/internal/folderWatch.js', import.meta.url).href);
  const issuer = await createIssuer();
  const token = await issuer.mint({ audience: 'bench', expirationSeconds: 3607, extendExpiration: true });
  // Warm up: lazy module code, the first folder watch.
  {
    const { dir, cleanup } = await tempDir('scale-warm');
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token });
    const warm = new FileTokenSource({ path: volume.path('token'), audience: 'bench' });
    await warm.ready();
    await sleep(300);
    await warm.close();
    await cleanup();
  }

  const rows = [];
  for (const n of SIZES) {
    const { dir, cleanup } = await tempDir(`scale${n}`);
    const volume = new ProjectedVolume({ dir });
    const files = {};
    for (let i = 0; i < n; i++) files[`token-${i}`] = token;
    await volume.write(files);

    const handlesBefore = watchHandles();
    const memBefore = await memory();
    const sources = Array.from({ length: n }, (_, i) => new FileTokenSource({ path: volume.path(`token-${i}`), audience: 'bench' }));
    await Promise.all(sources.map((s) => s.ready()));
    await sleep(500); // let every first read and the watcher settle
    const memAfter = await memory();
    const handles = watchHandles() - handlesBefore;
    const folderWatchers = openFolderWatchCount();

    await sleep(1_000); // let the GC's background threads finish: cpuUsage counts every thread
    const idle = await idleCpu();

    // One poll round: every source re-reads its file once (invalidate with the token it
    // holds forces exactly that read).
    const pollStart = process.cpuUsage();
    await Promise.all(sources.map((s) => s.invalidate(s.current.value)));
    const pollCpu = process.cpuUsage(pollStart);
    const pollMs = (pollCpu.user + pollCpu.system) / 1000;

    await Promise.all(sources.map((s) => s.close()));
    await sleep(100);
    rows.push({
      n,
      handles,
      folderWatchers,
      memDelta: memAfter - memBefore,
      perSource: (memAfter - memBefore) / n,
      idleMs: idle.total,
      idleMedian: idle.medianSecond,
      idleGc: `${idle.gcs} GCs, ${fmt(idle.gcMs, 1)} ms`,
      idlePct: (idle.total / IDLE_MS) * 100,
      pollMs,
      left: watchHandles() - handlesBefore,
      leftWatchers: openFolderWatchCount(),
    });
    await cleanup();
  }
  // The process' own idle CPU with every source closed: the floor the figures sit on.
  await memory();
  await sleep(1_000);
  const baselineMs = (await idleCpu()).total;
  detail(`baseline after every source closed: idle CPU ${fmt(baselineMs, 1)} ms in ${IDLE_MS / 1000} s`);
  for (const r of rows) {
    detail(
      `${String(r.n).padStart(5)} sources: watch handles ${r.handles}, folder watchers ${r.folderWatchers}; ` +
        `heap ${signed(r.memDelta / 1024)} KiB (${fmt(r.perSource / 1024, 1)} KiB/source); idle CPU ${fmt(r.idleMs, 1)} ms in ${IDLE_MS / 1000} s (${fmt(r.idlePct, 3)} % of a core; median second ${fmt(r.idleMedian, 2)} ms; V8 GC meanwhile: ${r.idleGc}); ` +
        `one poll round ${fmt(r.pollMs, 1)} ms CPU (= ${fmt((r.pollMs / POLL_MS) * 100, 3)} % of a core at the 60 s default); after close: ${r.left} handles, ${r.leftWatchers} watchers`,
    );
  }
  result(`watchers for 1 / 10 / 100 / 1,000 sources in one folder: ${rows.map((r) => r.handles).join(' / ')} (target: 1)`);
  const largest = rows.at(-1);
  result(
    `memory per source: ${fmt(largest.perSource / 1024, 1)} KiB at ${fmt(largest.n, 0)} sources ` +
      `(heap growth for 1 / 10 / 100 / 1,000: ${rows.map((r) => `${signed(r.memDelta / 1024, 0)} KiB`).join(' / ')}; below ~100 KiB it is within GC noise)`,
  );
  result(
    `idle CPU over ${IDLE_MS / 1000} s: ${rows.map((r) => `${fmt(r.idleMs, 1)} ms`).join(' / ')} = ${rows.map((r) => `${fmt(r.idlePct, 3)} %`).join(' / ')} of a core ` +
      `(median second ${rows.map((r) => `${fmt(r.idleMedian, 2)} ms`).join(' / ')}; the process alone, every source closed: ${fmt(baselineMs, 1)} ms; target ~0)`,
  );
  await oneFile(issuer);
}

// N sources on one file: one read per change, whatever N and the audiences.
async function oneFile(issuer) {
  const mint = () => issuer.mint({ audience: ['bench', 'other'], expirationSeconds: 3607 });
  const rows = [];
  const realOpen = fs.promises.open;
  for (const n of ONE_FILE_SIZES) {
    const { dir, cleanup } = await tempDir(`onefile${n}`);
    const volume = new ProjectedVolume({ dir });
    const path = volume.path('token');
    await volume.write({ token: await mint() });
    let opens = 0;
    fs.promises.open = function countedOpen(...args) {
      if (String(args[0]) === path) opens += 1;
      return realOpen.apply(this, args);
    };
    try {
      const started = performance.now();
      const sources = Array.from({ length: n }, (_, i) => new FileTokenSource({ path, audience: AUDIENCES[i % AUDIENCES.length] }));
      await Promise.all(sources.map((s) => s.ready()));
      const loadMs = performance.now() - started;
      const loadReads = opens;
      await sleep(300); // the folder watcher up
      opens = 0;
      const next = await mint();
      const { swappedAt } = await volume.write({ token: next });
      while (!sources.every((s) => s.current.value === next)) await sleep(1);
      const refreshMs = performance.now() - swappedAt;
      await sleep(200); // any straggling read lands
      rows.push({ n, loadReads, loadMs, reads: opens, refreshMs });
      await Promise.all(sources.map((s) => s.close()));
    } finally {
      fs.promises.open = realOpen;
    }
    await cleanup();
  }
  for (const r of rows) {
    detail(
      `${String(r.n).padStart(6)} sources on one file: start ${r.loadReads} read(s), all ready in ${fmt(r.loadMs, 1)} ms; ` +
        `rotation ${r.reads} read(s), every source serving the new token ${fmt(r.refreshMs, 1)} ms after the swap`,
    );
  }
  result(
    `sources on one file, 1 / 100 / 10,000: reads per rotation ${rows.map((r) => r.reads).join(' / ')} (target: 1); ` +
      `all refreshed ${rows.map((r) => `${fmt(r.refreshMs, 1)} ms`).join(' / ')} after the swap`,
  );
}
