import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIAGNOSTICS_CHANNELS, FileTokenSource } from '@podtoken/core';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { main } from '../src/main.js';
import { renderWatchEvent } from '../src/renderWatchEvent.js';
import { toWatchEvent, type WatchEvent } from '../src/watchEvent.js';
import { capture, leaks, until } from './helpers.js';

// In-process runs of `podtoken watch` (main() with a collecting CliIO): what the child-process
// tests in watchEvents.test.ts cannot reach, such as events another source in the process
// publishes about the same file.

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

describe('podtoken watch (in process)', () => {
  it('prints token:invalidated that a source of the app publishes about the same file, and nothing about other files', async () => {
    const volume = new ProjectedVolume({ dir: join(dir, 'shared') });
    const kubelet = new FakeKubelet({ volume, issuer, file: 'vault-token', audience: 'vault', expirationSeconds: 600 });
    const first = await kubelet.rotate();
    const other = join(dir, 'other-token');
    await writeFile(other, await issuer.mint({ audience: 'vault', expirationSeconds: 600 }));
    // The app's sources, in the same process as the command.
    const app = new FileTokenSource({ path: kubelet.path, name: 'vault' });
    const unrelated = new FileTokenSource({ path: other, name: 'unrelated' });
    await Promise.all([app.ready(), unrelated.ready()]);

    const controller = new AbortController();
    const io = capture({ signal: controller.signal });
    const running = main(['watch', '--json', kubelet.path], io);
    const events = () => lines(io.out()).map((line) => JSON.parse(line) as WatchEvent);
    try {
      await until(() => events().some((e) => e.event === 'podtoken:token:loaded'), 'the load line');
      // A server refused the token and the kubelet has not written another: `unchanged`.
      await app.invalidate(first.token);
      await unrelated.invalidate('x.y.z');
      await until(() => events().some((e) => e.event === 'podtoken:token:invalidated'), 'the invalidated line');
    } finally {
      controller.abort();
      await Promise.all([app.close(), unrelated.close()]);
    }
    expect(await running).toBe(0);
    const invalidated = events().filter((e) => e.event === 'podtoken:token:invalidated');
    expect(invalidated).toHaveLength(1);
    expect(invalidated[0]).toEqual({
      event: 'podtoken:token:invalidated',
      source: { name: 'vault', path: kubelet.path },
      outcome: 'unchanged',
      current: true,
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
    expect(events().some((e) => 'source' in e && e.source?.path === other)).toBe(false);
    // The command's own source and the app's both loaded the file: each says so, under its name.
    expect(events().filter((e) => e.event === 'podtoken:token:loaded').map((e) => e.source.name).sort()).toEqual([kubelet.path]);
    expect(leaks(io.out() + io.err(), first.token)).toBe(false);
  });

  it('exits 2 on a usage error', async () => {
    for (const args of [['--bogus'], ['--status-interval', '0'], ['--status-interval', 'soon'], ['--status-interval'], ['--audience', '']]) {
      const io = capture();
      expect(await main(['watch', ...args], io)).toBe(2);
      expect(io.err()).toMatch(/^podtoken watch: .*\nRun "podtoken watch --help" for usage\.\n$/);
    }
  });

  it('unsubscribes when stopped', async () => {
    const { channel } = await import('node:diagnostics_channel');
    const before = Object.values(DIAGNOSTICS_CHANNELS).map((name) => channel(name).hasSubscribers);
    const controller = new AbortController();
    const running = main(['watch', '--verbose', join(dir, 'nothing-here')], capture({ signal: controller.signal }));
    await until(() => channel(DIAGNOSTICS_CHANNELS.readFinished).hasSubscribers, 'the subscription');
    controller.abort();
    expect(await running).toBe(0);
    expect(Object.values(DIAGNOSTICS_CHANNELS).map((name) => channel(name).hasSubscribers)).toEqual(before);
  });
});

describe('renderWatchEvent', () => {
  const source = { name: '/var/run/secrets/tokens/vault-token', path: '/var/run/secrets/tokens/vault-token' };
  const token = {
    kind: 'bound',
    audience: ['vault'],
    subject: 'system:serviceaccount:shop:checkout',
    issuer: 'https://kubernetes.default.svc.cluster.local',
    issuedAt: new Date('2026-12-02T11:30:00Z'),
    expiresAt: new Date('2026-12-02T11:40:01Z'),
    refreshAt: new Date('2026-12-02T11:38:00.800Z'),
  } as const;
  const at = new Date('2026-12-02T11:30:00.412Z');
  const render = (channel: string, message: object) => renderWatchEvent(toWatchEvent(channel, message));

  it("says each of core's events in words, one line each", () => {
    const C = DIAGNOSTICS_CHANNELS;
    expect(render(C.tokenLoaded, { source, token, trigger: 'start', at, age: 412, expiresIn: 600_588 })).toBe(
      '2026-12-02T11:30:00.412Z  token:loaded       /var/run/secrets/tokens/vault-token  bound  expires 2026-12-02T11:40:01Z  ttl 10m  refresh 2026-12-02T11:38:00Z  via start\n',
    );
    expect(render(C.tokenRefreshed, { source: { name: 'vault', path: source.path }, token, previous: token, trigger: 'event', at, expiresIn: 599_000 })).toBe(
      '2026-12-02T11:30:00.412Z  token:refreshed    vault (/var/run/secrets/tokens/vault-token)  bound  expires 2026-12-02T11:40:01Z  ttl 9m 59s  refresh 2026-12-02T11:38:00Z  via event\n',
    );
    expect(render(C.tokenLoaded, { source, token: { kind: 'opaque', audience: [] }, trigger: 'start', at })).toBe(
      '2026-12-02T11:30:00.412Z  token:loaded       /var/run/secrets/tokens/vault-token  opaque  never expires  via start\n',
    );
    expect(render(C.tokenExpired, { source, token, at })).toBe(
      '2026-12-02T11:30:00.412Z  token:expired      /var/run/secrets/tokens/vault-token  bound  expired 2026-12-02T11:40:01Z  getToken() rejects with TOKEN_EXPIRED until a fresh token is read\n',
    );
    expect(render(C.tokenInvalidated, { source, outcome: 'replaced', current: false, at })).toBe(
      '2026-12-02T11:30:00.412Z  token:invalidated  /var/run/secrets/tokens/vault-token  re-read after a refusal: replaced  (the refused token was an older one)\n',
    );
    expect(render(C.readFinished, { source, trigger: 'poll', outcome: 'same', duration: 0.4321, at })).toBe(
      '2026-12-02T11:30:00.412Z  read:finished      /var/run/secrets/tokens/vault-token  same  via poll  0.4 ms\n',
    );
    expect(render(C.readFailed, { source, trigger: 'event', code: 'TOKEN_MALFORMED', message: 'Bad.', failures: 2, serving: true, at })).toBe(
      '2026-12-02T11:30:00.412Z  read:failed        /var/run/secrets/tokens/vault-token  TOKEN_MALFORMED  Bad.  (failure 2; still serving the last good token; via event)\n',
    );
    expect(render(C.readFailed, { source, trigger: 'start', code: 'TOKEN_FILE_MISSING', message: 'Gone.', failures: 1, serving: false, at })).toBe(
      '2026-12-02T11:30:00.412Z  read:failed        /var/run/secrets/tokens/vault-token  TOKEN_FILE_MISSING  Gone. Waiting for it to appear.  (failure 1; no token to serve; via start)\n',
    );
    expect(render(C.watchFailed, { folder: '/var/run/secrets/tokens', reason: 'removed', at })).toBe(
      '2026-12-02T11:30:00.412Z  watch:failed       /var/run/secrets/tokens  removed  changes are seen by the poll and retries until the watch is up again\n',
    );
    expect(render(C.watchRearmed, { folder: '/var/run/secrets/tokens', at })).toBe('2026-12-02T11:30:00.412Z  watch:rearmed      /var/run/secrets/tokens  watching again\n');
    expect(render(C.requestUnauthorized, { adapter: 'axios', source, retried: false, reason: 'token-unchanged', at })).toBe(
      '2026-12-02T11:30:00.412Z  request:unauthorized  /var/run/secrets/tokens/vault-token  axios got a 401  not retried: token-unchanged\n',
    );
  });

  it('says a status line in words', () => {
    const line = renderWatchEvent({
      event: 'podtoken:status',
      at: '2026-12-02T11:30:00.412Z',
      name: 'vault',
      state: 'failing',
      serving: true,
      expiresIn: 599_000,
      expiresAt: '2026-12-02T11:40:01.000Z',
      refreshAt: '2026-12-02T11:38:00.800Z',
      lastError: { code: 'TOKEN_MALFORMED', at: '2026-12-02T11:30:00.000Z' },
    });
    expect(line).toBe(
      '2026-12-02T11:30:00.412Z  status             vault  failing  serving  expires 2026-12-02T11:40:01Z  ttl 9m 59s  refresh 2026-12-02T11:38:00Z  last error TOKEN_MALFORMED at 2026-12-02T11:30:00Z\n',
    );
  });

  it("refuses to make a line for a channel that is not podtoken's", () => {
    expect(() => toWatchEvent('undici:request:create', {})).toThrow(TypeError);
  });
});
