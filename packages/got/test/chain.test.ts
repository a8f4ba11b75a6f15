import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import got, { HTTPError, RequestError } from 'got';
import { staticTokenSource, type TokenSource } from '@podtoken/core';
import { createIssuer } from '@podtoken/testing';
import { tokenSourceHooks, withTokenSource } from '@podtoken/got';

// Issue "never leaked, never silent": once a call's redirect chain has left the origin it
// started at, no later attempt of that call (got's own retry, a further hop, a hook re-run)
// carries the token; a beforeRequest hook added by a later .extend() cannot move the token
// to an origin outside `origins`; and no error got hands back holds the token's text.
// Servers on 127.0.0.1 record whether each request carried the token (never the token).

interface Seen {
  path: string;
  carried: boolean;
}

interface Recorder {
  origin: string;
  seen: Seen[];
  close(): Promise<void>;
}

let token: string;
const servers: Recorder[] = [];

async function start(route: (request: IncomingMessage, response: ServerResponse, count: number) => void): Promise<Recorder> {
  const seen: Seen[] = [];
  const server: Server = createServer((request, response) => {
    seen.push({ path: request.url ?? '', carried: (request.headers.authorization ?? '').includes(token) });
    route(request, response, seen.filter((s) => s.path === request.url).length);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const recorder: Recorder = {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  servers.push(recorder);
  return recorder;
}

/** A: `/to?u=<url>` answers 302 to it; anything else 200. */
const redirector = (request: IncomingMessage, response: ServerResponse): void => {
  const to = new URL(request.url ?? '/', 'http://x').searchParams.get('u');
  if (to !== null) response.writeHead(302, { location: to }).end();
  else response.writeHead(200).end('ok');
};
/** B: the first request to each path answers 503, later ones 200 (and redirects on `/to` like A). */
const failsOnce = (_request: IncomingMessage, response: ServerResponse, count: number): void => {
  if (count === 1) response.writeHead(503).end('try again');
  else response.writeHead(200).end('ok');
};

let a: Recorder;
let b: Recorder;

beforeAll(async () => {
  const issuer = await createIssuer();
  token = await issuer.mint({ audience: 'chain', expirationSeconds: 3600 });
  a = await start(redirector);
  b = await start((request, response, count) => (request.url?.startsWith('/to?') ? redirector(request, response) : failsOnce(request, response, count)));
});
afterEach(() => {
  for (const server of servers) server.seen.length = 0;
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

const via = (server: Recorder, to: string) => `${server.origin}/to?u=${encodeURIComponent(to)}`;
/** got's default retry, with its 1 s backoff cut to 10 ms: the same decision, sooner. */
const quickRetry = { retry: { backoffLimit: 10, noise: 0 } };
/** Whether any rendering of `value` (inspect at any depth, JSON) holds the token. */
function rendersToken(value: unknown): boolean {
  const seen = new WeakSet<object>();
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return typeof v === 'bigint' ? String(v) : v;
  });
  return [inspect(value), inspect(value, { depth: Infinity, showHidden: true }), json ?? '', safeString(value)].some((text) => text.includes(token));
}

describe('got: a retry after a cross-origin redirect', () => {
  it.each([
    ['origins unset', undefined],
    ['origins [A, B]', 'both'],
  ] as const)("got's default retry of B (503 once) does not carry the token (%s)", async (_name, which) => {
    const origins = which === undefined ? {} : { origins: [a.origin, b.origin] };
    const client = withTokenSource(got, staticTokenSource(token), origins);
    // got's retry as it comes, 1 s backoff included.
    const response = await client.get(via(a, `${b.origin}/landing`));
    expect(response.statusCode).toBe(200);
    expect(a.seen).toEqual([{ path: expect.stringMatching(/^\/to/), carried: true }]);
    expect(b.seen).toEqual([
      { path: '/landing', carried: false },
      { path: '/landing', carried: false },
    ]);
  });

  it('A → B → A (503 once): the retry at A, the start origin, still carries no token', async () => {
    // Redirects on /to like A, and answers 503 once on any other path like B.
    const back = await start((request, response, count) => (request.url?.startsWith('/to?') ? redirector(request, response) : failsOnce(request, response, count)));
    const client = withTokenSource(got.extend(quickRetry), staticTokenSource(token));
    const response = await client.get(via(back, via(b, `${back.origin}/again`)));
    expect(response.statusCode).toBe(200);
    // back: /to (302, token), then /again twice (503, 200), both after the chain left.
    expect(back.seen.map((s) => [s.path.startsWith('/to') ? '/to' : s.path, s.carried])).toEqual([
      ['/to', true],
      ['/again', false],
      ['/again', false],
    ]);
    expect(b.seen.map((s) => [s.path.startsWith('/to') ? '/to' : s.path, s.carried])).toEqual([['/to', false]]);
  });

  it('a same-origin retry keeps the token (the chain never left)', async () => {
    const client = withTokenSource(got.extend(quickRetry), staticTokenSource(token));
    const response = await client.get(`${b.origin}/same`);
    expect(response.statusCode).toBe(200);
    expect(b.seen).toEqual([
      { path: '/same', carried: true },
      { path: '/same', carried: true },
    ]);
  });

  it('the hooks alone (tokenSourceHooks in your own extend) behave the same', async () => {
    const client = got.extend({ ...quickRetry, hooks: tokenSourceHooks(staticTokenSource(token)) });
    await client.get(via(a, `${b.origin}/hooks`));
    expect(b.seen.map((s) => s.carried)).toEqual([false, false]);
  });
});

describe('got: a beforeRequest hook of a later .extend() changes the URL', () => {
  it('to an origin outside origins: the token does not go there', async () => {
    const api = withTokenSource(got, staticTokenSource(token), { origins: [a.origin] });
    // The usual layering: the adapter first, then your own hooks.
    const rerouted = api.extend({
      hooks: {
        beforeRequest: [
          (options) => {
            options.url = new URL('/moved', b.origin);
          },
        ],
      },
    });
    const response = await rerouted.get(`${a.origin}/start`, { retry: { limit: 0 }, throwHttpErrors: false });
    expect(response.statusCode).toBe(503);
    expect(a.seen).toEqual([]);
    expect(b.seen).toEqual([{ path: '/moved', carried: false }]);
  }, 10_000);

  it('within the allowed origins the token is kept', async () => {
    const api = withTokenSource(got, staticTokenSource(token), { origins: [a.origin] });
    const rerouted = api.extend({ hooks: { beforeRequest: [(options) => void (options.url = new URL('/other', a.origin))] } });
    const response = await rerouted.get(`${a.origin}/start`);
    expect(response.statusCode).toBe(200);
    expect(a.seen).toEqual([{ path: '/other', carried: true }]);
  });

  it('your own Authorization header for that origin is left alone', async () => {
    const api = withTokenSource(got, staticTokenSource(token), { origins: [a.origin] });
    const rerouted = api.extend({
      hooks: { beforeRequest: [(options) => void ((options.url = new URL('/mine', b.origin)), (options.headers.authorization = 'Basic b3duOmNyZWRz'))] },
    });
    let header: string | undefined;
    const c = await start((request, response) => {
      header = request.headers.authorization;
      response.writeHead(200).end();
    });
    const again = rerouted.extend({ hooks: { beforeRequest: [(options) => void (options.url = new URL('/mine', c.origin))] } });
    await again.get(`${a.origin}/start`);
    expect(header).toBe('Basic b3duOmNyZWRz');
  });
});

describe('got: errors do not hold the token', () => {
  it('an HTTPError (500), in every rendering', async () => {
    const failing = await start((_request, response) => response.writeHead(500).end('boom'));
    const client = withTokenSource(got, staticTokenSource(token));
    const error = await client.get(`${failing.origin}/x`, { retry: { limit: 0 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect(failing.seen).toEqual([{ path: '/x', carried: true }]);
    expect(rendersToken(error)).toBe(false);
    const { options, request, response } = error as HTTPError;
    for (const part of [options, request, response, options.headers]) expect(rendersToken(part)).toBe(false);
  });

  it('a network error after the token was set (connection refused)', async () => {
    const gone = await start(() => {});
    await gone.close();
    servers.splice(servers.indexOf(gone), 1);
    const client = withTokenSource(got, staticTokenSource(token));
    const error = await client.get(`${gone.origin}/x`, { retry: { limit: 0 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestError);
    expect(rendersToken(error)).toBe(false);
  });

  it('a 401 is still retried with the fresh token; a second 401 reaches the caller redacted', async () => {
    const issuer = await createIssuer();
    const first = await issuer.mint({ audience: 'chain', expirationSeconds: 3600 });
    const second = await issuer.mint({ audience: 'chain', expirationSeconds: 3600 });
    let current = first;
    const source: TokenSource = {
      getToken: async () => current,
      invalidate: async () => void (current = second),
    };
    const sent: boolean[] = [];
    const refusing = await start((request, response) => {
      sent.push(request.headers.authorization === `Bearer ${second}`);
      response.writeHead(401).end();
    });
    const client = withTokenSource(got, source);
    const error = await client.get(`${refusing.origin}/x`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect(sent).toEqual([false, true]); // the retry carried the fresh token
    const texts = [inspect(error, { depth: Infinity, showHidden: true }), JSON.stringify((error as HTTPError).options)];
    expect(texts.some((text) => text.includes(first) || text.includes(second))).toBe(false);
  });

  it('an aborted call (got raises AbortError without beforeError hooks) is cleaned too', async () => {
    const hanging = await start(() => {}); // never answers
    const client = withTokenSource(got, staticTokenSource(token));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const error = await client.get(`${hanging.origin}/x`, { signal: controller.signal, retry: { limit: 0 } }).catch((e: unknown) => e);
    expect((error as Error).name).toBe('AbortError');
    expect(hanging.seen).toEqual([{ path: '/x', carried: true }]);
    expect(rendersToken(error)).toBe(false);
  });

  it('a beforeError hook added later sees the redacted error', async () => {
    const failing = await start((_request, response) => response.writeHead(500).end());
    let seenByHook: boolean | undefined;
    const client = withTokenSource(got, staticTokenSource(token)).extend({
      hooks: {
        beforeError: [
          (error) => {
            seenByHook = rendersToken(error);
            return error;
          },
        ],
      },
    });
    await client.get(`${failing.origin}/x`, { retry: { limit: 0 } }).catch(() => {});
    expect(seenByHook).toBe(false);
  });
});

/** `String(value)`, or '' for an object that has no string form (a null-prototype object). */
function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return '';
  }
}
