import { createRequire } from 'node:module';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { FileTokenSource, isTokenSourceError } from '@podtoken/core';
import { withTokenSource } from '@podtoken/grpc';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { echo, EchoClient, startGrpcTokenServer, type GrpcTokenServer } from '../../packages/grpc/test/support.js';
import { leakingRenderings, RENDERING_COUNT } from './adversarial/renderings.js';
import { defer, percentile, sleep, tempDir } from './helpers.js';
import { startKubeletThread } from './kubeletThread.js';

// The reliability suite for @podtoken/grpc. gRPC has no redirects, so of the adversarial
// corpus two parts apply: errors that never hold token text (a hostile server that quotes the
// token in its refusals, TLS failures, deadlines, a source with no token), each rendered every
// way a log line could; and a rotation storm: a fresh token every 20 ms, each revoked 200 ms
// after the swap that replaced it, 50 concurrent unary callers on 5 channels sharing one
// FileTokenSource, as in rotationStorm.test.ts (same premise: a call that took longer than
// the revocation window may be refused whatever the source does; those are printed, not asserted).

const AUDIENCE = 'storm';
const STORM_MS = 6_000;
const ROTATE_EVERY_MS = 20;
const REVOKE_AFTER_MS = 200;
const CALLERS = 50;
const CHANNELS = 5;

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

async function podSource(dir: string, token: string): Promise<{ volume: ProjectedVolume; source: FileTokenSource }> {
  const volume = new ProjectedVolume({ dir });
  await volume.write({ token });
  const source = new FileTokenSource({ path: volume.path('token'), audience: AUDIENCE });
  defer(() => source.close());
  await source.ready();
  return { volume, source };
}

function failure(promise: Promise<unknown>): Promise<ServiceError> {
  return promise.then(
    () => {
      throw new Error('the call succeeded');
    },
    (error: unknown) => error as ServiceError,
  );
}

/** `CHANNELS` clients through @podtoken/grpc on one source, connected before the storm. */
async function connectedClients(server: GrpcTokenServer, source: FileTokenSource): Promise<InstanceType<typeof EchoClient>[]> {
  const tls = credentials.createSsl(Buffer.from(server.ca!));
  const clients = Array.from({ length: CHANNELS }, () => {
    const { credentials: creds, interceptors } = withTokenSource(tls, source);
    return new EchoClient(server.address, creds, { interceptors });
  });
  defer(() => clients.forEach((c) => c.close()));
  await Promise.all(clients.map((c) => echo(c)));
  server.reset();
  return clients;
}

/**
 * `CALLERS` unary callers on `clients` for `durationMs`, each pausing `pause()` ms between
 * calls; counts outcomes (codes only, never a message) and call latencies. A refusal of a call
 * that took longer than `slowMs` is also counted as slow.
 */
async function storm(clients: InstanceType<typeof EchoClient>[], durationMs: number, pause: () => number, slowMs: number) {
  const tally = { ok: 0, refused: 0, refusedSlow: 0, other: [] as string[] };
  const latencies: number[] = [];
  const end = performance.now() + durationMs;
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, i) => {
      while (performance.now() < end) {
        await sleep(pause());
        const started = performance.now();
        try {
          await echo(clients[i % CHANNELS]!);
          tally.ok += 1;
        } catch (error) {
          const code = (error as ServiceError).code;
          if (code === status.UNAUTHENTICATED) {
            tally.refused += 1;
            if (performance.now() - started > slowMs) tally.refusedSlow += 1;
          } else tally.other.push(isTokenSourceError(error) ? error.code : String(code));
        }
        latencies.push(performance.now() - started);
      }
    }),
  );
  return { tally, latencies };
}

