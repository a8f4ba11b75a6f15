import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import axios, { AxiosError } from 'axios';
import axiosRetry from 'axios-retry';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { staticTokenSource, type TokenSource } from '@podtoken/core';
import { createIssuer } from '@podtoken/testing';
import { withTokenSource } from '@podtoken/axios';

// Issue "never leaked, never silent", for axios: no error that leaves the adapter holds the
// token's text in any rendering (inspect at any depth, JSON, toJSON), while the 401 retry
// still works; a retry library that sends error.config again (axios-retry) after a
// cross-origin redirect never gets the token to the other origin. Servers on 127.0.0.1
// record whether each request carried the token (never the token itself).

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
    seen.push({ path: (request.url ?? '').split('?')[0]!, carried: (request.headers.authorization ?? '').includes(token) });
    route(request, response, seen.filter((s) => s.path === (request.url ?? '').split('?')[0]).length);
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

/** `/to?u=<url>` answers 302 to it; any other path answers 503 the first time, then 200. */
const route = (request: IncomingMessage, response: ServerResponse, count: number): void => {
  const to = new URL(request.url ?? '/', 'http://x').searchParams.get('u');
  if (to !== null) response.writeHead(302, { location: to }).end();
  else if (count === 1) response.writeHead(503).end('try again');
  else response.writeHead(200).end('ok');
};

let a: Recorder;
let b: Recorder;
beforeAll(async () => {
  const issuer = await createIssuer();
  token = await issuer.mint({ audience: 'axios-leaks', expirationSeconds: 3600 });
  a = await start(route);
  b = await start(route);
});
afterEach(() => {
  for (const server of servers) server.seen.length = 0;
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

const via = (server: Recorder, to: string) => `${server.origin}/to?u=${encodeURIComponent(to)}`;

/** Every rendering a log line could hold: inspect (default, and every hidden field at any depth), JSON, toJSON. */
function renderings(value: unknown): string[] {
  const seen = new WeakSet<object>();
  const json = JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return typeof v === 'bigint' ? String(v) : v;
  });
  const toJSON = (value as { toJSON?: () => unknown } | null)?.toJSON;
  return [
    inspect(value),
    inspect(value, { depth: Infinity, showHidden: true }),
    json ?? '',
    safeString(value),
    typeof toJSON === 'function' ? JSON.stringify(toJSON.call(value)) : '',
  ];
}
const rendersToken = (value: unknown) => renderings(value).some((text) => text.includes(token));

describe.each(['http', 'fetch'] as const)('axios %s adapter: errors do not hold the token', (adapter) => {
  it('an AxiosError for a 500, as a whole and its config, request and response', async () => {
    const failing = await start((_request, response) => response.writeHead(500).end('boom'));
    const api = withTokenSource(axios.create({ adapter }), staticTokenSource(token));
    const error = await api.get(`${failing.origin}/x`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AxiosError);
    expect(failing.seen).toEqual([{ path: '/x', carried: true }]);
    const { config, request, response } = error as AxiosError;
    expect(rendersToken(error)).toBe(false);
    for (const part of [config, config?.headers, request, response]) expect(rendersToken(part)).toBe(false);
  });

  it('a network error after the token was set (connection refused)', async () => {
    const gone = await start(() => {});
    await gone.close();
    servers.splice(servers.indexOf(gone), 1);
    const api = withTokenSource(axios.create({ adapter }), staticTokenSource(token));
    const error = await api.get(`${gone.origin}/x`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AxiosError);
    expect(rendersToken(error)).toBe(false);
  });

  it('the 401 retry still works, and a second 401 reaches the caller cleaned of both tokens', async () => {
    const issuer = await createIssuer();
    const first = await issuer.mint({ audience: 'axios-leaks', expirationSeconds: 3600 });
    const second = await issuer.mint({ audience: 'axios-leaks', expirationSeconds: 3600 });
    let current = first;
    const source: TokenSource = { getToken: async () => current, invalidate: async () => void (current = second) };
    const sent: boolean[] = [];
    const refusing = await start((request, response) => {
      sent.push(request.headers.authorization === `Bearer ${second}`);
      response.writeHead(401).end();
    });
    const api = withTokenSource(axios.create({ adapter }), source);
    const error = await api.get(`${refusing.origin}/x`).catch((e: unknown) => e);
    expect((error as AxiosError).response?.status).toBe(401);
    expect(sent).toEqual([false, true]);
    expect(renderings(error).some((text) => text.includes(first) || text.includes(second))).toBe(false);
  });

  it('a response interceptor added later sees the cleaned error', async () => {
    const failing = await start((_request, response) => response.writeHead(500).end());
    const api = withTokenSource(axios.create({ adapter }), staticTokenSource(token));
    let seenByInterceptor: boolean | undefined;
    api.interceptors.response.use(undefined, (error: unknown) => {
      seenByInterceptor = rendersToken(error);
      throw error;
    });
    await api.get(`${failing.origin}/x`).catch(() => {});
    expect(seenByInterceptor).toBe(false);
  });
});

describe.each(['http', 'fetch'] as const)('axios %s adapter with axios-retry: a retry after a cross-origin redirect', (adapter) => {
  it.each([
    ['origins unset', undefined],
    ['origins [A, B]', 'both'],
  ] as const)('B (503 once) never receives the token, not on the retry either (%s)', async (_name, which) => {
    const api = withTokenSource(axios.create({ adapter }), staticTokenSource(token), which === undefined ? {} : { origins: [a.origin, b.origin] });
    axiosRetry(api, { retries: 2 }); // re-sends error.config, through every interceptor
    const response = await api.get(via(a, `${b.origin}/landing`));
    expect(response.status).toBe(200);
    expect(b.seen).toEqual([
      { path: '/landing', carried: false },
      { path: '/landing', carried: false },
    ]);
    // The re-sent config starts at A again, an allowed origin: A sees the token on both tries.
    expect(a.seen).toEqual([
      { path: '/to', carried: true },
      { path: '/to', carried: true },
    ]);
  });

  it('axios-retry installed before the adapter (its interceptor sees the error first) changes nothing', async () => {
    const instance = axios.create({ adapter });
    axiosRetry(instance, { retries: 2 });
    const api = withTokenSource(instance, staticTokenSource(token));
    const response = await api.get(via(a, `${b.origin}/first`));
    expect(response.status).toBe(200);
    expect(b.seen.map((s) => s.carried)).toEqual([false, false]);
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
