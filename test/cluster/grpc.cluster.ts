import { setTimeout as sleep } from 'node:timers/promises';
import {
  credentials,
  makeGenericClientConstructor,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ChannelCredentials,
  type Client,
  type ClientOptions,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import { DIAGNOSTICS_CHANNELS, FileTokenSource, type TokenInvalidatedMessage } from '@podtoken/core';
import { withTokenSource } from '@podtoken/grpc';
import { createTokenVerifier, isTokenProblem, isTokenVerificationError, type TokenVerifier } from '@podtoken/verify';
import { describe, expect, it } from 'vitest';
import { createCa, issueServerCert } from '../../packages/kubernetes/test/support/pki.js';
import { defer, until } from '../helpers.js';
import { fileToken, kubeOk, startPod, tokenId } from './support/kube.js';
import { expectNoTokenIn, expectOneRefreshPerRotation, observeSources, probeOverHttp } from './support/observe.js';
import { acceptedCalls, callAcrossRotations, expectNoneRefused, VERIFY_MODES, type Receiver, type VerifyMode } from './support/rotations.js';

// 8. @podtoken/grpc against a grpc-js service over TLS on 127.0.0.1 whose pod verifies each
// call's token with @podtoken/verify against the real API server (TokenReview, and OIDC
// discovery + JWKS, both set up the in-cluster way). Unary calls keep going while the
// kubelet's writer rotates the token: nothing may be refused, and core's diagnostics,
// status() and readiness say what happened. Then the caller's Pod is deleted: the
// UNAUTHENTICATED reaches the caller after one request (the token is unchanged: no retry),
// with one podtoken:request:unauthorized event, and nothing loops.

const AUDIENCE = 'https://orders.podtoken.test';
const ROTATIONS = 4;
// The verifier reuses a TokenReview's "yes" for 10 s; the API server caches one for 10 s too.
const CACHES_MS = 10_000 + 10_000;

// JSON messages through hand-written serializers: a service without codegen.
const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as unknown,
};
const ORDERS_SERVICE = {
  get: {
    path: '/podtoken.cluster.Orders/Get',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};
interface GetRequest {
  /** How the service verifies this call's token. */
  mode: VerifyMode;
  /** The caller's loop, for the service's `acceptedFrom`. */
  loop?: string;
}
interface GetReply {
  caller: string;
}
type OrdersClient = Client & {
  get(request: GetRequest, callback: (error: ServiceError | null, reply?: GetReply) => void): unknown;
};
const OrdersClient = makeGenericClientConstructor(ORDERS_SERVICE, 'Orders') as unknown as new (address: string, credentials: ChannelCredentials, options?: ClientOptions) => OrdersClient;

function get(client: OrdersClient, mode: VerifyMode, loop?: string): Promise<GetReply> {
  return new Promise((resolve, reject) => client.get({ mode, ...(loop === undefined ? {} : { loop }) }, (error, reply) => (error ? reject(error) : resolve(reply!))));
}

interface OrdersService extends Receiver {
  readonly address: string;
  readonly ca: string;
  /** Calls that reached the service, in order: never a token, its id. */
  readonly calls: Array<{ mode: VerifyMode; tokenId: string | undefined; outcome: string }>;
  readonly verifiers: Record<VerifyMode, TokenVerifier>;
}

/**
 * The service's pod (its ServiceAccount bound to `system:auth-delegator`), its verifiers set up
 * the in-cluster way, and its gRPC server over TLS on 127.0.0.1. Closed after the test.
 */
async function startOrdersService(): Promise<OrdersService> {
  const pod = await startPod({ prefix: 'grpc-svc', serviceAccount: 'orders' });
  await kubeOk('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: `tokenreview-${pod.namespace}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
    subjects: [{ kind: 'ServiceAccount', name: 'orders', namespace: pod.namespace }],
  });
  pod.useServiceEnv();
  const verifiers: Record<VerifyMode, TokenVerifier> = {
    tokenreview: createTokenVerifier({ audiences: AUDIENCE, root: pod.root }),
    oidc: createTokenVerifier({ audiences: AUDIENCE, root: pod.root, method: 'oidc' }),
  };
  defer(() => Promise.all(VERIFY_MODES.map((mode) => verifiers[mode].close())));
  await Promise.all(VERIFY_MODES.map((mode) => verifiers[mode].ready()));

  const counts = { ok: 0, refused: 0 };
  const accepted: Record<VerifyMode, Set<string>> = { tokenreview: new Set(), oidc: new Set() };
  const acceptedFrom = new Map<string, Set<string>>();
  const calls: OrdersService['calls'] = [];
  const server = new Server();
  server.addService(ORDERS_SERVICE, {
    get(call: ServerUnaryCall<GetRequest, GetReply>, callback: sendUnaryData<GetReply>) {
      const { mode, loop } = call.request;
      const header = call.metadata.get('authorization')[0];
      const token = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header)?.[1] : undefined;
      const id = token === undefined ? undefined : tokenId(token);
      void verifiers[mode].verify(token ?? '').then(
        (identity) => {
          counts.ok += 1;
          accepted[mode].add(id!);
          if (loop !== undefined) acceptedFrom.set(loop, (acceptedFrom.get(loop) ?? new Set()).add(id!));
          calls.push({ mode, tokenId: id, outcome: 'ok' });
          callback(null, { caller: identity.username });
        },
        (error: unknown) => {
          const problem = isTokenVerificationError(error) && isTokenProblem(error);
          if (problem) counts.refused += 1;
          calls.push({ mode, tokenId: id, outcome: isTokenVerificationError(error) ? error.code : 'error' });
          const trailers = new Metadata();
          trailers.set('www-authenticate', 'Bearer error="invalid_token"');
          callback({ code: problem ? status.UNAUTHENTICATED : status.UNAVAILABLE, details: problem ? 'invalid token' : 'cannot verify now', metadata: trailers });
        },
      );
    },
  });
  const ca = createCa('podtoken cluster grpc CA');
  const cert = issueServerCert(ca);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      ServerCredentials.createSsl(null, [{ private_key: Buffer.from(cert.key), cert_chain: Buffer.from(cert.cert) }], false),
      (error, bound) => (error ? reject(error) : resolve(bound)),
    ),
  );
  defer(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return { address: `127.0.0.1:${port}`, ca: ca.certPem, counts, accepted, acceptedFrom, calls, verifiers };
}

