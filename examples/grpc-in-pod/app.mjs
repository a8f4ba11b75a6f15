// A grpc-js client in a (simulated) pod.
//
// The part marked "the app" is all a real pod needs: a FileTokenSource on the projected
// token's path, the service's TLS credentials given to @podtoken/grpc's withTokenSource, and
// the client made with what it returns: call credentials that read the token from memory as
// each call goes out, and an interceptor that treats UNAUTHENTICATED as an HTTP client treats
// a 401 (the source re-reads; a unary call is sent once more if the token changed).
//
// The rest plays the cluster (startSimulatedPod, simulation.mjs): the service-account signer,
// the kubelet writing the projected volume with its atomic writer, a CA, and a gRPC server
// over TLS that verifies every call's token against the signer's JWKS.
//
// Time is compressed: tokens live 4 s and the kubelet replaces them every second.
// Token values are never printed.
//
//   pnpm --filter grpc-in-pod start      (builds the workspace packages first, then runs this)
//   node app.mjs --target orders.shop.svc:8443 --ca /etc/orders/ca.crt --token /var/run/secrets/tokens/orders-token

import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Client, credentials, makeGenericClientConstructor, Metadata, status } from '@grpc/grpc-js';
import { DIAGNOSTICS_CHANNELS, FileTokenSource } from '@podtoken/core';
import { withTokenSource } from '@podtoken/grpc';
import { startSimulatedPod } from '@podtoken/testing';
import { createTls, HEALTH_CHECK, startVerifyingServer } from './simulation.mjs';

const AUDIENCE = 'orders.shop.svc';

