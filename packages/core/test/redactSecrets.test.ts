import { Agent } from 'node:http';
import { Socket } from 'node:net';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { redactSecrets, REDACTED } from '../src/index.js';

const SECRET = 'eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl';
const holds = (value: unknown) => inspect(value, { depth: Infinity, showHidden: true }).includes(SECRET);

describe('redactSecrets', () => {
  it('replaces the secret in every string it reaches: nested, in arrays, maps, sets, symbol keys, hidden fields', () => {
    const hidden = {};
    Object.defineProperty(hidden, 'header', { value: `GET / HTTP/1.1\r\nAuthorization: Bearer ${SECRET}\r\n`, enumerable: false, writable: true });
    const error = Object.assign(new Error('failed'), {
      config: { headers: { Authorization: `Bearer ${SECRET}` } },
      list: [[`x ${SECRET} y`]],
      map: new Map<string, unknown>([['authorization', { name: 'authorization', value: `Bearer ${SECRET}` }], ['raw', `Bearer ${SECRET}`]]),
      set: new Set([`Bearer ${SECRET}`]),
      [Symbol('kOutHeaders')]: { authorization: ['Authorization', `Bearer ${SECRET}`] },
      hidden,
    });
    error.cause = { message: `echoed ${SECRET}` };
    const result = redactSecrets(error, [SECRET]);
    expect(holds(error)).toBe(false);
    expect(error.config.headers.Authorization).toBe(`Bearer ${REDACTED}`);
    expect(error.map.get('raw')).toBe(`Bearer ${REDACTED}`);
    expect([...error.set]).toEqual([`Bearer ${REDACTED}`]);
    expect(result).toMatchObject({ replaced: 8, unreachable: 0, truncated: false });
  });

  it('cleans a fetch Request and Headers through their API (undici 7 keeps them in private fields)', () => {
    const request = new Request('http://127.0.0.1/x', { headers: { authorization: `Bearer ${SECRET}`, accept: 'text/plain' } });
    const headers = new Headers({ authorization: `Bearer ${SECRET}` });
    redactSecrets({ request, headers }, [SECRET]);
    expect(request.headers.get('authorization')).toBe(`Bearer ${REDACTED}`);
    expect(request.headers.get('accept')).toBe('text/plain');
    expect(headers.get('authorization')).toBe(`Bearer ${REDACTED}`);
    expect(holds(request) || holds(headers)).toBe(false);
  });

  it('copes with cycles and leaves other text alone', () => {
    const a: Record<string, unknown> = { keep: 'nothing secret here' };
    a['self'] = a;
    a['b'] = { a, token: SECRET };
    redactSecrets(a, [SECRET]);
    expect(a['keep']).toBe('nothing secret here');
    expect((a['b'] as { token: string }).token).toBe(REDACTED);
  });

  it('counts what it cannot change (frozen objects, getters) rather than pretending', () => {
    const frozen = Object.freeze({ header: `Bearer ${SECRET}` });
    const getter = { get header() { return `Bearer ${SECRET}`; } };
    expect(redactSecrets({ frozen, getter }, [SECRET])).toMatchObject({ replaced: 0, unreachable: 1 });
  });

  it('does not enter live sockets, connection pools or timers: other requests in flight must not change under them', () => {
    const agent = new Agent();
    const socket = new Socket();
    const timer = setTimeout(() => {}, 1000);
    try {
      Object.assign(agent, { note: `Bearer ${SECRET}` });
      Object.assign(socket, { _pendingData: `Bearer ${SECRET}` });
      Object.assign(timer, { note: `Bearer ${SECRET}` });
      redactSecrets({ agent, socket, timer }, [SECRET]);
      expect((agent as unknown as { note: string }).note.includes(SECRET)).toBe(true);
      expect((socket as unknown as { _pendingData: string })._pendingData.includes(SECRET)).toBe(true);
      expect((timer as unknown as { note: string }).note.includes(SECRET)).toBe(true);
      // A destroyed socket is entered: one that never connected holds the request's header text.
      socket.destroy();
      redactSecrets({ socket }, [SECRET]);
      expect((socket as unknown as { _pendingData: string | null })._pendingData?.includes(SECRET) ?? false).toBe(false);
    } finally {
      clearTimeout(timer);
      agent.destroy();
    }
  });

  it('ignores secrets too short to be tokens, and stops at maxObjects', () => {
    expect(redactSecrets({ a: 'short' }, ['short'])).toMatchObject({ replaced: 0, visited: 0 });
    const wide = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, { v: SECRET }]));
    expect(redactSecrets(wide, [SECRET], { maxObjects: 10 })).toMatchObject({ truncated: true });
    expect(() => redactSecrets({}, [SECRET], { maxObjects: 0 })).toThrow(/maxObjects/);
  });
});
