import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createRedirectGuard, isReplayableBody, tokenAfterUnauthorized, TokenSourceError, type TokenSource } from '../src/index.js';

describe('isReplayableBody', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', '{"hello":"world"}'],
    ['a Buffer', Buffer.from('bytes')],
    ['a Uint8Array', new Uint8Array([1, 2, 3])],
    ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))],
    ['URLSearchParams', new URLSearchParams({ a: '1' })],
    ['a Blob', new Blob(['blob'])],
    ['FormData', new FormData()],
    ['a plain object (serialized by the client)', { hello: 'world' }],
    ['an array of chunks (iterated afresh each time)', [Buffer.from('a'), Buffer.from('b')]],
    ['a Set', new Set(['a'])],
  ])('%s can be sent again', (_name, body) => {
    expect(isReplayableBody(body)).toBe(true);
  });

  it.each([
    ['a Node Readable', () => Readable.from([Buffer.from('once')])],
    ['a web ReadableStream', () => new ReadableStream()],
    ['an async generator', () => (async function* () {
      yield 'once';
    })()],
    ['a generator', () => (function* () {
      yield 'once';
    })()],
    ['an array iterator', () => ['a', 'b'][Symbol.iterator]()],
    ['an object with Symbol.asyncIterator', () => ({ [Symbol.asyncIterator]: async function* () {} })],
  ])('%s cannot', (_name, make) => {
    const body = make();
    expect(isReplayableBody(body)).toBe(false);
    if (body instanceof Readable) body.destroy();
  });
});

describe('createRedirectGuard', () => {
  it('allows hops on the starting origin and refuses the first hop to another', () => {
    const guard = createRedirectGuard('https://api.example.com/v1/items');
    expect(guard.left).toBe(false);
    expect(guard.allows('https://api.example.com/v2/items?page=2')).toBe(true);
    expect(guard.allows(new URL('https://api.example.com:443/v3'))).toBe(true); // default port: same origin
    expect(guard.left).toBe(false);
    expect(guard.allows('https://cdn.example.com/items')).toBe(false);
    expect(guard.left).toBe(true);
  });

  it('stays closed for the rest of the chain, even back on the starting origin (A → B → A)', () => {
    const guard = createRedirectGuard(new URL('http://127.0.0.1:8080/start'));
    expect(guard.allows('http://127.0.0.1:9090/elsewhere')).toBe(false);
    expect(guard.allows('http://127.0.0.1:8080/back')).toBe(false);
    expect(guard.left).toBe(true);
  });

  it.each([
    ['another scheme', 'http://api.example.com/'],
    ['another port', 'https://api.example.com:8443/'],
    ['a subdomain', 'https://sub.api.example.com/'],
    ['a longer host', 'https://api.example.com.evil.io/'],
    ['a URL that cannot be parsed', 'not a url'],
    ['a URL without an origin of its own', 'data:text/plain,hello'],
  ])('treats %s as another origin', (_name, hop) => {
    expect(createRedirectGuard('https://api.example.com/').allows(hop)).toBe(false);
  });

  it('allows nothing when the start itself has no origin', () => {
    const guard = createRedirectGuard('not a url');
    expect(guard.left).toBe(true);
    expect(guard.allows('not a url')).toBe(false);
  });

  it('gives each chain its own state', () => {
    const first = createRedirectGuard('https://a.example/');
    first.allows('https://b.example/');
    expect(createRedirectGuard('https://a.example/').allows('https://a.example/x')).toBe(true);
  });
});

describe('tokenAfterUnauthorized', () => {
  // Stand-in token values only. The source holds `current`; invalidate() loads `onDisk`.
  function fakeSource(options: { current: string; onDisk: string; invalidateError?: unknown }) {
    let current = options.current;
    const calls: string[] = [];
    const source: TokenSource = {
      getToken: async () => {
        calls.push('getToken');
        return current;
      },
      invalidate: async (rejected) => {
        calls.push(`invalidate ${rejected}`);
        if (options.invalidateError !== undefined) throw options.invalidateError;
        current = options.onDisk;
      },
    };
    return { source, calls, current: () => current };
  }

  it('replayable body: invalidates and returns the newer token to retry with', async () => {
    const { source, calls } = fakeSource({ current: 'old', onDisk: 'new' });
    await expect(tokenAfterUnauthorized(source, 'old', { replayable: true })).resolves.toBe('new');
    expect(calls).toEqual(['invalidate old', 'getToken']);
  });

  it('replayable body, nothing newer: undefined, the 401 stands', async () => {
    const { source } = fakeSource({ current: 'old', onDisk: 'old' });
    await expect(tokenAfterUnauthorized(source, 'old', { replayable: true })).resolves.toBeUndefined();
  });

  it('body that cannot be sent again: invalidates (so the next request is fresh) but gives no token to retry with', async () => {
    const { source, calls, current } = fakeSource({ current: 'old', onDisk: 'new' });
    await expect(tokenAfterUnauthorized(source, 'old', { replayable: false })).resolves.toBeUndefined();
    expect(calls).toEqual(['invalidate old']);
    expect(current()).toBe('new');
  });

  it('a source without invalidate(): undefined either way', async () => {
    const source: TokenSource = { getToken: async () => 'old' };
    await expect(tokenAfterUnauthorized(source, 'old', { replayable: true })).resolves.toBeUndefined();
    await expect(tokenAfterUnauthorized(source, 'old', { replayable: false })).resolves.toBeUndefined();
  });

  it('swallows a TokenSourceError from invalidate() (the 401 says more) and lets other errors through', async () => {
    const closed = new TokenSourceError('TOKEN_SOURCE_CLOSED', 'closed');
    for (const replayable of [true, false]) {
      await expect(tokenAfterUnauthorized(fakeSource({ current: 'old', onDisk: 'new', invalidateError: closed }).source, 'old', { replayable })).resolves.toBeUndefined();
      const aborted = new DOMException('aborted', 'AbortError');
      await expect(tokenAfterUnauthorized(fakeSource({ current: 'old', onDisk: 'new', invalidateError: aborted }).source, 'old', { replayable })).rejects.toBe(aborted);
    }
  });

  it('passes the signal to getToken() on the retry path', async () => {
    const seen: Array<AbortSignal | undefined> = [];
    const source: TokenSource = {
      getToken: async (options) => {
        seen.push(options?.signal);
        return 'new';
      },
      invalidate: async () => {},
    };
    const signal = new AbortController().signal;
    await tokenAfterUnauthorized(source, 'old', { replayable: true, signal });
    expect(seen).toEqual([signal]);
  });
});
