import { FileTokenSource } from '@podtoken/core';
import { tokenInterceptor, withTokenSource } from '@podtoken/undici';
import { Agent, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { defer } from '../helpers.js';
import { fileToken, startPod } from './support/kube.js';
import { expectNoTokenIn, expectOneRefreshPerRotation, observeSources } from './support/observe.js';
import { acceptedCalls, callAcrossRotations, expectNoneRefused } from './support/rotations.js';
import { httpClients, startVerifyingService } from './support/verifyingService.js';

// 7. @podtoken/undici against the service of test 5 (TokenReview and OIDC with the real API
// server): undici's own `request` through a dispatcher composed with the interceptor, and
// Node's global `fetch` through the global dispatcher, installed with undici's
// setGlobalDispatcher. Each client reads its own FileTokenSource of the same file, and what
// the two sources publish on node:diagnostics_channel, and their status() and readiness, are
// watched across the kubelet's real rotations.

const AUDIENCE = 'https://billing.podtoken.test';
const ROTATIONS = 4;

describe('undici request and the global fetch (@podtoken/undici) against a service that verifies with the real API server', () => {
  it(`0 refused across ${ROTATIONS} real rotations; one token:refreshed per rotation per source, status ok and ready throughout`, async () => {
    const service = await startVerifyingService(AUDIENCE);
    const pod = await startPod({
      prefix: 'undici',
      volumes: { billing: { mountPath: 'var/run/secrets/tokens', file: 'billing-token', audience: AUDIENCE, expirationSeconds: 600 } },
    });
    const kubelet = pod.kubelets['billing']!;

    const observation = observeSources();
    const sources = {
      request: new FileTokenSource({ path: kubelet.path, audience: AUDIENCE, name: 'undici-request' }),
      fetch: new FileTokenSource({ path: kubelet.path, audience: AUDIENCE, name: 'global-fetch' }),
    };
    defer(() => Promise.all([sources.request.close(), sources.fetch.close()]));
    await Promise.all([sources.request.ready(), sources.fetch.ready()]);
    observation.add(sources.request, sources.fetch);

    const origins = [service.url];
    const agent = new Agent();
    const dispatcher = agent.compose(tokenInterceptor(sources.request, { origins }));
    // The global dispatcher carries every fetch of this process (the test runner's too): it
    // is put back as it was after the test, whatever happens.
    const previous = getGlobalDispatcher();
    const globalAgent = new Agent();
    setGlobalDispatcher(withTokenSource(globalAgent, sources.fetch, { origins }));
    const restore = () => setGlobalDispatcher(previous);
    defer(() => Promise.all([agent.close(), globalAgent.close()]));
    defer(restore);

    const clients = httpClients(service, {
      request: (url) => request(url, { dispatcher }).then(async (response) => (await response.body.dump(), response.statusCode)),
      'global fetch': (url) => fetch(url).then(async (response) => (await response.arrayBuffer(), response.status)),
    });
    const { tally, ids, tokens } = await callAcrossRotations(kubelet, service, clients, ROTATIONS);
    observation.stop();

    expectNoneRefused(service, tally, ids);
    const mintedAt = kubelet.events.filter((event) => event.command === 'rotate').map((event) => event.claims!.iat);
    expect(mintedAt).toHaveLength(ROTATIONS);
    expectOneRefreshPerRotation(observation, ['undici-request', 'global-fetch'], mintedAt);
    expectNoTokenIn(
      observation.messages.map((m) => m.message),
      tokens,
    );

    // Put back, the global dispatcher sends no token: the one the calls carried came from ours.
    restore();
    const refusedBefore = service.counts.refused;
    expect((await fetch(`${service.url}/oidc`)).status).toBe(401);
    expect(service.counts.refused).toBe(refusedBefore + 1);
    expect(await fileToken(kubelet.path)).toBe(tokens.at(-1));

    const refreshes = ['undici-request', 'global-fetch'].map((name) => `${name} ${observation.refreshed(name).length}`).join(', ');
    console.log(
      `[cluster 7] across ${ROTATIONS} real rotations, 0 refused: ${acceptedCalls(tally)} calls accepted ` +
        `(service: ${service.counts.ok} verified, Node ${process.version}, its fetch on undici ${process.versions.undici}); token:refreshed (trigger event): ${refreshes}; ` +
        `status ok and ready in all ${observation.samples.taken} samples; ${observation.messages.length} diagnostics messages, none with a token`,
    );
  });
});
