import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createIssuer, startTokenServer, tokenId, type Issuer, type TokenServer } from '@podtoken/testing';

// Tokens are minted at run time; assertions compare ids or booleans so a failure never prints one.

let issuer: Issuer;
let server: TokenServer;

beforeAll(async () => {
  issuer = await createIssuer();
  server = await startTokenServer({ issuer, audience: ['api', 'vault'] });
});

afterAll(async () => {
  await server?.close();
});

beforeEach(() => server.reset());

function get(path: string, token?: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
  return fetch(new URL(path, server.url), { ...init, headers, redirect: 'manual' });
}

describe('startTokenServer', () => {
  it('listens on 127.0.0.1 on a random port', () => {
    expect(server.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.url).toBe(`${server.origin}/`);
    expect(server.port).toBeGreaterThan(0);
  });

  it('answers 200 with the claims for a valid token', async () => {
    const token = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
    const response = await get('/hello', token);
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ ok: true, sub: 'system:serviceaccount:default:default', aud: ['vault'], path: '/hello', bodyLength: 0 });
    expect(server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
    const [entry] = server.log;
    expect(entry).toMatchObject({ seq: 1, method: 'GET', path: '/hello', outcome: 'ok', status: 200 });
    expect(entry?.tokenId === tokenId(token)).toBe(true);
  });

  it('counts a request without Authorization as missing and answers 401', async () => {
    const response = await get('/');
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await response.json()).toMatchObject({ kind: 'Status', code: 401, reason: 'Unauthorized' });
    expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 1 });
    expect(server.log[0]).toMatchObject({ outcome: 'missing', status: 401, tokenId: undefined });
  });

  it.each([
    ['a wrong audience', { audience: 'someone-else' }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
    ['an expired token', { audience: 'api', issuedAt: new Date(Date.now() - 120_000), expirationSeconds: 60 }, 'ERR_JWT_EXPIRED'],
    ['a token not yet valid', { audience: 'api', issuedAt: new Date(Date.now() + 120_000) }, 'ERR_JWT_CLAIM_VALIDATION_FAILED'],
  ] as const)('refuses %s with 401', async (_name, mint, reason) => {
    const token = await issuer.mint(mint);
    const response = await get('/', token);
    expect(response.status).toBe(401);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
    expect(server.log[0]).toMatchObject({ outcome: 'unauthorized', reason, status: 401 });
  });

  it('refuses tokens of another issuer or key, a forged signature, a legacy token and a non-Bearer header', async () => {
    const other = await createIssuer({ issuer: 'https://other.example' });
    const sameName = await createIssuer(); // same iss, another key (unknown kid)
    const [head, payload] = (await issuer.mint({ audience: 'api' })).split('.');
    const signature = (await issuer.mint({ audience: 'vault' })).split('.')[2];
    const tokens = [
      await other.mint({ audience: 'api' }),
      await sameName.mint({ audience: 'api' }),
      `${head}.${payload}.${signature}`, // known kid, signature of another payload
      await issuer.mintLegacy(),
    ];
    for (const token of tokens) expect((await get('/', token)).status).toBe(401);
    const basic = await fetch(server.url, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 5, missing: 0 });
    expect(server.log.map((e) => e.reason)).toEqual([
      'ERR_JWKS_NO_MATCHING_KEY',
      'ERR_JWKS_NO_MATCHING_KEY',
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      'ERR_JWT_CLAIM_VALIDATION_FAILED',
      'not a Bearer token',
    ]);
  });

  it('never echoes the token in a 401 body or the log', async () => {
    const token = await issuer.mint({ audience: 'nobody' });
    const response = await get('/', token);
    const text = await response.text();
    expect(response.status).toBe(401);
    expect(text.includes(token)).toBe(false);
    expect(text.includes(token.split('.')[1] ?? '')).toBe(false);
    expect(JSON.stringify(server.log).includes(token)).toBe(false);
  });

  it('revoke() refuses a valid token from then on', async () => {
    const token = await issuer.mint({ audience: 'api' });
    const fresh = await issuer.mint({ audience: 'api' });
    expect((await get('/', token)).status).toBe(200);
    server.revoke(token);
    expect((await get('/', token)).status).toBe(401);
    expect((await get('/', fresh)).status).toBe(200);
    expect(server.counts).toEqual({ ok: 2, unauthorized: 1, missing: 0 });
    expect(server.log[1]).toMatchObject({ outcome: 'unauthorized', reason: 'revoked' });
  });

  it('/redirect answers a redirect to ?to= for a valid token only', async () => {
    const token = await issuer.mint({ audience: 'api' });
    const response = await get('/redirect?to=http%3A%2F%2Fexample.invalid%2Fx', token);
    expect(response.status).toBe(302);
    expect(response.headers.get('location')).toBe('http://example.invalid/x');
    const r307 = await get('/redirect?status=307&to=%2Fhere', token);
    expect(r307.status).toBe(307);
    expect(r307.headers.get('location')).toBe('/here');
    expect((await get('/redirect?to=%2Fhere')).status).toBe(401);
    expect((await get('/redirect', token)).status).toBe(400);
  });

  it('/status/<code> answers that status', async () => {
    const token = await issuer.mint({ audience: 'api' });
    expect((await get('/status/503', token)).status).toBe(503);
    expect(server.log[0]).toMatchObject({ outcome: 'ok', status: 503 });
  });

  it('echoes the length and hash of a POST body', async () => {
    const token = await issuer.mint({ audience: 'api' });
    const response = await get('/echo', token, { method: 'POST', body: 'hello world' });
    expect(await response.json()).toMatchObject({
      method: 'POST',
      bodyLength: 11,
      bodySha256: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
    });
    expect(server.log[0]).toMatchObject({ method: 'POST', bodyLength: 11 });
  });

  it('lets a handler answer, still counting the token', async () => {
    const custom = await startTokenServer({
      issuer,
      audience: 'api',
      handler: (_request, response, context) => {
        if (context.url.pathname !== '/open') return false;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ outcome: context.outcome }));
        return true;
      },
    });
    try {
      const open = await fetch(new URL('/open', custom.url));
      expect(open.status).toBe(200);
      expect(await open.json()).toEqual({ outcome: 'missing' });
      expect((await fetch(new URL('/closed', custom.url))).status).toBe(401);
      expect(custom.counts).toEqual({ ok: 0, unauthorized: 0, missing: 2 });
      expect(custom.log.map((e) => e.status)).toEqual([200, 401]);
    } finally {
      await custom.close();
    }
  });

  it('reset() clears counts and log; close() can be called twice', async () => {
    await get('/');
    expect(server.log).toHaveLength(1);
    server.reset();
    expect(server.counts).toEqual({ ok: 0, unauthorized: 0, missing: 0 });
    expect(server.log).toHaveLength(0);
    const extra = await startTokenServer({ issuer, audience: 'api' });
    await Promise.all([extra.close(), extra.close()]);
    await expect(fetch(extra.url)).rejects.toThrow();
  });

  it('validates its options', async () => {
    await expect(startTokenServer({ issuer, audience: [] })).rejects.toThrow(TypeError);
    await expect(startTokenServer({ issuer, audience: 'api', port: -1 })).rejects.toThrow(/port/);
    await expect(startTokenServer({ issuer: {} as Issuer, audience: 'api' })).rejects.toThrow(/issuer/);
  });
});
