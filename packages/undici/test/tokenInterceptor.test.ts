import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Agent, Client as UndiciClient, request } from 'undici';
import { bearer, type FileTokenSource, type TokenSource } from '@podtoken/core';
import { startSimulatedPod, startTokenServer, tokenId, type SimulatedPod, type TokenServer } from '@podtoken/testing';
import { tokenInterceptor, withTokenSource } from '@podtoken/undici';
import { clients, type Client } from './clients.js';

// Tokens are minted at run time; assertions compare them as booleans or through tokenId(),
// so a failing test never prints one.

const AUDIENCE = 'https://kubernetes.default.svc';
const FIXTURES = new URL('../../../test/reliability/fixtures/', import.meta.url);
const CA = readFileSync(new URL('test-ca.pem', FIXTURES), 'utf8');
const same = (a: string | undefined, b: string | undefined) => a !== undefined && a === b;

/** A source that delegates to the pod's and counts invalidate() calls: the real FileTokenSource underneath. */
function counting(source: FileTokenSource): TokenSource & { invalidations: number } {
  const counted = {
    invalidations: 0,
    name: source.name,
    getToken: (options?: { signal?: AbortSignal }) => source.getToken(options),
    invalidate: async (rejected: string) => {
      counted.invalidations++;
      await source.invalidate(rejected);
    },
  };
  return counted;
}

/** Events published on a diagnostics channel while `run` runs. */
async function events<T>(name: string, run: () => Promise<T>): Promise<{ result: T; messages: Array<Record<string, unknown>> }> {
  const messages: Array<Record<string, unknown>> = [];
  const listener = (message: unknown) => messages.push(message as Record<string, unknown>);
  subscribe(name, listener);
  try {
    return { result: await run(), messages };
  } finally {
    unsubscribe(name, listener);
  }
}

let pod: SimulatedPod<FileTokenSource>;
let server: TokenServer; // A: verifies tokens
let other: TokenServer; // B: another origin (another port) trusting the same issuer: a leaked token would be accepted there
let tls: Server; // A/s: HTTPS, records whether it got a token, then redirects where asked
let tlsOrigin: string;
const tlsSeen: boolean[] = [];
const dispatchers: Array<{ close(): Promise<void> }> = [];

beforeAll(async () => {
  pod = await startSimulatedPod({ audience: AUDIENCE, source: { watch: false, pollInterval: 0 } });
  server = pod.server;
  other = await startTokenServer({ issuer: pod.issuer, audience: AUDIENCE });
  const key = readFileSync(new URL('server-key.pem', FIXTURES));
  const cert = readFileSync(new URL('server-cert.pem', FIXTURES));
  tls = createServer({ key, cert }, (req, res) => {
    tlsSeen.push(same(req.headers.authorization, bearer(pod.source.current!.value)));
    const url = new URL(req.url ?? '/', 'https://x');
    const to = url.searchParams.get('to');
    if (to === null) res.writeHead(200).end('tls ok');
    else res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: to }).end();
  });
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  tlsOrigin = `https://127.0.0.1:${(tls.address() as AddressInfo).port}`;
});
afterAll(async () => {
  tls?.closeAllConnections();
  await new Promise((resolve) => tls?.close(resolve));
  await other?.close();
  await pod?.close();
});
beforeEach(async () => {
  // Every test starts with a token no server has revoked, already loaded.
  await pod.kubelet.rotate();
  await pod.source.invalidate(pod.source.current!.value);
  server.reset();
  other.reset();
  tlsSeen.length = 0;
});
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()));
});

