import { inspect } from 'node:util';
import { createTokenVerifier, isTokenVerificationError, type TokenVerifier, type TokenVerifierOptions } from '@podtoken/verify';
import { describe, expect, it } from 'vitest';
import { defer, until } from '../helpers.js';
import { cluster, fileToken, kubeOk, startPod, type Pod } from './support/kube.js';

// The receiving side (@podtoken/verify) against the real API server. A service's pod (its
// ServiceAccount bound to system:auth-delegator) verifies the audience-scoped tokens that the
// kubelet's own token manager and atomic writer put in a caller pod's volume, with a
// TokenReview and with OIDC (the API server's discovery endpoints, the service pod's CA and
// token), both set up the in-cluster way (`root` + KUBERNETES_SERVICE_HOST/PORT). Then the
// caller's Pod is deleted: TokenReview refuses its token once the caches let go of it, while
// OIDC, by design, accepts it until its exp. That trade-off is in packages/verify/README.md.

const AUDIENCE = 'https://orders.verify.svc';
const OTHER_AUDIENCE = 'https://payments.verify.svc';
// The API server caches a successful token authentication for 10 s; the verifier's cacheTtl is 10 s too.
const CACHES_MS = 10_000 + 10_000;

let service: Pod;
let caller: Pod;
let ordersToken: string;
let paymentsToken: string;

/**
 * The service's pod and a caller's pod, made afresh for each test (the pods' folders and
 * kubelets are released after each test).
 */
async function setUp(): Promise<void> {
  service = await startPod({ prefix: 'verify-svc', serviceAccount: 'orders' });
  await kubeOk('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `tokenreview-${service.namespace}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
    subjects: [{ kind: 'ServiceAccount', name: 'orders', namespace: service.namespace }],
  });
  caller = await startPod({
    prefix: 'verify-caller',
    serviceAccount: 'checkout',
    volumes: {
      orders: { mountPath: 'var/run/secrets/tokens/orders', file: 'orders-token', audience: AUDIENCE, expirationSeconds: 600 },
      payments: { mountPath: 'var/run/secrets/tokens/payments', file: 'payments-token', audience: OTHER_AUDIENCE, expirationSeconds: 600 },
    },
  });
  ordersToken = await fileToken(caller.kubelets['orders']!.path);
  paymentsToken = await fileToken(caller.kubelets['payments']!.path);
}

/** A verifier in the service's pod, set up as in a cluster; closed after the test. */
async function verifierInPod(options: Omit<TokenVerifierOptions, 'audiences' | 'root'> = {}): Promise<TokenVerifier> {
  service.useServiceEnv();
  const verifier = createTokenVerifier({ audiences: AUDIENCE, root: service.root, ...options });
  defer(() => verifier.close());
  await verifier.ready();
  return verifier;
}

/** 'ok', or the code; the error is checked for the token's text on the way. */
async function outcome(verifier: TokenVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'ok';
  } catch (error) {
    for (const rendering of [inspect(error, { depth: 8 }), String(error), JSON.stringify(error)]) expect(rendering.includes(token)).toBe(false);
    return isTokenVerificationError(error) ? error.code : `unexpected ${String(error)}`;
  }
}