describe('grpc: errors never hold token text', () => {
  it('every rendering of every error a grpc call ends with is clean', { timeout: 60_000 }, async () => {
    const server = await startGrpcTokenServer({ issuer, audience: AUDIENCE });
    defer(() => server.close());
    const plain = await startGrpcTokenServer({ issuer, audience: AUDIENCE, tls: false });
    defer(() => plain.close());
    const tokens = await Promise.all([0, 1, 2, 3].map(() => issuer.mint({ audience: AUDIENCE, expirationSeconds: 600 })));
    const { volume, source } = await podSource(await tempDir(), tokens[0]!);
    const tls = credentials.createSsl(Buffer.from(server.ca!));
    const clients: EchoClient[] = [];
    defer(() => clients.forEach((c) => c.close()));
    const make = (address: string, channel: ReturnType<typeof credentials.createSsl>, allowInsecure = false) => {
      const { credentials: creds, interceptors } = withTokenSource(channel, source, { allowInsecure });
      const made = new EchoClient(address, creds, { interceptors });
      clients.push(made);
      return made;
    };
    const streamError = async (call: AsyncIterable<unknown>) => {
      try {
        for await (const _ of call) continue;
      } catch (error) {
        return error as ServiceError;
      }
      throw new Error('the stream ended without an error');
    };
    const refuseAll = async (target: GrpcTokenServer) => {
      for (const token of tokens) target.revoke(token);
      target.echoTokenInRefusals = true;
    };

    const cases: Array<{ name: string; run: () => Promise<ServiceError>; code: number }> = [
      { name: 'TLS: server certificate not trusted', code: status.UNAVAILABLE, run: () => failure(echo(make(server.address, credentials.createSsl()), {}, { deadline: Date.now() + 5_000 })) },
      { name: 'deadline exceeded', code: status.DEADLINE_EXCEEDED, run: () => failure(echo(make(server.address, tls), { delayMs: 300 }, { deadline: Date.now() + 50 })) },
      {
        name: 'unary, hostile server refuses both attempts quoting the token',
        code: status.UNAUTHENTICATED,
        run: async () => {
          await refuseAll(server);
          await volume.write({ token: tokens[1]! }); // a second token for the retry, also refused
          return failure(echo(make(server.address, tls)));
        },
      },
      { name: 'server streaming, hostile refusal', code: status.UNAUTHENTICATED, run: () => streamError(make(server.address, tls).watch({ count: 2 })) },
      {
        name: 'bidirectional, hostile refusal',
        code: status.UNAUTHENTICATED,
        run: () => {
          const call = make(server.address, tls).chat();
          call.write({ text: 'x' });
          call.end();
          return streamError(call);
        },
      },
      {
        name: 'allowInsecure unary, hostile refusal',
        code: status.UNAUTHENTICATED,
        run: async () => {
          await refuseAll(plain);
          return failure(echo(make(plain.address, credentials.createInsecure(), true)));
        },
      },
      {
        name: 'source closed',
        code: status.UNAVAILABLE,
        run: async () => {
          const client = make(server.address, tls);
          await source.close();
          return failure(echo(client));
        },
      },
    ];

    const rows: string[] = [];
    for (const c of cases) {
      const error = await c.run();
      expect(error.code, c.name).toBe(c.code);
      expect(error).toBeInstanceOf(Error);
      expect(error.metadata).toBeInstanceOf(Metadata);
      const leaks = leakingRenderings(error, tokens, true);
      rows.push(`${c.name}: ${leaks.length === 0 ? 'clean' : `LEAKS in ${leaks.join(', ')}`}`);
      expect(leaks, c.name).toEqual([]);
    }
    console.log(
      `grpc adversarial: ${cases.length} cases x ${RENDERING_COUNT.deep} renderings, ${rows.filter((r) => r.endsWith('clean')).length}/${cases.length} clean (@grpc/grpc-js ${grpcVersion()})`,
    );
  });
});

/** The installed grpc-js version, for the summary line. */
function grpcVersion(): string {
  return (createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string }).version;
}

