// The events core publishes on node:diagnostics_channel, seen the way an operator's code
// sees them: subscribed by name, from a FileTokenSource over real files in the kubelet's
// layout, and from a real adapter against a real server that answers 401.
import { DIAGNOSTICS_CHANNELS, FileTokenSource, type DiagnosticsChannelName } from '@podtoken/core';
import { withTokenSource as withAxios } from '@podtoken/axios';
import { withTokenSource } from '@podtoken/fetch';
import { withTokenSource as withGot } from '@podtoken/got';
import axios from 'axios';
import got from 'got';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { memfs } from 'memfs';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { defer, tempDir, until } from '../helpers.js';

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

interface Seen {
  readonly channel: DiagnosticsChannelName;
  readonly message: Record<string, unknown>;
}

/** Subscribes to every podtoken channel for the rest of the test; returns what arrives. */
function record(): Seen[] {
  const seen: Seen[] = [];
  for (const channel of Object.values(DIAGNOSTICS_CHANNELS)) {
    const listener = (message: unknown) => seen.push({ channel, message: message as Record<string, unknown> });
    subscribe(channel, listener);
    defer(() => unsubscribe(channel, listener));
  }
  return seen;
}

function of(seen: Seen[], channel: DiagnosticsChannelName, name?: string): Array<Record<string, unknown>> {
  return seen
    .filter((s) => s.channel === channel && (name === undefined || (s.message['source'] as { name?: string } | undefined)?.name === name))
    .map((s) => s.message);
}

/** No message, however rendered, holds any of the tokens (whole, or their signature). */
function expectNoTokenText(seen: Seen[], tokens: string[]): void {
  const text = JSON.stringify(seen);
  for (const token of tokens) {
    expect(text.includes(token)).toBe(false);
    expect(text.includes(token.split('.')[2]!)).toBe(false);
  }
}

