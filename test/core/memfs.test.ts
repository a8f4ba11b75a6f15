// Written the way a user tests refresh behaviour on a laptop: a memfs volume, the fake
// kubelet and vitest's fake timers. Nothing touches the disk and no real time passes.
import { FileTokenSource } from '@podtoken/core';
import { createIssuer, FakeKubelet, ProjectedVolume } from '@podtoken/testing';
import { memfs } from 'memfs';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const MOUNT = '/var/run/secrets/tokens';

describe('refresh on memfs with fake timers', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-11-22T10:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('follows every kubelet rotation over a simulated day', async () => {
    const { fs } = memfs();
    const issuer = await createIssuer();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    const kubelet = new FakeKubelet({ volume, issuer, file: 'vault-token', audience: 'vault', expirationSeconds: 600 });
    const first = await kubelet.start();

    const source = new FileTokenSource({ path: kubelet.path, fs, audience: 'vault' });
    const refreshes: number[] = [];
    source.onRefresh(() => refreshes.push(Date.now()));
    await source.ready();
    expect((await source.getToken()) === first.token).toBe(true);

    // The kubelet writes a fresh token at 80 % of 600 s: 180 rotations in a day.
    for (let i = 0; i < 180; i++) {
      await vi.advanceTimersByTimeAsync(480_000);
      expect((await source.getToken()) === kubelet.last!.token).toBe(true);
    }
    expect(kubelet.rotations).toBe(181);
    expect(refreshes).toHaveLength(181);
    expect(new Date().toISOString()).toBe('2026-11-23T10:00:00.000Z');
    expect(existsSync(MOUNT)).toBe(false); // the real disk was never touched
    await source.close();
    kubelet.stop();
  });

  it('without watching, re-reads at refreshAt and backs off until the kubelet writes', async () => {
    const { fs } = memfs();
    const issuer = await createIssuer();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    // A kubelet that is late: it rotates at 95 % of the lifetime, not 80 %.
    const kubelet = new FakeKubelet({ volume, issuer, audience: 'vault', expirationSeconds: 1000, rotateAfter: 0.95 });
    await kubelet.start();
    const source = new FileTokenSource({ path: kubelet.path, fs, watch: false, pollInterval: 0 });
    const token = await source.ready();
    expect(token.refreshAt!.getTime() - token.issuedAt!.getTime()).toBe(800_000);

    await vi.advanceTimersByTimeAsync(800_000); // refreshAt: same token on disk
    expect(source.current!.value === token.value).toBe(true);
    // Backoff 1 s, 2 s, 4 s… capped at 30 s: reads at 801, 803, 807 … 921, 951 s.
    await vi.advanceTimersByTimeAsync(140_000);
    expect(kubelet.rotations).toBe(1);
    await vi.advanceTimersByTimeAsync(10_000); // the kubelet writes at 950 s
    expect(kubelet.rotations).toBe(2);
    expect(source.current!.value === token.value).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000); // the backoff read at 951 s
    expect((await source.getToken()) === kubelet.last!.token).toBe(true);
    await source.close();
    kubelet.stop();
  });

  it('rejects with TOKEN_EXPIRED once the only token is past exp, and recovers', async () => {
    const { fs } = memfs();
    const issuer = await createIssuer();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    const kubelet = new FakeKubelet({ volume, issuer, expirationSeconds: 100 });
    await kubelet.start();
    kubelet.stop(); // the kubelet dies
    const source = new FileTokenSource({ path: kubelet.path, fs, pollInterval: 0 });
    await source.ready();
    await vi.advanceTimersByTimeAsync(99_999);
    await expect(source.getToken()).resolves.toBeTypeOf('string');
    await vi.advanceTimersByTimeAsync(1);
    await expect(source.getToken()).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
    await kubelet.rotate(); // it comes back
    await vi.advanceTimersByTimeAsync(0);
    expect((await source.getToken()) === kubelet.last!.token).toBe(true);
    await source.close();
  });

  it('waits for a file that appears late, and says TOKEN_NOT_READY after readyTimeout', async () => {
    const { fs } = memfs();
    const issuer = await createIssuer();
    const volume = new ProjectedVolume({ dir: MOUNT, fs });
    const late = new FileTokenSource({ path: volume.path('token'), fs, readyTimeout: 10_000 });
    const errors: string[] = [];
    late.onError((error) => errors.push(error.code));
    const pending = late.getToken();
    await vi.advanceTimersByTimeAsync(3_000);
    const { token } = await new FakeKubelet({ volume, issuer }).rotate();
    await vi.advanceTimersByTimeAsync(4_000); // backoff re-read (1 s, 2 s, 4 s)
    expect((await pending) === token).toBe(true);
    expect(errors[0]).toBe('TOKEN_FILE_MISSING');
    await late.close();

    const never = new FileTokenSource({ path: '/nowhere/token', fs, readyTimeout: 10_000 });
    const ready = never.ready();
    const waiting = never.getToken();
    const assertions = [
      expect(ready).rejects.toMatchObject({ code: 'TOKEN_NOT_READY', cause: { code: 'TOKEN_FILE_MISSING' } }),
      expect(waiting).rejects.toMatchObject({ code: 'TOKEN_NOT_READY' }),
    ];
    await vi.advanceTimersByTimeAsync(10_000);
    await Promise.all(assertions);
    await expect(never.getToken()).rejects.toMatchObject({ code: 'TOKEN_NOT_READY' });
    await never.close();
    await expect(never.getToken()).rejects.toMatchObject({ code: 'TOKEN_SOURCE_CLOSED' });
  });

  it('stops waiting on abort and rejects pending calls on close', async () => {
    const { fs } = memfs();
    const source = new FileTokenSource({ path: '/missing/token', fs });
    const controller = new AbortController();
    const aborted = source.getToken({ signal: controller.signal });
    controller.abort(new Error('caller gave up'));
    await expect(aborted).rejects.toThrow('caller gave up');
    const pending = source.getToken();
    const ready = source.ready();
    await source.close();
    await expect(pending).rejects.toMatchObject({ code: 'TOKEN_SOURCE_CLOSED' });
    await expect(ready).rejects.toMatchObject({ code: 'TOKEN_SOURCE_CLOSED' });
    expect(vi.getTimerCount()).toBe(0); // no timer left behind
  });
});
