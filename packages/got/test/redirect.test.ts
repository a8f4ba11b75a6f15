import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import got, { type RequestFunction } from 'got';
import { staticTokenSource } from '@podtoken/core';
import { createIssuer, startTokenServer, type Issuer, type TokenServer, type TokenServerHandler } from '@podtoken/testing';
import { tokenSourceHooks, withTokenSource } from '@podtoken/got';

// (c) The token never follows a redirect to another origin, and never goes to an origin
// outside `origins`. Server A verifies tokens and redirects; server B (another port, so
// another origin) answers every request and reports whether it saw an Authorization header.

const AUDIENCE = 'https://kubernetes.default.svc';

let issuer: Issuer;
let token: string;
let a: TokenServer;
let b: TokenServer;

// B answers 200 to everything (its built-in check would answer 401 to a request without a
// token) and redirects on /redirect like A; its log still records each request's outcome.
const answerEverything: TokenServerHandler = (request, response, context) => {
  const to = context.url.searchParams.get('to');
  if (context.url.pathname === '/redirect' && to !== null) {
    response.writeHead(302, { location: to }).end();
    return true;
  }
  const body = JSON.stringify({ sawAuthorization: request.headers.authorization !== undefined, outcome: context.outcome });
  response.writeHead(200, { 'content-type': 'application/json' }).end(body);
  return true;
};

