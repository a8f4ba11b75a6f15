// Writers other than the kubelet (hostPath, sidecars, scripts, local development) write a
// plain file in place, and a reader can catch them half way. A JWT cut inside its
// signature at a length that is itself plausible (171 of 342 characters for RS256-2048 is
// a 1024-bit signature) decodes, and `e`/`ey` look like opaque tokens. A changed token
// from a plain file is confirmed before it is served or announced; the kubelet's files (a
// symlink into `..data/`, swapped whole) are read once.
import { FileTokenSource, type Token, type TokenFileSystem } from '@podtoken/core';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import * as fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { defer, sleep, tempDir, until } from '../helpers.js';

let issuer: Issuer;
let otherKey: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
  otherKey = await createIssuer(); // another signing key (another kid), as after a key rotation
});

/** A token cut inside its signature at half its length: 171 of 342 characters for RS256-2048. */
function cutInSignature(token: string): string {
  const signatureStart = token.lastIndexOf('.') + 1;
  const signatureLength = token.length - signatureStart;
  expect(signatureLength).toBe(342);
  return token.slice(0, signatureStart + 171);
}

type CountingFs = TokenFileSystem & { opens: number; readsDone: number };

/** node:fs, counting each open (one open is one read of the token) and each finished read of content. */
function countingFs(): CountingFs {
  const counting = {
    opens: 0,
    readsDone: 0,
    promises: {
      open: async (path: string, flags: 'r') => {
        counting.opens += 1;
        const handle = await fs.promises.open(path, flags);
        return {
          read: async (buffer: Uint8Array, offset: number, length: number, position: number) => {
            const result = await handle.read(buffer, offset, length, position);
            if (result.bytesRead > 0) counting.readsDone += 1;
            return result;
          },
          close: () => handle.close(),
          stat: () => handle.stat(),
        };
      },
      readlink: (path: string) => fs.promises.readlink(path),
    },
    watch: fs.watch as unknown as TokenFileSystem['watch'],
  };
  return counting as CountingFs;
}

interface Watched {
  source: FileTokenSource;
  counting: CountingFs;
  refreshed: Token[];
  errors: string[];
}

function watched(path: string, options: { audience?: string } = {}): Watched {
  const counting = countingFs();
  const source = new FileTokenSource({ path, fs: counting, pollInterval: 0, readyTimeout: 0, ...options });
  defer(() => source.close());
  const refreshed: Token[] = [];
  const errors: string[] = [];
  source.onRefresh((token) => refreshed.push(token));
  source.onError((error) => errors.push(error.code));
  return { source, counting, refreshed, errors };
}

/** Writes `path` in place (truncate, then write), as `echo … > token` or fs.writeFile do. */
const writeInPlace = (path: string, content: string) => writeFile(path, content);

describe('a plain file written in place', () => {
  it('a token cut inside its signature, at a plausible length, is never served nor announced (loaded source)', async () => {
    const path = join(await tempDir(), 'token');
    const first = await issuer.mint({ audience: 'api' });
    await writeInPlace(path, first);
    const w = watched(path);
    await w.source.ready();

    const next = await issuer.mint({ audience: 'api' });
    const reads = w.counting.readsDone;
    await writeInPlace(path, cutInSignature(next)); // the writer is caught half way…
    await until('the source read the cut token', () => w.counting.readsDone > reads, 5_000, 1);
    await sleep(50);
    expect((await w.source.getToken()) === first, 'the last good token is still served').toBe(true);
    await writeInPlace(path, next); // …and finishes
    await until('the whole token served', async () => (await w.source.getToken()) === next, 5_000, 1);
    expect(w.refreshed.map((token) => token.value === next || token.value === first)).toEqual([true, true]);
    expect(w.refreshed.some((token) => token.value === cutInSignature(next))).toBe(false);
  });

  it('a cut token signed with another key (no earlier signature to compare with) is confirmed before it is served', async () => {
    const path = join(await tempDir(), 'token');
    const first = await issuer.mint({ audience: 'api' });
    await writeInPlace(path, first);
    const w = watched(path);
    await w.source.ready();

    const next = await otherKey.mint({ audience: 'api' });
    const reads = w.counting.readsDone;
    await writeInPlace(path, cutInSignature(next));
    await until('the source read the cut token', () => w.counting.readsDone > reads, 5_000, 1);
    await sleep(20); // time for a source that took it to serve it
    await writeInPlace(path, next); // finished within the confirmation window
    await until('the whole token served', async () => (await w.source.getToken()) === next, 5_000, 1);
    expect(w.refreshed.map((token) => token.value === first || token.value === next)).toEqual([true, true]);
  });

  it.each([
    ['a token cut inside its signature', (token: string) => cutInSignature(token)],
    ['`e`', () => 'e'],
    ['`ey`', () => 'ey'],
  ])('on a first load, %s is not served: ready() resolves with the whole token written next', async (_name, cut) => {
    const path = join(await tempDir(), 'token');
    const token = await issuer.mint({ audience: 'api' });
    await writeInPlace(path, cut(token));
    const w = watched(path);
    const ready = w.source.ready();
    await until('the source read the cut token', () => w.counting.readsDone > 0, 5_000, 1);
    await sleep(20); // time for a source that took it to serve it
    await writeInPlace(path, token);
    expect((await ready).value === token, 'ready() resolved with the whole token').toBe(true);
    expect(w.refreshed).toHaveLength(1);
    expect(w.refreshed[0]!.value === token).toBe(true);
  });

  it('a plain file that has not changed for a while is served at its first read', async () => {
    const path = join(await tempDir(), 'token');
    const token = await issuer.mint({ audience: 'api' });
    await writeInPlace(path, token);
    const past = new Date(Date.now() - 60_000);
    fs.utimesSync(path, past, past);
    const w = watched(path);
    expect((await w.source.ready()).value === token).toBe(true);
    expect(w.counting.opens).toBe(1);
  });

  it('a file just written is read twice, a moment apart, before its token is served', async () => {
    const path = join(await tempDir(), 'token');
    const token = await issuer.mint({ audience: 'api' });
    await writeInPlace(path, token);
    const w = watched(path);
    expect((await w.source.ready()).value === token).toBe(true);
    expect(w.counting.opens).toBe(2);
  });
});

describe("the kubelet's layout", () => {
  it('is read once per rotation: a symlink into ..data/ is swapped whole, never written in place', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    await volume.write({ token: await issuer.mint({ audience: 'api' }) });
    const w = watched(volume.path('token'));
    await w.source.ready();
    expect(w.counting.opens).toBe(1);
    for (let i = 0; i < 5; i++) {
      const next = await issuer.mint({ audience: 'api' });
      const opens = w.counting.opens;
      await volume.write({ token: next });
      await until('the rotation served', async () => (await w.source.getToken()) === next, 5_000, 1);
      await sleep(20);
      expect(w.counting.opens - opens).toBe(1);
    }
  });
});
