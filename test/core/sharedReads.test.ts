// File reads are shared:
//  - by every source on one file (per fs and path): a change is read once, whatever the
//    number of sources and audiences; each source still makes its own audience and expiry
//    checks, and is answered only by a read issued after its own trigger;
//  - by 401s: after a re-read that found the same token, invalidate() calls for that token
//    within a second are answered by that read (a server refusing everything costs one read
//    a second, not one per request); a folder event still reads at once.
import { FileTokenSource, type TokenFileHandle, type TokenFileSystem } from '@podtoken/core';
import { withTokenSource } from '@podtoken/fetch';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { memfs } from 'memfs';
import * as fs from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { defer, tempDir, until } from '../helpers.js';

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

type Counting = TokenFileSystem & { opens: number };

/** `base` (node:fs or a memfs fs) with each open counted: one open is one read of the token. */
function counting(base: { promises: { open: Function; readlink: Function }; watch: Function }): Counting {
  const wrapped = {
    opens: 0,
    promises: {
      open: (path: string, flags: 'r') => {
        wrapped.opens += 1;
        return base.promises.open(path, flags) as Promise<TokenFileHandle>;
      },
      readlink: (path: string) => base.promises.readlink(path) as Promise<string>,
    },
    watch: base.watch.bind(base) as TokenFileSystem['watch'],
  };
  return wrapped as Counting;
}

describe('invalidate() when a server refuses every request', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads once for a burst of 401s, once a second after that, and still at once on a folder event', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-22T10:00:00Z') });
    const { fs: memory } = memfs();
    const volume = new ProjectedVolume({ dir: '/var/run/secrets/tokens', fs: memory });
    const first = await issuer.mint();
    await volume.write({ token: first });
    const files = counting(memory as never);
    const source = new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0 });
    await source.ready();

    files.opens = 0;
    for (let i = 0; i < 1_000; i++) await source.invalidate(first); // one after another, as requests come back
    await Promise.all(Array.from({ length: 1_000 }, () => source.invalidate(first))); // and all at once
    expect(files.opens).toBe(1); // before: 1,001 and more

    await vi.advanceTimersByTimeAsync(1_000); // the cooldown is over: the next 401 reads again
    await source.invalidate(first);
    await source.invalidate(first);
    expect(files.opens).toBe(2);

    // A folder event is not an invalidation: it reads at once, cooldown or not.
    const next = await issuer.mint();
    await volume.write({ token: next });
    for (let i = 0; i < 20 && source.current?.value !== next; i++) await vi.advanceTimersByTimeAsync(0);
    expect((await source.getToken()) === next).toBe(true);
    expect(files.opens).toBe(3);
    // A 401 for the new token is a new question: it reads.
    await source.invalidate(next);
    expect(files.opens).toBe(4);
    await source.close();
  });

  it('without a folder watch, a 401 is the only news of a rotation: each one re-reads', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const first = await issuer.mint();
    await volume.write({ token: first });
    const files = counting(fs as never);
    const source = new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0, watch: false });
    defer(() => source.close());
    await source.ready();
    await source.invalidate(first); // the file still holds it
    const next = await issuer.mint();
    await volume.write({ token: next }); // no event reaches this source
    await source.invalidate(first); // within the second: it must read, nothing else would tell it
    expect((await source.getToken()) === next).toBe(true);
  });

  it('an invalidation during a re-read for the same token joins it instead of queueing another', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const first = await issuer.mint();
    await volume.write({ token: first });
    const files = counting(fs as never);
    const source = new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    files.opens = 0;
    const burst = [source.invalidate(first)];
    await Promise.resolve();
    for (let i = 0; i < 100; i++) burst.push(source.invalidate(first));
    await Promise.all(burst);
    expect(files.opens).toBe(1); // before: 2 (one read, and one queued behind it)
  });

  it('the cooldown is the file\'s: a 401 on one source answers 401s for the same token on the others', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const token = await issuer.mint({ audience: ['a', 'b'] });
    await volume.write({ token });
    const files = counting(fs as never);
    const sources = ['a', 'b', 'a', 'b'].map((audience) => new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0, audience }));
    defer(() => Promise.all(sources.map((source) => source.close())));
    await Promise.all(sources.map((source) => source.ready()));
    files.opens = 0;
    for (let i = 0; i < 50; i++) {
      for (const source of sources) await source.invalidate(token);
    }
    expect(files.opens).toBeLessThanOrEqual(2); // one, or two if the loop straddled the one-second cooldown
  });

  it('through the fetch adapter: 300 requests to a server that answers 401 to all read the file a handful of times', async () => {
    const server = createServer((_request, response) => {
      response.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => server.close(resolve)));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const volume = new ProjectedVolume({ dir: await tempDir() });
    await volume.write({ token: await issuer.mint() });
    const files = counting(fs as never);
    const source = new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    const api = withTokenSource(fetch, source);

    files.opens = 0;
    const started = performance.now();
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const response = await api(url);
      await response.arrayBuffer();
      if (response.status === 401) refused += 1;
    }
    const seconds = (performance.now() - started) / 1000;
    expect(refused).toBe(300);
    // One read per second of the run at most (plus the first), not one per request.
    console.log(`300 requests refused with 401 in ${seconds.toFixed(2)} s: ${files.opens} file read(s)`);
    expect(files.opens).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
  });
});

