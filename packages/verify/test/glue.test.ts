import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire, Module } from 'node:module';
import { dirname, join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFetchGuard,
  createRequestGuard,
  createTokenVerifier,
  expressMiddleware,
  fastifyHook,
  type GuardOptions,
  type Identity,
  type RefusalEvent,
  type TokenVerifier,
} from '../src/index.js';
import { startIssuerServer, type IssuerServer } from './support/issuerServer.js';
import { holdsToken } from './support/tokens.js';

const express = loadExpress();

const AUDIENCE = 'https://orders.shop.svc';
const TEN_MIB = 10 * 1024 * 1024;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request over a real socket, with exactly these headers (node:http sends any size). */
function send(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(url, { headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A running app of one framework, guarded, whose handler answers 200 with the caller's username. */
interface App {
  url: string;
  close(): Promise<void>;
}

type Glue = (verifier: TokenVerifier, options: GuardOptions, maxHeaderSize: number) => Promise<App>;

const glues: Record<string, Glue> = {
  'node:http createRequestGuard': async (verifier, options, maxHeaderSize) => {
    const guard = createRequestGuard(verifier, options);
    const server = createServer({ maxHeaderSize }, async (request, response) => {
      const identity = await guard(request, response);
      if (identity === undefined) return;
      response.end(JSON.stringify({ caller: identity.username }));
    });
    return { url: await listen(server), close: () => close(server) };
  },
  'express expressMiddleware': async (verifier, options, maxHeaderSize) => {
    const app = express();
    app.use(expressMiddleware(verifier, options));
    app.get('/{*path}', (request, response) => {
      response.json({ caller: (request as { identity?: Identity }).identity?.username });
    });
    const server = createServer({ maxHeaderSize }, app);
    return { url: await listen(server), close: () => close(server) };
  },
  'fastify fastifyHook': async (verifier, options, maxHeaderSize) => {
    const app = Fastify({ serverFactory: (handler) => createServer({ maxHeaderSize }, handler) });
    app.decorateRequest('identity', null);
    app.addHook('onRequest', fastifyHook(verifier, options));
    app.get('/*', async (request) => ({ caller: (request as unknown as { identity: Identity | null }).identity?.username }));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, close: () => app.close() };
  },
  'Fetch API createFetchGuard': async (verifier, options, maxHeaderSize) => {
    // Served the way web-standard runtimes do it: node:http turned into a Request and back.
    const guard = createFetchGuard(verifier, options);
    const server = createServer({ maxHeaderSize }, async (incoming, outgoing) => {
      const headers = new Headers();
      for (const [name, value] of Object.entries(incoming.headers)) if (typeof value === 'string') headers.set(name, value);
      const request = new Request(`http://127.0.0.1${incoming.url ?? '/'}`, { method: incoming.method ?? 'GET', headers });
      const result = await guard(request);
      const response = result instanceof Response ? result : Response.json({ caller: result.username });
      outgoing.writeHead(response.status, Object.fromEntries(response.headers));
      outgoing.end(await response.text());
    });
    return { url: await listen(server), close: () => close(server) };
  },
};

describe.each(Object.entries(glues))('%s', (_name, start) => {
  let issuer: IssuerServer;
  let verifier: TokenVerifier;
  let app: App;
  const events: RefusalEvent[] = [];
  let valid: string;
  let expired: string;

  beforeAll(async () => {
    issuer = await startIssuerServer();
    verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE, clockTolerance: 0 });
    app = await start(verifier, { onRefused: (event) => events.push(event), realm: 'orders' }, 32 * 1024 * 1024);
    valid = await issuer.issuer.mint({ audience: AUDIENCE, namespace: 'shop', serviceAccount: 'checkout' });
    expired = await issuer.issuer.mint({ audience: AUDIENCE, issuedAt: new Date(Date.now() - 7_200_000), expirationSeconds: 600 });
  });
  afterAll(async () => {
    await app.close();
    await verifier.close();
    await issuer.close();
  });

  it('lets a valid token through with the identity', async () => {
    const answer = await send(`${app.url}/orders`, { authorization: `Bearer ${valid}` });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ caller: 'system:serviceaccount:shop:checkout' });
  });

  it('no Authorization header: 401 with a bare Bearer challenge (RFC 6750 3.1: no error code)', async () => {
    events.length = 0;
    const answer = await send(`${app.url}/orders`);
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="orders"');
    expect(JSON.parse(answer.body)).toEqual({ error: 'unauthorized' });
    expect(events.map((event) => [event.status, event.code])).toEqual([[401, 'TOKEN_MISSING']]);
  });

  it('another scheme is no Bearer credential: 401 with the bare challenge', async () => {
    events.length = 0;
    const answer = await send(`${app.url}/orders`, { authorization: 'Basic dXNlcjpwYXNz' });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="orders"');
    expect(events[0]?.code).toBe('TOKEN_MISSING');
  });

  it('a refused token: 401 invalid_token and nothing more; the reason goes to onRefused, without the token or the query', async () => {
    events.length = 0;
    const answer = await send(`${app.url}/orders/7?access_token=${expired}`, { authorization: `Bearer ${expired}` });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="orders", error="invalid_token"');
    expect(JSON.parse(answer.body)).toEqual({ error: 'invalid_token' });
    expect(`${answer.body}${JSON.stringify(answer.headers)}`).not.toMatch(/expire/i);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ status: 401, code: 'TOKEN_EXPIRED', method: 'GET', path: '/orders/7' });
    expect(events[0]!.message).toMatch(/^The token expired at /);
    expect(holdsToken(events, expired)).toBe(false);
  });

  it('a malformed Bearer credential: 401 invalid_token', async () => {
    events.length = 0;
    const answer = await send(`${app.url}/`, { authorization: 'Bearer not a token' });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="orders", error="invalid_token"');
    expect(events[0]?.code).toBe('TOKEN_MALFORMED');
  });

  it('10 MiB of garbage in the header (a server that allows it): refused by length before it is parsed', async () => {
    events.length = 0;
    const answer = await send(`${app.url}/`, { authorization: `Bearer ${'A'.repeat(TEN_MIB)}` });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer realm="orders", error="invalid_token"');
    expect(events.map((event) => event.code)).toEqual(['TOKEN_TOO_LARGE']);
    expect(events[0]!.message).toBe('The Authorization header is 10485767 characters long, more than maxHeaderLength (16384); it was not read.');
  });
});

