import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import got, { HTTPError, RequestError } from 'got';
import { FileTokenSource, isTokenSourceError, staticTokenSource, TokenSourceError, type TokenSource } from '@podtoken/core';
import { ProjectedVolume, startSimulatedPod, type Issuer, type SimulatedPod, type TokenServer } from '@podtoken/testing';
import { tokenSourceHooks, withTokenSource } from '@podtoken/got';

// (d) A source that cannot give a token fails the request with the typed error, and
// nothing is sent: never a silent unauthenticated call.

const AUDIENCE = 'https://kubernetes.default.svc';

let pod: SimulatedPod | undefined;
let dir: string;
let issuer: Issuer;
let server: TokenServer;

beforeAll(async () => {
  // The issuer, the server and a temp folder; the tests write their own volumes into it.
  pod = await startSimulatedPod({ audience: AUDIENCE, kubelet: 'none' });
  ({ dir, issuer, server } = pod);
});

afterAll(async () => {
  await pod?.close();
});

beforeEach(() => server.reset());

async function volumeWith(token: string): Promise<string> {
  const volume = new ProjectedVolume({ dir: await mkdtemp(join(dir, 'volume-')) });
  await volume.write({ token });
  return volume.path('token');
}

async function closedSource(): Promise<FileTokenSource> {
  const source = new FileTokenSource({ path: await volumeWith(await issuer.mint({ audience: AUDIENCE })), watch: false, pollInterval: 0 });
  await source.ready();
  await source.close();
  return source;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('withTokenSource: the call rejects with the TokenSourceError itself', () => {
  it('TOKEN_SOURCE_CLOSED for a closed source, and nothing reaches the server', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), await closedSource());
    const error = await api.get('anything').catch((e: unknown) => e);
    expect(isTokenSourceError(error)).toBe(true);
    expect(error).toMatchObject({ name: 'TokenSourceError', code: 'TOKEN_SOURCE_CLOSED' });
    expect(server.log).toHaveLength(0);
  });

  it('TOKEN_EXPIRED when the only token the source holds is past exp', { timeout: 20_000 }, async () => {
    const source = new FileTokenSource({
      path: await volumeWith(await issuer.mint({ audience: AUDIENCE, expirationSeconds: 3 })),
      watch: false,
      pollInterval: 0,
    });
    try {
      const token = await source.ready();
      const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
      // Wait (bounded) until the token is past exp; the kubelet never writes a new one.
      const expiresAt = token.expiresAt!.getTime();
      // The source drops its cached token on a timer at exp, which a loaded VM can run a few ms
      // after the wall clock passes exp: wait a little past it, as the server's own clock does.
      for (let i = 0; i < 200 && Date.now() <= expiresAt + 200; i++) await sleep(50);
      const error = await api.get('anything').catch((e: unknown) => e);
      expect(isTokenSourceError(error)).toBe(true);
      expect((error as { code?: unknown }).code).toBe('TOKEN_EXPIRED');
      expect(server.log).toHaveLength(0);
    } finally {
      await source.close();
    }
  });

  it('TOKEN_NOT_READY when no token file appears within readyTimeout', async () => {
    const source = new FileTokenSource({ path: join(dir, 'nowhere', 'token'), readyTimeout: 200, watch: false, pollInterval: 0 });
    try {
      const api = withTokenSource(got.extend({ prefixUrl: server.url }), source);
      const error = await api.get('anything').catch((e: unknown) => e);
      expect(isTokenSourceError(error)).toBe(true);
      expect((error as { code?: unknown }).code).toBe('TOKEN_NOT_READY');
      expect(server.log).toHaveLength(0);
    } finally {
      await source.close();
    }
  });

  it('also through .json(), and the got promise keeps its methods', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), await closedSource());
    const pending = api.get('anything');
    expect(typeof pending.cancel).toBe('function');
    expect(typeof pending.on).toBe('function');
    const error = await pending.json().catch((e: unknown) => e);
    expect(isTokenSourceError(error)).toBe(true);
    expect(error).toMatchObject({ code: 'TOKEN_SOURCE_CLOSED' });
  });

  it('leaves other errors alone (an HTTPError stays an HTTPError)', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), staticTokenSource(await issuer.mint({ audience: AUDIENCE })));
    const error = await api.get('status/503', { retry: { limit: 0 } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.statusCode).toBe(503);
  });

  it('streams emit got’s RequestError, with the TokenSourceError as its cause', async () => {
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), await closedSource());
    const error = await new Promise<unknown>((resolve) => {
      const stream = api.stream('anything');
      stream.on('error', resolve);
      stream.resume();
    });
    expect(error).toBeInstanceOf(RequestError);
    expect(isTokenSourceError((error as RequestError).cause)).toBe(true);
    expect(server.log).toHaveLength(0);
  });
});

