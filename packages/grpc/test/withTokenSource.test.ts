import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { DIAGNOSTICS_CHANNELS, staticTokenSource, type FileTokenSource, type TokenSource, type UnauthorizedMessage } from '@podtoken/core';
import { startSimulatedPod, tokenId, type SimulatedPod } from '@podtoken/testing';
import { tokenCallCredentials, unauthenticatedRetry, withTokenSource } from '@podtoken/grpc';
import { echo, EchoClient, startGrpcTokenServer, type EchoReply, type GrpcTokenServer } from './support.js';

// Tokens are minted at run time and compared as booleans or through tokenId(): a failing
// assertion never prints one.

const AUDIENCE = 'orders';

/** A real source with a counter on invalidate() and an optional pause in it: a wrapper, not a mock. */
function counting(source: TokenSource, pauseMs = 0): TokenSource & { invalidations: number } {
  const wrapper = {
    invalidations: 0,
    getToken: (options?: { signal?: AbortSignal }) => source.getToken(options),
    async invalidate(rejected: string) {
      wrapper.invalidations += 1;
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      await source.invalidate!(rejected);
    },
  };
  return wrapper;
}

/** Every `podtoken:request:unauthorized` message published while `run` runs. */
async function unauthorizedEvents<T>(run: () => Promise<T>): Promise<{ result: T; events: UnauthorizedMessage[] }> {
  const events: UnauthorizedMessage[] = [];
  const listener = (message: unknown) => events.push(message as UnauthorizedMessage);
  subscribe(DIAGNOSTICS_CHANNELS.requestUnauthorized, listener);
  try {
    return { result: await run(), events };
  } finally {
    unsubscribe(DIAGNOSTICS_CHANNELS.requestUnauthorized, listener);
  }
}

function rejection(promise: Promise<unknown>): Promise<ServiceError> {
  return promise.then(
    () => {
      throw new Error('the call succeeded');
    },
    (error: unknown) => error as ServiceError,
  );
}

/** Every way a log line could render a grpc-js error: none may hold the token. */
function renderings(error: ServiceError): Record<string, string> {
  return {
    message: error.message,
    details: error.details,
    metadata: JSON.stringify(error.metadata.toJSON()),
    'metadata (inspect)': inspect(error.metadata, { depth: Infinity }),
    'String(error)': String(error),
    'util.inspect': inspect(error, { depth: Infinity, showHidden: true }),
    JSON: JSON.stringify(error),
    stack: error.stack ?? '',
  };
}
function leaking(error: ServiceError, tokens: string[]): string[] {
  return Object.entries(renderings(error))
    .filter(([, text]) => tokens.some((token) => text.includes(token) || text.includes(token.slice(20, 60))))
    .map(([name]) => name);
}

let pod: SimulatedPod<FileTokenSource>;
let server: GrpcTokenServer;
let tls: ReturnType<typeof credentials.createSsl>;
const clients: EchoClient[] = [];
const client = (...args: ConstructorParameters<typeof EchoClient>) => {
  const made = new EchoClient(...args);
  clients.push(made);
  return made;
};

beforeAll(async () => {
  pod = await startSimulatedPod({ audience: AUDIENCE, source: { watch: false, pollInterval: 0 } });
  server = await startGrpcTokenServer({ issuer: pod.issuer, audience: AUDIENCE });
  tls = credentials.createSsl(Buffer.from(server.ca!));
});
afterAll(async () => {
  await server?.close();
  await pod?.close();
});
beforeEach(() => {
  server.reset();
  server.echoTokenInRefusals = false;
});
afterEach(() => {
  for (const made of clients.splice(0)) made.close();
});