describe('grpc: rotation storm', () => {
  // The storm above rarely makes the server refuse anything: the source picks each token up
  // long before its revocation. Here each token is revoked the moment the kubelet thread
  // reports its swap, so calls sent with it just before are refused while they fly: the
  // interceptor's retry runs under load, and each retried call must end well.
  it('each token revoked at its swap: refused calls are retried once with the fresh token and end well', { timeout: 60_000 }, async () => {
    const EVERY = 200;
    const DURATION = 5_000;
    const server = await startGrpcTokenServer({ issuer, audience: AUDIENCE });
    defer(() => server.close());
    const dir = await tempDir();
    const count = Math.ceil(DURATION / EVERY) + 1;
    const tokens = await Promise.all(Array.from({ length: count + 1 }, () => issuer.mint({ audience: AUDIENCE, expirationSeconds: 600 })));
    const { source } = await podSource(dir, tokens[0]!);
    let previous = tokens[0]!;
    let rotations = 0;
    const writer = startKubeletThread({
      dir,
      tokens: tokens.slice(1),
      every: EVERY,
      onRotate: ({ index }) => {
        rotations += 1;
        server.revoke(previous);
        previous = tokens[index + 1]!;
      },
    });
    defer(() => writer.stop());
    const clients = await connectedClients(server, source);
    const { tally } = await storm(clients, DURATION, () => 5 + Math.random() * 20, EVERY);
    await writer.stop();
    const revoked = server.log.filter((e) => e.reason === 'revoked').length;
    console.log(
      `grpc revoked-at-swap storm: ${rotations} rotations in ${DURATION / 1000} s, ${CALLERS} callers: ${tally.ok} ok, ${tally.refused} refused ` +
        `(${tally.refusedSlow} slower than ${EVERY} ms); server refused ${revoked} calls with a just-revoked token, each retried by the interceptor; ${server.counts.missing} without a token`,
    );
    expect(rotations).toBeGreaterThan(10);
    expect(tally.other).toEqual([]);
    expect(server.counts.missing).toBe(0);
    // Every refusal is of a revoked token, and the re-read after it always finds a newer one
    // (a token is revoked only after its successor is on disk): so each call that reaches its
    // caller refused was refused twice, once per attempt, and the rest were saved by the retry.
    // (On a loaded machine the app's loop can learn of two swaps at once, revoking a retry's
    // token too: such calls are counted, not forbidden; the retry must still have run.)
    expect(server.log.filter((e) => e.outcome !== 'ok' && e.reason !== 'revoked')).toEqual([]);
    expect(revoked, 'each call that ended refused was sent twice').toBeGreaterThanOrEqual(2 * tally.refused);
    expect(revoked - 2 * tally.refused, 'calls refused in flight and saved by the retry').toBeGreaterThan(0);
  });

  it(`${CALLERS} unary callers, a rotation every ${ROTATE_EVERY_MS} ms for ${STORM_MS / 1000} s, each token revoked ${REVOKE_AFTER_MS} ms after its swap: no call refused`, { timeout: 60_000 }, async () => {
    const server = await startGrpcTokenServer({ issuer, audience: AUDIENCE });
    defer(() => server.close());
    const dir = await tempDir();
    const count = Math.ceil(STORM_MS / ROTATE_EVERY_MS) + 1;
    const tokens = await Promise.all(Array.from({ length: count + 1 }, () => issuer.mint({ audience: AUDIENCE, expirationSeconds: 600 })));
    const { source } = await podSource(dir, tokens[0]!);
    const errors = new Map<string, number>();
    source.onError((error) => errors.set(error.code, (errors.get(error.code) ?? 0) + 1));

    const timers = new Set<ReturnType<typeof setTimeout>>();
    defer(() => timers.forEach((t) => clearTimeout(t)));
    let previous = tokens[0]!;
    let rotations = 0;
    const writer = startKubeletThread({
      dir,
      tokens: tokens.slice(1),
      every: ROTATE_EVERY_MS,
      onRotate: ({ index, swappedAt }) => {
        rotations += 1;
        const old = previous;
        previous = tokens[index + 1]!;
        const timer = setTimeout(() => (timers.delete(timer), server.revoke(old)), Math.max(0, swappedAt + REVOKE_AFTER_MS - performance.now()));
        timers.add(timer);
      },
    });
    defer(() => writer.stop());

    const clients = await connectedClients(server, source);
    const { tally, latencies } = await storm(clients, STORM_MS, () => 200 + Math.random() * 100, REVOKE_AFTER_MS);
    await writer.stop();
    const counts = server.counts;
    const revokedRefusals = server.log.filter((e) => e.reason === 'revoked').length;
    console.log(
      `grpc rotation storm: ${rotations} rotations in ${STORM_MS / 1000} s, ${CALLERS} callers on ${CHANNELS} channels, ${latencies.length} unary calls: ` +
        `${tally.ok} ok, ${tally.refused} refused (${tally.refusedSlow} slower than ${REVOKE_AFTER_MS} ms), ${tally.other.length} other errors; ` +
        `server saw ${counts.ok} ok, ${counts.unauthorized} refused (${revokedRefusals} revoked, each retried by the interceptor), ${counts.missing} without a token; ` +
        `latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; source errors ${JSON.stringify(Object.fromEntries(errors))}`,
    );
    expect(rotations).toBeGreaterThan(0);
    expect(tally.ok).toBeGreaterThan(0);
    expect(tally.other).toEqual([]);
    expect(tally.refused - tally.refusedSlow, 'calls that completed within the revocation window and ended refused').toBe(0);
    expect(counts.missing).toBe(0);
    expect(server.log.filter((e) => e.outcome !== 'ok' && e.reason !== 'revoked')).toEqual([]);
    expect(Object.fromEntries(errors)).toEqual({});
  });
});
