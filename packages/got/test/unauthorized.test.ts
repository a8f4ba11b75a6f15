import { Readable } from 'node:stream';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import got, { HTTPError } from 'got';
import type { FileTokenSource, TokenSource } from '@podtoken/core';
import { createIssuer, startSimulatedPod, tokenId, type FakeKubelet, type Issuer, type SimulatedPod, type TokenServer } from '@podtoken/testing';
import { tokenSourceHooks, withTokenSource } from '@podtoken/got';

// (b) The 401 path: the server revokes the token in use (its pod is gone) while the kubelet
// has already written a newer one that the source has not loaded (no watcher, no poll).
// Tokens are compared through tokenId() or ===, never printed.

const AUDIENCE = 'https://kubernetes.default.svc';

let issuer: Issuer;
let pod: SimulatedPod<FileTokenSource> | undefined;
let server: TokenServer;
let kubelet: FakeKubelet;
let source: FileTokenSource;

beforeAll(async () => {
  issuer = await createIssuer(); // one signer for every test's pod
});

beforeEach(async () => {
  // A fresh pod per test: its own volume, source and server. An hour-long token: refreshAt is
  // 48 minutes away, so only invalidate() re-reads the file.
  pod = await startSimulatedPod({ issuer, audience: AUDIENCE, expirationSeconds: 3600, source: { watch: false, pollInterval: 0 } });
  ({ server, kubelet, source } = pod);
});

afterEach(async () => {
  await pod?.close();
  pod = undefined;
});

function loaded(): string {
  const value = source.current?.value;
  if (value === undefined) throw new Error('no token loaded');
  return value;
}

describe('401: revoked token, newer token on disk but not loaded', () => {
  it('invalidates, retries once with the new token, and succeeds', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
    const first = loaded();
    expect((await api.get('anything')).statusCode).toBe(200);

    const rotation = await kubelet.rotate(); // on disk, not in memory
    expect(loaded() === first).toBe(true);
    server.revoke(first);
    server.reset();

    const response = await api.get('anything');
    expect(response.statusCode).toBe(200);
    expect(response.retryCount).toBe(1);
    expect(loaded() === rotation.token).toBe(true);
    expect(server.counts).toEqual({ ok: 1, unauthorized: 1, missing: 0 });
    const [refused, accepted] = server.log;
    expect(server.log).toHaveLength(2);
    expect(refused).toMatchObject({ status: 401, reason: 'revoked' });
    expect(refused?.tokenId === tokenId(first)).toBe(true);
    expect(accepted).toMatchObject({ status: 200, outcome: 'ok' });
    expect(accepted?.tokenId === tokenId(rotation.token)).toBe(true);
    console.log(`[got 401] revoked + newer on disk: ${server.log.map((e) => e.status).join(' -> ')}, retryCount=${response.retryCount}`);
  });

  it('sends a json body again on the retry', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
    server.revoke(loaded());
    await kubelet.rotate();
    const body = { hello: 'world', n: 42 };
    const reply = await api.post('anything', { json: body }).json<{ bodyLength: number; method: string }>();
    expect(reply).toMatchObject({ method: 'POST', bodyLength: JSON.stringify(body).length });
    expect(server.log.map((e) => [e.status, e.bodyLength])).toEqual([
      [401, JSON.stringify(body).length],
      [200, JSON.stringify(body).length],
    ]);
  });

  it('retries even with got retry.limit 0 (the retry is the adapter’s, not got’s)', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url, retry: { limit: 0 } }), source);
    server.revoke(loaded());
    await kubelet.rotate();
    const response = await api.get('anything');
    expect(response.statusCode).toBe(200);
    expect(server.counts).toEqual({ ok: 1, unauthorized: 1, missing: 0 });
  });

  it('does not retry a streamed body (it cannot be sent again): the 401 goes to the caller, the next call is fresh', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
    const first = loaded();
    server.revoke(first);
    const rotation = await kubelet.rotate();
    const error = await api.post('anything', { body: Readable.from([Buffer.from('one-shot')]) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.statusCode).toBe(401);
    expect(server.log).toHaveLength(1);
    // A 401 is the signal to re-read, body or no body (as with @podtoken/axios and /fetch):
    // the source was invalidated, so it now holds the rotated token and the next call succeeds.
    expect(loaded() === rotation.token).toBe(true);
    expect((await api.get('anything')).statusCode).toBe(200);
    expect(server.log.map((e) => e.status)).toEqual([401, 200]);
    expect(server.log[1]?.tokenId === tokenId(rotation.token)).toBe(true);
  });

  it('sends an array of chunks again on the retry (got iterates it afresh)', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
    server.revoke(loaded());
    await kubelet.rotate();
    const response = await api.post('anything', { body: [Buffer.from('one '), Buffer.from('two')] });
    expect(response.statusCode).toBe(200);
    expect(response.retryCount).toBe(1);
    expect(server.log.map((e) => [e.status, e.bodyLength])).toEqual([
      [401, 7],
      [200, 7],
    ]);
  });

  it('does not retry a generator body (it is spent after the first attempt)', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url, throwHttpErrors: false }), source);
    server.revoke(loaded());
    await kubelet.rotate();
    const body = (function* () {
      yield Buffer.from('one-shot');
    })();
    const first = loaded();
    const response = await api.post('anything', { body });
    expect(response.statusCode).toBe(401);
    expect(server.log.map((e) => [e.status, e.bodyLength])).toEqual([[401, 8]]);
    expect(loaded() === first).toBe(false); // invalidated all the same
  });

  it('does not retry with retryUnauthorized: false, but the source re-reads for the next request', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url, throwHttpErrors: false }), source, { retryUnauthorized: false });
    const first = loaded();
    server.revoke(first);
    await kubelet.rotate();
    const response = await api.get('anything');
    expect(response.statusCode).toBe(401);
    expect(server.log).toHaveLength(1);
    expect(loaded() === first).toBe(false);
    expect((await api.get('anything')).statusCode).toBe(200);
  });
});

