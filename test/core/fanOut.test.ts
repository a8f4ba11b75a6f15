import { createTokenSources, FileTokenSource, type TokenFileSystem } from '@podtoken/core';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import * as fs from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { pathToFileURL } from 'node:url';
import { defer, tempDir, until } from '../helpers.js';
import { coreEntry, describeChild, runNode } from './childNode.js';

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

/** node:fs, with every open of a file counted: one open is one read of the token. */
function countingFs(): TokenFileSystem & { opens: number } {
  const counting = {
    opens: 0,
    promises: {
      open: (path: string, flags: 'r') => {
        counting.opens += 1;
        return fs.promises.open(path, flags);
      },
      readlink: (path: string) => fs.promises.readlink(path),
    },
    watch: fs.watch as unknown as TokenFileSystem['watch'],
  };
  return counting as TokenFileSystem & { opens: number };
}

describe('single flight', () => {
  it('10,000 concurrent getToken() calls while a rotation happens cause one file read', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token: await issuer.mint() });
    const counting = countingFs();
    const source = new FileTokenSource({ path: volume.path('token'), fs: counting, pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    expect(counting.opens).toBe(1);

    const next = await issuer.mint();
    const rotation = volume.write({ token: next });
    let served = 0;
    let fresh = 0;
    // Waves of 10,000 concurrent callers until the new token is served.
    while (fresh === 0) {
      const tokens = await Promise.all(Array.from({ length: 10_000 }, () => source.getToken()));
      served += tokens.length;
      fresh = tokens.filter((token) => token === next).length;
      // Served from memory, the calls settle in microtasks: yield so file events can land.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await rotation;
    await new Promise((resolve) => setTimeout(resolve, 50)); // let any straggling event land
    console.log(`fan-out: ${served} getToken() calls across the rotation, ${counting.opens - 1} file read(s)`);
    expect(counting.opens - 1).toBe(1);
  });

  it('10,000 callers waiting for the first token share one read', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const counting = countingFs();
    const source = new FileTokenSource({ path: volume.path('token'), fs: counting, pollInterval: 0, watch: false });
    defer(() => source.close());
    const waiting = Array.from({ length: 10_000 }, () => source.getToken());
    const token = await issuer.mint();
    await volume.write({ token });
    await source.invalidate(''); // stands in for the event that watch: false turned off
    const values = await Promise.all(waiting);
    expect(values.every((value) => value === token)).toBe(true);
    expect(counting.opens).toBe(2); // the read at construction (missing) and the one after the write
  });

  it('10,000 concurrent invalidate() calls for the same token cause one read', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token: await issuer.mint() });
    const counting = countingFs();
    const source = new FileTokenSource({ path: volume.path('token'), fs: counting, pollInterval: 0, watch: false });
    defer(() => source.close());
    const first = await source.getToken();
    counting.opens = 0;
    const next = await issuer.mint();
    await volume.write({ token: next });
    await Promise.all(Array.from({ length: 10_000 }, () => source.invalidate(first)));
    // One re-read for the rejected token, which every other call for it joins (before: one
    // in flight plus one queued behind it).
    expect(counting.opens).toBe(1);
    expect((await source.getToken()) === next).toBe(true);
  });
});

function fsWatchHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'FSEventWrap').length;
}

describe('watchers', () => {
  it('sources over files in one folder share one watcher, made together or one by one', async () => {
    const before = fsWatchHandles();
    const apiDir = await tempDir();
    const otherDir = await tempDir();
    const api = new ProjectedVolume({ dir: apiDir });
    await api.write({ token: await issuer.mint(), 'vault-token': await issuer.mint({ audience: 'vault' }), 'partner-token': await issuer.mint({ audience: 'partner' }) });
    const other = new ProjectedVolume({ dir: otherDir });
    await other.write({ token: await issuer.mint({ audience: 'x' }) });

    const sources = createTokenSources({
      kubernetes: { path: api.path('token') },
      vault: { path: api.path('vault-token'), audience: 'vault' },
    });
    const loose = new FileTokenSource({ path: api.path('partner-token'), audience: 'partner' });
    const elsewhere = new FileTokenSource({ path: other.path('token') });
    await Promise.all([sources.ready(), loose.ready(), elsewhere.ready()]);
    expect(fsWatchHandles() - before).toBe(2); // one per folder, not one per source

    // One swap of ..data refreshes every source in the folder.
    const next = { token: await issuer.mint(), 'vault-token': await issuer.mint({ audience: 'vault' }), 'partner-token': await issuer.mint({ audience: 'partner' }) };
    await api.write(next);
    await until(
      'every source in the folder refreshed',
      () =>
        sources.get('kubernetes').current?.value === next.token &&
        sources.get('vault').current?.value === next['vault-token'] &&
        loose.current?.value === next['partner-token'],
    );

    await sources.close();
    expect(fsWatchHandles() - before).toBe(2); // `loose` still needs the folder
    await loose.close();
    await elsewhere.close();
    // libuv releases a closed handle at the end of the loop iteration.
    await until('the watch handles released', () => fsWatchHandles() - before === 0, 1_000, 1);
    expect(fsWatchHandles() - before).toBe(0);
    expect(() => sources.get('nope' as 'vault')).toThrow(TypeError);
  });

  it('a process whose sources are closed exits by itself', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const tokens = [await issuer.mint(), await issuer.mint({ audience: 'vault' })];
    await volume.write({ token: tokens[0]!, 'vault-token': tokens[1]! });
    // core built from the current sources: no prior build needed.
    const core = pathToFileURL(await coreEntry()).href;
    const script = `
      const { FileTokenSource, createTokenSources } = await import(${JSON.stringify(core)});
      const sources = createTokenSources({ a: { path: ${JSON.stringify(volume.path('token'))} }, b: { path: ${JSON.stringify(volume.path('vault-token'))} } });
      const c = new FileTokenSource({ path: ${JSON.stringify(volume.path('token'))}, pollInterval: 10, readyTimeout: 5000 });
      await sources.ready(); await c.ready();
      await sources.close(); await c.close();
      console.log('closed', process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap').join(',') || 'nothing open');
    `;
    const started = Date.now();
    const child = await runNode(script, { type: 'esm' });
    expect(child.code, describeChild(child, tokens)).toBe(0);
    expect(child.stdout, describeChild(child, tokens)).toContain('closed');
    console.log(`child process exited by itself in ${Date.now() - started} ms; ${child.stdout.trim()}`);
  });
});
