import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { withTokenSource as withAxios } from '@podtoken/axios';
import { FileTokenSource } from '@podtoken/core';
import { withTokenSource as withFetch } from '@podtoken/fetch';
import { withTokenSource as withGot } from '@podtoken/got';
import axios from 'axios';
import got from 'got';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { defer, until } from '../helpers.js';
import { caPem, cluster, createNamespace, createServiceAccount, fileToken, kube, kubeOk, requestToken, startPod, tokenId } from './support/kube.js';

// 5. The HTTP adapters calling a small service that verifies each presented token against the
// real API server: once with TokenReview (audience-scoped), once with the API server's OIDC
// discovery document and JWKS (jose). Tokens rotate underneath; nothing may be refused.

const AUDIENCE = 'https://inventory.podtoken.test';
const ROTATIONS = 4;
const MODES = ['tokenreview', 'oidc'] as const;
type Mode = (typeof MODES)[number];

/**
 * The receiving service, as it would run in the cluster with its own ServiceAccount
 * (`system:auth-delegator` for TokenReview; discovery is open to every ServiceAccount).
 */
async function startVerifyingService() {
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

  const verify: Record<Mode, (token: string) => Promise<boolean>> = {
    async tokenreview(token) {
      const review = await kube('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [AUDIENCE] },
      }, credential);
      return review.status === 201 && review.body.status?.authenticated === true && review.body.status.audiences?.includes(AUDIENCE) === true;
    },
    async oidc(token) {
      return jwtVerify(token, jwks, { issuer: cluster.issuer, audience: AUDIENCE }).then(
        () => true,
        () => false,
      );
    },
  };
  const counts = { ok: 0, refused: 0 };
  const accepted: Record<Mode, Set<string>> = { tokenreview: new Set(), oidc: new Set() };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const mode = req.url?.slice(1) as Mode;
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    void (token !== undefined && mode in verify ? verify[mode](token) : Promise.resolve(false)).then((ok) => {
      if (ok) {
        counts.ok += 1;
        accepted[mode].add(tokenId(token!));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      } else {
        counts.refused += 1;
        res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, counts, accepted, verify };
}

describe('axios, got and fetch against a service that verifies with the real API server', () => {
  it(`0 refused across ${ROTATIONS} real rotations, with TokenReview and with OIDC discovery + JWKS`, async () => {
    const service = await startVerifyingService();
    const pod = await startPod({
      prefix: 'adapters',
      volumes: { inventory: { mountPath: 'var/run/secrets/tokens', file: 'inventory-token', audience: AUDIENCE, expirationSeconds: 600 } },
    });
    const kubelet = pod.kubelets['inventory']!;
    // Sanity: the service refuses the pod's default token (the API server's audience, not the service's).
    const defaultToken = await fileToken(pod.kubelet.path);
    expect([await service.verify.tokenreview(defaultToken), await service.verify.oidc(defaultToken)]).toEqual([false, false]);

    const source = new FileTokenSource({ path: kubelet.path, audience: AUDIENCE });
    defer(() => source.close());
    const [axiosClient, gotClient, fetchClient] = [withAxios(axios.create({ validateStatus: () => true }), source), withGot(got, source), withFetch(globalThis.fetch, source)];
    const clients = {
      axios: (url: string) => axiosClient.get(url).then((response) => response.status),
      got: (url: string) => gotClient.get(url, { throwHttpErrors: false, retry: { limit: 0 } }).then((response) => response.statusCode),
      fetch: (url: string) => fetchClient(url).then(async (response) => (await response.arrayBuffer(), response.status)),
    };
    const tally = new Map<string, { ok: number; refused: number; errors: string[] }>();
    let running = true;
    defer(() => void (running = false));
    const loops = Object.entries(clients).flatMap(([name, call]) =>
      MODES.map(async (mode) => {
        const counts = { ok: 0, refused: 0, errors: [] as string[] };
        tally.set(`${name} ${mode}`, counts);
        while (running) {
          try {
            if ((await call(`${service.url}/${mode}`)) === 200) counts.ok += 1;
            else counts.refused += 1;
          } catch (error) {
            counts.errors.push(error instanceof Error ? error.message : String(error));
          }
        }
      }),
    );

    const ids = [tokenId(await fileToken(kubelet.path))];
    for (let i = 1; i <= ROTATIONS; i++) {
      await sleep(500);
      expect((await kubelet.rotate()).swapped).toBe(true);
      const id = tokenId(await fileToken(kubelet.path));
      ids.push(id);
      await until(`rotation ${i}'s token accepted in both modes`, () => MODES.every((mode) => service.accepted[mode].has(id)));
    }
    await sleep(300);
    running = false;
    await Promise.all(loops);

    for (const [name, counts] of tally) {
      expect(counts.errors, name).toEqual([]);
      expect(counts.refused, `${name}: refused`).toBe(0);
      expect(counts.ok, `${name}: calls made`).toBeGreaterThan(0);
    }
    expect(service.counts.refused).toBe(0);
    for (const mode of MODES) expect([...service.accepted[mode]].sort()).toEqual([...ids].sort());
    console.log(
      `[cluster 5] across ${ROTATIONS} real rotations, 0 refused: ` +
        [...tally].map(([name, counts]) => `${name} ${counts.ok}`).join(', ') +
        ` calls accepted (service: ${service.counts.ok} verified, ${service.counts.refused} refused)`,
    );
  });
});

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