beforeAll(async () => {
  issuer = await createIssuer();
  token = await issuer.mint({ audience: AUDIENCE, expirationSeconds: 3600 });
  a = await startTokenServer({ issuer, audience: AUDIENCE });
  b = await startTokenServer({ issuer, audience: 'some-other-service', handler: answerEverything });
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

beforeEach(() => {
  a.reset();
  b.reset();
});

// got's `request` option: send every request, whatever its URL, to B over plain HTTP on
// 127.0.0.1. got's redirect logic still runs on the URLs it was given (https://api.example…),
// which lets a test change only the scheme without certificates or ports 80/443.
const viaB: RequestFunction = (url, options) =>
  httpRequest(new URL(`${url.pathname}${url.search}`, b.origin), { method: options.method ?? 'GET', headers: options.headers ?? {} });

function redirectTo(server: TokenServer, to: string): string {
  return `${server.origin}/redirect?to=${encodeURIComponent(to)}`;
}

interface BReply {
  sawAuthorization: boolean;
  outcome: string;
}

describe('redirect from an allowed origin to another origin', () => {
  it.each([
    ['every origin (default)', undefined],
    ['origins: [A, B]', 'both'],
    ['origins: [A]', 'a'],
  ] as const)('arrives without Authorization with %s', async (_name, which) => {
    const origins = which === undefined ? undefined : which === 'both' ? [a.origin, b.origin] : [a.origin];
    const client = withTokenSource(got, staticTokenSource(token), origins === undefined ? {} : { origins });
    const response = await client.get(redirectTo(a, `${b.origin}/landing`));
    expect(response.statusCode).toBe(200);
    expect(response.redirectUrls.map(String)).toEqual([`${b.origin}/landing`]);
    expect(JSON.parse(response.body)).toEqual({ sawAuthorization: false, outcome: 'missing' });
    expect(a.log.map((e) => [e.outcome, e.status])).toEqual([['ok', 302]]);
    expect(b.log.map((e) => e.outcome)).toEqual(['missing']);
  });

  it('keeps the token on a same-origin redirect', async () => {
    const client = withTokenSource(got, staticTokenSource(token));
    const response = await client.get(redirectTo(a, `${a.origin}/anything`));
    expect(response.statusCode).toBe(200);
    expect(a.log.map((e) => [e.outcome, e.status])).toEqual([
      ['ok', 302],
      ['ok', 200],
    ]);
  });

  it('does not put the token back when the chain returns to the first origin (A → B → A)', async () => {
    const client = withTokenSource(got, staticTokenSource(token), { origins: [a.origin] });
    const response = await client.get(redirectTo(a, redirectTo(b, `${a.origin}/anything`)), { throwHttpErrors: false });
    expect(response.redirectUrls).toHaveLength(2);
    expect(b.log.map((e) => e.outcome)).toEqual(['missing']);
    expect(a.log.map((e) => [e.outcome, e.status])).toEqual([
      ['ok', 302],
      ['missing', 401],
    ]);
    // A 401 to a request that carried no token is not retried.
    expect(response.statusCode).toBe(401);
    expect(response.retryCount).toBe(0);
  });

  it('removes the header on a scheme-only change too (https://api.example → http://api.example)', async () => {
    const client = withTokenSource(got.extend({ request: viaB }), staticTokenSource(token));
    const response = await client.get(`https://api.example/redirect?to=${encodeURIComponent('http://api.example/landing')}`);
    expect(response.redirectUrls.map(String)).toEqual(['http://api.example/landing']);
    expect(JSON.parse(response.body)).toEqual({ sawAuthorization: false, outcome: 'missing' });
    // The first hop (https, the origin the token is for) did carry it.
    expect(b.log.map((e) => e.outcome)).toEqual(['unauthorized', 'missing']);
  });
});

describe('origins', () => {
  it('sends no token to an origin outside origins', async () => {
    const client = withTokenSource(got, staticTokenSource(token), { origins: [a.origin] });
    const reply = await client.get(`${b.origin}/direct`).json<BReply>();
    expect(reply).toEqual({ sawAuthorization: false, outcome: 'missing' });
    expect((await client.get(`${a.origin}/anything`)).statusCode).toBe(200);
    expect(a.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
  });

  it('matches RegExp entries against the origin', async () => {
    const client = withTokenSource(got, staticTokenSource(token), { origins: [new RegExp(`^http://127\\.0\\.0\\.1:${a.port}$`)] });
    expect((await client.get(`${a.origin}/anything`)).statusCode).toBe(200);
    expect(await client.get(`${b.origin}/direct`).json<BReply>()).toMatchObject({ sawAuthorization: false });
  });

  it('rejects bad options up front with a TypeError that names them', () => {
    expect(() => withTokenSource(got, staticTokenSource(token), { origins: ['not a url'] })).toThrow(/withTokenSource: origins holds "not a url"/);
    expect(() => tokenSourceHooks(staticTokenSource(token), { origins: 'https://a' as unknown as string[] })).toThrow(/tokenSourceHooks: origins must be an array/);
    expect(() => withTokenSource(got, staticTokenSource(token), { retryUnauthorized: 'yes' as unknown as boolean })).toThrow(/retryUnauthorized/);
    expect(() => withTokenSource(got, {} as never)).toThrow(/source must be a TokenSource/);
    expect(() => withTokenSource({} as never, staticTokenSource(token))).toThrow(/client must be a got instance/);
  });
});

describe('what got 14 does by itself (why the adapter needs its beforeRedirect hook)', () => {
  it('got strips a fixed Authorization header when the port changes', async () => {
    const response = await got.get(redirectTo(a, `${b.origin}/landing`), { headers: { authorization: `Bearer ${token}` } });
    expect(JSON.parse(response.body)).toMatchObject({ sawAuthorization: false });
  });

  it('keeps a fixed Authorization header on an https → http redirect to the same host (it compares host and port only)', async () => {
    const response = await got.get(`https://api.example/redirect?to=${encodeURIComponent('http://api.example/landing')}`, {
      headers: { authorization: `Bearer ${token}` },
      request: viaB,
    });
    expect(response.redirectUrls.map(String)).toEqual(['http://api.example/landing']);
    expect(JSON.parse(response.body)).toMatchObject({ sawAuthorization: true });
  });

  it('runs beforeRequest again on every redirect hop: a hook that only sets the header re-adds the token, ours does not', async () => {
    const naive = got.extend({ hooks: { beforeRequest: [(options) => void (options.headers.authorization = `Bearer ${token}`)] } });
    const leaked = await naive.get(redirectTo(a, `${b.origin}/landing`));
    // B got a token it was never meant to see.
    expect(JSON.parse(leaked.body)).toEqual({ sawAuthorization: true, outcome: 'unauthorized' });

    // The adapter's beforeRequest alone (without its beforeRedirect) knows the call left its origin.
    const { beforeRequest } = tokenSourceHooks(staticTokenSource(token));
    const client = got.extend({ hooks: { beforeRequest } });
    const response = await client.get(redirectTo(a, `${b.origin}/landing`));
    expect(JSON.parse(response.body)).toEqual({ sawAuthorization: false, outcome: 'missing' });
  });
});