// A service without codegen: JSON messages. A generated client (grpc-tools, ts-proto,
// @grpc/proto-loader) takes the same credentials and interceptors.
const json = { serialize: (value) => Buffer.from(JSON.stringify(value)), deserialize: (bytes) => JSON.parse(bytes.toString('utf8')) };
export const ORDERS_SERVICE = {
  get: {
    path: '/shop.Orders/Get',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};
const OrdersClient = makeGenericClientConstructor(ORDERS_SERVICE, 'Orders');

/** One unary Get as a promise: the reply, or grpc-js' error (a ServiceError with `code`). */
function getOrder(client, id) {
  return new Promise((resolve, reject) => {
    client.get({ id }, { deadline: Date.now() + 10_000 }, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

/** The gRPC status of a settled call: `'OK'` or the code's name. */
async function outcome(call) {
  try {
    await call;
    return 'OK';
  } catch (error) {
    return status[error.code] ?? String(error.code);
  }
}

/** Runs `run` and collects the `podtoken:request:unauthorized` events the grpc adapter publishes meanwhile. */
async function unauthorizedEvents(run) {
  const events = [];
  const listener = (message) => {
    if (message.adapter === 'grpc') events.push({ retried: message.retried, reason: message.reason });
  };
  subscribe(DIAGNOSTICS_CHANNELS.requestUnauthorized, listener);
  try {
    return { result: await run(), events };
  } finally {
    unsubscribe(DIAGNOSTICS_CHANNELS.requestUnauthorized, listener);
  }
}

/**
 * Runs the demo and returns what it measured (see app.d.mts).
 *
 * @param {{ calls?: number, concurrency?: number, minRotations?: number, log?: (line: string) => void }} [options]
 */
export async function main({ calls = 400, concurrency = 4, minRotations = 3, log = console.log } = {}) {
  // The kubelet writes the first token, then a new one every second.
  const pod = await startSimulatedPod({ name: 'grpc-in-pod', audience: AUDIENCE, file: 'orders-token', expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start' });
  const { kubelet } = pod;
  const written = new Set(); // every token the kubelet wrote, to check that none was printed
  if (kubelet.last !== undefined) written.add(kubelet.last.token);
  const stopWatching = kubelet.onRotate((rotation) => written.add(rotation.token));
  const tls = createTls();
  let orders;
  let source;
  let client;
  try {
    orders = await startVerifyingServer({
      issuer: pod.issuer,
      audience: AUDIENCE,
      service: ORDERS_SERVICE,
      implementation: { get: (request, caller) => ({ id: request.id, state: 'shipped', caller }) },
      tls,
    });
    const caCertificate = Buffer.from(tls.ca); // in a pod: readFileSync('/etc/orders/ca.crt')

    // ---- the app ---------------------------------------------------------------------------
    source = new FileTokenSource({ path: pod.tokenPath, audience: AUDIENCE });
    const { credentials: channel, interceptors } = withTokenSource(credentials.createSsl(caCertificate), source);
    client = new OrdersClient(orders.address, channel, { interceptors }); // the token goes to this target only
    // -----------------------------------------------------------------------------------------

    // 1. Unary calls spread over several rotations.
    const firstRotation = kubelet.rotations;
    const perRotation = Math.ceil(calls / (minRotations + 1));
    let next = 0;
    let ok = 0;
    const failures = [];
    const worker = async () => {
      while (next < calls) {
        const index = next++;
        // pace the calls so that they span minRotations rotations
        while (Math.floor(index / perRotation) > kubelet.rotations - firstRotation) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        try {
          const reply = await getOrder(client, index);
          if (reply.id === index && reply.state === 'shipped') ok += 1;
          else failures.push('unexpected reply');
        } catch (error) {
          failures.push(status[error.code] ?? String(error.code));
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const rotations = kubelet.rotations - firstRotation;
    const server = orders.counts;
    const distinctTokens = new Set(orders.log.map((entry) => entry.tokenId)).size;

    // 2. The server refuses the token in use (its pod "was deleted"), and the kubelet writes a
    //    new one just before the refusal reaches the client: on UNAUTHENTICATED the
    //    interceptor makes the source re-read and sends the call once more, with the new token.
    await kubelet.stop();
    orders.revoke(source.current.value);
    orders.beforeNextRefusal(() => kubelet.rotate());
    let before = orders.counts.unauthorized;
    const atRotation = await unauthorizedEvents(() => outcome(getOrder(client, 'after-revoke')));
    const revoked = { status: atRotation.result, refused: orders.counts.unauthorized - before, retries: atRotation.events.filter((event) => event.retried).length };

    // 3. The server refuses the token and the kubelet has written no other: one refusal goes
    //    back to the caller, never a loop. The next token the kubelet writes is used at once.
    orders.revoke(source.current.value);
    before = orders.counts.unauthorized;
    const noNewToken = await unauthorizedEvents(() => outcome(getOrder(client, 'no-new-token')));
    const stale = { status: noNewToken.result, refused: orders.counts.unauthorized - before, retries: noNewToken.events.filter((event) => event.retried).length };
    await kubelet.rotate();
    const recovered = await outcome(getOrder(client, 'after-rotation'));

    // 4. A channel without TLS: the adapter refuses to put a token on it.
    let insecure = 'accepted';
    try {
      withTokenSource(credentials.createInsecure(), source);
    } catch (error) {
      insecure = error instanceof TypeError ? 'refused' : String(error);
    }

    const summary = { calls, ok, failures, server, rotations, distinctTokens, revoked, stale, recovered, insecure, printedTokens: 0 };
    const version = createRequire(import.meta.url)('@grpc/grpc-js/package.json').version;
    const lines = [
      `grpc-in-pod (@grpc/grpc-js ${version}, TLS with the simulated cluster's CA, node ${process.version})`,
      `  token file     ${pod.tokenPath} (the kubelet rotates it every second)`,
      `  unary calls    ${ok}/${calls} OK; the server saw ${server.ok} ok, ${server.unauthorized} refused, ${server.missing} without a token`,
      `  rotations      ${rotations} during the run; ${distinctTokens} distinct tokens reached the server`,
      `  revoked token  ${revoked.status} ${
        revoked.refused === 0 ? '(the watcher had already loaded the new token: no UNAUTHENTICATED)' : `after ${revoked.refused} × UNAUTHENTICATED and ${revoked.retries} retry with the new token`
      }`,
      `  no new token   ${stale.status} after ${stale.refused} refusal and ${stale.retries} retries (no loop); once the kubelet wrote the next token: ${recovered}`,
      `  without TLS    withTokenSource(credentials.createInsecure(), …) ${insecure === 'refused' ? 'throws: no token in plaintext' : insecure}`,
    ];
    if (failures.length > 0) lines.push(`  failures       ${failures.join(', ')}`);
    const printed = lines.join('\n');
    summary.printedTokens = [...written].filter((token) => printed.includes(token)).length;
    for (const line of lines) log(line);
    return summary;
  } finally {
    stopWatching();
    client?.close();
    await source?.close();
    await Promise.all([pod.close(), orders?.close()]); // pod.close() stops the kubelet and removes the folder
  }
}

/**
 * In a real pod: calls `method` (default grpc.health.v1.Health/Check) on `target` over TLS
 * (`ca`: a PEM file with the server's CA; default the system roots) with the projected token
 * at `token` (default: the ServiceAccount token), `rounds` times, `interval` ms apart. The
 * request is an empty protobuf message. Prints each status; resolves with the exit code: 0
 * when every call ended OK.
 *
 * @param {{ target: string, ca?: string, serverName?: string, token?: string, audience?: string, method?: string, rounds?: number, interval?: number, log?: (line: string) => void }} options
 */
export async function inCluster({ target, ca, serverName, token, audience, method = HEALTH_CHECK.path, rounds = 1, interval = 60_000, log = console.log }) {
  const source = new FileTokenSource({ path: token, audience });
  const tls = credentials.createSsl(ca === undefined ? null : readFileSync(ca));
  const { credentials: channel, interceptors } = withTokenSource(tls, source);
  const client = new Client(target, channel, {
    interceptors,
    ...(serverName === undefined ? {} : { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName }),
  });
  const raw = (bytes) => bytes;
  let failed = 0;
  try {
    for (let round = 1; round <= rounds; round += 1) {
      if (round > 1) await new Promise((resolve) => setTimeout(resolve, interval));
      const result = await new Promise((resolve) => {
        client.makeUnaryRequest(method, raw, raw, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 10_000 }, (error, reply) => resolve({ error, reply }));
      });
      const { state, expiresIn } = source.status();
      const tokenState = `source ${state}${expiresIn === undefined ? '' : `, token expires in ${Math.round(expiresIn / 1000)} s`}`;
      if (result.error) {
        failed += 1;
        // details come from the server (or the adapter, when it has no token); never a token
        log(`round ${round}: ${status[result.error.code] ?? result.error.code} ${JSON.stringify(result.error.details)} (${tokenState})`);
      } else {
        const health = method === HEALTH_CHECK.path ? ` ${['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'][result.reply[1] ?? 0] ?? 'UNKNOWN'}` : '';
        log(`round ${round}: OK${health} (${result.reply.length} bytes; ${tokenState})`);
      }
    }
  } finally {
    client.close();
    await source.close();
  }
  return failed === 0 ? 0 : 1;
}

/** `--name value` from argv, or undefined. */
function option(argv, name) {
  const index = argv.indexOf(name);
  return index === -1 ? undefined : argv[index + 1];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const target = option(argv, '--target');
  if (target !== undefined) {
    process.exitCode = await inCluster({
      target,
      ca: option(argv, '--ca'),
      serverName: option(argv, '--server-name'),
      token: option(argv, '--token'),
      audience: option(argv, '--audience'),
      method: option(argv, '--method'),
      rounds: Number(option(argv, '--rounds') ?? 1),
      interval: Number(option(argv, '--interval') ?? 60_000),
    });
  } else {
    const s = await main();
    const healthy =
      s.ok === s.calls &&
      s.server.unauthorized === 0 &&
      s.server.missing === 0 &&
      s.revoked.status === 'OK' &&
      s.revoked.refused <= 1 &&
      s.revoked.retries <= 1 &&
      s.stale.status === 'UNAUTHENTICATED' &&
      s.stale.refused === 1 &&
      s.recovered === 'OK' &&
      s.insecure === 'refused' &&
      s.printedTokens === 0;
    process.exitCode = healthy ? 0 : 1;
  }
}