describe('@podtoken/grpc against a gRPC service that verifies with the real API server', () => {
  it(`0 refused across ${ROTATIONS} real rotations; after the Pod is deleted, UNAUTHENTICATED reaches the caller after one request, one event, nothing loops`, async () => {
    const service = await startOrdersService();
    const caller = await startPod({
      prefix: 'grpc-caller',
      serviceAccount: 'checkout',
      volumes: { orders: { mountPath: 'var/run/secrets/tokens', file: 'orders-token', audience: AUDIENCE, expirationSeconds: 600 } },
    });
    const kubelet = caller.kubelets['orders']!;

    const observation = observeSources();
    const source = new FileTokenSource({ path: kubelet.path, audience: AUDIENCE, name: 'orders' });
    defer(() => source.close());
    await source.ready();
    observation.add(source);
    const { credentials: channel, interceptors } = withTokenSource(credentials.createSsl(Buffer.from(service.ca)), source);
    // The certificate names 127.0.0.1 and localhost; TLS's server name is the host name (an IP there is deprecated).
    const client = new OrdersClient(service.address, channel, { interceptors, 'grpc.ssl_target_name_override': 'localhost' });
    defer(() => client.close());

    // Across real rotations: every call accepted, in both modes.
    const { tally, ids, tokens } = await callAcrossRotations(
      kubelet,
      service,
      {
        grpc: (mode, tag) =>
          get(client, mode, tag).then(
            (reply) => {
              expect(reply.caller).toBe(`system:serviceaccount:${caller.namespace}:checkout`);
              return true;
            },
            (error: ServiceError) => {
              if (error.code === status.UNAUTHENTICATED) return false;
              throw error;
            },
          ),
      },
      ROTATIONS,
    );
    expectNoneRefused(service, tally, ids);
    const mintedAt = kubelet.events.filter((event) => event.command === 'rotate').map((event) => event.claims!.iat);
    expect(mintedAt).toHaveLength(ROTATIONS);
    expectOneRefreshPerRotation(observation, ['orders'], mintedAt);
    expect(observation.unauthorized()).toEqual([]);
    const rotationSamples = observation.samples.taken;

    // The caller's Pod is deleted; the service's TokenReview refuses its token once the
    // verifier's and the API server's caches let go (the verifier is asked directly: the
    // client sends nothing meanwhile).
    await caller.delete();
    const deletedAt = performance.now();
    const token = await fileToken(kubelet.path);
    expect(token).toBe(tokens.at(-1));
    await until(
      'the TokenReview verifier refuses the deleted Pod\'s token',
      () => service.verifiers.tokenreview.verify(token).then(() => false, (error: unknown) => isTokenVerificationError(error) && error.code === 'TOKEN_REJECTED'),
      CACHES_MS + 15_000,
      250,
    );
    const refusedAfter = performance.now() - deletedAt;
    // The kubelet cannot renew it: the file keeps the refused token.
    expect((await kubelet.rotate()).error).toMatch(/not found/i);

    const refusals = [];
    for (let i = 0; i < 3; i++) {
      const [reached, events] = [service.calls.length, observation.messages.length];
      const error = await get(client, 'tokenreview').then(
        () => undefined,
        (caught: ServiceError) => caught,
      );
      expect(error?.code, 'the caller gets UNAUTHENTICATED').toBe(status.UNAUTHENTICATED);
      expect(error?.details).toBe('invalid token');
      const published = observation.messages.slice(events);
      refusals.push({
        requests: service.calls.length - reached,
        outcomes: service.calls.slice(reached).map((call) => call.outcome),
        unauthorized: published.filter((m) => m.channel === DIAGNOSTICS_CHANNELS.requestUnauthorized).map((m) => m.message),
        invalidated: published.filter((m) => m.channel === DIAGNOSTICS_CHANNELS.tokenInvalidated).map((m) => (m.message as TokenInvalidatedMessage).outcome),
        error,
      });
    }
    for (const [i, refusal] of refusals.entries()) {
      // The file still holds the refused token: the re-read finds nothing newer, so no retry.
      expect(refusal, `refused call ${i + 1}`).toMatchObject({
        requests: 1,
        outcomes: ['TOKEN_REJECTED'],
        unauthorized: [{ adapter: 'grpc', source: { name: 'orders', path: kubelet.path }, retried: false, reason: 'token-unchanged' }],
      });
    }
    // The first refusal re-read the file; later ones within core's 1 s cooldown may be answered by that read.
    expect(refusals[0]!.invalidated).toEqual(['unchanged']);
    for (const refusal of refusals.slice(1)) expect([['unchanged'], ['cooldown']]).toContainEqual(refusal.invalidated);

    // Nothing while idle: no request, no message.
    const [reachedIdle, eventsIdle] = [service.calls.length, observation.messages.length];
    await sleep(1_500);
    expect([service.calls.length, observation.messages.length], 'no requests or messages while idle').toEqual([reachedIdle, eventsIdle]);

    // The source cannot know the Pod is gone: the token it serves is within its 600 s, so it
    // stays ok and ready (it would turn expired, and not ready, at exp: out of this tier's
    // reach, as the API server mints nothing shorter than 10 minutes).
    const afterDeletion = source.status();
    expect(afterDeletion).toMatchObject({ state: 'ok', serving: true });
    const probe = await probeOverHttp(observation.probe);
    expect(probe.status).toBe(200);
    expect(probe.report).toMatchObject({ ready: true, failing: [], sources: [{ name: 'orders', state: 'ok', serving: true }] });
    // OIDC, by design, still accepts it (until exp): the same channel, the other mode.
    expect(await get(client, 'oidc')).toEqual({ caller: `system:serviceaccount:${caller.namespace}:checkout` });
    observation.stop();
    expect([...observation.states.get('orders')!.keys()], 'status() before and after the deletion').toEqual(['ok']);
    expect(observation.samples.notReady).toBe(0);

    expectNoTokenIn(
      [...observation.messages.map((m) => m.message), ...refusals.map((r) => r.error), probe.text, afterDeletion],
      tokens,
    );
    console.log(
      `[cluster 8] across ${ROTATIONS} real rotations, 0 refused: ${acceptedCalls(tally)} unary calls accepted; ` +
        `token:refreshed (trigger event) ${observation.refreshed('orders').length}, status ok and ready in all ${rotationSamples} samples (and the ${observation.samples.taken - rotationSamples} after). ` +
        `Pod deleted: TokenReview refused its token after ${(refusedAfter / 1000).toFixed(1)} s; each call then got UNAUTHENTICATED after ` +
        `${refusals.map((r) => r.requests).join('/')} request(s) and ${refusals.map((r) => r.unauthorized.length).join('/')} request:unauthorized event(s) ` +
        `(token-unchanged), none while idle; status ${afterDeletion.state}, readiness ${probe.status} (token valid ${Math.round(afterDeletion.expiresIn! / 1000)} s more); ` +
        `${observation.messages.length} diagnostics messages, none with a token`,
    );
  });
});
