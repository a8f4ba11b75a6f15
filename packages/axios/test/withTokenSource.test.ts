import { createRequire } from 'node:module';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import followRedirects from 'follow-redirects';
import axios, { AxiosError, type AxiosInstance, type CreateAxiosDefaults } from 'axios';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileTokenSource, TokenSourceError, isTokenSourceError, staticTokenSource, type TokenSource } from '@podtoken/core';
import { startSimulatedPod, startTokenServer, tokenId, type SimulatedPod, type TokenServer } from '@podtoken/testing';
import { withTokenSource } from '@podtoken/axios';
import { AUDIENCE, loopbackLookup } from './support.js';

// Tokens are minted at run time. Assertions compare them as booleans or through tokenId(),
// so a failing test never prints one. AxiosErrors are reduced to their status before any
// assertion: their config holds the request headers.

const same = (a: string | undefined, b: string | undefined) => a !== undefined && a === b;

/** The status of an AxiosError (or 'no response'), without printing the error itself. */
async function statusOf(promise: Promise<unknown>): Promise<number | string> {
  try {
    const response = (await promise) as { status: number };
    return response.status;
  } catch (error) {
    if (error instanceof AxiosError) return error.response?.status ?? `AxiosError ${error.code ?? ''}`;
    if (isTokenSourceError(error)) return error.code;
    return error instanceof Error ? `${error.name}: ${error.message}` : 'unknown error';
  }
}

