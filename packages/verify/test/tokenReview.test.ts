import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier, isTokenVerificationError, type TokenVerifier, type TokenVerifierOptions } from '../src/index.js';
import { matrix, type Case } from './support/cases.js';
import { clusterIssuer, kubeConfigFor, startVerifierPod, type VerifierPod } from './support/pod.js';
import { holdsToken } from './support/tokens.js';

const AUDIENCE = 'https://orders.shop.svc';

async function outcome(verifier: TokenVerifier, token: string): Promise<{ result: string; error?: unknown }> {
  try {
    await verifier.verify(token);
    return { result: 'ok' };
  } catch (error) {
    return { result: isTokenVerificationError(error) ? error.code : `unexpected ${String((error as Error)?.name)}`, error };
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  vi.unstubAllEnvs();
  vi.useRealTimers();
});

/** A verifier pod (API server stand-in + the verifier's own ServiceAccount volume) and a verifier in it. */
async function setUp(options: Partial<TokenVerifierOptions> = {}): Promise<{ pod: VerifierPod; verifier: TokenVerifier }> {
  const pod = await startVerifierPod();
  const verifier = createTokenVerifier({ audiences: AUDIENCE, root: pod.root, ...options });
  cleanups.push(() => pod.close(), () => verifier.close());
  return { pod, verifier };
}