describe('withTokenSource over TLS', () => {
  it('sends the current token as authorization: Bearer on unary and streaming calls', async () => {
    const { credentials: channel, interceptors } = withTokenSource(tls, pod.source);
    const orders = client(server.address, channel, { interceptors });
    const reply = await echo(orders, { text: 'hello' });
    expect(reply.text).toBe('hello');
    const streamed: EchoReply[] = [];
    for await (const message of orders.watch({ count: 3 })) streamed.push(message as EchoReply);
    expect(streamed.map((m) => m.seq)).toEqual([0, 1, 2]);
    expect(server.log.map((e) => [e.method, e.outcome])).toEqual([
      ['echo', 'ok'],
      ['watch', 'ok'],
    ]);
    expect(server.log.every((e) => e.tokenId === tokenId(pod.source.current!.value))).toBe(true);
  });

  it('UNAUTHENTICATED on a unary call: one invalidate, one retry with the new token, the call succeeds; the event says adapter grpc', async () => {
    const source = counting(pod.source);
    const { credentials: channel, interceptors } = withTokenSource(tls, source);
    const orders = client(server.address, channel, { interceptors });
    await echo(orders); // the channel is connected: what follows is the retry alone
    server.reset();
    const old = pod.source.current!.value;
    const fresh = (await pod.kubelet.rotate()).token; // not loaded yet: watch off, no poll
    server.revoke(old);

    const { result, events } = await unauthorizedEvents(() => echo(orders, { text: 'again' }));
    expect(result.text).toBe('again');
    expect(server.log.map((e) => [e.outcome, e.reason])).toEqual([
      ['unauthorized', 'revoked'],
      ['ok', undefined],
    ]);
    expect(server.log[0]!.tokenId === tokenId(old) && server.log[1]!.tokenId === tokenId(fresh)).toBe(true);
    expect(source.invalidations).toBe(1);
    expect(events).toEqual([expect.objectContaining({ adapter: 'grpc', retried: true, reason: 'retried' })]);
    expect(JSON.stringify(events)).not.toContain(old.slice(20, 60));
  });

  it('never loops: a second UNAUTHENTICATED goes back to the caller, its details and trailers cleaned of the token', async () => {
    const { credentials: channel, interceptors } = withTokenSource(tls, pod.source);
    const orders = client(server.address, channel, { interceptors });
    const old = pod.source.current!.value;
    const newer = (await pod.kubelet.rotate()).token;
    server.revoke(old);
    server.revoke(newer);
    server.echoTokenInRefusals = true; // a hostile server quotes what it was sent
    const error = await rejection(echo(orders));
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 2, missing: 0 });
    expect(leaking(error, [old, newer])).toEqual([]);
    expect(error.details).toContain('[redacted]');
    expect(error.metadata.get('www-authenticate')).toEqual(['Bearer error="invalid_token"']);
  });

  it('with retryUnauthorized: false the refusal is returned, and the source still re-reads', async () => {
    const source = counting(pod.source);
    const { credentials: channel, interceptors } = withTokenSource(tls, source, { retryUnauthorized: false });
    const orders = client(server.address, channel, { interceptors });
    const old = pod.source.current!.value;
    const fresh = (await pod.kubelet.rotate()).token;
    server.revoke(old);
    const { result: error, events } = await unauthorizedEvents(() => rejection(echo(orders)));
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
    expect(source.invalidations).toBe(1);
    expect(pod.source.current!.value === fresh).toBe(true);
    expect(events).toEqual([expect.objectContaining({ adapter: 'grpc', retried: false, reason: 'retry-disabled' })]);
    await echo(orders); // the next call carries the fresh token
    expect(server.log.at(-1)!.tokenId === tokenId(fresh)).toBe(true);
  });

  it.each(['server streaming', 'bidirectional'])('UNAUTHENTICATED on a %s call is surfaced, not retried, and the source re-reads', async (kind) => {
    const source = counting(pod.source);
    const { credentials: channel, interceptors } = withTokenSource(tls, source);
    const orders = client(server.address, channel, { interceptors });
    const old = pod.source.current!.value;
    const fresh = (await pod.kubelet.rotate()).token;
    server.revoke(old);
    const { result: error, events } = await unauthorizedEvents(async () => {
      const call = kind === 'bidirectional' ? orders.chat() : orders.watch({ count: 2 });
      if (kind === 'bidirectional') {
        (call as ReturnType<EchoClient['chat']>).write({ text: 'one' });
        (call as ReturnType<EchoClient['chat']>).end();
      }
      try {
        for await (const _ of call) throw new Error('a message arrived');
        throw new Error('the stream ended without an error');
      } catch (caught) {
        return caught as ServiceError;
      }
    });
    expect(error.code).toBe(status.UNAUTHENTICATED);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
    expect(source.invalidations).toBe(1);
    expect(pod.source.current!.value === fresh).toBe(true);
    expect(events).toEqual([expect.objectContaining({ adapter: 'grpc', retried: false, reason: 'not-replayable' })]);
  });

  it('a source with no token ends the call with UNAVAILABLE before it is sent; the message names the code, not a token', async () => {
    const closing = await startSimulatedPod({ audience: AUDIENCE, source: true });
    const token = closing.source.current!.value;
    const { credentials: channel, interceptors } = withTokenSource(tls, closing.source);
    const orders = client(server.address, channel, { interceptors });
    await closing.source.close();
    const error = await rejection(echo(orders));
    await closing.close();
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.details).toMatch(/podtoken: no token to send \(TOKEN_SOURCE_CLOSED\)/);
    expect(server.log).toEqual([]);
    expect(leaking(error, [token])).toEqual([]);
  });

  it('a deadline covers the retry: a slow re-read past the deadline ends with DEADLINE_EXCEEDED and no second call', async () => {
    const source = counting(pod.source, 400);
    const { credentials: channel, interceptors } = withTokenSource(tls, source);
    const orders = client(server.address, channel, { interceptors });
    await echo(orders);
    server.reset();
    server.revoke(pod.source.current!.value);
    await pod.kubelet.rotate();
    const error = await rejection(echo(orders, {}, { deadline: Date.now() + 200 }));
    expect(error.code).toBe(status.DEADLINE_EXCEEDED);
    expect(source.invalidations).toBe(1);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
  });

  it('cancelling while the source re-reads ends the call with CANCELLED and sends nothing more', async () => {
    const source = counting(pod.source, 300);
    const { credentials: channel, interceptors } = withTokenSource(tls, source);
    const orders = client(server.address, channel, { interceptors });
    await echo(orders);
    server.reset();
    server.revoke(pod.source.current!.value);
    await pod.kubelet.rotate();
    const error = await new Promise<ServiceError>((resolve) => {
      const call = orders.echo({}, new Metadata(), {}, (caught) => resolve(caught!));
      setTimeout(() => call.cancel(), 150);
    });
    expect(error.code).toBe(status.CANCELLED);
    await new Promise((resolve) => setTimeout(resolve, 300)); // the re-read finishes: no retry follows
    expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
  });

  it('cancelling a call in flight and a deadline on a slow answer behave as without the adapter', async () => {
    const { credentials: channel, interceptors } = withTokenSource(tls, pod.source);
    const orders = client(server.address, channel, { interceptors });
    const late = await rejection(echo(orders, { delayMs: 500 }, { deadline: Date.now() + 100 }));
    expect(late.code).toBe(status.DEADLINE_EXCEEDED);
    const cancelled = await new Promise<ServiceError>((resolve) => {
      const call = orders.echo({ delayMs: 500 }, new Metadata(), {}, (caught) => resolve(caught!));
      setTimeout(() => call.cancel(), 50);
    });
    expect(cancelled.code).toBe(status.CANCELLED);
    expect(server.counts.unauthorized + server.counts.missing).toBe(0);
  });
});