describe('tokenSourceHooks alone: got’s RequestError wraps the TokenSourceError', () => {
  it('error.cause is the TokenSourceError and error.code its code', async () => {
    const client = got.extend({ prefixUrl: server.url, hooks: tokenSourceHooks(await closedSource()) });
    const error = await client.get('anything').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).code).toBe('TOKEN_SOURCE_CLOSED');
    expect(isTokenSourceError((error as RequestError).cause)).toBe(true);
    expect(server.log).toHaveLength(0);
    console.log(`[got errors] hooks alone: ${(error as Error).name} code=${(error as RequestError).code} cause=${((error as Error).cause as Error).name}`);
  });
});

describe('AbortSignal', () => {
  it('passes the request’s signal to getToken; aborting ends the wait and the request', async () => {
    let seen: AbortSignal | undefined;
    let settled: 'resolved' | 'rejected' | undefined;
    // A source whose first load never comes: only the signal can end the wait.
    const waiting: TokenSource = {
      getToken(options) {
        seen = options?.signal;
        return new Promise<string>((_resolve, reject) => {
          options?.signal?.addEventListener('abort', () => {
            settled = 'rejected';
            reject(options.signal!.reason);
          });
        });
      },
    };
    const controller = new AbortController();
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), waiting);
    const pending = api.get('anything', { signal: controller.signal }).catch((e: unknown) => e);
    for (let i = 0; i < 100 && seen === undefined; i++) await sleep(10);
    expect(seen === controller.signal).toBe(true);
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(RequestError);
    expect((error as RequestError).code).toBe('ERR_ABORTED');
    expect(settled).toBe('rejected');
    expect(server.log).toHaveLength(0);
  });
});

describe('a 401 the source cannot help with goes to the caller', () => {
  it('a 401 is not retried (staticTokenSource cannot give another token)', async () => {
    const stale = await issuer.mint({ audience: AUDIENCE });
    server.revoke(stale);
    const api = withTokenSource(got.extend({ prefixUrl: server.url, throwHttpErrors: false }), staticTokenSource(stale));
    const response = await api.get('anything');
    expect(response.statusCode).toBe(401);
    expect(server.log).toHaveLength(1);
  });

  it('a source that fails while re-reading (TOKEN_EXPIRED after invalidate) leaves the 401 standing', async () => {
    const stale = await issuer.mint({ audience: AUDIENCE });
    server.revoke(stale);
    let invalidated = false;
    const failing: TokenSource = {
      getToken: async () => {
        if (invalidated) throw new TokenSourceError('TOKEN_EXPIRED', 'The token expired and no fresh one has been read.');
        return stale;
      },
      invalidate: async () => {
        invalidated = true;
      },
    };
    const api = withTokenSource(got.extend({ prefixUrl: server.url }), failing);
    const error = await api.get('anything').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HTTPError);
    expect((error as HTTPError).response.statusCode).toBe(401);
    expect(invalidated).toBe(true);
    expect(server.log).toHaveLength(1);
  });
});