describe.each(clients)('$name', (client: Client) => {
  const make = (source: TokenSource = pod.source, origins: Array<string | RegExp> = [server.origin], retryUnauthorized?: boolean) => {
    const dispatcher = client.dispatcher(source, { origins, ...(retryUnauthorized === undefined ? {} : { retryUnauthorized }) }, { connect: { ca: CA } });
    dispatchers.push(dispatcher);
    return dispatcher;
  };

  it('sends the current token to an allowed origin, and none elsewhere', async () => {
    const dispatcher = make();
    expect((await client.call(dispatcher, `${server.url}hello`)).status).toBe(200);
    expect(server.log[0]?.tokenId === tokenId(pod.source.current!.value)).toBe(true);
    expect((await client.call(dispatcher, `${other.url}elsewhere`)).status).toBe(401);
    expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
    expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
  });

  it('replaces a caller’s Authorization for an allowed origin and leaves it for another', async () => {
    const dispatcher = make();
    const headers = { Authorization: 'Bearer not-a-token', 'x-custom': 'kept' };
    expect((await client.call(dispatcher, `${server.url}replaced`, { headers })).status).toBe(200);
    expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
    await client.call(dispatcher, `${other.url}kept`, { headers });
    expect(other.log.map((e) => e.outcome)).toEqual(['unauthorized']); // the caller's own (bad) token
  });

  describe('a 401 for the token it sent', () => {
    it('retries once with the newer token, after one invalidate, and publishes the retry', async () => {
      const source = counting(pod.source);
      const dispatcher = make(source);
      const old = pod.source.current!.value;
      const fresh = (await pod.kubelet.rotate()).token;
      server.revoke(old);
      const { result, messages } = await events('podtoken:request:unauthorized', () => client.call(dispatcher, `${server.url}revoked`));
      expect(result.status).toBe(200);
      expect(JSON.parse(result.text)).toMatchObject({ ok: true, path: '/revoked' });
      expect(server.log.map((e) => [e.outcome, e.reason])).toEqual([
        ['unauthorized', 'revoked'],
        ['ok', undefined],
      ]);
      expect(server.log[1]?.tokenId === tokenId(fresh)).toBe(true);
      expect(source.invalidations).toBe(1);
      expect(messages).toMatchObject([{ adapter: 'undici', retried: true, reason: 'retried' }]);
      expect(JSON.stringify(messages).includes(fresh) || JSON.stringify(messages).includes(old)).toBe(false);
    });

    // fetch hands the dispatcher every body as a one-shot async iterable, even a string: only
    // undici's request (and stream, pipeline) gives it a body it can send again.
    const replaysStrings = client.name.startsWith('undici request');
    it(`${replaysStrings ? 'sends' : 'cannot send'} a string body again on the retry`, async () => {
      const dispatcher = make();
      await pod.kubelet.rotate();
      server.revoke(pod.source.current!.value);
      const body = JSON.stringify({ hello: 'x'.repeat(5000) });
      const { result: reply, messages } = await events('podtoken:request:unauthorized', () =>
        client.call(dispatcher, `${server.url}post`, { method: 'POST', body, headers: { 'content-type': 'application/json' } }),
      );
      expect(reply.status).toBe(replaysStrings ? 200 : 401);
      expect(server.log.map((e) => [e.outcome, e.bodyLength])).toEqual([
        ['unauthorized', body.length],
        ...(replaysStrings ? [['ok', body.length]] : []),
      ]);
      expect(messages).toMatchObject([{ adapter: 'undici', reason: replaysStrings ? 'retried' : 'not-replayable' }]);
    });

    it('hands the 401 over, body and all, when no newer token exists', async () => {
      const dispatcher = make();
      server.revoke(pod.source.current!.value);
      const { result, messages } = await events('podtoken:request:unauthorized', () => client.call(dispatcher, `${server.url}still-revoked`));
      expect(result.status).toBe(401);
      expect(JSON.parse(result.text)).toMatchObject({ kind: 'Status', code: 401 });
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
      expect(messages).toMatchObject([{ adapter: 'undici', retried: false, reason: 'token-unchanged' }]);
    });

    it('never loops: a second 401 goes back to the caller', async () => {
      const dispatcher = make();
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      server.revoke(newer);
      const reply = await client.call(dispatcher, `${server.url}both-revoked`);
      expect(reply.status).toBe(401);
      expect(JSON.parse(reply.text)).toMatchObject({ code: 401 });
      expect(server.counts).toEqual({ ok: 0, unauthorized: 2, missing: 0 });
    });

    it('does not retry a one-shot stream body, but the next request carries the newer token', async () => {
      const source = counting(pod.source);
      const dispatcher = make(source);
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      const { result, messages } = await events('podtoken:request:unauthorized', () =>
        client.call(dispatcher, `${server.url}stream`, { method: 'POST', body: { stream: 'streamed body' } }),
      );
      expect(result.status).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
      expect(source.invalidations).toBe(1);
      expect(messages).toMatchObject([{ adapter: 'undici', retried: false, reason: 'not-replayable' }]);
      expect(same(pod.source.current?.value, newer)).toBe(true);
      expect((await client.call(dispatcher, `${server.url}next`)).status).toBe(200);
    });

    it('with retryUnauthorized: false, hands the 401 over and the source re-reads', async () => {
      const dispatcher = make(pod.source, [server.origin], false);
      const newer = (await pod.kubelet.rotate()).token;
      server.revoke(pod.source.current!.value);
      const { result, messages } = await events('podtoken:request:unauthorized', () => client.call(dispatcher, `${server.url}no-retry`));
      expect(result.status).toBe(401);
      expect(messages).toMatchObject([{ adapter: 'undici', retried: false, reason: 'retry-disabled' }]);
      expect(same(pod.source.current?.value, newer)).toBe(true);
    });

    it('leaves a 401 from an origin it sent no token to alone', async () => {
      const source = counting(pod.source);
      const dispatcher = make(source);
      expect((await client.call(dispatcher, `${other.url}not-ours`)).status).toBe(401);
      expect(source.invalidations).toBe(0);
    });
  });

  describe('redirects', () => {
    const to = (base: string, url: string, status: number) => `${base}redirect?status=${status}&to=${encodeURIComponent(url)}`;

    it.each([301, 302, 303, 307, 308])('%i to another port: no token there, even when both origins are allowed', async (status) => {
      for (const origins of [[server.origin], [server.origin, other.origin]]) {
        server.reset();
        other.reset();
        const dispatcher = make(pod.source, origins);
        const reply = await client.call(dispatcher, to(server.url, `${other.url}landing`, status));
        expect(reply.status).toBe(401); // B never saw a token
        expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
        expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
      }
    });

    it.each([301, 302, 303, 307, 308])('%i from https to http on another port: no token on the http hop', async (status) => {
      const dispatcher = make(pod.source, [tlsOrigin, server.origin]);
      const reply = await client.call(dispatcher, `${tlsOrigin}/?status=${status}&to=${encodeURIComponent(`${server.url}plain`)}`);
      expect(tlsSeen).toEqual([true]);
      expect(reply.status).toBe(401);
      expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
    });

    it('stays off for good: A → B → A arrives back at A without the token', async () => {
      const bounce = await startTokenServer({
        issuer: pod.issuer,
        audience: AUDIENCE,
        handler: (_request, response) => {
          response.writeHead(302, { location: `${server.url}back` }).end();
          return true;
        },
      });
      try {
        const dispatcher = make(pod.source, [server.origin, bounce.origin]);
        const reply = await client.call(dispatcher, to(server.url, `${bounce.url}x`, 302));
        expect(reply.status).toBe(401);
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
      const dispatcher = make();
      expect((await client.call(dispatcher, to(server.url, `${server.url}final`, 302))).status).toBe(200);
      expect(server.counts).toEqual({ ok: 2, unauthorized: 0, missing: 0 });
    });

    it('retries a 401 at a same-origin hop with the newer token', async () => {
      // /start redirects whatever the token; /hop checks it: the token dies between the hops.
      const hopper = await startTokenServer({
        issuer: pod.issuer,
        audience: AUDIENCE,
        handler: (request, response) => {
          if (!request.url?.startsWith('/start')) return false;
          response.writeHead(307, { location: '/hop' }).end();
          return true;
        },
      });
      try {
        const dispatcher = make(pod.source, [hopper.origin]);
        const old = pod.source.current!.value;
        const fresh = (await pod.kubelet.rotate()).token;
        hopper.revoke(old);
        const reply = await client.call(dispatcher, `${hopper.url}start`);
        expect(reply.status).toBe(200);
        const hops = hopper.log.map((e) => [e.path, e.tokenId === tokenId(old) ? 'old' : e.tokenId === tokenId(fresh) ? 'fresh' : e.outcome]);
        // Inside the redirect interceptor (and with fetch) the hop alone is sent again; outside
        // it, the interceptor sends the whole call again, from the start.
        expect([
          JSON.stringify([['/start', 'old'], ['/hop', 'old'], ['/hop', 'fresh']]),
          JSON.stringify([['/start', 'old'], ['/hop', 'old'], ['/start', 'fresh'], ['/hop', 'fresh']]),
        ]).toContain(JSON.stringify(hops));
      } finally {
        await hopper.close();
      }
    });
  });

  it('fails the request with a TokenSourceError, without sending it, when the source has no token', async () => {
    const closed = await startSimulatedPod({ audience: AUDIENCE, source: true });
    closed.source.close();
    const dispatcher = make(closed.source);
    await closed.close();
    const error = await client.call(dispatcher, `${server.url}never`).then(
      () => undefined,
      (e: unknown) => e,
    );
    const chain = [error, (error as { cause?: unknown }).cause];
    expect(chain.some((e) => (e as { code?: unknown })?.code === 'TOKEN_SOURCE_CLOSED')).toBe(true);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
  });

  it('errors after the token was set hold no token text in any rendering', async () => {
    const dispatcher = make(pod.source, [server.origin, 'http://127.0.0.1:1']);
    const error = await client.call(dispatcher, 'http://127.0.0.1:1/refused').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    const token = pod.source.current!.value;
    const renderings = [String(error), inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error), (error as Error).stack ?? ''];
    expect(renderings.some((text) => text.includes(token))).toBe(false);
  });
});