describe('diagnostics events from a FileTokenSource on real files', () => {
  it('publishes loaded, refreshed, read:finished and read:failed with facts, never the value', async () => {
    const seen = record();
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const kubelet = new FakeKubelet({ volume, issuer, audience: 'vault', expirationSeconds: 600 });
    const first = await kubelet.start();
    kubelet.stop();
    const source = new FileTokenSource({ path: kubelet.path, audience: 'vault', name: 'vault', pollInterval: 0 });
    defer(() => source.close());
    await source.ready();

    const [loaded] = of(seen, DIAGNOSTICS_CHANNELS.tokenLoaded, 'vault');
    expect(loaded).toMatchObject({ source: { name: 'vault', path: kubelet.path }, trigger: 'start', token: { kind: 'bound', audience: ['vault'] } });
    expect(loaded!['at']).toBeInstanceOf(Date);
    expect(loaded!['expiresIn']).toBeGreaterThan(590_000);
    expect(loaded!['expiresIn']).toBeLessThanOrEqual(600_000);
    expect(loaded!['age']).toBeGreaterThanOrEqual(0);
    expect(Object.keys(loaded!['token'] as object).sort()).toEqual(['audience', 'expiresAt', 'issuedAt', 'issuer', 'kind', 'refreshAt', 'subject']);

    const second = await kubelet.rotate();
    await until('the refresh event', () => of(seen, DIAGNOSTICS_CHANNELS.tokenRefreshed, 'vault').length === 1);
    const [refreshed] = of(seen, DIAGNOSTICS_CHANNELS.tokenRefreshed, 'vault');
    expect(refreshed).toMatchObject({ trigger: 'event', previous: { kind: 'bound' }, token: { kind: 'bound' } });
    expect((refreshed!['token'] as { issuedAt: Date }).issuedAt.getTime()).toBeGreaterThanOrEqual((refreshed!['previous'] as { issuedAt: Date }).issuedAt.getTime());

    // A torn write: the last good token is still served, and the failure is reported.
    await volume.write({ token: second.token.slice(0, 40) });
    await until('the failure event', () => of(seen, DIAGNOSTICS_CHANNELS.readFailed, 'vault').length > 0);
    const [failed] = of(seen, DIAGNOSTICS_CHANNELS.readFailed, 'vault');
    expect(failed).toMatchObject({ code: 'TOKEN_MALFORMED', serving: true, failures: 1, trigger: 'event' });
    expect(failed!['message']).toBeTypeOf('string');

    const reads = of(seen, DIAGNOSTICS_CHANNELS.readFinished, 'vault');
    expect(reads.map((r) => r['outcome'])).toEqual(expect.arrayContaining(['changed', 'failed']));
    for (const read of reads) {
      expect(read['duration']).toBeGreaterThanOrEqual(0);
      expect(read['duration']).toBeLessThan(5_000);
    }
    expect(reads.find((r) => r['outcome'] === 'failed')).toMatchObject({ code: 'TOKEN_MALFORMED' });
    expect(source.status()).toMatchObject({ name: 'vault', state: 'failing', serving: true, lastError: { code: 'TOKEN_MALFORMED' } });

    await volume.write({ token: (await kubelet.rotate()).token });
    await until('recovered', () => source.status().state === 'ok');
    expect(source.status().lastError).toBeUndefined();
    expectNoTokenText(seen, [first.token, second.token, kubelet.last!.token]);
  });

  it('reports what a 401 did: a re-read that found the same token, then the cooldown, then a replacement', async () => {
    const seen = record();
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const kubelet = new FakeKubelet({ volume, issuer, expirationSeconds: 600 });
    const first = await kubelet.start();
    kubelet.stop();
    const source = new FileTokenSource({ path: kubelet.path, name: 'api', pollInterval: 0 });
    defer(() => source.close());
    await source.ready();

    await source.invalidate(first.token);
    await source.invalidate(first.token); // within a second of a read that found the same token
    expect(of(seen, DIAGNOSTICS_CHANNELS.tokenInvalidated, 'api')).toMatchObject([
      { outcome: 'unchanged', current: true },
      { outcome: 'cooldown', current: true },
    ]);
    const second = await kubelet.rotate();
    await until('the new token', async () => (await source.getToken()) === second.token);
    await source.invalidate(first.token); // an old token refused: re-read, the file holds another
    expect(of(seen, DIAGNOSTICS_CHANNELS.tokenInvalidated, 'api').at(-1)).toMatchObject({ outcome: 'replaced', current: false });
    expect(of(seen, DIAGNOSTICS_CHANNELS.readFinished, 'api').filter((r) => r['trigger'] === 'invalidate').length).toBe(2);
    expectNoTokenText(seen, [first.token, second.token]);
  });

  it('reports a folder watch that cannot start, and its re-arming once the folder appears', async () => {
    const seen = record();
    const root = await tempDir();
    const dir = join(root, 'not-yet');
    const source = new FileTokenSource({ path: join(dir, 'token'), name: 'late', pollInterval: 0, readyTimeout: 0 });
    defer(() => source.close());
    expect(of(seen, DIAGNOSTICS_CHANNELS.watchFailed)).toMatchObject([{ folder: dir, reason: 'start', code: 'ENOENT' }]);
    await until('the first read', () => source.status().lastError !== undefined);
    expect(source.status()).toMatchObject({ name: 'late', state: 'loading', serving: false, lastError: { code: 'TOKEN_FILE_MISSING' } });

    await mkdir(dir);
    const token = await issuer.mint({ expirationSeconds: 600 });
    await writeFile(join(dir, 'token'), token);
    // The source's backoff re-read (1 s) finds the file and re-arms the watch.
    await source.ready();
    await until('re-armed', () => of(seen, DIAGNOSTICS_CHANNELS.watchRearmed).length === 1);
    expect(of(seen, DIAGNOSTICS_CHANNELS.watchRearmed)).toMatchObject([{ folder: dir }]);
    expect(of(seen, DIAGNOSTICS_CHANNELS.watchFailed)).toHaveLength(1); // each retry is not reported again
    expectNoTokenText(seen, [token]);
  });

  it('with one channel subscribed, only its events arrive; a source is named by its path by default', async () => {
    // Subscribed to one channel only: the others stay silent and hasSubscribers is false.
    const loaded: unknown[] = [];
    const listener = (message: unknown) => loaded.push(message);
    subscribe(DIAGNOSTICS_CHANNELS.tokenLoaded, listener);
    defer(() => unsubscribe(DIAGNOSTICS_CHANNELS.tokenLoaded, listener));
    const { channel } = await import('node:diagnostics_channel');
    expect(channel(DIAGNOSTICS_CHANNELS.readFinished).hasSubscribers).toBe(false);
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token: await issuer.mint({ expirationSeconds: 600 }) });
    const source = new FileTokenSource({ path: volume.path('token'), pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    expect(loaded).toHaveLength(1);
    expect(source.name).toBe(volume.path('token')); // the default name is the path
  });
});

