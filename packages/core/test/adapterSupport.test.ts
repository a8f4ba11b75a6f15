import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createOriginFilter, createRedirectGuard, isReplayableBody, tokenAfterUnauthorized, TokenSourceError, type TokenSource } from '../src/index.js';

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

describe('createOriginFilter: an entry must be an origin and nothing more', () => {
  it.each([
    ['a path', 'https://x.example/api', /has a path \(\/api\)/],
    ['credentials', 'https://user:pw@x.example', /has credentials/],
    ['a user name alone', 'https://user@x.example', /has credentials/],
    ['an empty userinfo', 'https://@x.example', /has credentials/],
    ['a query', 'https://x.example?q', /has a query/],
    ['an empty query', 'https://x.example?', /has a query/],
    ['a fragment', 'https://x.example#f', /has a fragment/],
    ['an empty fragment', 'https://x.example#', /has a fragment/],
    ['a path and a port', 'https://x.example:8443/v1/', /has a path \(\/v1\/\)/],
    ['backslashes the URL parser would turn into //', 'https:\\\\x.example', /characters an origin cannot hold/],
    ['blanks the URL parser would trim', ' https://x.example', /characters an origin cannot hold/],
  ])('refuses %s (%s) with a TypeError instead of cutting it down', (_name, entry, reason) => {
    expect(() => createOriginFilter([entry])).toThrow(TypeError);
    expect(() => createOriginFilter([entry])).toThrow(reason);
    expect(() => createOriginFilter(['https://ok.example', entry], 'tokenSourceHooks')).toThrow(/^tokenSourceHooks: origins holds /);
  });

  it('names the entry without its password', () => {
    let message = '';
    try {
      createOriginFilter(['https://user:s3cr3t-pw@x.example']);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('"https://***@x.example"');
    expect(message.includes('s3cr3t')).toBe(false);
  });

  it('suggests the origin the entry would have been cut to', () => {
    expect(() => createOriginFilter(['https://x.example:8443/api'])).toThrow(/e\.g\. "https:\/\/x\.example:8443"/);
  });

  it.each([
    ['scheme://host', 'https://x.example', 'https://x.example/v1'],
    ['with a port', 'https://x.example:8443', 'https://x.example:8443/'],
    ['one trailing slash', 'https://x.example/', 'https://x.example/v1'],
    ['the default port spelled out', 'https://x.example:443', 'https://x.example/v1'],
    ['upper case', 'HTTPS://X.Example', 'https://x.example/v1'],
    ['an IPv6 literal', 'http://[::1]:8080', 'http://[::1]:8080/'],
  ])('accepts %s (%s)', (_name, entry, url) => {
    expect(createOriginFilter([entry])(url)).toBe(true);
  });

  it('accepts a URL object that is a pure origin, and refuses one with more', () => {
    const allowed = createOriginFilter([new URL('https://x.example:8443')]);
    expect(allowed('https://x.example:8443/v1')).toBe(true);
    expect(allowed('https://x.example/v1')).toBe(false);
    expect(() => createOriginFilter([new URL('https://x.example/api')])).toThrow(/the URL "https:\/\/x\.example\/api", which has a path/);
    expect(() => createOriginFilter([new URL('https://u:p@x.example')])).toThrow(/has credentials/);
    expect(() => createOriginFilter([new URL('https://x.example/?q=1')])).toThrow(/has a query/);
  });

  it('refuses what is no origin at all, and other types, naming them', () => {
    expect(() => createOriginFilter(['vault'])).toThrow(/"vault", which is not an origin/);
    expect(() => createOriginFilter(['file:///etc'])).toThrow(/not an origin/);
    expect(() => createOriginFilter([42 as unknown as string])).toThrow(/origins holds a number/);
    expect(() => createOriginFilter([null as unknown as string])).toThrow(/origins holds null/);
    expect(() => createOriginFilter([{} as unknown as string])).toThrow(/origins holds an object \(Object\)/);
  });
});
