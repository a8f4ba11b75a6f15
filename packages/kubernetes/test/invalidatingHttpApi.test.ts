import type { TokenSource } from '@podtoken/core';
import { describe, expect, it } from 'vitest';
import type { RequestContextLike, ResponseContextLike } from '../src/internal/clientNode.js';
import type { Binding } from '../src/internal/binding.js';
import { invalidatingHttpApi } from '../src/internal/unauthorized.js';

// The 401 bookkeeping on its own, with a fake HttpLibrary. Stand-in token values only.
class FakeObservable<T> {
  constructor(readonly promise: Promise<T>) {}
  toPromise(): Promise<T> {
    return this.promise;
  }
}

function request(headers: Record<string, string>, body?: unknown): RequestContextLike & { headers: Record<string, string> } {
  return {
    headers,
    getHeaders: () => headers,
    setHeaderParam: (key, value) => void (headers[key] = value),
    getBody: () => body,
  };
}

function setUp(statuses: number[], options: { current: string; onDisk: string; retry?: boolean }) {
  const sent: string[] = [];
  let consumed = 0;
  const inner = {
    send(req: RequestContextLike) {
      sent.push(Object.entries(req.getHeaders()).find(([key]) => key.toLowerCase() === 'authorization')?.[1] ?? '');
      const status = statuses.shift() ?? 200;
      const response: ResponseContextLike = {
        httpStatusCode: status,
        body: {
          text: async () => {
            consumed += 1;
            return '';
          },
        },
      };
      return new FakeObservable(Promise.resolve(response));
    },
  };
  let current = options.current;
  const invalidated: string[] = [];
  const source: TokenSource = {
    getToken: async () => current,
    invalidate: async (rejected) => {
      invalidated.push(rejected);
      current = options.onDisk;
    },
  };
  const binding: Binding = { user: { name: 'u' }, source, retryUnauthorized: options.retry ?? true, allows: () => true, ca: undefined, dispatcher: undefined };
  const remembered = new Map<string, Binding>([[options.current, binding]]);
  const api = invalidatingHttpApi(inner, {
    lookup: (token) => remembered.get(token),
    remember: (token, b) => void remembered.set(token, b),
    bindingOfHeaders: () => undefined,
  });
  return { api, sent, invalidated, consumed: () => consumed, remembered };
}

describe('invalidatingHttpApi', () => {
  it('passes anything but a 401 through, untouched, as the same kind of Observable', async () => {
    const { api, sent, invalidated } = setUp([200], { current: 'old', onDisk: 'new' });
    const observable = api.send(request({ Authorization: 'Bearer old' }));
    expect(observable).toBeInstanceOf(FakeObservable);
    expect((await observable.toPromise()).httpStatusCode).toBe(200);
    expect(sent).toEqual(['Bearer old']);
    expect(invalidated).toEqual([]);
  });

  it('401 for our token: invalidates, drains the first response, re-sends once with the new token under the same header name', async () => {
    const { api, sent, invalidated, consumed, remembered } = setUp([401, 200], { current: 'old', onDisk: 'new' });
    const req = request({ authorization: 'Bearer old' }, '{"kind":"Pod"}');
    expect((await api.send(req).toPromise()).httpStatusCode).toBe(200);
    expect(sent).toEqual(['Bearer old', 'Bearer new']);
    expect(Object.keys(req.headers)).toEqual(['authorization']);
    expect(invalidated).toEqual(['old']);
    expect(consumed()).toBe(1);
    expect(remembered.has('new')).toBe(true);
  });

  it('401 when the source has nothing newer: the 401 stands, one request', async () => {
    const { api, sent, invalidated } = setUp([401, 200], { current: 'old', onDisk: 'old' });
    expect((await api.send(request({ Authorization: 'Bearer old' })).toPromise()).httpStatusCode).toBe(401);
    expect(sent).toEqual(['Bearer old']);
    expect(invalidated).toEqual(['old']);
  });

  it('401 and a second 401: no loop', async () => {
    const { api, sent } = setUp([401, 401, 200], { current: 'old', onDisk: 'new' });
    expect((await api.send(request({ Authorization: 'Bearer old' })).toPromise()).httpStatusCode).toBe(401);
    expect(sent).toEqual(['Bearer old', 'Bearer new']);
  });

  it('a body that cannot be sent twice, or retryUnauthorized false: invalidate only', async () => {
    const stream = setUp([401, 200], { current: 'old', onDisk: 'new' });
    const form = { pipe() {} }; // a FormData stream
    expect((await stream.api.send(request({ Authorization: 'Bearer old' }, form)).toPromise()).httpStatusCode).toBe(401);
    expect(stream.sent).toEqual(['Bearer old']);
    expect(stream.invalidated).toEqual(['old']);

    const off = setUp([401, 200], { current: 'old', onDisk: 'new', retry: false });
    expect((await off.api.send(request({ Authorization: 'Bearer old' })).toPromise()).httpStatusCode).toBe(401);
    expect(off.sent).toEqual(['Bearer old']);
    expect(off.invalidated).toEqual(['old']);
  });

  it.each([
    ['no body', undefined],
    ['a JSON string', '{"kind":"Pod"}'],
    ['URLSearchParams', new URLSearchParams({ a: '1' })],
    ['a Buffer (set by a middleware)', Buffer.from('bytes')],
  ])('re-sends a request with %s', async (_name, body) => {
    const { api, sent } = setUp([401, 200], { current: 'old', onDisk: 'new' });
    expect((await api.send(request({ Authorization: 'Bearer old' }, body)).toPromise()).httpStatusCode).toBe(200);
    expect(sent).toEqual(['Bearer old', 'Bearer new']);
  });

  it('a body the client would consume (a web ReadableStream, a generator): invalidate only', async () => {
    for (const body of [new ReadableStream(), (function* () {})()]) {
      const { api, sent, invalidated } = setUp([401, 200], { current: 'old', onDisk: 'new' });
      expect((await api.send(request({ Authorization: 'Bearer old' }, body)).toPromise()).httpStatusCode).toBe(401);
      expect(sent).toEqual(['Bearer old']);
      expect(invalidated).toEqual(['old']);
    }
  });

  it('a 401 for a token we never handed out (set by someone else) is left alone', async () => {
    const { api, sent, invalidated } = setUp([401, 200], { current: 'old', onDisk: 'new' });
    expect((await api.send(request({ Authorization: 'Bearer someone-else' })).toPromise()).httpStatusCode).toBe(401);
    expect((await api.send(request({})).toPromise()).httpStatusCode).toBe(200);
    expect(sent).toEqual(['Bearer someone-else', '']);
    expect(invalidated).toEqual([]);
  });
});
