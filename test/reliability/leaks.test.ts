import { readdirSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import { createTokenSources, FileTokenSource } from '@podtoken/core';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { describe, expect, it } from 'vitest';
import { sleep, tempDir, until } from './helpers.js';
// Internal counts, read from the module instances @podtoken/core itself loads (its sources).
import { openFolderWatchCount } from '../../packages/core/src/internal/folderWatch.js';
import { openTokenFileCount } from '../../packages/core/src/internal/sharedTokenFile.js';

// Reliability 4 — leak check: 1,000 open/close cycles of sources on the real filesystem
// (folder watchers, the kubelet's layout) leave no file descriptor, timer, handle
// or listener behind. Cycles mix the ways a source is used and left: closed before its
// first load, closed while callers wait with an AbortSignal, closed after a rotation, and
// several sources of one folder sharing a watcher (through createTokenSources).

const CYCLES = 1_000;

const fds = () => readdirSync('/proc/self/fd').length;
const watchHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
/** Active resources by type (handles and requests), e.g. { Timeout: 2, FSEventWrap: 1 }. */
function resources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}
function processListeners(): number {
  return process.eventNames().reduce((sum, name) => sum + process.listenerCount(name), 0);
}
/** What a cycle could leave behind: timers, watch handles and fs requests still open. */
function leftovers(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const diff: Record<string, number> = {};
  for (const type of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const d = (after[type] ?? 0) - (before[type] ?? 0);
    if (d > 0) diff[type] = d;
  }
  return diff;
}

describe('leak check', () => {
  it(`${CYCLES.toLocaleString('en-US')} open/close cycles leave no descriptor, timer, handle or listener`, { timeout: 120_000 }, async () => {
    const fdsAvailable = (() => {
      try {
        return fds() > 0;
      } catch {
        return false;
      }
    })();
    const issuer = await createIssuer();
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const token = () => issuer.mint({ audience: 'leaks', expirationSeconds: 3600 });
    await volume.write({ token: await token(), other: await token(), third: await token() });

    // Warm up once (lazy module state, the first folder watch), then take the baseline.
    {
      const warm = new FileTokenSource({ path: volume.path('token') });
      await warm.ready();
      await warm.close();
      await sleep(100);
    }
    const fdBefore = fdsAvailable ? fds() : 0;
    const resourcesBefore = resources();
    const listenersBefore = processListeners();
    const signal = new AbortController().signal; // shared by every waiting caller below
    const started = performance.now();

    let rotations = 0;
    let fullyStarted = 0;
    const watchesBefore = resourcesBefore['FSEventWrap'] ?? 0;
    for (let i = 0; i < CYCLES; i++) {
      switch (i % 5) {
        case 0: {
          // Closed at once, before its first read completes.
          const source = new FileTokenSource({ path: volume.path('token') });
          await source.close();
          break;
        }
        case 1: {
          // Callers waiting with a signal when it closes: their abort listeners must go too.
          const source = new FileTokenSource({ path: volume.path('missing'), pollInterval: 50, readyTimeout: 60_000 });
          const waiting = [source.getToken({ signal }), source.getToken({ signal })].map((p) => p.catch((error: unknown) => error));
          source.onRefresh(() => {});
          source.onError(() => {});
          await source.close();
          await Promise.all(waiting);
          break;
        }
        case 2: {
          // Loaded, with listeners, then closed; every 10th such cycle only once its
          // folder watcher holds an OS watch handle (a fully started watcher).
          const source = new FileTokenSource({ path: volume.path('token'), pollInterval: 1_000 });
          source.onRefresh(() => {});
          source.onError(() => {});
          await source.ready();
          if (i % 50 === 2) {
            await until('the watcher started', () => watchHandles() > watchesBefore, 10_000, 2);
            fullyStarted += 1;
          }
          await source.close();
          break;
        }
        case 3: {
          // Three sources of one folder sharing a watcher, closed together.
          const sources = createTokenSources({
            token: { path: volume.path('token') },
            other: { path: volume.path('other') },
            third: { path: volume.path('third') },
          });
          await sources.ready();
          await sources.close();
          break;
        }
        case 4: {
          // Closed right after a rotation, while its re-read may be in flight. Every 10th
          // such cycle, to keep the run short: the kubelet's write is the slow part.
          const source = new FileTokenSource({ path: volume.path('token') });
          await source.ready();
          if (i % 50 === 4) {
            await volume.write({ token: await token(), other: await token(), third: await token() });
            rotations += 1;
          }
          await source.close();
          break;
        }
      }
    }
    const elapsed = performance.now() - started;

    // Handles close asynchronously (libuv closes a watcher on the next loop turn): wait for
    // the counts to come back, with a bound, then compare.
    await until(
      'handles back to the baseline',
      () => Object.keys(leftovers(resourcesBefore, resources())).length === 0 && (!fdsAvailable || fds() <= fdBefore),
      10_000,
      20,
    ).catch(() => {});
    const left = leftovers(resourcesBefore, resources());
    const fdAfter = fdsAvailable ? fds() : 0;
    const abortListeners = getEventListeners(signal, 'abort').length;
    console.log(
      `leak check: ${CYCLES} cycles (${rotations} with a rotation, ${fullyStarted} closed with a started watcher) in ${(elapsed / 1000).toFixed(1)} s; ` +
        `fds ${fdsAvailable ? `${fdBefore} -> ${fdAfter}` : 'n/a (no /proc/self/fd)'}; resources left ${JSON.stringify(left)}; ` +
        `process listeners ${listenersBefore} -> ${processListeners()}; abort listeners on the shared signal ${abortListeners}`,
    );
    if (fdsAvailable) expect(fdAfter, 'file descriptors left open').toBeLessThanOrEqual(fdBefore);
    expect(openFolderWatchCount(), 'folder watchers left registered').toBe(0);
    expect(openTokenFileCount(), 'shared token files left registered').toBe(0);
    expect(left, 'timers, handles and requests left behind').toEqual({});
    expect(processListeners(), 'process listeners left behind').toBe(listenersBefore);
    expect(abortListeners, 'abort listeners left on a caller signal').toBe(0);
  });
});
