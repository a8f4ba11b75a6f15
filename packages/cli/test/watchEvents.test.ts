import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIAGNOSTICS_CHANNELS, FileTokenSource, type DiagnosticsChannelName } from '@podtoken/core';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import type { DiagnosticsEvent, StatusEvent, WatchEvent } from '../src/watchEvent.js';
import { ensureBin, leaks, runBin, until } from './helpers.js';

// `podtoken watch --json` as a child process, next to a diagnostics_channel subscriber in
// this process with its own FileTokenSource on the same file: both live through the same
// pod start, rotation, broken write and expiry, and each line must carry what the
// subscriber got: the same keys, the same token facts, dates as ISO strings.

let issuer: Issuer;
let dir: string;

beforeAll(async () => {
  ensureBin();
  issuer = await createIssuer();
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-events-'));
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Every key path in a value, with Dates as leaves: `token.expiresAt`, `source.name`. */
function keyPaths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || value instanceof Date || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([key, inner]) => keyPaths(inner, prefix === '' ? key : `${prefix}.${key}`)).sort();
}

/** The key paths whose value is a Date. */
function datePaths(value: unknown, prefix = ''): string[] {
  if (value instanceof Date) return [prefix];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  return Object.entries(value).flatMap(([key, inner]) => datePaths(inner, prefix === '' ? key : `${prefix}.${key}`));
}

function at(value: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((inner, key) => (inner as Record<string, unknown> | undefined)?.[key], value);
}

