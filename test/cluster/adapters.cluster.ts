import { withTokenSource as withAxios } from '@podtoken/axios';
import { FileTokenSource } from '@podtoken/core';
import { withTokenSource as withFetch } from '@podtoken/fetch';
import { withTokenSource as withGot } from '@podtoken/got';
import axios from 'axios';
import got from 'got';
import { describe, expect, it } from 'vitest';
import { defer } from '../helpers.js';
import { fileToken, startPod } from './support/kube.js';
import { acceptedCalls, callAcrossRotations, expectNoneRefused } from './support/rotations.js';
import { httpClients, startVerifyingService } from './support/verifyingService.js';

// 5. The HTTP adapters calling a small service that verifies each presented token against the
// real API server: once with TokenReview (audience-scoped), once with the API server's OIDC
// discovery document and JWKS (jose). Tokens rotate underneath; nothing may be refused.
// (undici's request and the global fetch through @podtoken/undici: clients.cluster.ts.)

const AUDIENCE = 'https://inventory.podtoken.test';
const ROTATIONS = 4;

describe('axios, got and fetch against a service that verifies with the real API server', () => {
  it(`0 refused across ${ROTATIONS} real rotations, with TokenReview and with OIDC discovery + JWKS`, async () => {
    const service = await startVerifyingService(AUDIENCE);
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
    const clients = httpClients(service, {
      axios: (url) => axiosClient.get(url).then((response) => response.status),
      got: (url) => gotClient.get(url, { throwHttpErrors: false, retry: { limit: 0 } }).then((response) => response.statusCode),
      fetch: (url) => fetchClient(url).then(async (response) => (await response.arrayBuffer(), response.status)),
    });
    const { tally, ids } = await callAcrossRotations(kubelet, service, clients, ROTATIONS);

    expectNoneRefused(service, tally, ids);
    console.log(
      `[cluster 5] across ${ROTATIONS} real rotations, 0 refused: ` +
        acceptedCalls(tally) +
        ` calls accepted (service: ${service.counts.ok} verified, ${service.counts.refused} refused)`,
    );
  });
});
