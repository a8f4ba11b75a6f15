import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, isTokenVerificationError, type TokenVerifier } from '../src/index.js';
import { matrix, type Case } from './support/cases.js';
import { startIssuerServer, type IssuerServer } from './support/issuerServer.js';
import { holdsToken } from './support/tokens.js';

const AUDIENCE = 'https://orders.shop.svc';

/** What verify() said: 'ok' or the error's code; the error is kept for the leak check. */
async function outcome(verifier: TokenVerifier, token: string): Promise<{ result: string; error?: unknown }> {
  try {
    await verifier.verify(token);
    return { result: 'ok' };
  } catch (error) {
    return { result: isTokenVerificationError(error) ? error.code : `unexpected ${String((error as Error)?.name)}`, error };
  }
}

describe("OIDC against the test kit's issuer (discovery from startTokenServer)", () => {
  let issuer: IssuerServer;
  let cases: Case[];
  beforeAll(async () => {
    issuer = await startIssuerServer();
    cases = await matrix(issuer.issuer, AUDIENCE);
  });
  afterAll(() => issuer.close());

  it('judges every token of the matrix with the right code, and no error holds the token', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE, clockTolerance: 0 });
    const seen: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const c of cases) {
      const { result, error } = await outcome(verifier, c.token);
      seen[c.name] = result;
      expected[c.name] = c.oidc;
      expect(holdsToken(error, c.token), `${c.name}: the error holds the token`).toBe(false);
    }
    expect(seen).toEqual(expected);
    await verifier.close();
  });

  it('accepts a valid token and says who sent it, without the token', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const token = cases.find((c) => c.name === 'valid')!.token;
    const identity = await verifier.verify(token);
    expect(identity).toMatchObject({
      username: 'system:serviceaccount:shop:checkout',
      namespace: 'shop',
      serviceAccount: { name: 'checkout' },
      pod: { name: 'checkout-0' },
      node: { name: 'node-1' },
      audiences: [AUDIENCE],
      issuer: issuer.url,
      method: 'oidc',
      legacy: false,
    });
    expect(identity.serviceAccount.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(identity.expiresAt!.getTime()).toBeGreaterThan(Date.now());
    expect(identity.groups).toBeUndefined();
    expect(holdsToken(identity, token)).toBe(false);
    expect(Object.isFrozen(identity)).toBe(true);
    await verifier.close();
  });

  it('fetches the discovery document once and the key set once for many tokens', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const before = { discovery: issuer.discoveryFetches, jwks: issuer.jwksFetches };
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => issuer.issuer.mint({ audience: AUDIENCE, pod: `caller-${i}` })));
    const identities = await Promise.all(tokens.map((token) => verifier.verify(token)));
    expect(identities.map((identity) => identity.pod?.name)).toEqual(tokens.map((_, i) => `caller-${i}`));
    expect({ discovery: issuer.discoveryFetches - before.discovery, jwks: issuer.jwksFetches - before.jwks }).toEqual({ discovery: 1, jwks: 1 });
    await verifier.close();
  });

  it('phased migration: accepts tokens for either of two audiences, and only those', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: [issuer.url, AUDIENCE] });
    const old = await issuer.issuer.mint(); // the cluster's default audience: the issuer
    const next = await issuer.issuer.mint({ audience: AUDIENCE });
    const both = await issuer.issuer.mint({ audience: [AUDIENCE, issuer.url] });
    const other = await issuer.issuer.mint({ audience: 'https://payments.svc' });
    expect((await verifier.verify(old)).audiences).toEqual([issuer.url]);
    expect((await verifier.verify(next)).audiences).toEqual([AUDIENCE]);
    expect((await verifier.verify(both)).audiences).toEqual([AUDIENCE, issuer.url]);
    expect((await outcome(verifier, other)).result).toBe('TOKEN_AUDIENCE_MISMATCH');
    // Migration done: the old audience goes.
    const after = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    expect((await outcome(after, old)).result).toBe('TOKEN_AUDIENCE_MISMATCH');
    expect((await after.verify(next)).audiences).toEqual([AUDIENCE]);
    await Promise.all([verifier.close(), after.close()]);
  });

  it('an unknown kid refetches the key set (once per cooldown); after the rotation is published the new key is trusted', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE, jwksCooldown: 400 });
    await verifier.verify(await issuer.issuer.mint({ audience: AUDIENCE }));
    const rotated = await issuer.rotate();
    const fromNewKey = await rotated.mint({ audience: AUDIENCE });
    const start = issuer.jwksFetches;
    await sleep(450); // past the cooldown of the first fetch

    // Not published yet: one refetch, still unknown.
    expect((await outcome(verifier, fromNewKey)).result).toBe('TOKEN_KEY_NOT_FOUND');
    expect(issuer.jwksFetches - start).toBe(1);
    // Within the cooldown: refused without another fetch (an attacker's random kids cost nothing).
    for (let i = 0; i < 5; i++) expect((await outcome(verifier, fromNewKey)).result).toBe('TOKEN_KEY_NOT_FOUND');
    expect(issuer.jwksFetches - start).toBe(1);

    // The issuer publishes both keys (rotation in progress), then only the new one.
    issuer.publish(issuer.issuer, rotated);
    await sleep(450);
    expect((await verifier.verify(fromNewKey)).username).toBe('system:serviceaccount:default:default');
    expect(issuer.jwksFetches - start).toBe(2);
    expect((await verifier.verify(await issuer.issuer.mint({ audience: AUDIENCE }))).method).toBe('oidc');
    issuer.publish(issuer.issuer);
    await verifier.close();
  });

  it('accepts a legacy token only with allowLegacyTokens, and then without audiences', async () => {
    const legacy = await issuer.issuer.mintLegacy({ namespace: 'shop', serviceAccount: 'old-app' });
    const strict = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    expect((await outcome(strict, legacy)).result).toBe('TOKEN_LEGACY_REFUSED');
    const lenient = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE, allowLegacyTokens: true });
    expect(await lenient.verify(legacy)).toMatchObject({
      username: 'system:serviceaccount:shop:old-app',
      namespace: 'shop',
      serviceAccount: { name: 'old-app' },
      audiences: [],
      legacy: true,
      issuer: 'kubernetes/serviceaccount',
    });
    expect((await lenient.verify(legacy)).expiresAt).toBeUndefined();
    // Still signed by a key of the issuer: a forged legacy token is refused.
    const forged = (await issuer.rotate().then((other) => other.mintLegacy({ namespace: 'kube-system', serviceAccount: 'admin' })));
    expect((await outcome(lenient, forged)).result).toBe('TOKEN_KEY_NOT_FOUND');
    await Promise.all([strict.close(), lenient.close()]);
  });

  it('clockTolerance: 60 s by default (as the API server), 0 on request', async () => {
    const justExpired = await issuer.issuer.mint({ audience: AUDIENCE, issuedAt: new Date(Date.now() - 630_000), expirationSeconds: 600 });
    const lenient = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const strict = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE, clockTolerance: 0 });
    expect((await outcome(lenient, justExpired)).result).toBe('ok');
    expect((await outcome(strict, justExpired)).result).toBe('TOKEN_EXPIRED');
    await Promise.all([lenient.close(), strict.close()]);
  });

  it('refuses 10 MiB of garbage by its length alone: no fetch, no parse', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const before = { discovery: issuer.discoveryFetches, jwks: issuer.jwksFetches };
    const garbage = cases.find((c) => c.name === '10 MiB of garbage')!.token;
    const { result, error } = await outcome(verifier, garbage);
    expect(result).toBe('TOKEN_TOO_LARGE');
    expect((error as Error).message).toMatch(/10485760 characters long, more than maxTokenLength \(16384\)/);
    expect({ discovery: issuer.discoveryFetches, jwks: issuer.jwksFetches }).toEqual(before);
    await verifier.close();
  });

  it('a discovery document that names another issuer is refused (DISCOVERY_FAILED), and nothing is accepted', async () => {
    const lying = await startIssuerServer();
    lying.claimIssuer('https://kubernetes.default.svc.cluster.local');
    const verifier = createTokenVerifier({ method: 'oidc', issuer: lying.url, audiences: AUDIENCE });
    const token = await lying.issuer.mint({ audience: AUDIENCE });
    const { result, error } = await outcome(verifier, token);
    expect(result).toBe('DISCOVERY_FAILED');
    expect((error as Error).message).toMatch(/names the issuer "https:\/\/kubernetes.default.svc.cluster.local": it must be the same string/);
    await expect(verifier.ready()).rejects.toMatchObject({ code: 'DISCOVERY_FAILED' });
    await verifier.close();
    await lying.close();
  });

  it('an issuer that is down: DISCOVERY_FAILED, never an accept', async () => {
    const gone = await startIssuerServer();
    const token = await gone.issuer.mint({ audience: AUDIENCE });
    const url = gone.url;
    await gone.close();
    const verifier = createTokenVerifier({ method: 'oidc', issuer: url, audiences: AUDIENCE, timeout: 1_000 });
    const { result, error } = await outcome(verifier, token);
    expect(result).toBe('DISCOVERY_FAILED');
    expect(holdsToken(error, token)).toBe(false);
    await verifier.close();
  });

  it('verify() after close() rejects with VERIFIER_CLOSED', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    await verifier.close();
    expect((await outcome(verifier, cases[0]!.token)).result).toBe('VERIFIER_CLOSED');
  });

  it('an aborted verify() rejects with the signal\'s reason', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', issuer: issuer.url, audiences: AUDIENCE });
    const controller = new AbortController();
    controller.abort(new Error('client went away'));
    await expect(verifier.verify(cases[0]!.token, { signal: controller.signal })).rejects.toThrow('client went away');
    await verifier.close();
  });
});
