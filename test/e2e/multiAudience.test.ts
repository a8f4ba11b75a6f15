// A pod holding two audience-specific tokens in two mount paths (the default token for the
// API server, a projected token for Vault), two sources, two clients: each server must see
// only tokens for its own audience, across rotations of both.
import { createTokenSources } from '@podtoken/core';
import { withTokenSource as withAxios } from '@podtoken/axios';
import { withTokenSource as withFetch } from '@podtoken/fetch';
import { createIssuer, FakeKubelet, ProjectedVolume, startTokenServer, tokenId, type TokenServer } from '@podtoken/testing';
import axios from 'axios';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { defer, tempDir } from '../helpers.js';

it('two audiences from two mount paths: each server sees only its own tokens, across rotations', async () => {
  const root = await tempDir('podtoken-pod-');
  const issuer = await createIssuer();
  const apiAudience = issuer.issuer;

  const serviceAccount = new ProjectedVolume({ dir: join(root, 'var/run/secrets/kubernetes.io/serviceaccount') });
  const tokens = new ProjectedVolume({ dir: join(root, 'var/run/secrets/tokens') });
  const apiKubelet = new FakeKubelet({ volume: serviceAccount, issuer, expirationSeconds: 2, files: { namespace: 'shop' } });
  const vaultKubelet = new FakeKubelet({ volume: tokens, issuer, file: 'vault-token', audience: 'vault', expirationSeconds: 2 });
  await Promise.all([apiKubelet.start(), vaultKubelet.start()]);
  defer(() => Promise.all([apiKubelet.stop(), vaultKubelet.stop()]));

  const apiServer = await startTokenServer({ issuer, audience: apiAudience });
  const vaultServer = await startTokenServer({ issuer, audience: 'vault' });
  defer(() => Promise.all([apiServer.close(), vaultServer.close()]));

  const sources = createTokenSources({
    kubernetes: { path: apiKubelet.path, audience: apiAudience },
    vault: { path: vaultKubelet.path, audience: 'vault' },
  });
  defer(() => sources.close());
  await sources.ready();

  const api = withAxios(axios.create({ baseURL: apiServer.url }), sources.get('kubernetes'), { origins: [apiServer.origin] });
  const vault = withFetch(fetch, sources.get('vault'), { origins: [vaultServer.origin] });

  // Requests to both for at least two rotations of each token.
  const apiSeen = new Set<string>();
  const vaultSeen = new Set<string>();
  apiKubelet.onRotate((rotation) => apiSeen.add(tokenId(rotation.token)));
  vaultKubelet.onRotate((rotation) => vaultSeen.add(tokenId(rotation.token)));
  const deadline = Date.now() + 20_000;
  let requests = 0;
  while ((apiKubelet.rotations < 3 || vaultKubelet.rotations < 3) && Date.now() < deadline) {
    const [a, v] = await Promise.all([api.get('/api/v1/namespaces/shop/pods'), vault(`${vaultServer.url}v1/auth/kubernetes/login`, { method: 'POST', body: '{}' })]);
    expect(a.status).toBe(200);
    expect(v.status).toBe(200);
    requests += 1;
  }
  expect(apiKubelet.rotations).toBeGreaterThanOrEqual(3);
  expect(vaultKubelet.rotations).toBeGreaterThanOrEqual(3);

  const summary = (server: TokenServer) => JSON.stringify(server.counts);
  console.log(`multi-audience: ${requests} requests to each server over ${apiKubelet.rotations}/${vaultKubelet.rotations} rotations; api ${summary(apiServer)}, vault ${summary(vaultServer)}`);
  for (const server of [apiServer, vaultServer]) {
    expect(server.counts).toEqual({ ok: requests, unauthorized: 0, missing: 0 });
  }
  // The servers verify `aud`, so the counts already say it; the token ids say it again.
  const apiIds = new Set(apiServer.log.map((entry) => entry.tokenId));
  const vaultIds = new Set(vaultServer.log.map((entry) => entry.tokenId));
  expect([...apiIds].some((id) => vaultIds.has(id))).toBe(false);
  expect([...apiIds].every((id) => id !== undefined && !vaultSeen.has(id))).toBe(true);
  expect([...vaultIds].every((id) => id !== undefined && !apiSeen.has(id))).toBe(true);
  expect(apiIds.size).toBeGreaterThanOrEqual(2);
  expect(vaultIds.size).toBeGreaterThanOrEqual(2);
});