describe('undici request: the headers shapes undici accepts', () => {
  const shapes: Array<[string, (auth: string) => unknown]> = [
    ['object', (auth) => ({ AUTHORIZATION: auth, 'x-a': '1' })],
    ['flat array', (auth) => ['x-a', '1', 'Authorization', auth]],
    ['array of pairs', (auth) => [['x-a', '1'], ['authorization', auth]]],
    ['Map', (auth) => new Map([['x-a', '1'], ['Authorization', auth]])],
    ['Headers', (auth) => new Headers({ 'x-a': '1', authorization: auth })],
  ];
  it.each(shapes)('%s: the token replaces the caller’s Authorization; the caller’s object is unchanged', async (_name, shape) => {
    const dispatcher = withTokenSource(new Agent(), pod.source, { origins: [server.origin] });
    dispatchers.push(dispatcher);
    const headers = shape('Bearer not-a-token');
    const before = inspect(headers);
    const response = await request(`${server.url}shape`, { dispatcher, headers: headers as never });
    await response.body.text();
    expect(response.statusCode).toBe(200);
    expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
    expect(inspect(headers)).toBe(before);
  });
});

describe('options and misuse', () => {
  it('requires origins, and validates them and retryUnauthorized up front', () => {
    expect(() => tokenInterceptor(pod.source, undefined as never)).toThrow(/origins/);
    expect(() => tokenInterceptor(pod.source, {} as never)).toThrow(/origins is required/);
    expect(() => tokenInterceptor(pod.source, { origins: [] })).toThrow(/origins is empty/);
    expect(() => tokenInterceptor(pod.source, { origins: [/api/] })).toThrow(/anchored/);
    expect(() => tokenInterceptor(pod.source, { origins: ['https://x/path'] })).toThrow(/a path/);
    expect(() => tokenInterceptor(pod.source, { origins: [server.origin], retryUnauthorized: 'yes' as never })).toThrow(/retryUnauthorized/);
    expect(() => tokenInterceptor({} as never, { origins: [server.origin] })).toThrow(/TokenSource/);
    expect(() => withTokenSource({} as never, pod.source, { origins: [server.origin] })).toThrow(/Dispatcher/);
  });

  it('gives no token to a Client whose requests carry no origin (it cannot tell where they go)', async () => {
    const client = new UndiciClient(server.origin).compose(tokenInterceptor(pod.source, { origins: [server.origin] }));
    dispatchers.push(client);
    const response = await client.request({ path: '/no-origin', method: 'GET' });
    await response.body.text();
    expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
  });

  it('removes an Authorization holding one of its tokens from a request to another origin', async () => {
    const dispatcher = withTokenSource(new Agent(), pod.source, { origins: [server.origin] });
    dispatchers.push(dispatcher);
    await (await request(`${server.url}first`, { dispatcher })).body.text();
    const stolen = bearer(pod.source.current!.value);
    await (await request(`${other.url}copied`, { dispatcher, headers: { authorization: stolen } })).body.text();
    expect(other.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
  });
});