describe('request glue, beyond one framework', () => {
  let issuer: IssuerServer;
  beforeAll(async () => {
    issuer = await startIssuerServer();
  });
  afterAll(() => issuer.close());

  it("10 MiB in the header on a server with Node's default limit: Node answers 431 before any code runs", async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const guard = createRequestGuard(verifier);
    let handled = 0;
    const server = createServer(async (request, response) => {
      handled += 1;
      if ((await guard(request, response)) !== undefined) response.end('ok');
    });
    const url = await listen(server);
    // Node answers 431 and closes; a client still writing the 10 MiB may see the reset first
    // (Node 24 here). Either way no code of the service ran.
    const outcome = await send(url, { authorization: `Bearer ${'A'.repeat(TEN_MIB)}` }).then(
      (answer) => answer.status,
      (error: unknown) => (error as { code?: string }).code,
    );
    expect([431, 'ECONNRESET', 'EPIPE']).toContain(outcome);
    expect(handled).toBe(0);
    await close(server);
    await verifier.close();
  });

  it('a verifier that cannot reach a verdict answers 503 without a challenge, and never lets the request through', async () => {
    const gone = await startIssuerServer();
    const token = await gone.issuer.mint({ audience: AUDIENCE });
    const url = gone.url;
    await gone.close();
    const verifier = createTokenVerifier({ method: 'oidc', issuer: url, audiences: AUDIENCE, timeout: 500 });
    const events: RefusalEvent[] = [];
    const guard = createFetchGuard(verifier, { onRefused: (event) => events.push(event) });
    const result = await guard(new Request('http://svc/x', { headers: { authorization: `Bearer ${token}` } }));
    expect(result).toBeInstanceOf(Response);
    const response = result as Response;
    expect(response.status).toBe(503);
    expect(response.headers.get('www-authenticate')).toBeNull();
    expect(await response.json()).toEqual({ error: 'temporarily_unavailable' });
    expect(events[0]).toMatchObject({ status: 503, code: 'DISCOVERY_FAILED' });
    expect(holdsToken(events, token)).toBe(false);
    await verifier.close();
  });

  it('an onRefused hook that throws does not change the answer', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const guard = createFetchGuard(verifier, {
      onRefused: () => {
        throw new Error('logger down');
      },
    });
    const result = await guard(new Request('http://svc/x'));
    expect((result as Response).status).toBe(401);
    await verifier.close();
  });

  it('without a realm the challenge is bare: Bearer, and Bearer error="invalid_token"', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const guard = createFetchGuard(verifier);
    const missing = (await guard(new Request('http://svc/'))) as Response;
    const invalid = (await guard(new Request('http://svc/', { headers: { authorization: 'Bearer abc' } }))) as Response;
    expect([missing.headers.get('www-authenticate'), invalid.headers.get('www-authenticate')]).toEqual(['Bearer', 'Bearer error="invalid_token"']);
    expect(invalid.headers.get('cache-control')).toBe('no-store');
    await verifier.close();
  });

  it('options are checked up front with a TypeError naming the option', () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    expect(() => createRequestGuard({} as TokenVerifier)).toThrow(/createRequestGuard: verifier must be a TokenVerifier/);
    expect(() => expressMiddleware(verifier, { realm: 'a"b' })).toThrow(/expressMiddleware: realm must be printable ASCII/);
    expect(() => fastifyHook(verifier, { maxHeaderLength: 3 })).toThrow(/fastifyHook: maxHeaderLength must be an integer >= 16/);
    expect(() => createFetchGuard(verifier, { onRefused: 'log' as never })).toThrow(/createFetchGuard: onRefused must be a function/);
  });
});

/**
 * express 5, loaded so that it works under this repository's vitest config, which passes its
 * resolve conditions ("import" among them) to Node as --conditions: require('is-promise') in
 * express's router would then get is-promise's ESM build (a namespace, not a function). Its
 * CommonJS build is put in the require cache under the name require() resolves to.
 */
function loadExpress(): typeof import('express') {
  const require = createRequire(import.meta.url);
  const routerRequire = createRequire(createRequire(require.resolve('express')).resolve('router'));
  const resolved = routerRequire.resolve('is-promise');
  if (resolved.endsWith('.mjs')) {
    const commonJs = new Module(resolved);
    commonJs.exports = routerRequire(join(dirname(resolved), 'index.js'));
    commonJs.loaded = true;
    require.cache[resolved] = commonJs;
  }
  return require('express') as typeof import('express');
}