describe('diagnostics with fake time (memfs)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes token:expired once when the only token passes exp, then loaded facts again after recovery', async () => {
    vi.useFakeTimers({ now: new Date('2026-11-22T10:00:00Z') });
    const seen = record();
    const { fs } = memfs();
    const volume = new ProjectedVolume({ dir: '/var/run/secrets/tokens', fs });
    const kubelet = new FakeKubelet({ volume, issuer, expirationSeconds: 100 });
    await kubelet.start();
    kubelet.stop(); // the kubelet dies
    const source = new FileTokenSource({ path: kubelet.path, fs, pollInterval: 10_000, name: 'api' });
    defer(() => source.close());
    await source.ready();
    expect(source.status()).toMatchObject({ state: 'ok', serving: true, expiresIn: 100_000, age: 0 });
    await vi.advanceTimersByTimeAsync(89_000);
    // refreshAt (80 s) passed 9 s ago: within the grace (half of the 20 s it leaves), still ok.
    expect(source.status()).toMatchObject({ state: 'ok', refreshAt: new Date('2026-11-22T10:01:20Z') });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(source.status()).toMatchObject({ state: 'refresh-overdue', serving: true, expiresIn: 9_000, age: 91_000 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(source.status()).toMatchObject({ state: 'expired', serving: false });
    expect(source.status().expiresIn).toBeLessThan(0);
    await expect(source.getToken()).rejects.toMatchObject({ code: 'TOKEN_EXPIRED' });
    expect(of(seen, DIAGNOSTICS_CHANNELS.tokenExpired, 'api')).toHaveLength(1);
    expect(of(seen, DIAGNOSTICS_CHANNELS.tokenExpired, 'api')[0]).toMatchObject({ token: { kind: 'bound' } });
  });
});

describe('podtoken:request:unauthorized from a real adapter', () => {
  async function refusingServer(): Promise<{ url: string; server: Server }> {
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(401, { 'www-authenticate': 'Bearer' });
        response.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    defer(() => new Promise((resolve) => server.close(resolve)));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
  }

  it('names the adapter and says why there was or was not a retry', async () => {
    const seen = record();
    const { url } = await refusingServer();
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const token = await issuer.mint({ expirationSeconds: 600 });
    await volume.write({ token });
    const source = new FileTokenSource({ path: volume.path('token'), name: 'partner', pollInterval: 0 });
    defer(() => source.close());
    await source.ready();

    const api = withTokenSource(fetch, source);
    expect((await api(url)).status).toBe(401); // the file holds the same token: no retry
    const stream = Readable.from(['a', 'b']);
    expect((await api(url, { method: 'POST', body: Readable.toWeb(stream) as ReadableStream, duplex: 'half' } as RequestInit)).status).toBe(401);
    expect((await withTokenSource(fetch, source, { retryUnauthorized: false })(url)).status).toBe(401);

    const events = of(seen, DIAGNOSTICS_CHANNELS.requestUnauthorized, 'partner');
    expect(events).toMatchObject([
      { adapter: 'fetch', retried: false, reason: 'token-unchanged', source: { name: 'partner', path: volume.path('token') } },
      { adapter: 'fetch', retried: false, reason: 'not-replayable' },
      { adapter: 'fetch', retried: false, reason: 'retry-disabled' },
    ]);

    // axios and got name themselves too.
    expect((await withAxios(axios.create({ validateStatus: () => true }), source).get(url)).status).toBe(401);
    expect((await withGot(got.extend({ throwHttpErrors: false, retry: { limit: 0 } }), source)(url)).statusCode).toBe(401);
    expect(of(seen, DIAGNOSTICS_CHANNELS.requestUnauthorized, 'partner').slice(3)).toMatchObject([
      { adapter: 'axios', retried: false, reason: 'token-unchanged' },
      { adapter: 'got', retried: false, reason: 'token-unchanged' },
    ]);

    // A rotation between the request and the 401: the retry goes out with the new token.
    const next = await issuer.mint({ expirationSeconds: 600 });
    const sent: string[] = [];
    const rotating = createServer((request, response) => {
      const header = request.headers.authorization ?? '';
      sent.push(header);
      if (sent.length === 1) {
        void volume.write({ token: next }).then(() => {
          response.writeHead(401);
          response.end();
        });
        return;
      }
      response.writeHead(header === `Bearer ${next}` ? 200 : 401);
      response.end();
    });
    rotating.listen(0, '127.0.0.1');
    await once(rotating, 'listening');
    defer(() => new Promise((resolve) => rotating.close(resolve)));
    const response = await api(`http://127.0.0.1:${(rotating.address() as AddressInfo).port}/`);
    expect(response.status).toBe(200);
    expect(of(seen, DIAGNOSTICS_CHANNELS.requestUnauthorized, 'partner').at(-1)).toMatchObject({ adapter: 'fetch', retried: true, reason: 'retried' });
    expectNoTokenText(seen, [token, next]);
  });
});