describe('other afterResponse hooks around the retry', () => {
  it('hooks before the adapter’s see both responses; hooks added after it see the final one', async () => {
    const seenBefore: number[] = [];
    const seenAfter: number[] = [];
    const inner = got.extend({
      prefixUrl: server.url,
      hooks: { afterResponse: [(response) => (seenBefore.push(response.statusCode), response)] },
    });
    const api = withTokenSource(inner, source).extend({
      hooks: { afterResponse: [(response) => (seenAfter.push(response.statusCode), response)] },
    });
    server.revoke(loaded());
    await kubelet.rotate();
    const response = await api.get('anything');
    expect(response.statusCode).toBe(200);
    expect(response.retryCount).toBe(1);
    expect(seenBefore).toEqual([401, 200]);
    expect(seenAfter).toEqual([200]);
    expect(server.log).toHaveLength(2);
  });

  it('falls back to got’s default retry where retryWithMergedOptions does not know preserveHooks', async () => {
    // What a got 14 release without preserveHooks does with it: Options.merge() throws
    // "Unexpected option: preserveHooks" before retrying.
    const hooks = tokenSourceHooks(source);
    server.revoke(loaded());
    await kubelet.rotate();
    // A real 401 response to a request that carried the token (only beforeRequest installed).
    const response = await got.get(`${server.url}anything`, { throwHttpErrors: false, hooks: { beforeRequest: hooks.beforeRequest } });
    expect(response.statusCode).toBe(401);
    const calls: Array<Record<string, unknown>> = [];
    const retryWithMergedOptions = ((options: Record<string, unknown>) => {
      calls.push(options);
      if ('preserveHooks' in options) throw new Error('Unexpected option: preserveHooks');
      const retryError = new Error('retry');
      retryError.name = 'RetryError';
      throw retryError;
    }) as never;
    const outcome = await Promise.resolve(hooks.afterResponse[0]!(response, retryWithMergedOptions)).catch((e: unknown) => e);
    expect((outcome as Error).name).toBe('RetryError');
    expect(calls.map((options) => 'preserveHooks' in options)).toEqual([true, false]);
  });
});

