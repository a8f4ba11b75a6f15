import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { main } from '../src/main.js';
import { renderWatchEvent, type WatchEvent } from '../src/watch.js';
import { capture, leaks, until } from './helpers.js';

let issuer: Issuer;
let dir: string;

beforeAll(async () => {
  issuer = await createIssuer();
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-watch-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

describe('podtoken watch', () => {
  it('prints a load line, then a refresh line when the kubelet rotates, and exits 0 when stopped', async () => {
    const volume = new ProjectedVolume({ dir: join(dir, 'rotating') });
    // Not started: rotations happen only when the test asks, so nothing here depends on timing.
    const kubelet = new FakeKubelet({ volume, issuer, file: 'vault-token', audience: 'vault', expirationSeconds: 600 });
    const first = await kubelet.rotate();

    const controller = new AbortController();
    const io = capture({ signal: controller.signal });
    const running = main(['watch', '--json', kubelet.path], io);
    const events = () => lines(io.out()).map((line) => JSON.parse(line) as WatchEvent);
    try {
      await until(() => events().length >= 1, 'the load line');
      const second = await kubelet.rotate();
      await until(() => events().some((e) => e.event === 'refresh'), 'the refresh line');

      const [load, refresh] = events();
      expect(load).toMatchObject({ event: 'load', path: kubelet.path, kind: 'bound', subject: 'system:serviceaccount:default:default' });
      expect(refresh).toMatchObject({ event: 'refresh', path: kubelet.path, kind: 'bound' });
      expect(refresh!.ttlSeconds).toBeGreaterThan(590);
      // The issuer rounds exp up to a whole second.
      expect(refresh!.ttlSeconds).toBeLessThanOrEqual(601);
      expect(Date.parse(refresh!.expiresAt!)).toBeGreaterThan(Date.now());
      expect(Date.parse(refresh!.refreshAt!)).toBeLessThan(Date.parse(refresh!.expiresAt!));
      expect(Number.isNaN(Date.parse(refresh!.time))).toBe(false);
      for (const token of [first.token, second.token]) expect(leaks(io.out() + io.err(), token)).toBe(false);
    } finally {
      controller.abort();
    }
    expect(await running).toBe(0);
    expect(io.err()).toContain('following 1 file');
    expect(io.err()).toContain('stopped');
  });

  it('says it is waiting for a file that is not there yet; once a token was loaded, a missing file is an error', async () => {
    const controller = new AbortController();
    const io = capture({ signal: controller.signal });
    const plain = join(dir, 'plain-token');
    await writeFile(plain, await issuer.mint({ audience: 'vault', expirationSeconds: 600 }));
    const running = main(['watch', join(dir, 'missing', 'token'), plain], io);
    try {
      await until(() => io.out().includes('TOKEN_FILE_MISSING') && io.out().includes(' load '), 'the waiting and load lines');
      await rm(plain);
      await until(() => lines(io.out()).some((line) => line.includes('  error ')), 'the error line');
    } finally {
      controller.abort();
    }
    expect(await running).toBe(0);
    const waiting = lines(io.out()).find((line) => line.includes('missing/token'));
    expect(waiting).toMatch(/^\S+Z {2}waiting {2}\S+missing\/token {2}TOKEN_FILE_MISSING {2}Token file .* does not exist.* Waiting for it to appear\.$/);
    const error = lines(io.out()).find((line) => line.includes('  error '));
    expect(error).toMatch(/^\S+Z {2}error {4}\S+plain-token {2}TOKEN_FILE_MISSING {2}Token file .* does not exist/);
  });

  it('gives the waiting event in --json too', async () => {
    const controller = new AbortController();
    const io = capture({ signal: controller.signal });
    const running = main(['watch', '--json', join(dir, 'missing', 'token')], io);
    try {
      await until(() => io.out().includes('TOKEN_FILE_MISSING'), 'the waiting line');
    } finally {
      controller.abort();
    }
    expect(await running).toBe(0);
    expect(JSON.parse(lines(io.out())[0]!)).toMatchObject({ event: 'waiting', code: 'TOKEN_FILE_MISSING', path: join(dir, 'missing', 'token') });
  });

  it('exits 2 on a usage error', async () => {
    const io = capture();
    expect(await main(['watch', '--bogus'], io)).toBe(2);
    expect(io.err()).toContain("Unknown option '--bogus'");
  });
});

describe('renderWatchEvent', () => {
  it('shows time, event, file, kind, expiry, TTL and refresh time', () => {
    const line = renderWatchEvent({
      time: '2026-11-22T10:00:00.123Z',
      event: 'refresh',
      path: '/var/run/secrets/tokens/vault-token',
      kind: 'bound',
      expiresAt: '2026-11-22T10:10:00.000Z',
      ttlSeconds: 599.877,
      refreshAt: '2026-11-22T10:08:00.000Z',
    });
    expect(line).toBe(
      '2026-11-22T10:00:00.123Z  refresh  /var/run/secrets/tokens/vault-token  bound  expires 2026-11-22T10:10:00Z  ttl 9m 59s  refresh 2026-11-22T10:08:00Z\n',
    );
    expect(renderWatchEvent({ time: 't', event: 'load', path: '/p', kind: 'opaque' })).toBe('t  load     /p  opaque  never expires\n');
  });
});
