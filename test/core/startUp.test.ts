// Start-up: a missing file is waited for (until readyTimeout); a file that is there but
// holds what waiting cannot fix (a token for another audience, an expired one, far too
// much, a folder) rejects ready() and waiting getToken() calls at once, with its own code.
// The source keeps watching and serves a good token once one appears; ready() then
// resolves with it (each call answers for the state at that moment).
//
// On memfs with fake timers, "at once" means: with no time passing at all.
import { createTokenSources, FileTokenSource, type Token, type TokenSourceError } from '@podtoken/core';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { memfs } from 'memfs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { defer, tempDir } from '../helpers.js';

const MOUNT = '/var/run/secrets/tokens';
let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

/** How a promise has settled so far, without awaiting it. */
function track<T>(promise: Promise<T>): { settled: boolean; value?: T; error?: TokenSourceError } {
  const state: { settled: boolean; value?: T; error?: TokenSourceError } = { settled: false };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: TokenSourceError) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Lets memfs reads and the promise chains after them run, with no fake time passing. */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0);
}

describe('start-up on memfs, fake timers', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-11-22T10:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const expired = () => issuer.mint({ audience: 'api', issuedAt: new Date(Date.now() - 7_200_000), expirationSeconds: 3600 });
  const corpus: Array<[string, string, () => Promise<string | Uint8Array>]> = [
    ['a token for another audience', 'TOKEN_AUDIENCE_MISMATCH', () => issuer.mint({ audience: 'someone-else' })],
    ['an expired token', 'TOKEN_EXPIRED', expired],
    ['a file far too large', 'TOKEN_TOO_LARGE', async () => 'x'.repeat(70_000)],
  ];

  it.each(corpus)('%s rejects ready() and waiting getToken() calls at once with %s, then serves a good token', async (_name, code, content) => {
    const { fs } = memfs();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    await volume.write({ token: await content() });
    const source = new FileTokenSource({ path: volume.path('token'), fs, audience: 'api' });
    const errors: string[] = [];
    source.onError((error) => errors.push(error.code));
    const ready = track(source.ready());
    const waiting = track(source.getToken());
    await flush();
    expect(ready.error?.code).toBe(code);
    expect(waiting.error?.code).toBe(code);
    expect(ready.error?.path).toBe(volume.path('token'));
    expect(errors).toEqual([code]);
    // Later callers get the same answer at once, while the file is unchanged.
    const later = track(source.getToken());
    await flush();
    expect(later.error?.code).toBe(code);

    // It keeps watching: a good token written later is served, and ready() resolves with it.
    const good = await issuer.mint({ audience: 'api' });
    await volume.write({ token: good });
    await flush();
    expect((await source.getToken()) === good).toBe(true);
    const token: Token = await source.ready();
    expect(token.value === good).toBe(true);
    expect(source.ready()).toBe(source.ready());
    await source.close();
  });

  it('a missing file is waited for until readyTimeout; a wrong token written meanwhile ends the wait at once', async () => {
    const { fs } = memfs();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    await volume.write({ 'ca.crt': 'not the token' }); // the volume is mounted; the token file is not there yet
    const source = new FileTokenSource({ path: volume.path('token'), fs, audience: 'api', readyTimeout: 10_000 });
    const ready = track(source.ready());
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ready.settled).toBe(false); // missing: worth waiting for
    await volume.write({ 'ca.crt': 'not the token', token: await issuer.mint({ audience: 'other' }) });
    await flush();
    expect(ready.error?.code).toBe('TOKEN_AUDIENCE_MISMATCH');
    await source.close();
  });

  it.each([
    ['an empty file', ''],
    ['`ey` (a JWT being written)', 'ey'],
    ['half a JWT', 'half'],
  ])('%s is waited for, and the pending ready() resolves with the token written next', async (_name, content) => {
    const { fs } = memfs();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    const good = await issuer.mint({ audience: 'api' });
    await volume.write({ token: content === 'half' ? good.slice(0, good.length / 2) : content });
    const source = new FileTokenSource({ path: volume.path('token'), fs, audience: 'api' });
    const errors: string[] = [];
    source.onError((error) => errors.push(error.code));
    const ready = track(source.ready());
    await vi.advanceTimersByTimeAsync(3_000);
    expect(ready.settled).toBe(false);
    expect(errors[0]).toBe('TOKEN_MALFORMED');
    await volume.write({ token: good });
    await flush();
    expect(ready.value?.value === good).toBe(true);
    expect(source.current?.kind).toBe('bound');
    await source.close();
  });

  it("quotes the file's audience escaped: whoever writes the file controls what reaches terminals and logs", async () => {
    const { fs } = memfs();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    await volume.write({ token: await issuer.mint({ audience: ['\u001b[2J\u001b[31mFAKE ALERT', 'x\ny'] }) });
    const source = new FileTokenSource({ path: volume.path('token'), fs, audience: 'api' });
    const ready = track(source.ready());
    await flush();
    expect(ready.error?.code).toBe('TOKEN_AUDIENCE_MISMATCH');
    expect(ready.error?.message).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(ready.error?.message).toContain('\\u001b[2J');
    await source.close();
  });

  it('createTokenSources().ready() rejects at once with the code of the source whose token is wrong', async () => {
    const { fs } = memfs();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    await volume.write({ token: await issuer.mint({ audience: 'api' }), 'vault-token': await issuer.mint({ audience: 'not-vault' }) });
    const sources = createTokenSources({
      api: { path: volume.path('token'), fs, audience: 'api' },
      vault: { path: volume.path('vault-token'), fs, audience: 'vault' },
    });
    const ready = track(sources.ready());
    await flush();
    expect(ready.error?.code).toBe('TOKEN_AUDIENCE_MISMATCH');
    await sources.close();
  });
});

describe('start-up on the real file system', () => {
  it('a token for another audience rejects ready() at once (well before readyTimeout)', async () => {
    const volume = new ProjectedVolume({ dir: await tempDir() });
    await volume.write({ token: await issuer.mint({ audience: 'someone-else' }) });
    // readyTimeout beyond the test's own timeout: only an early rejection lets it pass.
    const source = new FileTokenSource({ path: volume.path('token'), audience: 'api', readyTimeout: 600_000 });
    defer(() => source.close());
    await expect(source.ready()).rejects.toMatchObject({ code: 'TOKEN_AUDIENCE_MISMATCH' });
    const good = await issuer.mint({ audience: 'api' });
    await volume.write({ token: good });
    expect((await source.ready()).value === good).toBe(true);
  });

  it('a folder where the file should be rejects ready() at once with TOKEN_FILE_UNREADABLE', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'token'));
    const source = new FileTokenSource({ path: join(dir, 'token'), readyTimeout: 600_000 });
    defer(() => source.close());
    await expect(source.ready()).rejects.toMatchObject({ code: 'TOKEN_FILE_UNREADABLE' });
  });
});