describe('podtoken watch --json, as a child process', () => {
  it('prints the events a diagnostics_channel subscriber gets, with the same fields, and never the token', async () => {
    const volume = new ProjectedVolume({ dir: join(dir, 'tokens') });
    // Not started: the kubelet writes only when the test asks.
    const kubelet = new FakeKubelet({ volume, issuer, file: 'vault-token', audience: 'vault', expirationSeconds: 600 });
    const folder = dirname(kubelet.path);

    // This process's subscriber, on its own source for the same file.
    const seen: Array<{ channel: DiagnosticsChannelName; message: Record<string, unknown> }> = [];
    const onMessage = (message: unknown, name: string | symbol) => {
      const m = message as { source?: { path?: string }; folder?: string };
      if (m.source?.path === kubelet.path || m.folder === folder) seen.push({ channel: name as DiagnosticsChannelName, message: m as Record<string, unknown> });
    };
    for (const name of Object.values(DIAGNOSTICS_CHANNELS)) subscribe(name, onMessage);
    const mine = new FileTokenSource({ path: kubelet.path, readyTimeout: 0 });

    // The pod starts before the kubelet has mounted the volume.
    const watch = runBin(['watch', '--json', '--verbose', '--status-interval', '0.3', kubelet.path], {}, 40_000);
    const lines = () =>
      watch
        .out()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as WatchEvent);
    const printed = (predicate: (e: WatchEvent) => boolean) => lines().some(predicate);
    const heard = (predicate: (s: (typeof seen)[number]) => boolean) => seen.some(predicate);
    const both = (channel: DiagnosticsChannelName, match: (m: Record<string, unknown>) => boolean = () => true) =>
      printed((e) => e.event === channel && match(e as unknown as Record<string, unknown>)) && heard((s) => s.channel === channel && match(s.message));
    const minted: string[] = [];
    try {
      await until(() => both(DIAGNOSTICS_CHANNELS.readFailed, (m) => m['code'] === 'TOKEN_FILE_MISSING'), 'the missing file', 15_000);
      expect(both(DIAGNOSTICS_CHANNELS.watchFailed, (m) => m['reason'] === 'start' && m['code'] === 'ENOENT')).toBe(true);

      minted.push((await kubelet.rotate()).token);
      await until(() => both(DIAGNOSTICS_CHANNELS.tokenLoaded) && both(DIAGNOSTICS_CHANNELS.watchRearmed), 'the first token and the watch', 15_000);

      minted.push((await kubelet.rotate()).token);
      await until(() => both(DIAGNOSTICS_CHANNELS.tokenRefreshed), 'the refresh', 15_000);
      // A status line taken while both sources serve the same token.
      const ok = mine.status();
      await until(() => printed((e) => e.event === 'podtoken:status' && e.state === 'ok' && e.expiresAt === ok.expiresAt?.toISOString()), 'a status line', 15_000);

      // A broken write in the kubelet's layout: the last good token is still served.
      await volume.write({ 'vault-token': 'not-a-jwt' });
      await until(() => both(DIAGNOSTICS_CHANNELS.readFailed, (m) => m['code'] === 'TOKEN_MALFORMED'), 'the malformed file', 15_000);
      await until(() => printed((e) => e.event === 'podtoken:status' && e.state === 'failing'), 'a failing status line', 15_000);

      // A token that lives 1.5 s: then it has expired.
      const short = await issuer.mint({ audience: 'vault', expirationSeconds: 1.5 });
      minted.push(short);
      await volume.write({ 'vault-token': short });
      await until(() => both(DIAGNOSTICS_CHANNELS.tokenExpired), 'the expiry', 15_000);
      await until(() => printed((e) => e.event === 'podtoken:status' && e.state === 'expired'), 'an expired status line', 15_000);
    } finally {
      watch.kill('SIGTERM');
      for (const name of Object.values(DIAGNOSTICS_CHANNELS)) unsubscribe(name, onMessage);
      await mine.close();
    }
    expect(await watch.exit).toBe(0);

    // Each kind of event, the first the child printed and the first this process heard that
    // answer to the same description (the same code, reason or outcome).
    const kinds: Array<[DiagnosticsChannelName, (m: Record<string, unknown>) => boolean]> = [
      [DIAGNOSTICS_CHANNELS.watchFailed, (m) => m['reason'] === 'start'],
      [DIAGNOSTICS_CHANNELS.readFailed, (m) => m['code'] === 'TOKEN_FILE_MISSING'],
      [DIAGNOSTICS_CHANNELS.readFinished, (m) => m['outcome'] === 'failed' && m['code'] === 'TOKEN_FILE_MISSING'],
      [DIAGNOSTICS_CHANNELS.tokenLoaded, () => true],
      [DIAGNOSTICS_CHANNELS.watchRearmed, () => true],
      [DIAGNOSTICS_CHANNELS.readFinished, (m) => m['outcome'] === 'changed'],
      [DIAGNOSTICS_CHANNELS.tokenRefreshed, () => true],
      [DIAGNOSTICS_CHANNELS.readFailed, (m) => m['code'] === 'TOKEN_MALFORMED'],
      [DIAGNOSTICS_CHANNELS.tokenExpired, () => true],
    ];
    const events = lines();
    for (const [channel, match] of kinds) {
      const line = events.find((e) => e.event === channel && match(e as unknown as Record<string, unknown>)) as DiagnosticsEvent | undefined;
      const heardIt = seen.find((s) => s.channel === channel && match(s.message))?.message;
      expect(line, channel).toBeDefined();
      expect(heardIt, channel).toBeDefined();
      const { event, ...fields } = line!;
      expect(event).toBe(channel);
      // The same fields, nothing renamed, nothing added.
      expect(keyPaths(fields), channel).toEqual(keyPaths(heardIt));
      // Every Date as an ISO string.
      const dates = datePaths(heardIt);
      expect(dates, channel).toContain('at');
      for (const path of dates) expect(at(fields, path), `${channel} ${path}`).toMatch(ISO);
      // The same facts: which file, which token.
      if ('source' in fields) expect(fields.source).toEqual(heardIt!['source']);
      if ('folder' in fields) expect(fields.folder).toBe(heardIt!['folder']);
      if ('code' in fields) expect(fields.code).toBe(heardIt!['code']);
    }
    // Token facts, compared as JSON: the same tokens, in the same order.
    const tokensPrinted = events.flatMap((e) => ('token' in e ? [JSON.stringify(e.token)] : []));
    const tokensHeard = seen.flatMap((s) => ('token' in s.message ? [JSON.stringify(s.message['token'])] : []));
    expect(new Set(tokensPrinted)).toEqual(new Set(tokensHeard));

    // The status lines: status() as it is, with `event` and `at`.
    const statuses = events.filter((e): e is StatusEvent => e.event === 'podtoken:status');
    // (refresh-overdue too, maybe: the short token is due for replacement 1.2 s after it is issued.)
    expect([...new Set(statuses.map((s) => s.state))].filter((s) => s !== 'refresh-overdue').sort()).toEqual(['expired', 'failing', 'loading', 'ok']);
    const okLine = statuses.find((s) => s.state === 'ok')!;
    expect(Object.keys(okLine).sort()).toEqual(['age', 'at', 'event', 'expiresAt', 'expiresIn', 'name', 'refreshAt', 'serving', 'state']);
    expect(okLine).toMatchObject({ name: kubelet.path, serving: true });
    const failing = statuses.find((s) => s.state === 'failing' && s.serving)!;
    expect(failing.lastError).toEqual({ code: 'TOKEN_MALFORMED', at: expect.stringMatching(ISO) });

    // No token text anywhere: whole tokens, payloads, signatures.
    for (const token of minted) expect(leaks(watch.out() + watch.err(), token)).toBe(false);
    expect(watch.err()).toMatch(/^podtoken watch: following 1 file; Ctrl\+C to stop\.\n(.|\n)*podtoken watch: stopped\.\n$/);
  }, 60_000);

  it('without --verbose prints no read:finished, and in human form says the same events in words', async () => {
    const volume = new ProjectedVolume({ dir: join(dir, 'quiet') });
    const kubelet = new FakeKubelet({ volume, issuer, file: 'token', audience: 'vault', expirationSeconds: 600 });
    const first = await kubelet.rotate();
    const json = runBin(['watch', '--json', kubelet.path]);
    const human = runBin(['watch', kubelet.path]);
    let second: string;
    try {
      await until(() => json.out().includes('token:loaded') && human.out().includes('token:loaded'), 'the load lines', 15_000);
      second = (await kubelet.rotate()).token;
      await until(() => json.out().includes('token:refreshed') && human.out().includes('token:refreshed'), 'the refresh lines', 15_000);
    } finally {
      json.kill('SIGTERM');
      human.kill('SIGTERM');
    }
    expect(await json.exit).toBe(0);
    expect(await human.exit).toBe(0);
    const events = json
      .out()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as WatchEvent).event);
    expect(events).toEqual(['podtoken:token:loaded', 'podtoken:token:refreshed']);
    const words = human.out().split('\n').filter((l) => l !== '');
    expect(words).toHaveLength(2);
    expect(words[0]).toMatch(/^\S+Z {2}token:loaded {7}\S+\/quiet\/token {2}bound {2}expires \S+Z {2}ttl \S+( \S+)? {2}refresh \S+Z {2}via start$/);
    expect(words[1]).toMatch(/^\S+Z {2}token:refreshed {4}\S+\/quiet\/token {2}bound {2}expires \S+Z {2}ttl \S+( \S+)? {2}refresh \S+Z {2}via event$/);
    for (const token of [first.token, second!]) expect(leaks(json.out() + json.err() + human.out() + human.err(), token)).toBe(false);
  }, 30_000);

  it('escapes control characters from claims and paths in human lines, and keeps them exact in --json', async () => {
    const hostile = 'x\x1b]0;pwned\x07\u009b2J\u202eevil\nforged';
    const volume = new ProjectedVolume({ dir: join(dir, `hostile-\x1b[2J`) });
    const token = await issuer.mint({ audience: 'vault', expirationSeconds: 600, claims: { sub: `system:serviceaccount:${hostile}` } });
    await volume.write({ token: token });
    const path = join(volume.dir, 'token');
    // --audience other: the message quotes the token's audience; the path is in both.
    const json = runBin(['watch', '--json', path]);
    const human = runBin(['watch', '--audience', 'other', path]);
    try {
      await until(() => json.out().includes('token:loaded') && human.out().includes('read:failed'), 'a line each', 15_000);
    } finally {
      json.kill('SIGTERM');
      human.kill('SIGTERM');
    }
    expect(await json.exit).toBe(0);
    expect(await human.exit).toBe(0);
    const unsafe = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
    for (const text of [json.out(), human.out(), human.err()]) expect(unsafe.test(text.replaceAll('\n', ''))).toBe(false);
    const loaded = JSON.parse(json.out().split('\n')[0]!) as WatchEvent;
    expect(loaded.event === 'podtoken:token:loaded' && loaded.token.subject).toBe(`system:serviceaccount:${hostile}`);
    expect(loaded.event === 'podtoken:token:loaded' && loaded.source.path).toBe(path);
    expect(human.out()).toContain(`read:failed        ${dir}/hostile-\\x1b[2J/token  TOKEN_AUDIENCE_MISMATCH  `);
    expect(human.out().split('\n').filter((l) => l !== '')).toHaveLength(1);
    expect(leaks(json.out() + json.err() + human.out() + human.err(), token)).toBe(false);
  }, 30_000);
});