describe('@podtoken/verify against the real API server', () => {
  it('TokenReview, OIDC and both accept the token the kubelet wrote for this audience, and agree on who sent it', async () => {
    await setUp();
    const [review, oidc, both] = await Promise.all([verifierInPod(), verifierInPod({ method: 'oidc' }), verifierInPod({ method: 'oidc+tokenreview' })]);
    const expected = {
      username: `system:serviceaccount:${caller.namespace}:checkout`,
      namespace: caller.namespace,
      serviceAccount: { name: 'checkout', uid: caller.serviceAccountUid },
      pod: { name: caller.name, uid: caller.uid },
      audiences: [AUDIENCE],
      issuer: cluster.issuer,
      legacy: false,
    };
    const byReview = await review.verify(ordersToken);
    const byOidc = await oidc.verify(ordersToken);
    const byBoth = await both.verify(ordersToken);
    expect(byReview).toMatchObject({ ...expected, method: 'tokenreview' });
    expect(byOidc).toMatchObject({ ...expected, method: 'oidc' });
    expect(byBoth).toMatchObject({ ...expected, method: 'oidc+tokenreview' });
    // 1.20 puts no node in the token, and the kubelet asked for 600 s.
    expect(byReview.node).toBeUndefined();
    expect(byOidc.expiresAt!.getTime()).toBe(caller.kubelets['orders']!.ready.claims!.exp * 1000);
    expect(byReview.groups).toEqual(expect.arrayContaining(['system:serviceaccounts', `system:serviceaccounts:${caller.namespace}`, 'system:authenticated']));
    expect(byOidc.groups).toBeUndefined();
    for (const identity of [byReview, byOidc, byBoth]) expect(inspect(identity, { depth: 8 }).includes(ordersToken)).toBe(false);
  });

  it('both refuse a token for another audience, as the API server itself does', async () => {
    await setUp();
    const [review, oidc] = await Promise.all([verifierInPod(), verifierInPod({ method: 'oidc' })]);
    expect(await outcome(review, paymentsToken)).toBe('TOKEN_AUDIENCE_MISMATCH');
    expect(await outcome(oidc, paymentsToken)).toBe('TOKEN_AUDIENCE_MISMATCH');
    // The verifier refused it before asking; the API server's own answer agrees.
    const ask = (token: string) =>
      kubeOk('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [AUDIENCE] } });
    const refused = (await ask(paymentsToken)).status; // `authenticated: false` is left out (omitempty)
    expect(refused.authenticated ?? false).toBe(false);
    expect(refused.error).toMatch(/is invalid for the target audiences/);
    expect((await ask(ordersToken)).status).toMatchObject({ authenticated: true, audiences: [AUDIENCE] });
    // And a service that is the other audience accepts it.
    service.useServiceEnv();
    const payments = createTokenVerifier({ audiences: OTHER_AUDIENCE, root: service.root });
    defer(() => payments.close());
    expect((await payments.verify(paymentsToken)).audiences).toEqual([OTHER_AUDIENCE]);
  });

  it("after the caller's Pod is deleted, TokenReview refuses its token while OIDC, by design, accepts it until exp", async () => {
    await setUp();
    const [review, oidc, both] = await Promise.all([verifierInPod(), verifierInPod({ method: 'oidc' }), verifierInPod({ method: 'oidc+tokenreview' })]);
    for (const verifier of [review, oidc, both]) expect(await outcome(verifier, ordersToken)).toBe('ok');
    await caller.delete();
    const deletedAt = performance.now();

    // Each verifier asks again once its cached answer (10 s) is stale; the API server answers
    // "not authenticated" once its own 10 s cache has let go of the token.
    await until('TokenReview refuses the deleted Pod\'s token', async () => (await outcome(review, ordersToken)) === 'TOKEN_REJECTED', CACHES_MS + 15_000, 250);
    const refusedAfter = performance.now() - deletedAt;
    await until("'oidc+tokenreview' refuses it too", async () => (await outcome(both, ordersToken)) === 'TOKEN_REJECTED', CACHES_MS + 15_000, 250);

    // OIDC cannot see the Pod: the signature, issuer, audience and expiry are all still good.
    const identity = await oidc.verify(ordersToken);
    expect(identity.pod).toEqual({ name: caller.name, uid: caller.uid });
    const expiresIn = identity.expiresAt!.getTime() - Date.now();
    expect(expiresIn).toBeGreaterThan(0);
    expect(await outcome(review, ordersToken)).toBe('TOKEN_REJECTED');
    console.log(
      `[cluster verify] caller pod deleted: TokenReview refused its token after ${(refusedAfter / 1000).toFixed(1)} s ` +
        `(bound: verifier cache 10 s + API server cache 10 s); OIDC still accepts it, for ${(expiresIn / 1000).toFixed(0)} s more (its exp)`,
    );
  });
});
