import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import { expect } from 'vitest';
import { defer } from '../../helpers.js';
import { caPem, cluster, createNamespace, createServiceAccount, kube, kubeOk, requestToken, tokenId } from './kube.js';
import type { Receiver, VerifyMode } from './rotations.js';

// The receiving HTTP service of the adapter tests (5 and 7): it verifies each presented token
// against the real API server, with TokenReview (audience-scoped) at `/tokenreview` and with
// the API server's OIDC discovery document and JWKS (jose) at `/oidc`.

export interface VerifyingService extends Receiver {
  /** `http://127.0.0.1:<port>`: call `${url}/tokenreview` or `${url}/oidc`, with `?loop=<tag>` for `acceptedFrom`. */
  readonly url: string;
  /** The service's verdict on a token, without a request. */
  readonly verify: Record<VerifyMode, (token: string) => Promise<boolean>>;
}

/**
 * The receiving service, as it would run in the cluster with its own ServiceAccount
 * (`system:auth-delegator` for TokenReview; discovery is open to every ServiceAccount),
 * for tokens of `audience`. Closed after the test.
 */
export async function startVerifyingService(audience: string): Promise<VerifyingService> {
  const namespace = await createNamespace('verifier');
  await createServiceAccount(namespace, 'verifier');
  await kubeOk('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `${namespace}-auth-delegator` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
    subjects: [{ kind: 'ServiceAccount', name: 'verifier', namespace }],
  });
  const credential = await requestToken(namespace, 'verifier');

  const discovery = await kubeOk('GET', '/.well-known/openid-configuration', undefined, credential);
  expect(discovery.issuer).toBe(cluster.issuer);
  expect(discovery.jwks_uri).toBe(`${cluster.server}/openid/v1/jwks`);
  expect(discovery.id_token_signing_alg_values_supported).toEqual(['RS256']);
  // The JWKS is behind the API server's own CA (node:https: Node 20's fetch takes no CA) and authentication.
  const jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), {
    headers: { authorization: `Bearer ${credential}` },
    [customFetch]: (url: string, init: { headers: Headers }) => httpsGet(url, init.headers),
  });

  const verify: Record<VerifyMode, (token: string) => Promise<boolean>> = {
    async tokenreview(token) {
      const review = await kube('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [audience] },
      }, credential);
      return review.status === 201 && review.body.status?.authenticated === true && review.body.status.audiences?.includes(audience) === true;
    },
    async oidc(token) {
      return jwtVerify(token, jwks, { issuer: cluster.issuer, audience }).then(
        () => true,
        () => false,
      );
    },
  };
  const counts = { ok: 0, refused: 0 };
  const accepted: Record<VerifyMode, Set<string>> = { tokenreview: new Set(), oidc: new Set() };
  const acceptedFrom = new Map<string, Set<string>>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://service');
    const mode = url.pathname.slice(1) as VerifyMode;
    const loop = url.searchParams.get('loop');
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    void (token !== undefined && mode in verify ? verify[mode](token) : Promise.resolve(false)).then((ok) => {
      if (ok) {
        counts.ok += 1;
        accepted[mode].add(tokenId(token!));
        if (loop !== null) acceptedFrom.set(loop, (acceptedFrom.get(loop) ?? new Set()).add(tokenId(token!)));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      } else {
        counts.refused += 1;
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counts, accepted, acceptedFrom, verify };
}

/**
 * HTTP clients (each answering a URL with the response's status) as `callAcrossRotations`'
 * clients of `service`: 200 is accepted, 401 refused, anything else an error.
 */
export function httpClients(
  service: VerifyingService,
  clients: Record<string, (url: string) => Promise<number>>,
): Record<string, (mode: VerifyMode, tag: string) => Promise<boolean>> {
  return Object.fromEntries(
    Object.entries(clients).map(([name, call]) => [
      name,
      async (mode: VerifyMode, tag: string) => {
        const status = await call(`${service.url}/${mode}?loop=${encodeURIComponent(tag)}`);
        if (status === 200 || status === 401) return status === 200;
        throw new Error(`HTTP ${status}`);
      },
    ]),
  );
}

/** A GET through node:https with the API server's CA, answered as a fetch Response. */
function httpsGet(url: string, headers: Headers): Promise<Response> {
  return new Promise((resolve, reject) => {
    request(url, { ca: caPem, headers: Object.fromEntries(headers) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve(new Response(Buffer.concat(chunks), { status: res.statusCode ?? 500, headers: { 'content-type': String(res.headers['content-type'] ?? '') } })),
      );
    })
      .on('error', reject)
      .end();
  });
}