describe('building blocks', () => {
  it('tokenCallCredentials + unauthenticatedRetry combined by hand do what withTokenSource does', async () => {
    const source = counting(pod.source);
    const channel = credentials.combineChannelCredentials(tls, tokenCallCredentials(source));
    const orders = client(server.address, channel, { interceptors: [unauthenticatedRetry(source)] });
    server.revoke(pod.source.current!.value);
    await pod.kubelet.rotate();
    await echo(orders);
    expect(server.log.map((e) => e.outcome)).toEqual(['unauthorized', 'ok']);
    expect(source.invalidations).toBe(1);
  });

  it('validates its arguments with TypeErrors that name them', () => {
    expect(() => withTokenSource({} as never, pod.source)).toThrow(/channel must be grpc-js ChannelCredentials/);
    expect(() => withTokenSource(tls, {} as never)).toThrow(/source must be a TokenSource/);
    expect(() => withTokenSource(tls, pod.source, { retryUnauthorized: 'yes' as never })).toThrow(/retryUnauthorized must be a boolean/);
    expect(() => withTokenSource(tls, pod.source, { allowInsecure: 1 as never })).toThrow(/allowInsecure must be a boolean/);
    expect(() => tokenCallCredentials(undefined as never)).toThrow(TypeError);
    expect(() => unauthenticatedRetry(pod.source, { retryUnauthorized: 'no' as never })).toThrow(/retryUnauthorized/);
  });
});