describe('TokenReview against a local HTTPS API server stand-in', () => {
  let cases: Case[];
  beforeAll(async () => {
    cases = await matrix(await clusterIssuer(), AUDIENCE);
  });

  it('judges every token of the matrix with the right code, and no error holds the token (in a pod: loadInCluster)', async () => {
    const { pod, verifier } = await setUp({ clockTolerance: 0 });
    const seen: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const c of cases) {
      const { result, error } = await outcome(verifier, c.token);
      seen[c.name] = result;
      expected[c.name] = c.tokenreview;
      expect(holdsToken(error, c.token), `${c.name}: the error holds the token`).toBe(false);
    }
    expect(seen).toEqual(expected);
    // Only what could pass the local checks cost a TokenReview: valid, wrong issuer, unknown kid, tampered.
    expect(pod.server.reviews.length).toBe(4);
  });

  it('with issuer given, a token of another issuer is refused here, without a TokenReview', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ issuer: issuer.issuer });
    const { result, error } = await outcome(verifier, cases.find((c) => c.name === 'wrong issuer')!.token);
    expect(result).toBe('TOKEN_ISSUER_MISMATCH');
    expect((error as Error).message).toBe(`The token's issuer is "https://evil.example", not "${issuer.issuer}".`);
    expect((await outcome(verifier, cases[0]!.token)).result).toBe('ok');
    expect(pod.server.reviews.length).toBe(1);
  });

  it('accepts a valid token with the identity the API server gives (groups, pod from extra)', async () => {
    const { pod, verifier } = await setUp();
    const token = cases.find((c) => c.name === 'valid')!.token;
    const identity = await verifier.verify(token);
    expect(identity).toMatchObject({
      username: 'system:serviceaccount:shop:checkout',
      namespace: 'shop',
      serviceAccount: { name: 'checkout' },
      pod: { name: 'checkout-0' },
      audiences: [AUDIENCE],
      groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'],
      method: 'tokenreview',
      legacy: false,
    });
    expect(holdsToken(identity, token)).toBe(false);
    expect(pod.server.reviews).toEqual([{ authenticated: true, audiences: [AUDIENCE], status: 201 }]);
  });

  it('with any KubeConfig (here a static token and the CA), outside a pod', async () => {
    const { pod } = await setUp();
    vi.unstubAllEnvs();
    const issuer = await clusterIssuer();
    const config = kubeConfigFor(pod.server, await issuer.mint({ namespace: 'svc', serviceAccount: 'verifier' }));
    const verifier = createTokenVerifier({ audiences: AUDIENCE, kubeConfig: config });
    cleanups.push(() => verifier.close());
    expect((await verifier.verify(cases[0]!.token)).username).toBe('system:serviceaccount:shop:checkout');
  });

  it('phased migration: either of two audiences, and the API server is asked about both', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ audiences: [issuer.issuer, AUDIENCE] });
    expect((await verifier.verify(await issuer.mint())).audiences).toEqual([issuer.issuer]);
    expect((await verifier.verify(await issuer.mint({ audience: AUDIENCE }))).audiences).toEqual([AUDIENCE]);
    expect((await outcome(verifier, await issuer.mint({ audience: 'https://payments.svc' }))).result).toBe('TOKEN_AUDIENCE_MISMATCH');
    expect(pod.server.reviews.map((review) => review.audiences)).toEqual([
      [issuer.issuer, AUDIENCE],
      [issuer.issuer, AUDIENCE],
    ]);
  });

  it('a legacy token with allowLegacyTokens is reviewed without audiences (the API server judges it by its own)', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ allowLegacyTokens: true });
    const identity = await verifier.verify(await issuer.mintLegacy({ namespace: 'shop', serviceAccount: 'old-app' }));
    expect(identity).toMatchObject({ username: 'system:serviceaccount:shop:old-app', legacy: true, audiences: [] });
    expect(pod.server.reviews[0]!.audiences).toBeUndefined();
  });

  it('caches an answer per token: one TokenReview for many verifications within the TTL', async () => {
    const { pod, verifier } = await setUp();
    const token = cases[0]!.token;
    for (let i = 0; i < 100; i++) await verifier.verify(token);
    expect(pod.server.reviews.length).toBe(1);
  });

  it('the TTL is 10 s by default: a second TokenReview only after it', async () => {
    const { pod, verifier } = await setUp();
    const token = cases[0]!.token;
    await verifier.ready(); // reads the pod's files (and checks its CA's dates) on the real clock
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    await verifier.verify(token);
    vi.setSystemTime(Date.now() + 9_900);
    await verifier.verify(token);
    expect(pod.server.reviews.length).toBe(1);
    vi.setSystemTime(Date.now() + 200);
    await verifier.verify(token);
    expect(pod.server.reviews.length).toBe(2);
  });

  it('cacheTtl is configurable, and 0 turns the cache off', async () => {
    const { pod, verifier } = await setUp({ cacheTtl: 0 });
    for (let i = 0; i < 3; i++) await verifier.verify(cases[0]!.token);
    expect(pod.server.reviews.length).toBe(3);
  });

  it("never serves a cached answer past the token's exp", async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ cacheTtl: 600_000 }); // clockTolerance 60 s: still valid for the local check
    const token = await issuer.mint({ audience: AUDIENCE, expirationSeconds: 1 });
    await verifier.verify(token);
    await verifier.verify(token);
    expect(pod.server.reviews.length).toBe(1);
    const exp = (await verifier.verify(token)).expiresAt!.getTime();
    await sleep(Math.max(0, exp - Date.now()) + 50);
    await verifier.verify(token); // the API server allows 60 s of skew too: it says yes, but it was asked
    expect(pod.server.reviews.length).toBe(2);
  });

  it('concurrent verifications of one token share one TokenReview; distinct tokens get one each', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp();
    pod.server.delay(150);
    const token = cases[0]!.token;
    const identities = await Promise.all(Array.from({ length: 50 }, () => verifier.verify(token)));
    expect(new Set(identities.map((identity) => identity.username))).toEqual(new Set(['system:serviceaccount:shop:checkout']));
    expect(pod.server.reviews.length).toBe(1);
    const distinct = await Promise.all(Array.from({ length: 10 }, (_, i) => issuer.mint({ audience: AUDIENCE, pod: `p-${i}` })));
    await Promise.all(distinct.flatMap((t) => [verifier.verify(t), verifier.verify(t)]));
    expect(pod.server.reviews.length).toBe(11);
  });

  it('a refused token is remembered briefly (rejectionCacheTtl), so retries of a dead token cost one call', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp();
    const token = await issuer.mint({ audience: AUDIENCE, pod: 'doomed-0' });
    pod.server.deletePod('doomed-0');
    for (let i = 0; i < 20; i++) expect((await outcome(verifier, token)).result).toBe('TOKEN_REJECTED');
    expect(pod.server.reviews.length).toBe(1);
    await sleep(1_050);
    expect((await outcome(verifier, token)).result).toBe('TOKEN_REJECTED');
    expect(pod.server.reviews.length).toBe(2);
  });

  it("a deleted Pod's token is refused once the cached answer is older than the TTL", async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ cacheTtl: 300 });
    const token = await issuer.mint({ audience: AUDIENCE, pod: 'web-0' });
    expect((await verifier.verify(token)).pod?.name).toBe('web-0');
    pod.server.deletePod('web-0');
    expect((await outcome(verifier, token)).result).toBe('ok'); // within the TTL: cached
    await sleep(350);
    const { result, error } = await outcome(verifier, token);
    expect(result).toBe('TOKEN_REJECTED');
    expect((error as Error).message).toBe('The API server did not authenticate the token: "pods \\"web-0\\" not found".');
  });

  it.each([
    [401, 'REVIEW_UNAUTHORIZED'],
    [403, 'REVIEW_FORBIDDEN'],
    [429, 'REVIEW_UNAVAILABLE'],
    [500, 'REVIEW_UNAVAILABLE'],
    [503, 'REVIEW_UNAVAILABLE'],
    [409, 'REVIEW_FAILED'],
  ])('the API server answers %i: %s, never an accept, never cached', async (status, code) => {
    const { pod, verifier } = await setUp();
    const token = cases[0]!.token;
    pod.server.failWith(status);
    const { result, error } = await outcome(verifier, token);
    expect(result).toBe(code);
    expect((error as { status?: number }).status).toBe(status);
    expect(holdsToken(error, token)).toBe(false);
    pod.server.failWith(undefined);
    expect((await outcome(verifier, token)).result).toBe('ok');
  });

  it('a TokenReview slower than timeout: REVIEW_UNAVAILABLE; an API server that is gone: REVIEW_UNAVAILABLE', async () => {
    const { pod, verifier } = await setUp({ timeout: 200 });
    const token = cases[0]!.token;
    pod.server.delay(1_000);
    expect((await outcome(verifier, token)).result).toBe('REVIEW_UNAVAILABLE');
    await pod.server.close();
    const { result, error } = await outcome(verifier, token);
    expect(result).toBe('REVIEW_UNAVAILABLE');
    expect(holdsToken(error, token)).toBe(false);
  });

  it("the verifier's own token rotates and the old one is refused: the next review uses the new one", async () => {
    const { pod, verifier } = await setUp();
    const issuer = await clusterIssuer();
    await verifier.verify(cases[0]!.token);
    const old = pod.kubelet.last!;
    await pod.kubelet.rotate();
    pod.server.revokeCaller(String(JSON.parse(Buffer.from(old.token.split('.')[1]!, 'base64url').toString('utf8')).jti));
    expect((await verifier.verify(await issuer.mint({ audience: AUDIENCE, pod: 'fresh-0' }))).pod?.name).toBe('fresh-0');
  });

  it('an aborted verify() rejects with the reason while a concurrent caller of the same token gets its answer', async () => {
    const { pod, verifier } = await setUp();
    pod.server.delay(200);
    const controller = new AbortController();
    const token = cases[0]!.token;
    const aborted = verifier.verify(token, { signal: controller.signal });
    const patient = verifier.verify(token);
    controller.abort(new Error('client went away'));
    await expect(aborted).rejects.toThrow('client went away');
    expect((await patient).username).toBe('system:serviceaccount:shop:checkout');
    expect(pod.server.reviews.length).toBe(1);
  });

  it('outside a pod without kubeConfig: REVIEW_UNAVAILABLE naming what is missing; ready() says so at start-up', async () => {
    const verifier = createTokenVerifier({ audiences: AUDIENCE, root: '/nonexistent-podtoken-root' });
    cleanups.push(() => verifier.close());
    const error = await verifier.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'REVIEW_UNAVAILABLE' });
    expect((error as Error).message).toMatch(/^Cannot send TokenReviews \(outside a pod, pass kubeConfig\): Not running in a Kubernetes pod .*KUBERNETES_SERVICE_HOST/s);
    expect((await outcome(verifier, cases[0]!.token)).result).toBe('REVIEW_UNAVAILABLE');
  });
});
