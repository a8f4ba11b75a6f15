import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { FileTokenSource } from '@podtoken/core';
import { describe, expect, it } from 'vitest';
import { defer, percentile, until } from '../helpers.js';
import { fileToken, ms, startPod, tokenId, wallNow, type Kubelet } from './support/kube.js';

// 1. FileTokenSource on volumes written by the kubelet's own AtomicWriter, with tokens from
// the real TokenRequest API through the kubelet's token manager. Pickup is measured from
// when AtomicWriter.Write() began (the `..data` swap happens inside it, after the new
// folder is written): an upper bound. Printed, never asserted (the target, p99 < 50 ms, is
// the same as on the imitation; bench/README.md has the figures).

const ROUNDS = 12;

interface Watched {
  name: string;
  kubelet: Kubelet;
  source: FileTokenSource;
  /** Each token the source loaded, by id, in order, with when (wall clock). */
  loaded: Array<{ id: string; at: number }>;
}

describe('FileTokenSource follows the real kubelet writer', () => {
  it(`serves every real rotation, in order, once each (${ROUNDS} rotations of two volumes)`, async () => {
    const pod = await startPod({
      prefix: 'rotation',
      volumes: { vault: { mountPath: 'var/run/secrets/tokens', file: 'vault-token', audience: 'vault', expirationSeconds: 600 } },
    });
    const volumes = [
      { name: 'default (3607 s, extended)', kubelet: pod.kubelet, audience: undefined },
      { name: 'vault (600 s, audience vault)', kubelet: pod.kubelets['vault']!, audience: 'vault' },
    ];
    const watched: Watched[] = [];
    const expected = new Map<Watched, string[]>();
    for (const volume of volumes) {
      const source = new FileTokenSource({ path: volume.kubelet.path, ...(volume.audience === undefined ? {} : { audience: volume.audience }) });
      const w: Watched = { name: volume.name, kubelet: volume.kubelet, source, loaded: [] };
      source.onRefresh((token) => w.loaded.push({ id: tokenId(token.value), at: wallNow() }));
      defer(() => source.close());
      const first = await source.ready();
      expect(first.value === (await fileToken(w.kubelet.path)), `${w.name}: the first token is the file's`).toBe(true);
      expected.set(w, [tokenId(first.value)]);
      watched.push(w);
    }

    const pickups: number[] = [];
    const afterReturn: number[] = [];
    const writes: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const events = await Promise.all(watched.map((w) => w.kubelet.rotate()));
      for (const [i, w] of watched.entries()) {
        const event = events[i]!;
        expect(event.error, `${w.name}, rotation ${round}`).toBeUndefined();
        expect(event.minted && event.swapped, `${w.name}, rotation ${round}: a new token, swapped in`).toBe(true);
        const id = tokenId(await fileToken(w.kubelet.path));
        expected.get(w)!.push(id);
        await until(`${w.name}: rotation ${round} loaded`, () => w.loaded.some((entry) => entry.id === id));
        expect(tokenId(await w.source.getToken())).toBe(id);
        const loadedAt = w.loaded.find((entry) => entry.id === id)!.at;
        pickups.push(loadedAt - event.writeStart!);
        afterReturn.push(loadedAt - event.writeEnd!);
        writes.push(event.writeEnd! - event.writeStart!);
      }
    }
    for (const w of watched) expect(w.loaded.map((entry) => entry.id), `${w.name}: every token once, in order`).toEqual(expected.get(w));

    // The kubelet's periodic sync with a cached token: the writer sees the same payload and
    // swaps nothing, and the source loads nothing.
    for (const w of watched) {
      const before = w.loaded.length;
      const sync = await w.kubelet.sync();
      expect(sync.minted || sync.swapped, `${w.name}: a sync within the token's lifetime writes nothing`).toBe(false);
      await sleep(300);
      expect(w.loaded.length).toBe(before);
    }

    console.log(
      `[cluster 1] FileTokenSource on the real AtomicWriter, ${pickups.length} rotations (${ROUNDS} × 2 volumes): ` +
        `pickup after Write() began p50 ${ms(percentile(pickups, 50))}, p99 ${ms(percentile(pickups, 99))}, max ${ms(Math.max(...pickups))} ` +
        `(target p99 < 50 ms; an upper bound: the swap is inside Write()), after Write() returned p50 ${ms(percentile(afterReturn, 50))}, ` +
        `p99 ${ms(percentile(afterReturn, 99))} (negative: loaded before the writer had removed the old folder); ` +
        `Write() itself took p50 ${ms(percentile(writes, 50))}, max ${ms(Math.max(...writes))}; load average ${loadavg()[0]!.toFixed(1)}`,
    );
  });
});
