// verify-service against a simulated cluster, called by examples/axios-in-pod.
//
// The test kit plays the cluster: a ServiceAccount signer, and the kubelet writing a caller
// pod's projected token for this service's audience (tokens live 4 s, replaced every
// second). Its verifying server also publishes the signer's key set, which the service
// checks tokens with (OIDC with `jwksUri`: no API server here). axios-in-pod's callService()
// is the caller. Then three callers that must be refused. Token values are never printed.

import { callService } from 'axios-in-pod/app.mjs';
import { createTokenVerifier } from '@podtoken/verify';
import { createIssuer, startSimulatedPod } from '@podtoken/testing';
import { DEFAULT_AUDIENCE, startVerifyService } from './service.mjs';

/**
 * Runs the simulation and returns what it saw (see simulate.d.mts).
 *
 * @param {{ requests?: number, interval?: number, log?: (line: string) => void }} [options]
 */
export async function simulate({ requests = 120, interval = 40, log = console.log } = {}) {
  let keys = { keys: [] };
  const pod = await startSimulatedPod({
    name: 'verify-service-caller',
    audience: DEFAULT_AUDIENCE,
    file: 'verify-token',
    expirationSeconds: 4,
    rotateAfter: 0.25,
    kubelet: 'start',
    server: {
      handler: (request, response, { url }) => {
        if (url.pathname !== '/openid/v1/jwks') return false;
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify(keys));
        return true;
      },
    },
  });
  keys = pod.issuer.jwks;
  const verifier = createTokenVerifier({
    audiences: DEFAULT_AUDIENCE,
    method: 'oidc',
    issuer: pod.issuer.issuer,
    jwksUri: `${pod.server.origin}/openid/v1/jwks`,
    clockTolerance: 0,
  });
  const lines = [];
  const service = await startVerifyService({ verifier, log: (line) => lines.push(line) });
  try {
    // 1. axios-in-pod calls the service across several rotations.
    const firstRotation = pod.kubelet.rotations;
    const calls = await callService({ target: service.url, tokenPath: pod.tokenPath, audience: DEFAULT_AUDIENCE, requests, interval });
    const rotations = pod.kubelet.rotations - firstRotation;

    // 2. Callers that must be refused: a token for another audience (from the same cluster),
    //    a token from another cluster, and no token at all.
    const otherAudience = await pod.issuer.mint({ audience: 'https://inventory.internal.example' });
    const otherCluster = await (await createIssuer()).mint({ audience: DEFAULT_AUDIENCE });
    const probe = async (authorization) => {
      const response = await fetch(`${service.url}whoami`, authorization === undefined ? {} : { headers: { authorization } });
      return { status: response.status, challenge: response.headers.get('www-authenticate'), body: await response.json() };
    };
    const refused = {
      otherAudience: await probe(`Bearer ${otherAudience}`),
      otherCluster: await probe(`Bearer ${otherCluster}`),
      noToken: await probe(undefined),
    };

    const stats = service.stats;
    const healthy =
      calls.statuses['200'] === requests &&
      Object.values(refused).every((answer) => answer.status === 401) &&
      !lines.some((line) => line.includes(otherAudience) || line.includes(otherCluster));
    log(`verify-service (simulated cluster), node ${process.version}`);
    log(`  axios-in-pod    ${calls.statuses['200'] ?? 0}/${requests} answered 200 across ${rotations} token rotations; the service saw ${calls.callers.join(', ')}`);
    for (const [name, answer] of Object.entries(refused)) log(`  ${name.padEnd(15)} ${answer.status} ${answer.challenge} ${JSON.stringify(answer.body)}`);
    log(`  service log     ${lines.length} refusals, each with its reason (no token):`);
    for (const line of lines) log(`    ${line}`);
    return { requests, calls, rotations, refused, stats, lines, healthy };
  } finally {
    await service.close();
    await verifier.close();
    await pod.close();
  }
}