describe.each([
  ['http adapter (follow-redirects)', 'http'],
  ['fetch adapter', 'fetch'],
] as const)(`axios ${axios.VERSION}, %s`, (_name, adapter) => {
  let pod: SimulatedPod<FileTokenSource>;
  let other: TokenServer; // another origin, trusting the same issuer: a leaked token would be accepted there
  let server: TokenServer;
  const create = (defaults: CreateAxiosDefaults = {}): AxiosInstance => axios.create({ adapter, ...defaults });

  beforeAll(async () => {
    pod = await startSimulatedPod({ audience: AUDIENCE, source: { watch: false, pollInterval: 0 } });
    server = pod.server;
    other = await startTokenServer({ issuer: pod.issuer, audience: AUDIENCE });
  });
  afterAll(async () => {
    await other?.close();
    await pod?.close();
  });
  beforeEach(() => {
    server.reset();
    other.reset();
  });

  describe('a 401 for the token in use (the pod was deleted)', () => {
    it('succeeds with exactly one retry when a newer token is on disk but not loaded yet', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source);
      const old = pod.source.current?.value;
      const fresh = (await pod.kubelet.rotate()).token;
      // watch: false and pollInterval: 0, so the source cannot have seen it
      expect(same(pod.source.current?.value, old)).toBe(true);
      server.revoke(old!);

      const response = await api.get('revoked');
      expect(response.status).toBe(200);
      expect(server.log.map((e) => [e.outcome, e.reason])).toEqual([
        ['unauthorized', 'revoked'],
        ['ok', undefined],
      ]);
      expect(server.log[0]?.tokenId === tokenId(old!)).toBe(true);
      expect(server.log[1]?.tokenId === tokenId(fresh)).toBe(true);
      expect(same(pod.source.current?.value, fresh)).toBe(true);
      expect('__podtokenRetried' in response.config).toBe(false);
    });

    it('rejects with the 401 after one try when no newer token exists', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source);
      server.revoke(pod.source.current!.value);
      expect(await statusOf(api.get('still-revoked'))).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
    });

    it('never loops: a second 401 with the newer token goes back to the caller', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source);
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      server.revoke(newer);
      expect(await statusOf(api.get('both-revoked'))).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 2, missing: 0 });
      expect(server.log[1]?.tokenId === tokenId(newer)).toBe(true);
    });

    it('also retries a 401 that validateStatus lets through, once', async () => {
      const api = withTokenSource(create({ baseURL: server.url, validateStatus: () => true }), pod.source);
      await pod.kubelet.rotate();
      server.revoke(pod.source.current!.value);
      expect((await api.get('accepted-401')).status).toBe(200);
      expect(server.counts).toEqual({ ok: 1, unauthorized: 1, missing: 0 });
      server.revoke(pod.source.current!.value);
      expect((await api.get('accepted-401')).status).toBe(401);
      expect(server.counts).toEqual({ ok: 1, unauthorized: 2, missing: 0 });
    });

    it('sends a JSON body again on the retry', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source);
      await pod.kubelet.rotate();
      server.revoke(pod.source.current!.value);
      const data = { hello: 'x'.repeat(1000) };
      const length = JSON.stringify(data).length;
      const response = await api.post('post', data);
      expect(response.data).toMatchObject({ method: 'POST', bodyLength: length });
      expect(server.log.map((e) => [e.outcome, e.bodyLength])).toEqual([
        ['unauthorized', length],
        ['ok', length],
      ]);
    });

    it.runIf(adapter === 'http')('does not retry a one-shot stream body, but reloads the token for the next request (http adapter only: the fetch adapter takes no Node stream body)', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source);
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      expect(await statusOf(api.post('stream', Readable.from([Buffer.from('streamed body')])))).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
      expect(same(pod.source.current?.value, newer)).toBe(true);
      expect((await api.get('next')).status).toBe(200);
    });

    it('with retryUnauthorized: false, rejects with the 401 but the source re-reads for the next request', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source, { retryUnauthorized: false });
      const current = pod.source.current!.value;
      const { token: newer } = await pod.kubelet.rotate();
      server.revoke(current);
      expect(await statusOf(api.get('no-retry'))).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
      expect(same(pod.source.current?.value, newer)).toBe(true);
    });
  });

  describe('redirects and origins', () => {
    const to = (url: string, status = 302) => `${server.url}redirect?status=${status}&to=${encodeURIComponent(url)}`;

    it('the token does not follow a redirect to another origin (another port on the same host)', async () => {
      const api = withTokenSource(create(), pod.source, { origins: [server.origin] });
      // the other origin answers 401 (no token): not retried, it never saw ours
      expect(await statusOf(api.get(to(`${other.url}landing`)))).toBe(401);
      expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
    });

    it('the token does not follow a cross-origin redirect even when both origins are allowed', async () => {
      const api = withTokenSource(create(), pod.source, { origins: [server.origin, other.origin] });
      await statusOf(api.get(to(`${other.url}landing`, 307)));
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
    });

    it('stays off for good: A → B → A arrives back at A without the token', async () => {
      const api = withTokenSource(create(), pod.source);
      const bounce = await startTokenServer({
        issuer: pod.issuer,
        audience: AUDIENCE,
        handler: (_request, response) => {
          response.writeHead(302, { location: `${server.url}back` });
          response.end();
          return true;
        },
      });
      try {
        expect(await statusOf(api.get(to(`${bounce.url}x`)))).toBe(401);
        expect(bounce.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
        expect(server.log.map((e) => [e.path.split('?')[0], e.outcome])).toEqual([
          ['/redirect', 'ok'],
          ['/back', 'missing'],
        ]);
      } finally {
        await bounce.close();
      }
    });

    it('keeps the token on a same-origin redirect', async () => {
      const api = withTokenSource(create({ baseURL: server.url }), pod.source);
      expect((await api.get(to(`${server.url}final`))).data).toMatchObject({ path: '/final' });
      const posted = await api.post('redirect?status=307&to=%2Fposted', 'twelve bytes', { headers: { 'content-type': 'text/plain' } });
      expect(posted.data).toMatchObject({ method: 'POST', path: '/posted', bodyLength: 12 });
      expect(server.counts).toEqual({ ok: 4, unauthorized: 0, missing: 0 });
    });

    it('sends no token to an origin outside `origins` (baseURL + url resolved)', async () => {
      const api = withTokenSource(create({ baseURL: `${server.url}api/` }), pod.source, { origins: [server.origin] });
      expect((await api.get('inside')).data).toMatchObject({ path: '/api/inside' });
      expect(await statusOf(api.get(`${other.url}outside`))).toBe(401);
      expect(server.counts.ok).toBe(1);
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
    });

    it('resolves the URL as axios does with allowAbsoluteUrls: false (an absolute url goes under baseURL)', async () => {
      const api = withTokenSource(create({ baseURL: `${server.url}api/`, allowAbsoluteUrls: false }), pod.source, { origins: [server.origin] });
      expect((await api.get(`${other.url}inside`)).status).toBe(200);
      expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
    });

    it('takes its token off a config reused for another origin', async () => {
      const api = withTokenSource(create(), pod.source, { origins: [server.origin] });
      const first = await api.get(`${server.url}first`);
      expect(await statusOf(api.request({ ...first.config, url: `${other.url}reused` }))).toBe(401);
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
      // and the same config reused many times gets one redirect guard, not a chain of them
      let config = first.config;
      for (let i = 0; i < 5; i++) config = (await api.request({ ...config, url: `${server.url}again` })).config;
      expect(server.counts.ok).toBe(6);
    });

    it('leaves the Authorization of a request to another origin alone', async () => {
      const api = withTokenSource(create(), pod.source, { origins: [server.origin] });
      await statusOf(api.get(`${other.url}own`, { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }));
      expect(other.log[0]).toMatchObject({ outcome: 'unauthorized', reason: 'not a Bearer token' });
    });
  });

  describe('source errors', () => {
    it('a closed source fails the request with TOKEN_SOURCE_CLOSED, and nothing is sent', async () => {
      const closed = new FileTokenSource({ path: pod.kubelet.path, watch: false, pollInterval: 0 });
      await closed.ready();
      await closed.close();
      const api = withTokenSource(create(), closed);
      const error: unknown = await api.get(`${server.url}closed`).catch((e: unknown) => e);
      expect(isTokenSourceError(error) && error.code).toBe('TOKEN_SOURCE_CLOSED');
      expect(error).toBeInstanceOf(TokenSourceError);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
    });

    it('a source that only has an expired token fails the request with TOKEN_EXPIRED, and nothing is sent', async () => {
      const expired = await startSimulatedPod({ audience: AUDIENCE, expirationSeconds: 1, source: { watch: false, pollInterval: 0 } });
      try {
        const expiresAt = expired.source.current!.expiresAt!.getTime();
        // The source drops its cached token on a timer at exp, which a loaded VM can run a few ms
        // after the wall clock passes exp: wait a little past it, as the server's own clock does.
        for (let i = 0; i < 100 && Date.now() <= expiresAt + 200; i++) await delay(50);
        const api = withTokenSource(create(), expired.source);
        expect(await statusOf(api.get(`${expired.server.url}expired`))).toBe('TOKEN_EXPIRED');
        expect(expired.server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
      } finally {
        await expired.close();
      }
    });

    it("passes the request's AbortSignal to getToken", async () => {
      const waiting = new FileTokenSource({ path: `${pod.dir}/no-such-volume/token`, watch: false, pollInterval: 0, readyTimeout: 0 });
      try {
        const api = withTokenSource(create(), waiting);
        const controller = new AbortController();
        const pending = api.get(`${server.url}aborted`, { signal: controller.signal });
        controller.abort(new Error('caller gave up'));
        await expect(pending).rejects.toThrow('caller gave up');
        expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
      } finally {
        await waiting.close();
      }
    });
  });
});

