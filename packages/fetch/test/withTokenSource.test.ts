import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import nodeFetch3 from 'node-fetch';
import nodeFetch2 from 'node-fetch-v2';
import { FileTokenSource, TokenSourceError, isTokenSourceError, staticTokenSource, type TokenSource } from '@podtoken/core';
import { startSimulatedPod, startTokenServer, tokenId, type SimulatedPod, type TokenServer } from '@podtoken/testing';
import { withTokenSource } from '@podtoken/fetch';
import { clients } from './clients.js';
import { AUDIENCE } from './support.js';

// Tokens are minted at run time. Assertions compare them as booleans or through tokenId(),
// so a failing test never prints one.

const same = (a: string | undefined, b: string | undefined) => a !== undefined && a === b;

describe.each(clients)('$name', (client) => {
  let pod: SimulatedPod<FileTokenSource>;
  let other: TokenServer; // another origin, trusting the same issuer: a leaked token would be accepted there
  let server: TokenServer;

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
      const fetch = withTokenSource(client.fetch, pod.source);
      const old = pod.source.current?.value;
      const fresh = (await pod.kubelet.rotate()).token;
      // watch: false and pollInterval: 0, so the source cannot have seen it
      expect(same(pod.source.current?.value, old)).toBe(true);
      server.revoke(old!);

      const response = await fetch(`${server.url}revoked`);
      expect(response.status).toBe(200);
      expect(server.log.map((e) => [e.outcome, e.reason])).toEqual([
        ['unauthorized', 'revoked'],
        ['ok', undefined],
      ]);
      expect(server.log[0]?.tokenId === tokenId(old!)).toBe(true);
      expect(server.log[1]?.tokenId === tokenId(fresh)).toBe(true);
      expect(same(pod.source.current?.value, fresh)).toBe(true);
    });

    it('returns the 401 after one try when no newer token exists', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      server.revoke(pod.source.current!.value);
      const response = await fetch(`${server.url}still-revoked`);
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ kind: 'Status', code: 401 });
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
    });

    it('never loops: a second 401 with the newer token goes back to the caller', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      server.revoke(newer);
      const response = await fetch(`${server.url}both-revoked`);
      expect(response.status).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 2, missing: 0 });
      expect(server.log[1]?.tokenId === tokenId(newer)).toBe(true);
    });

    it('sends a string body again on the retry', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      await pod.kubelet.rotate();
      server.revoke(pod.source.current!.value);
      const body = JSON.stringify({ hello: 'x'.repeat(1000) });
      const response = await fetch(`${server.url}post`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(response.status).toBe(200);
      expect((await response.json()) as unknown).toMatchObject({ method: 'POST', bodyLength: body.length });
      expect(server.log.map((e) => [e.outcome, e.bodyLength])).toEqual([
        ['unauthorized', body.length],
        ['ok', body.length],
      ]);
    });

    it('does not retry a one-shot stream body, but reloads the token for the next request', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      const response = await fetch(`${server.url}stream`, { method: 'POST', ...client.stream('streamed body') });
      expect(response.status).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
      expect(same(pod.source.current?.value, newer)).toBe(true);
      expect((await fetch(`${server.url}next`)).status).toBe(200);
    });

    it('with retryUnauthorized: false, returns the 401 but the source re-reads for the next request', async () => {
      const fetch = withTokenSource(client.fetch, pod.source, { retryUnauthorized: false });
      const current = pod.source.current!.value;
      const { token: newer } = await pod.kubelet.rotate();
      server.revoke(current);
      expect((await fetch(`${server.url}no-retry`)).status).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
      expect(same(pod.source.current?.value, newer)).toBe(true);
    });
  });

  describe('redirects and origins', () => {
    const to = (url: string, status = 302) => `${server.url}redirect?status=${status}&to=${encodeURIComponent(url)}`;

    it('the token does not follow a redirect to another origin (another port on the same host)', async () => {
      const fetch = withTokenSource(client.fetch, pod.source, { origins: [server.origin] });
      const response = await fetch(to(`${other.url}landing`));
      expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
      // the 401 came from the other origin, which never saw our token: no retry there
      expect(response.status).toBe(401);
      expect(response.url).toBe(`${other.url}landing`);
      expect(response.redirected).toBe(true);
    });

    it('the token does not follow a cross-origin redirect even when both origins are allowed', async () => {
      const fetch = withTokenSource(client.fetch, pod.source, { origins: [server.origin, other.origin] });
      await fetch(to(`${other.url}landing`, 307));
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
    });

    it('stays off for good: A → B → A arrives back at A without the token', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      // B redirects every request back to A, token or not
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
        const response = await fetch(to(`${bounce.url}x`));
        expect(response.status).toBe(401);
        expect(bounce.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
        expect(server.log.map((e) => [e.path.split('?')[0], e.outcome])).toEqual([
          ['/redirect', 'ok'],
          ['/back', 'missing'],
        ]);
      } finally {
        await bounce.close();
      }
    });

    it('keeps the token on a same-origin redirect, and the 307 keeps method and body', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      const ok = await fetch(to(`${server.url}final`));
      expect(ok.status).toBe(200);
      expect(ok.redirected).toBe(true);
      const post = await fetch(`${server.url}redirect?status=307&to=%2Fposted`, { method: 'POST', body: 'twelve bytes' });
      expect(await post.json()).toMatchObject({ method: 'POST', path: '/posted', bodyLength: 12 });
      const seeOther = await fetch(`${server.url}redirect?status=303&to=%2Fseen`, { method: 'POST', body: 'dropped' });
      expect(await seeOther.json()).toMatchObject({ method: 'GET', path: '/seen', bodyLength: 0 });
      expect(server.counts).toEqual({ ok: 6, unauthorized: 0, missing: 0 });
    });

    it('refuses to follow a 307 with a one-shot body, rather than send it half', async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      await expect(fetch(`${server.url}redirect?status=307&to=%2Fx`, { method: 'POST', ...client.stream('once') })).rejects.toThrow(/only be sent once/);
    });

    it("passes redirect: 'manual' through, with the token on the first request only", async () => {
      const fetch = withTokenSource(client.fetch, pod.source);
      const response = await fetch(to(`${other.url}landing`), { redirect: 'manual' });
      expect(response.status).toBe(302);
      expect(server.counts.ok).toBe(1);
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
    });

    it('sends no token to an origin outside `origins`, and leaves that request alone', async () => {
      const fetch = withTokenSource(client.fetch, pod.source, { origins: [server.origin] });
      const response = await fetch(`${other.url}outside`);
      expect(response.status).toBe(401);
      expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
      // origins also takes RegExps (anchored with ^ and $), tested against the origin
      const byPattern = withTokenSource(client.fetch, pod.source, { origins: [new RegExp(`^http://127\\.0\\.0\\.1:${server.port}$`)] });
      expect((await byPattern(`${server.url}pattern`)).status).toBe(200);
      expect((await byPattern(`${other.url}pattern`)).status).toBe(401);
      expect(other.counts.missing).toBe(2);
    });

    it('keeps the caller’s other headers', async () => {
      const echo = await startTokenServer({
        issuer: pod.issuer,
        audience: AUDIENCE,
        handler: (request, response, context) => {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ outcome: context.outcome, accept: request.headers['accept'], custom: request.headers['x-custom'] }));
          return true;
        },
      });
      try {
        const fetch = withTokenSource(client.fetch, pod.source);
        const plain = await fetch(echo.url, { headers: { accept: 'application/json', 'X-Custom': 'one' } });
        expect(await plain.json()).toEqual({ outcome: 'ok', accept: 'application/json', custom: 'one' });
        const pairs = await fetch(echo.url, { headers: [['x-custom', 'two']] });
        expect(await pairs.json()).toMatchObject({ outcome: 'ok', custom: 'two' });
        // the caller's own Authorization for an allowed origin is replaced by the source's token
        const replaced = await fetch(echo.url, { headers: { Authorization: 'Bearer not-a-token' } });
        expect(await replaced.json()).toMatchObject({ outcome: 'ok' });
      } finally {
        await echo.close();
      }
    });
  });

  describe('source errors', () => {
    it('a closed source fails the request with TOKEN_SOURCE_CLOSED, and nothing is sent', async () => {
      const closed = new FileTokenSource({ path: pod.kubelet.path, watch: false, pollInterval: 0 });
      await closed.ready();
      await closed.close();
      const fetch = withTokenSource(client.fetch, closed);
      const error: unknown = await fetch(`${server.url}closed`).catch((e: unknown) => e);
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
        const fetch = withTokenSource(client.fetch, expired.source);
        const error: unknown = await fetch(`${expired.server.url}expired`).catch((e: unknown) => e);
        expect(isTokenSourceError(error) && error.code).toBe('TOKEN_EXPIRED');
        expect(expired.server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
      } finally {
        await expired.close();
      }
    });

    it("passes the request's AbortSignal to getToken", async () => {
      const waiting = new FileTokenSource({ path: `${pod.dir}/no-such-volume/token`, watch: false, pollInterval: 0, readyTimeout: 0 });
      try {
        const fetch = withTokenSource(client.fetch, waiting);
        const controller = new AbortController();
        const pending = fetch(`${server.url}aborted`, { signal: controller.signal });
        controller.abort(new Error('caller gave up'));
        await expect(pending).rejects.toThrow('caller gave up');
        expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
      } finally {
        await waiting.close();
      }
    });
  });
});