describe('401 with no newer token: the caller gets the 401 after one try', () => {
  it('rejects with got’s HTTPError for the 401, after exactly one request', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
    const only = loaded();
    server.revoke(only);
    const error = await api.get('anything').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    const response = (error as HTTPError).response;
    expect(response.statusCode).toBe(401);
    expect(response.retryCount).toBe(0);
    expect(server.log).toHaveLength(1);
    expect(server.counts).toEqual({ ok: 0, unauthorized: 1, missing: 0 });
    expect(loaded() === only).toBe(true);
    console.log(`[got 401] revoked, nothing newer: ${server.log.length} request, caller got HTTPError ${response.statusCode}`);
  });

  it('resolves with the 401 response when throwHttpErrors is false', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url, throwHttpErrors: false }), source);
    server.revoke(loaded());
    const response = await api.get('anything');
    expect(response.statusCode).toBe(401);
    expect(response.retryCount).toBe(0);
    expect(server.log).toHaveLength(1);
  });

  it('never loops: when the newer token is refused too, the second 401 goes to the caller', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url, throwHttpErrors: false }), source);
    server.revoke(loaded());
    const rotation = await kubelet.rotate();
    server.revoke(rotation.token);
    const response = await api.get('anything');
    expect(response.statusCode).toBe(401);
    expect(response.retryCount).toBe(1);
    expect(server.log.map((e) => e.status)).toEqual([401, 401]);
    expect(server.log[1]?.tokenId === tokenId(rotation.token)).toBe(true);
    console.log(`[got 401] both tokens refused: ${server.log.length} requests, then the 401 to the caller`);
  });

  it('never loops even when every invalidate() yields yet another (refused) token', async () => {
    const tokens = await Promise.all(Array.from({ length: 5 }, () => issuer.mint({ audience: AUDIENCE })));
    for (const token of tokens) server.revoke(token);
    let index = 0;
    const churning: TokenSource = {
      getToken: async () => tokens[index]!,
      invalidate: async () => {
        index = Math.min(index + 1, tokens.length - 1);
      },
    };
    const api = withTokenSource(got.extend({ prefixUrl: server.url, throwHttpErrors: false }), churning);
    const response = await api.get('anything');
    expect(response.statusCode).toBe(401);
    expect(response.retryCount).toBe(1);
    expect(server.log.map((e) => e.status)).toEqual([401, 401]);
  });

  it('never loops even with got told to retry 401s: got’s own retries stay within retry.limit', async () => {
    // A user who adds 401 to retry.statusCodes asked got to retry it; the adapter adds at most one.
    const api = withTokenSource(
      got.extend({
        prefixUrl: server.url,
        throwHttpErrors: false,
        retry: { limit: 2, statusCodes: [401], calculateDelay: ({ computedValue }) => (computedValue > 0 ? 1 : 0) },
      }),
      source,
    );
    server.revoke(loaded());
    const rotation = await kubelet.rotate();
    server.revoke(rotation.token);
    const response = await api.get('anything');
    expect(response.statusCode).toBe(401);
    // First try, the adapter's retry (new token), then got's own retry: the adapter's retry
    // counts as attempt 1 of got's retry.limit, so got adds only one more (3 > limit ends it).
    expect(server.log.map((e) => e.status)).toEqual([401, 401, 401]);
    expect(response.retryCount).toBe(2);
    console.log(`[got 401] with retry.statusCodes [401], limit 2: ${server.log.length} requests in all`);
  });
});