describe(`axios ${axios.VERSION} http adapter: redirects to a subdomain (follow-redirects keeps Authorization there)`, () => {
  // api.test and sub.api.test both resolve to 127.0.0.1 through a custom lookup: another
  // origin on the same server, which can therefore count what arrived.
  let pod: SimulatedPod<FileTokenSource>;
  beforeAll(async () => {
    pod = await startSimulatedPod({ audience: AUDIENCE, source: true });
  });
  afterAll(async () => {
    await pod?.close();
  });
  beforeEach(() => pod.server.reset());

  const urls = () => {
    const api = `http://api.test:${pod.server.port}`;
    const sub = `http://sub.api.test:${pod.server.port}`;
    return { api, sub, redirect: `${api}/redirect?to=${encodeURIComponent(`${sub}/landing`)}` };
  };

  it(`follow-redirects ${followRedirectsVersion()} on its own keeps Authorization on a redirect to a subdomain`, async () => {
    // Why the adapter installs its own guard: axios 1.x releases that do not strip on an
    // origin change themselves rely on this.
    const { redirect } = urls();
    const token = await pod.source.getToken();
    const lookup: LookupFunction = (_hostname, options, callback) => {
      if (options.all) (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    };
    const status = await new Promise<number>((resolve, reject) => {
      followRedirects.http
        .request(redirect, { headers: { authorization: `Bearer ${token}` }, lookup }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(200);
    expect(pod.server.log.map((e) => [e.path.split('?')[0], e.outcome])).toEqual([
      ['/redirect', 'ok'],
      ['/landing', 'ok'],
    ]);
  });

  it('the token does not reach sub.api.test', async () => {
    const { api, redirect } = urls();
    const client = withTokenSource(axios.create({ lookup: loopbackLookup }), pod.source, { origins: [api] });
    expect(await statusOf(client.get(redirect))).toBe(401);
    expect(pod.server.log.map((e) => [e.path.split('?')[0], e.outcome])).toEqual([
      ['/redirect', 'ok'],
      ['/landing', 'missing'],
    ]);
  });

  it('the guard has the last word, after your own beforeRedirect (as on axios versions that do not strip)', async () => {
    const { api, redirect } = urls();
    const token = await pod.source.getToken();
    let calls = 0;
    const client = withTokenSource(
      axios.create({
        lookup: loopbackLookup,
        // puts the token back after axios took it off: what an axios without its own strip would send
        beforeRedirect: (options) => {
          calls += 1;
          (options['headers'] as Record<string, string>)['Authorization'] = `Bearer ${token}`;
        },
      }),
      pod.source,
      { origins: [api] },
    );
    expect(await statusOf(client.get(redirect))).toBe(401);
    expect(calls).toBe(1);
    expect(pod.server.log.map((e) => e.outcome)).toEqual(['ok', 'missing']);
  });

  it('unwrapped, with that same beforeRedirect, the token does arrive (the test above is not vacuous)', async () => {
    const { redirect } = urls();
    const token = await pod.source.getToken();
    const client = axios.create({
      lookup: loopbackLookup,
      headers: { Authorization: `Bearer ${token}` },
      beforeRedirect: (options) => {
        (options['headers'] as Record<string, string>)['Authorization'] = `Bearer ${token}`;
      },
    });
    expect(await statusOf(client.get(redirect))).toBe(200);
    expect(pod.server.log.map((e) => e.outcome)).toEqual(['ok', 'ok']);
  });
});

describe('withTokenSource (axios), whatever the adapter', () => {
  it('returns the same instance', () => {
    const instance = axios.create();
    expect(withTokenSource(instance, staticTokenSource('opaque-test-token')) === instance).toBe(true);
  });

  it('decides on the origin axios sends to: the same as instance.getUri(config), over many URL shapes', async () => {
    // The adapter resolves the URL itself (getUri re-merges the config: too slow per request).
    const allowedOrigin = 'http://a.test';
    const bases = [undefined, '', 'http://a.test', 'http://a.test/api//', ' http://a.test', 'http:a.test', 'https://b.test:8443/x?y#z', '/relative', '//a.test/x', 'HTTP://A.TEST'];
    const urls = [undefined, '', '/x', 'x', 'http://a.test/p', 'http://o.test/p', '//a.test/p', 'http:a.test', '\thttp://a.test', 'data:text/plain,hi', 'HTTP://A.TEST/', ' http:\n//a.test'];
    const mismatches: string[] = [];
    for (const baseURL of bases) {
      for (const url of urls) {
        for (const allowAbsoluteUrls of [undefined, true, false]) {
          let sent: boolean | undefined;
          const instance = withTokenSource(
            axios.create({
              ...(baseURL === undefined ? {} : { baseURL }),
              ...(allowAbsoluteUrls === undefined ? {} : { allowAbsoluteUrls }),
              adapter: async (config) => {
                sent = config.headers.has('Authorization');
                return { data: '', status: 200, statusText: 'OK', headers: {}, config, request: {} };
              },
            }),
            staticTokenSource('opaque-test-token'),
            { origins: [allowedOrigin] },
          );
          let expected: boolean;
          try {
            expected = new URL(instance.getUri({ ...(url === undefined ? {} : { url }), params: { q: 1 } })).origin === allowedOrigin;
          } catch {
            expected = false;
          }
          await instance.get(url as string, { params: { q: 1 } }).catch(() => undefined);
          if ((sent ?? false) !== expected) mismatches.push(JSON.stringify({ baseURL, url, allowAbsoluteUrls, expected }));
        }
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('validates its arguments up front', () => {
    const source = staticTokenSource('opaque-test-token');
    expect(() => withTokenSource({} as AxiosInstance, source)).toThrow(/instance must be an axios instance/);
    expect(() => withTokenSource(axios.create(), {} as TokenSource)).toThrow(/source must be a TokenSource/);
    expect(() => withTokenSource(axios.create(), source, { origins: ['not an origin'] })).toThrow(/origins holds "not an origin"/);
    expect(() => withTokenSource(axios.create(), source, { retryUnauthorized: 1 as unknown as boolean })).toThrow(/retryUnauthorized/);
  });
});

function followRedirectsVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('follow-redirects/package.json') as { version: string }).version;
}