describe('what each client does on its own with Authorization on a cross-origin redirect', () => {
  // Why the wrapper follows redirects itself: the versions installed here differ.
  let pod: SimulatedPod<FileTokenSource>;
  let other: TokenServer;
  beforeAll(async () => {
    pod = await startSimulatedPod({ audience: AUDIENCE, source: true });
    other = await startTokenServer({ issuer: pod.issuer, audience: AUDIENCE });
  });
  afterAll(async () => {
    await other?.close();
    await pod?.close();
  });

  it.each([
    [`global fetch (undici ${process.versions.undici})`, 0, false],
    ['node-fetch 3', 1, true],
    ['node-fetch 2', 2, true],
  ] as const)('%s, unwrapped, to the same host on another port: leaks = %s', async (_name, index, leaks) => {
    other.reset();
    const token = await pod.source.getToken();
    const url = `${pod.server.url}redirect?to=${encodeURIComponent(`${other.url}landing`)}`;
    await clients[index]!.fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(other.counts).toEqual(leaks ? { ok: 1, unauthorized: 0, missing: 0 } : { ok: 0, unauthorized: 0, missing: 1 });
  });
});

describe('withTokenSource, whatever the client', () => {
  it('keeps the function’s own type and static properties', () => {
    const source = staticTokenSource('opaque-test-token');
    expectTypeOf(withTokenSource(fetch, source)).toEqualTypeOf<typeof fetch>();
    expectTypeOf(withTokenSource(nodeFetch3, source)).toEqualTypeOf<typeof nodeFetch3>();
    expectTypeOf(withTokenSource(nodeFetch2, source)).toEqualTypeOf<typeof nodeFetch2>();
    const wrapped2 = withTokenSource(nodeFetch2, source);
    expect(wrapped2.Headers === nodeFetch2.Headers).toBe(true);
    expect(typeof wrapped2.isRedirect).toBe('function');
  });

  it('validates its arguments up front', () => {
    const source = staticTokenSource('opaque-test-token');
    expect(() => withTokenSource(42 as unknown as typeof fetch, source)).toThrow(/fetch must be a function/);
    expect(() => withTokenSource(fetch, {} as TokenSource)).toThrow(/source must be a TokenSource/);
    expect(() => withTokenSource(fetch, source, { origins: ['not an origin'] })).toThrow(/origins holds "not an origin"/);
    expect(() => withTokenSource(fetch, source, { retryUnauthorized: 'yes' as unknown as boolean })).toThrow(/retryUnauthorized/);
  });

  it('accepts a Request as input (global fetch), and does not retry its one-shot body', async () => {
    const pod = await startSimulatedPod({ audience: AUDIENCE, source: { watch: false, pollInterval: 0 } });
    try {
      const fetch = withTokenSource(globalThis.fetch, pod.source);
      const get = await fetch(new Request(`${pod.server.url}as-request`, { headers: { accept: 'application/json' } }));
      expect(get.status).toBe(200);
      await pod.kubelet.rotate();
      pod.server.revoke(pod.source.current!.value);
      const post = await fetch(new Request(`${pod.server.url}as-request`, { method: 'POST', body: 'abc' }));
      expect(post.status).toBe(401);
      expect(pod.server.counts).toEqual({ ok: 1, unauthorized: 1, missing: 0 });
      expect((await fetch(new Request(`${pod.server.url}after`))).status).toBe(200);
    } finally {
      await pod.close();
    }
  });

  it('a TokenSourceError thrown by a custom source reaches the caller as it is', async () => {
    const server = await startTokenServer({ issuer: { issuer: 'https://x', jwks: { keys: [] } }, audience: 'x' });
    try {
      const failing: TokenSource = { getToken: () => Promise.reject(new TokenSourceError('TOKEN_NOT_READY', 'not yet')) };
      const error: unknown = await withTokenSource(fetch, failing)(server.url).catch((e: unknown) => e);
      expect(isTokenSourceError(error) && error.code).toBe('TOKEN_NOT_READY');
      expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
    } finally {
      await server.close();
    }
  });
});
