import * as nodeFs from 'node:fs';
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileTokenSource, TOKEN_ERROR_CODES, type TokenErrorCode, type TokenFileSystem, type TokenSourceError } from '@podtoken/core';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { defer, errorTexts, leaks, sleep, tempDir, until } from './helpers.js';

// Reliability 2 — faults. Each scenario breaks the token file or its watcher under a running
// FileTokenSource (node:fs, the kubelet's atomic-writer layout), checks that the last good
// token keeps being served and that the failure is reported with its code, then repairs
// it and checks that the same source, never restarted, serves the next token. Waits are
// bounded by generous limits only to stop a broken run; what is asserted is what was
// served and reported. Recovery times are printed.

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

const mint = () => issuer.mint({ audience: 'faults', expirationSeconds: 3600 });
const watchHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;

interface Harness {
  volume: ProjectedVolume;
  source: FileTokenSource;
  first: string;
  errors: TokenSourceError[];
  codes: () => Set<TokenErrorCode>;
  serves: (token: string) => Promise<boolean>;
}

async function harness(options: { pollInterval?: number; fs?: TokenFileSystem; volumeDir?: string; startWithout?: boolean } = {}): Promise<Harness> {
  const dir = options.volumeDir ?? join(await tempDir(), 'tokens');
  const volume = new ProjectedVolume({ dir });
  const first = await mint();
  if (!options.startWithout) await volume.write({ token: first });
  const source = new FileTokenSource({
    path: volume.path('token'),
    audience: 'faults',
    ...(options.pollInterval === undefined ? {} : { pollInterval: options.pollInterval }),
    ...(options.fs === undefined ? {} : { fs: options.fs }),
  });
  defer(() => source.close());
  const errors: TokenSourceError[] = [];
  source.onError((error) => errors.push(error));
  if (!options.startWithout) {
    await source.ready();
    await sleep(200); // let the first read and the watcher settle
  }
  return {
    volume,
    source,
    first,
    errors,
    codes: () => new Set(errors.map((e) => e.code)),
    serves: async (token) => (await source.getToken().catch(() => undefined)) === token,
  };
}

/** Every reported error is typed, has a known code and quotes none of `tokens`. */
function expectCleanErrors(errors: readonly TokenSourceError[], tokens: readonly string[]): void {
  for (const error of errors) {
    expect(TOKEN_ERROR_CODES).toContain(error.code);
    for (const text of errorTexts(error)) {
      expect(tokens.some((token) => leaks(text, token)), `error ${error.code} quotes a token`).toBe(false);
    }
  }
}