describe('many sources on one file', () => {
  it('10,000 sources with their own audiences load and follow a rotation with one read each time', { timeout: 120_000 }, async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const mint = () => issuer.mint({ audience: ['api', 'vault'] });
    await volume.write({ token: await mint() });
    const files = counting(fs as never);
    const audiences = [undefined, 'api', 'vault', ['x', 'vault']] as const;
    const sources = Array.from(
      { length: 10_000 },
      (_, i) => {
        const audience = audiences[i % 4];
        return new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0, ...(audience === undefined ? {} : { audience: audience as string | string[] }) });
      },
    );
    // Their own checks: these want an audience the token does not have.
    const strangers = Array.from({ length: 10 }, () => new FileTokenSource({ path: volume.path('token'), fs: files, pollInterval: 0, audience: 'other' }));
    const mismatches: string[] = [];
    for (const stranger of strangers) stranger.onError((error) => mismatches.push(error.code));
    defer(() => Promise.all([...sources, ...strangers].map((source) => source.close())));

    await Promise.all(sources.map((source) => source.ready()));
    const refused = await Promise.all(strangers.map((stranger) => stranger.ready().then(() => 'loaded', (error: { code: string }) => error.code)));
    expect(refused.every((code) => code === 'TOKEN_AUDIENCE_MISMATCH')).toBe(true);
    expect(files.opens).toBe(1); // before: 10,010

    files.opens = 0;
    mismatches.length = 0;
    const next = await mint();
    const started = performance.now();
    await volume.write({ token: next });
    await until('every source serves the new token', () => sources.every((source) => source.current?.value === next), 60_000, 5);
    const elapsed = performance.now() - started;
    await until('every stranger checked the new token', () => mismatches.length === strangers.length, 10_000, 5);
    console.log(`10,010 sources on one file: rotation read ${files.opens} time(s), all refreshed in ${elapsed.toFixed(0)} ms`);
    expect(files.opens).toBe(1); // before: 10,010
    expect(mismatches.every((code) => code === 'TOKEN_AUDIENCE_MISMATCH')).toBe(true);
  });

  it('each source is answered by a read issued after its own trigger, never by an older one', async () => {
    // A file system whose reads wait for the test: each open takes the file's content at
    // that moment, and its read returns it when released.
    let content = await issuer.mint();
    const gates: Array<() => void> = [];
    let opens = 0;
    const gated: TokenFileSystem = {
      promises: {
        open: async () => {
          opens += 1;
          const snapshot = Buffer.from(content);
          const released = new Promise<void>((resolve) => gates.push(resolve));
          return {
            read: async (buffer, offset, length, position) => {
              await released;
              const bytes = snapshot.subarray(position, position + length);
              buffer.set(bytes, offset);
              return { bytesRead: bytes.length };
            },
            close: async () => {},
          };
        },
        readlink: async () => '..data/token', // the kubelet's layout: read once, no confirming re-read
      },
    };
    const releaseAll = async () => {
      for (let i = 0; i < 20; i++) {
        while (gates.length > 0) gates.shift()!();
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const options = { path: '/tokens/token', fs: gated, watch: false, pollInterval: 0, readyTimeout: 0 };
    const a = new FileTokenSource(options);
    const b = new FileTokenSource(options);
    defer(() => Promise.all([a.close(), b.close()]));
    const loading = Promise.all([a.ready(), b.ready()]);
    await releaseAll();
    await loading;
    expect(opens).toBe(1);

    const first = content;
    const aDone = a.invalidate(first); // read 2 is issued now, before the change…
    await new Promise((resolve) => setImmediate(resolve));
    expect(opens).toBe(2);
    content = await issuer.mint(); // …the file changes…
    const bDone = b.invalidate('a token b sent'); // …and b's trigger comes after it: read 2 cannot answer it
    await releaseAll();
    await Promise.all([aDone, bDone]);
    expect(opens).toBe(3);
    expect(b.current!.value === content, 'b got the token written before its trigger').toBe(true);
  });
});
