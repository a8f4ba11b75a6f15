// Bench 4 — fan-out: many concurrent getToken() callers during a rotation cause one read.
//
// File reads are counted two honest ways:
//  - "node:fs": node's fs.promises.open is wrapped in place for the duration (the object core
//    reads through by default), so the source runs its production path: node:fs and its fs.watch.
//  - "fs option": a thin proxy over node:fs passed as the `fs` option, counting
//    promises.open (a custom fs is watched through its own `watch`, here node's fs.watch too).
// Every read the source makes starts with exactly one open.
import * as fs from 'node:fs';
import { FileTokenSource } from '@podtoken/core';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { detail, heading, result, sleep, tempDir } from './lib/stats.mjs';

const CALLERS = [1, 100, 10_000];
const SETTLE_MS = 250;

export async function fanOut() {
  heading('4. Fan-out: concurrent getToken() callers during a rotation vs file reads made');
  const { dir, cleanup } = await tempDir('fanout');
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir });
  const path = volume.path('token');
  await volume.write({ token: await issuer.mint({ audience: 'bench' }) });

  let opens = 0;
  const counted = (open) =>
    function countedOpen(...args) {
      if (String(args[0]) === path) opens += 1;
      return open.apply(this, args);
    };
  const realOpen = fs.promises.open;
  const proxyFs = { promises: { open: counted(realOpen), readlink: fs.promises.readlink }, watch: fs.watch };

  const lines = [];
  for (const mode of ['node:fs', 'fs option']) {
    if (mode === 'node:fs') fs.promises.open = counted(realOpen);
    try {
      for (const callers of CALLERS) {
        // Cold start: every caller waits for the first load.
        opens = 0;
        const source = new FileTokenSource({ path, audience: 'bench', ...(mode === 'fs option' ? { fs: proxyFs } : {}) });
        const first = await Promise.all(Array.from({ length: callers }, () => source.getToken()));
        const coldReads = opens;
        await sleep(SETTLE_MS); // watcher up
        const old = first[0];

        // A rotation with `callers` getToken() calls in flight around the swap: a batch
        // before the write, one while it runs, and one on every turn until the new token shows.
        opens = 0;
        const refreshed = new Promise((resolve) => source.onRefresh(() => resolve()));
        const calls = [];
        const burst = () => {
          for (let i = 0; i < callers; i++) calls.push(source.getToken());
        };
        burst();
        const write = volume.write({ token: await issuer.mint({ audience: 'bench' }) });
        burst();
        await write;
        burst();
        await Promise.race([refreshed, sleep(2_000)]);
        burst();
        const values = await Promise.all(calls);
        await sleep(SETTLE_MS);
        const rotationReads = opens;
        const fresh = values.filter((v) => v !== old).length;

        // The 401 path: every caller reports the old token as rejected at once (each adapter
        // calls invalidate(sent) on a 401): one re-read, which the others join.
        opens = 0;
        await Promise.all(Array.from({ length: callers }, () => source.invalidate(old)));
        const staleInvalidateReads = opens;
        // And a burst of 401s for the token in memory: one re-read, which the others join
        // (for a second after a re-read that found the same token, further 401s for it are
        // answered by that read: a server that refuses everything costs one read a second).
        const current = await source.getToken();
        opens = 0;
        await Promise.all(Array.from({ length: callers }, () => source.invalidate(current)));
        const invalidateReads = opens;
        await source.close();

        lines.push(
          `${mode.padEnd(9)} ${String(callers).padStart(6)} callers: cold start ${coldReads} read(s); rotation ${rotationReads} read(s) ` +
            `(${calls.length.toLocaleString('en-US')} calls, ${fresh.toLocaleString('en-US')} got the new token); ` +
            `invalidate(old) x${callers}: ${staleInvalidateReads}; invalidate(current) x${callers}: ${invalidateReads}`,
        );
      }
    } finally {
      fs.promises.open = realOpen;
    }
  }
  for (const line of lines) detail(line);
  const counts = (mode) =>
    lines.filter((l) => l.startsWith(mode)).map((l) => Number(/rotation (\d+) read/.exec(l)[1])).join(' / ');
  result(`file reads per rotation with 1 / 100 / 10,000 concurrent callers: node:fs ${counts('node:fs')}; fs option ${counts('fs option')} (target: always 1)`);
  const invalidations = (mode) =>
    lines.filter((l) => l.startsWith(mode)).map((l) => Number(/invalidate\(current\) x\d+: (\d+)/.exec(l)[1])).join(' / ');
  result(`file reads for a burst of 1 / 100 / 10,000 401s for the current token: node:fs ${invalidations('node:fs')}; fs option ${invalidations('fs option')}`);
  await cleanup();
}