describe('faults, each recovered without restarting the source', () => {
  it('the token folder removed and recreated', async () => {
    const h = await harness(); // default 60 s poll: recovery must not wait for it
    const handlesBefore = watchHandles();
    await h.volume.remove();
    await until('TOKEN_FILE_MISSING reported', () => h.codes().has('TOKEN_FILE_MISSING'));
    expect(await h.serves(h.first), 'the last good token is served while the folder is gone').toBe(true);

    const second = await mint();
    const { swappedAt } = await h.volume.write({ token: second });
    await until('the token in the recreated folder served', () => h.serves(second));
    const recovered = performance.now() - swappedAt;
    // The watcher is started again on the new folder: a rotation is then seen without the poll.
    await until('a folder watcher open again', () => watchHandles() >= handlesBefore);
    const third = await mint();
    const next = await h.volume.write({ token: third });
    await until('the next rotation served (watcher back)', () => h.serves(third), 10_000);
    console.log(
      `fault folder removed: reported ${[...h.codes()].join(', ')}; recreated folder served after ${recovered.toFixed(0)} ms (backoff re-read); ` +
        `next rotation after ${(performance.now() - next.swappedAt).toFixed(0)} ms (watcher)`,
    );
    expectCleanErrors(h.errors, [h.first, second, third]);
  });

  it('permissions to 000 and back', async () => {
    const dir = join(await tempDir(), 'tokens');
    const probe = new ProjectedVolume({ dir });
    await probe.write({ token: 'probe' });
    await chmod(join(dir), 0o000);
    const rootReadsAnyway = await readFile(probe.path('token'), 'utf8').then(
      () => true,
      () => false,
    );
    await chmod(join(dir), 0o755);

    if (!rootReadsAnyway) {
      // The real thing: the folder becomes untraversable for this (non-root) user.
      const h = await harness({ pollInterval: 200, volumeDir: dir });
      await chmod(dir, 0o000);
      defer(() => chmod(dir, 0o755).catch(() => {}));
      await h.source.invalidate(h.first); // a 401 would do this: re-read now
      expect(h.codes().has('TOKEN_FILE_UNREADABLE'), 'permission denied reported').toBe(true);
      expect(await h.serves(h.first), 'the last good token is served while denied').toBe(true);
      await chmod(dir, 0o755);
      const second = await mint();
      const { swappedAt } = await h.volume.write({ token: second });
      await until('the token served once readable again', () => h.serves(second));
      console.log(`fault permissions 000 (chmod): reported ${[...h.codes()].join(', ')}; recovered ${(performance.now() - swappedAt).toFixed(0)} ms after the next rotation`);
      expectCleanErrors(h.errors, [h.first, second]);
      return;
    }

    // Running as root (uid ${process.getuid?.()}): chmod 000 does not stop root's reads
    // (CAP_DAC_OVERRIDE). The kernel's answer to everyone else is an EACCES from open(),
    // so the file system the source reads through gives exactly that while "denied"; its
    // watch is node's fs.watch on the real folder.
    console.log('fault permissions 000: running as root, where chmod 000 does not stop reads; simulated with an fs whose open() fails with EACCES');
    let denied = false;
    const fs: TokenFileSystem = {
      promises: {
        open: (path, flags) => {
          if (denied) {
            return Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${path}'`), { code: 'EACCES', errno: -13, syscall: 'open', path }));
          }
          return nodeFs.promises.open(path, flags);
        },
      },
      watch: (path, options, listener) => nodeFs.watch(path, options, listener),
    };
    const h = await harness({ pollInterval: 200, fs, volumeDir: dir });
    denied = true;
    const second = await mint();
    const { swappedAt } = await h.volume.write({ token: second }); // the kubelet (root) still writes
    await until('TOKEN_FILE_UNREADABLE reported', () => h.codes().has('TOKEN_FILE_UNREADABLE'));
    expect(await h.serves(h.first), 'the last good token is served while denied').toBe(true);
    denied = false;
    const restored = performance.now();
    await until('the rotated token served once readable again (poll)', () => h.serves(second));
    console.log(
      `fault permissions 000 (EACCES): reported ${[...h.codes()].join(', ')}; the token written while denied was served ` +
        `${(performance.now() - restored).toFixed(0)} ms after access came back (${(performance.now() - swappedAt).toFixed(0)} ms after its swap)`,
    );
    expectCleanErrors(h.errors, [h.first, second]);
  });

  it('the token file replaced by a folder and back', async () => {
    // The folder watch reports the `token` symlink's removal and the new folder's creation;
    // a short poll as well, as a safety net.
    const h = await harness({ pollInterval: 200 });
    const path = h.volume.path('token');
    await rm(path);
    await mkdir(path);
    await until('TOKEN_FILE_UNREADABLE reported', () => h.codes().has('TOKEN_FILE_UNREADABLE'));
    expect(await h.serves(h.first), 'the last good token is served while the path is a folder').toBe(true);

    await rm(path, { recursive: true });
    await symlink('..data/token', path); // the same token back
    const errorsBefore = h.errors.length;
    await h.source.invalidate(h.first);
    expect(h.errors.length, 'no error once the file is back').toBe(errorsBefore);
    const second = await mint();
    const { swappedAt } = await h.volume.write({ token: second });
    await until('the next rotation served', () => h.serves(second));
    console.log(`fault file replaced by a folder: reported ${[...h.codes()].join(', ')}; next rotation served after ${(performance.now() - swappedAt).toFixed(0)} ms`);
    expectCleanErrors(h.errors, [h.first, second]);
  });

  it('the watcher cannot start because the folder does not exist yet: the poll carries it', async () => {
    const handlesBefore = watchHandles();
    const h = await harness({ pollInterval: 200, startWithout: true });
    const pending = h.source.getToken();
    await until('TOKEN_FILE_MISSING reported', () => h.codes().has('TOKEN_FILE_MISSING'));
    const { swappedAt } = await h.volume.write({ token: h.first });
    expect((await pending) === h.first, 'the waiting caller gets the first token').toBe(true);
    const loaded = performance.now() - swappedAt;
    await until('the folder watcher started after the first good read', () => watchHandles() > handlesBefore);
    const second = await mint();
    const next = await h.volume.write({ token: second });
    await until('the next rotation served', () => h.serves(second));
    console.log(
      `fault no folder at start: first token served ${loaded.toFixed(0)} ms after it appeared; watcher started afterwards; ` +
        `next rotation served after ${(performance.now() - next.swappedAt).toFixed(0)} ms`,
    );
    expectCleanErrors(h.errors, [h.first, second]);
  });

  it('the watcher cannot start (watch limit, ENOSPC): the poll carries every rotation', async () => {
    let attempts = 0;
    const fs: TokenFileSystem = {
      promises: { open: (path, flags) => nodeFs.promises.open(path, flags) },
      watch: () => {
        attempts += 1;
        throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC', errno: -28, syscall: 'watch' });
      },
    };
    const h = await harness({ pollInterval: 200, fs });
    const pickups: number[] = [];
    let last = h.first;
    for (let i = 0; i < 3; i++) {
      last = await mint();
      const { swappedAt } = await h.volume.write({ token: last });
      const token = last;
      await until(`rotation ${i + 1} served by the poll`, () => h.serves(token));
      pickups.push(performance.now() - swappedAt);
    }
    expect(attempts, 'watch() was tried').toBeGreaterThan(0);
    console.log(`fault watch limit (ENOSPC): ${attempts} watch attempts failed; 3 rotations served after ${pickups.map((p) => p.toFixed(0)).join(', ')} ms (poll 200 ms)`);
    expectCleanErrors(h.errors, [h.first, last]);
  });

  it('the watcher dies after starting (an error event): the next rotation is still served', async () => {
    const watchers: nodeFs.FSWatcher[] = [];
    const fs: TokenFileSystem = {
      promises: { open: (path, flags) => nodeFs.promises.open(path, flags) },
      watch: (path, options, listener) => {
        const watcher = nodeFs.watch(path, options, listener);
        watchers.push(watcher);
        return watcher;
      },
    };
    const h = await harness({ fs }); // default 60 s poll
    expect(watchers.length).toBe(1);
    watchers[0]!.emit('error', Object.assign(new Error('EIO: watcher failed'), { code: 'EIO' }));
    const second = await mint();
    const { swappedAt } = await h.volume.write({ token: second });
    await until('the next rotation served', () => h.serves(second), 10_000);
    console.log(`fault watcher error event: ${watchers.length} watchers started in all; next rotation served after ${(performance.now() - swappedAt).toFixed(0)} ms`);
    expectCleanErrors(h.errors, [h.first, second]);
  });

  it('a write torn in half, then completed (a plain file rewritten in place)', async () => {
    const dir = await tempDir();
    const path = join(dir, 'token');
    const first = await mint();
    await writeFile(path, first);
    const source = new FileTokenSource({ path, audience: 'faults', pollInterval: 0 });
    defer(() => source.close());
    const errors: TokenSourceError[] = [];
    source.onError((error) => errors.push(error));
    await source.ready();
    await sleep(200);

    const second = await mint();
    await writeFile(path, second.slice(0, Math.floor(second.length / 2)));
    await until('the torn write reported', () => errors.length > 0);
    expect(errors.every((e) => e.code === 'TOKEN_MALFORMED'), 'reported as TOKEN_MALFORMED').toBe(true);
    expect((await source.getToken()) === first, 'the last good token is served').toBe(true);
    await writeFile(path, second);
    await until('the completed token served', async () => (await source.getToken()) === second);
    console.log(`fault torn write: ${errors.length} TOKEN_MALFORMED reported for the half-written file, the completed token then served`);
    expectCleanErrors(errors, [first, second]);
  });

  // A write torn inside the JWT's signature still has three base64url parts with a valid
  // header and payload; the signature's length, fixed by the header's alg (64 bytes for
  // ES256, the key size for RS256), gives it away, and the last good token stays.
  it('a write torn inside the signature is not served as a token', async () => {
    const dir = await tempDir();
    const path = join(dir, 'token');
    const first = await mint();
    await writeFile(path, first);
    const source = new FileTokenSource({ path, audience: 'faults', pollInterval: 0 });
    defer(() => source.close());
    const outcomes: string[] = [];
    source.onError((error) => outcomes.push(error.code));
    source.onRefresh(() => outcomes.push('refresh'));
    await source.ready();
    outcomes.length = 0;

    const second = await mint();
    await writeFile(path, second.slice(0, second.length - 40));
    await source.invalidate(first); // read now, deterministically
    console.log(`fault torn inside the signature: the read gave ${outcomes.join(', ')}`);
    expect((await source.getToken()) === first, 'the last good token is still served').toBe(true);
  });

  // A writer other than the kubelet (a sidecar, a script) rewrites a plain file in place, in
  // two pieces with a pause between them, cut anywhere: inside the header, the payload, or
  // the signature at a length that is itself plausible (171 of 342 characters), with tokens
  // from two signing keys in turn (so the last signature's length is no guide). A reader
  // asks for the token on every turn of the event loop meanwhile.
  it('a plain file rewritten in place in two pieces, 20 times: no piece is ever served or announced', { timeout: 60_000 }, async () => {
    const other = await createIssuer();
    const dir = await tempDir();
    const path = join(dir, 'token');
    const first = await mint();
    await writeFile(path, first);
    const source = new FileTokenSource({ path, audience: 'faults', pollInterval: 0 });
    defer(() => source.close());
    const minted = new Set([first]);
    const announced: string[] = [];
    source.onRefresh((token) => announced.push(token.value));
    await source.ready();

    const served = new Set<string>();
    let reading = true;
    const reader = (async () => {
      while (reading) {
        served.add(await source.getToken());
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const pauses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const next = await (i % 2 === 0 ? other : issuer).mint({ audience: 'faults', expirationSeconds: 3600 });
      minted.add(next);
      const signatureStart = next.lastIndexOf('.') + 1;
      const cut = [signatureStart + 171, Math.floor(Math.random() * next.length), signatureStart - 1, 2][i % 4]!;
      const pause = Math.floor(Math.random() * 60);
      pauses.push(pause);
      const handle = await nodeFs.promises.open(path, 'w'); // truncates: the file is empty now
      await handle.write(next.slice(0, cut));
      await sleep(pause);
      await handle.write(next.slice(cut));
      await handle.close();
      await until(`rewrite ${i + 1} served`, async () => (await source.getToken()) === next, 10_000, 2);
    }
    reading = false;
    await reader;
    const torn = [...served, ...announced].filter((token) => !minted.has(token));
    console.log(
      `fault torn in-place rewrites: 20 rewrites in two pieces (pauses ${Math.min(...pauses)}-${Math.max(...pauses)} ms); ` +
        `${served.size} distinct tokens served, ${announced.length} announced, ${torn.length} of them torn`,
    );
    expect(torn.length, 'a torn token was served or announced').toBe(0);
    expect(announced.length).toBe(21);
  });
});
