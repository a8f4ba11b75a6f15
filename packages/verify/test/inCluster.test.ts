import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTokenVerifier, isTokenVerificationError, type TokenVerifier, type TokenVerifierOptions } from '../src/index.js';
import { clusterIssuer, startVerifierPod, type VerifierPod } from './support/pod.js';
import { holdsToken } from './support/tokens.js';

const AUDIENCE = 'https://orders.shop.svc';

async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'ok';
  } catch (error) {
    return isTokenVerificationError(error) ? error.code : `unexpected ${String(error)}`;
  }
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  vi.unstubAllEnvs();
});

async function setUp(options: Partial<TokenVerifierOptions>): Promise<{ pod: VerifierPod; verifier: TokenVerifier }> {
  const pod = await startVerifierPod();
  const verifier = createTokenVerifier({ audiences: AUDIENCE, root: pod.root, ...options } as TokenVerifierOptions);
  cleanups.push(() => pod.close(), () => verifier.close());
  return { pod, verifier };
}

describe("OIDC in a pod: the API server's discovery endpoints, with the pod's CA and token", () => {
  it("discovers the issuer and fetches the keys from the API server (not from the document's jwks_uri)", async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ method: 'oidc' });
    await verifier.ready();
    expect(pod.server.discovery).toEqual([
      { path: '/.well-known/openid-configuration', status: 200 },
      { path: '/openid/v1/jwks', status: 200 },
    ]);
    const identity = await verifier.verify(await issuer.mint({ audience: AUDIENCE, namespace: 'shop', serviceAccount: 'checkout' }));
    expect(identity).toMatchObject({ username: 'system:serviceaccount:shop:checkout', issuer: issuer.issuer, method: 'oidc' });
    expect(pod.server.discovery.length).toBe(2);
    expect(pod.server.reviews.length).toBe(0);
  });

  it('refuses a token of another issuer once the issuer is discovered', async () => {
    const { verifier } = await setUp({ method: 'oidc' });
    const other = await (await import('@podtoken/testing')).createIssuer({ issuer: 'https://evil.example' });
    expect(await outcome(verifier, await other.mint({ audience: AUDIENCE }))).toBe('TOKEN_ISSUER_MISMATCH');
  });

  it("when the API server refuses the pod's token, key fetches fail (never an accept) until the kubelet writes a new one", async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ method: 'oidc', jwksCooldown: 0 });
    await verifier.ready();
    const jti = String(JSON.parse(Buffer.from(pod.kubelet.last!.token.split('.')[1]!, 'base64url').toString('utf8')).jti);
    pod.server.revokeCaller(jti);
    // A key nobody published makes the verifier fetch the key set again.
    const stranger = await (await import('@podtoken/testing')).createIssuer({ issuer: issuer.issuer });
    expect(await outcome(verifier, await stranger.mint({ audience: AUDIENCE }))).toBe('DISCOVERY_FAILED');
    expect(pod.server.discovery.slice(2).map((entry) => entry.status)).toEqual([401]); // refused; re-read: the same token, so no second try
    await pod.kubelet.rotate();
    await sleep(100); // the source hears the folder change
    expect(await outcome(verifier, await stranger.mint({ audience: AUDIENCE }))).toBe('TOKEN_KEY_NOT_FOUND');
    expect(pod.server.discovery.at(-1)!.status).toBe(200);
    expect(await outcome(verifier, await issuer.mint({ audience: AUDIENCE }))).toBe('ok');
  });

  it('a configured issuer that the API server does not name: DISCOVERY_FAILED', async () => {
    const issuer = await clusterIssuer();
    const { verifier } = await setUp({ method: 'oidc', issuer: 'https://kubernetes.default.svc', discovery: 'in-cluster' });
    const error = await verifier.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'DISCOVERY_FAILED' });
    expect((error as Error).message).toMatch(/names the issuer ".*", not the configured "https:\/\/kubernetes.default.svc"/);
    // The cluster's tokens do not carry the configured issuer: refused before any fetch.
    expect(await outcome(verifier, await issuer.mint({ audience: AUDIENCE }))).toBe('TOKEN_ISSUER_MISMATCH');
  });

  it('outside a pod: DISCOVERY_FAILED naming what is missing', async () => {
    const verifier = createTokenVerifier({ method: 'oidc', audiences: AUDIENCE, root: '/nonexistent-podtoken-root' });
    cleanups.push(() => verifier.close());
    await expect(verifier.ready()).rejects.toThrow(/not running in a pod \(missing KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT, .*ca\.crt, .*token\)/);
  });

  it('a failed discovery is retried, at most once a second', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ method: 'oidc' });
    const port = process.env['KUBERNETES_SERVICE_PORT'];
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '1'); // nothing listens there
    const token = await issuer.mint({ audience: AUDIENCE });
    expect(await outcome(verifier, token)).toBe('DISCOVERY_FAILED');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', port!);
    expect(await outcome(verifier, token)).toBe('DISCOVERY_FAILED'); // the same failure, served fast
    expect(pod.server.discovery.length).toBe(0);
    await sleep(1_050);
    expect(await outcome(verifier, token)).toBe('ok');
  });
});

describe("'oidc+tokenreview': the local check on every call, a TokenReview at most once per cacheTtl per token", () => {
  it('one TokenReview for many verifications; a forged signature never reaches the API server', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ method: 'oidc+tokenreview' });
    const token = await issuer.mint({ audience: AUDIENCE, pod: 'web-0' });
    for (let i = 0; i < 50; i++) {
      const identity = await verifier.verify(token);
      expect(identity.method).toBe('oidc+tokenreview');
    }
    expect((await verifier.verify(token)).groups).toContain('system:authenticated');
    expect(pod.server.reviews.length).toBe(1);
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = `${h}.${p}.${s.slice(0, -4)}${s.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    expect(await outcome(verifier, forged)).toBe('TOKEN_SIGNATURE_INVALID');
    expect(pod.server.reviews.length).toBe(1);
  });

  it("sees the deleted Pod that OIDC alone cannot: refused after the TTL", async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ method: 'oidc+tokenreview', cacheTtl: 300 });
    const oidcOnly = createTokenVerifier({ method: 'oidc', audiences: AUDIENCE, root: pod.root });
    cleanups.push(() => oidcOnly.close());
    const token = await issuer.mint({ audience: AUDIENCE, pod: 'web-1' });
    expect(await outcome(verifier, token)).toBe('ok');
    pod.server.deletePod('web-1');
    await sleep(350);
    expect(await outcome(verifier, token)).toBe('TOKEN_REJECTED');
    expect(await outcome(oidcOnly, token)).toBe('ok'); // by design: OIDC cannot see the Pod
  });

  it('an API server outage refuses (REVIEW_UNAVAILABLE) once the cached review is stale, and no error holds the token', async () => {
    const issuer = await clusterIssuer();
    const { pod, verifier } = await setUp({ method: 'oidc+tokenreview', cacheTtl: 200 });
    const token = await issuer.mint({ audience: AUDIENCE });
    expect(await outcome(verifier, token)).toBe('ok'); // discovery and keys fetched, review cached
    pod.server.failWith(503);
    await sleep(250);
    const error = await verifier.verify(token).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REVIEW_UNAVAILABLE', status: 503 });
    expect(holdsToken(error, token)).toBe(false);
  });
});