describe('channels without TLS', () => {
  let plain: GrpcTokenServer;
  beforeAll(async () => {
    plain = await startGrpcTokenServer({ issuer: pod.issuer, audience: AUDIENCE, tls: false });
  });
  afterAll(() => plain?.close());
  beforeEach(() => plain.reset());

  it('grpc-js refuses to combine call credentials with createInsecure()', () => {
    expect(() => credentials.combineChannelCredentials(credentials.createInsecure(), tokenCallCredentials(pod.source))).toThrow(
      'Cannot compose insecure credentials',
    );
  });

  it('withTokenSource refuses them too, with a TypeError that says what to do', () => {
    let caught: unknown;
    try {
      withTokenSource(credentials.createInsecure(), pod.source);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TypeError);
    expect((caught as Error).message).toMatch(/no TLS.*credentials\.createSsl\(rootCerts\).*allowInsecure: true/);
  });

  it('allowInsecure: true sends the token in the metadata, and retries UNAUTHENTICATED the same way', async () => {
    const source = counting(pod.source);
    const { credentials: channel, interceptors } = withTokenSource(credentials.createInsecure(), source, { allowInsecure: true });
    const sidecar = client(plain.address, channel, { interceptors });
    await echo(sidecar);
    expect(plain.log.map((e) => e.outcome)).toEqual(['ok']);
    plain.reset();
    const old = pod.source.current!.value;
    const fresh = (await pod.kubelet.rotate()).token;
    plain.revoke(old);
    await echo(sidecar);
    expect(plain.log.map((e) => [e.outcome, e.tokenId === tokenId(fresh)])).toEqual([
      ['unauthorized', false],
      ['ok', true],
    ]);
    expect(source.invalidations).toBe(1);
  });

  it('allowInsecure: a source with no token ends the call with UNAVAILABLE and nothing reaches the server', async () => {
    const closed = staticTokenSource('x'.repeat(40));
    const failing: TokenSource = { getToken: () => closed.getToken().then(() => Promise.reject(Object.assign(new Error('disk on fire'), { name: 'DiskError' }))) };
    const { credentials: channel, interceptors } = withTokenSource(credentials.createInsecure(), failing, { allowInsecure: true });
    const error = await rejection(echo(client(plain.address, channel, { interceptors })));
    expect(error.code).toBe(status.UNAVAILABLE);
    expect(error.details).toBe('podtoken: the token source failed (DiskError); the call was not sent');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(plain.log).toEqual([]);
  });

  // Why the README warns against per-call credentials on a plaintext channel: grpc-js checks
  // a channel's security only when call credentials are combined with the channel. If this
  // starts failing, grpc-js refuses them now: update the README and tokenCallCredentials' TSDoc.
  it('grpc-js 1.14 sends per-call credentials over a plaintext channel without complaint', async () => {
    const sidecar = client(plain.address, credentials.createInsecure());
    await echo(sidecar, {}, { credentials: tokenCallCredentials(pod.source) });
    expect(plain.log.map((e) => e.outcome)).toEqual(['ok']);
  });
});

describe('under rotation', () => {
  it('2,000 unary calls over 4+ kubelet rotations: 0 refused, 0 without a token', { timeout: 120_000 }, async () => {
    const rotating = await startSimulatedPod({ audience: AUDIENCE, expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start', source: true, issuer: pod.issuer });
    try {
      const { credentials: channel, interceptors } = withTokenSource(tls, rotating.source);
      const orders = client(server.address, channel, { interceptors });
      let reloads = 0;
      rotating.source.onRefresh(() => (reloads += 1));
      const firstRotation = rotating.kubelet.rotations;
      const started = performance.now();
      let sent = 0;
      let failed = 0;
      while ((sent < 2_000 || rotating.kubelet.rotations - firstRotation < 4) && performance.now() - started < 60_000) {
        const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => echo(orders, { text: String(sent + i) })));
        failed += results.filter((r) => r.status === 'rejected').length;
        sent += results.length;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const rotations = rotating.kubelet.rotations - firstRotation;
      const tokens = new Set(server.log.map((e) => e.tokenId)).size;
      console.log(
        `[grpc-js] ${sent} unary calls in ${((performance.now() - started) / 1000).toFixed(1)} s, ${rotations} rotations, ${reloads} reloads, ` +
          `${tokens} distinct tokens seen by the server, counts ${JSON.stringify(server.counts)}, ${failed} failed`,
      );
      expect(rotations).toBeGreaterThanOrEqual(4);
      expect(server.counts).toEqual({ ok: sent, unauthorized: 0, missing: 0 });
      expect(failed).toBe(0);
      expect(tokens).toBeGreaterThanOrEqual(4);
    } finally {
      await rotating.close();
    }
  });
});
