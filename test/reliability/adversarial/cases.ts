import type { AdapterOptions } from '@podtoken/core';
import type { Route, Servers } from './harness.js';

// The adversarial corpus: every case runs against every client driver (drivers.ts), and the
// runner (run.ts) judges where the token went by the phase each URL carries:
// - `start`: the origin the call began at, before any hop left it: the token must be there;
// - `after`: reached once the chain left its start origin: the token must never be there
//   (not on the hop, not on a retry of it, not on a later hop back to the start);
// - `same`: reached through same-origin hops only: the token must still be there.
// Every error a call rejects with is rendered every way a log line could (renderings.ts)
// and must not hold the token.

/** One case of the corpus. */
export interface AdversarialCase {
  /** Unique, short, and says what the case is: `302 port retry origins=[A,B]`. */
  readonly id: string;
  readonly group: 'redirect' | 'same-origin' | 'escape' | 'error';
  readonly method: 'GET' | 'POST';
  readonly body?: string;
  /** `'client'`: the client's own retry (got), or the one people add (axios-retry, a fetch retry loop). */
  readonly retry: 'none' | 'client';
  /** The first URL of one run. */
  start(servers: Servers, route: Route): string;
  /** The adapter's `origins`; undefined leaves it unset (every origin allowed). */
  origins?(servers: Servers): AdapterOptions['origins'];
  /** Whether the call must reach an `after` or `same` hop: proof the case ran its chain. */
  readonly reachesHop: boolean;
  /** The final status every client must end with, when the case ends with one. */
  readonly status?: number;
  /** false: the client does not trust the test CA (TLS fails after the token was set). */
  readonly trustTestCa?: boolean;
  readonly timeoutMs?: number;
  readonly abortAfterMs?: number;
  /** Render errors at every depth as well (slow): the error cases. */
  readonly deep?: boolean;
}

const STATUSES = [301, 302, 303, 307, 308] as const;

/** A cross-origin kind: where the call starts, and the hops that take it elsewhere. */
interface Kind {
  readonly name: string;
  /** The start origin. */
  start(s: Servers): string;
  /** The origins a `[A, B]`-style list names: the start and every other origin the chain visits. */
  both(s: Servers): string[];
  /** The URL of the first hop, given the path (commands) the last hop ends with. */
  firstHop(s: Servers, r: Route, status: number, last: string[]): string;
}

const direct = (name: string, start: (s: Servers) => string, target: (s: Servers) => string): Kind => ({
  name,
  start,
  both: (s) => [start(s), target(s)],
  firstHop: (s, r, _status, last) => r.url(target(s), 'after', ...last),
});

const KINDS: readonly Kind[] = [
  direct('port', (s) => s.a, (s) => s.b),
  direct('host 127.0.0.2', (s) => s.a, (s) => s.host2),
  direct('host localhost', (s) => s.a, (s) => s.localhost),
  direct('scheme http→https', (s) => s.a, (s) => s.aTls),
  direct('scheme https→http', (s) => s.aTls, (s) => s.a),
  direct('subdomain', (s) => s.api, (s) => s.sub),
  {
    name: 'back A→B→A',
    start: (s) => s.a,
    both: (s) => [s.a, s.b],
    firstHop: (s, r, status, last) => r.url(s.b, 'after', r.redirect(status, r.url(s.a, 'after', ...last))),
  },
];

/** What happens at the end of the chain, and around it. */
interface Mode {
  readonly name: string;
  readonly retry: 'none' | 'client';
  /** Commands at the last hop. */
  last(r: Route): string[];
  /** Commands at the start, before the redirect. */
  first(r: Route): string[];
  /** The final status; undefined where clients may rightly differ (see the mode). */
  readonly status: number | undefined;
}

const MODES: readonly Mode[] = [
  { name: 'plain', retry: 'none', last: () => ['ok'], first: () => [], status: 200 },
  // The hop answers 503 once; the client (or the helper people add) retries.
  { name: 'retry', retry: 'client', last: (r) => [r.once(503), 'ok'], first: () => [], status: 200 },
  // The hop answers 401 (it got no token): the adapter's 401 retry must not send one there.
  // Most adapters see the chain left and hand the 401 over; axios' fetch adapter hides the
  // redirect from axios, so the adapter re-sends the call from the start (the token goes to
  // A again, never to the hop) and the hop's second answer is 200. Both are fine.
  { name: '401 at hop', retry: 'none', last: (r) => [r.once(401), 'ok'], first: () => [], status: undefined },
  // The start answers 401 first: the adapter retries with a fresh token, then follows the redirect.
  { name: '401 at start', retry: 'none', last: () => ['ok'], first: (r) => [r.once(401)], status: 200 },
];

function redirectCases(): AdversarialCase[] {
  const cases: AdversarialCase[] = [];
  for (const status of STATUSES) {
    for (const kind of KINDS) {
      for (const mode of MODES) {
        for (const list of ['unset', '[A,B]'] as const) {
          cases.push({
            id: `${status} ${kind.name} ${mode.name} origins=${list}`,
            group: 'redirect',
            method: 'GET',
            retry: mode.retry,
            start: (s, r) => r.url(kind.start(s), 'start', ...mode.first(r), r.redirect(status, kind.firstHop(s, r, status, mode.last(r)))),
            ...(list === 'unset' ? {} : { origins: (s: Servers) => kind.both(s) }),
            reachesHop: true,
            ...(mode.status === undefined ? {} : { status: mode.status }),
          });
        }
      }
    }
    // A body on a redirect: 301/302/303 turn the POST into a GET, 307/308 send it again.
    cases.push({
      id: `${status} port POST with a body`,
      group: 'redirect',
      method: 'POST',
      body: 'a body that is not a secret',
      retry: 'none',
      start: (s, r) => r.url(s.a, 'start', r.redirect(status, r.url(s.b, 'after', 'ok'))),
      reachesHop: true,
      status: 200,
    });
  }
  return cases;
}

function sameOriginCases(): AdversarialCase[] {
  const cases: AdversarialCase[] = STATUSES.map((status) => ({
    id: `${status} same origin`,
    group: 'same-origin' as const,
    method: 'GET' as const,
    retry: 'none' as const,
    start: (s: Servers, r: Route) => r.url(s.a, 'start', r.redirect(status, r.url(s.a, 'same', 'ok'))),
    reachesHop: true,
    status: 200,
  }));
  cases.push(
    {
      id: '302 same origin, retry of the hop',
      group: 'same-origin',
      method: 'GET',
      retry: 'client',
      start: (s, r) => r.url(s.a, 'start', r.redirect(302, r.url(s.a, 'same', r.once(503), 'ok'))),
      reachesHop: true,
      status: 200,
    },
    {
      id: '302 same origin, relative Location, origins=[A]',
      group: 'same-origin',
      method: 'GET',
      retry: 'none',
      start: (s, r) => r.url(s.a, 'start', r.redirect(302, new URL(r.url(s.a, 'same', 'ok')).pathname)),
      origins: (s) => [s.a],
      reachesHop: true,
      status: 200,
    },
    {
      id: '302 same origin, 401 at the hop (retried with the fresh token)',
      group: 'same-origin',
      method: 'GET',
      retry: 'none',
      start: (s, r) => r.url(s.a, 'start', r.redirect(302, r.url(s.a, 'same', r.once(401), 'ok'))),
      reachesHop: true,
      status: 200,
    },
  );
  return cases;
}

/** Locations that spell another origin (127.0.0.2, A's port) in ways a naive check misses. */
function escapeCases(): AdversarialCase[] {
  // [name, Location, whether every client follows it]: the fetch standard refuses a URL with
  // credentials, so global fetch and node-fetch 3 reject the userinfo trick (no request made).
  const tricks: Array<[string, (s: Servers, r: Route) => string, boolean]> = [
    ['scheme-relative //host', (s, r) => new URL(r.url(s.host2, 'after', 'ok')).href.replace(/^http:/, ''), true],
    ['backslashes \\\\host\\path', (s, r) => new URL(r.url(s.host2, 'after', 'ok')).href.replace(/^http:/, '').replaceAll('/', '\\'), true],
    ['userinfo A@B', (s, r) => r.url(s.host2, 'after', 'ok').replace('http://', `http://127.0.0.1:${s.port}@`), false],
    ['tab inside the host', (s, r) => r.url(s.host2, 'after', 'ok').replace('127.0.0.2', '127.0.0\t.2'), true],
    ['percent-encoded host', (s, r) => r.url(s.host2, 'after', 'ok').replace('127.0.0.2', '127.0.0.%32'), true],
    ['short IPv4 127.2', (s, r) => r.url(s.host2, 'after', 'ok').replace('127.0.0.2', '127.2'), true],
    ['hex IPv4 0x7f000002', (s, r) => r.url(s.host2, 'after', 'ok').replace('127.0.0.2', '0x7f000002'), true],
    ['upper-case scheme and same host (same origin)', (s, r) => r.url(s.a, 'same', 'ok').replace('http://', 'HTTP://'), true],
  ];
  const cases: AdversarialCase[] = [];
  for (const status of [302, 307] as const) {
    for (const [name, location, followed] of tricks) {
      cases.push({
        id: `${status} Location: ${name}`,
        group: 'escape',
        method: 'GET',
        retry: 'none',
        start: (s, r) => r.url(s.a, 'start', r.redirect(status, location(s, r))),
        reachesHop: followed,
        ...(followed ? { status: 200 } : {}),
      });
    }
  }
  return cases;
}

/** Failures: the error each client rejects with is rendered at every depth. */
function errorCases(): AdversarialCase[] {
  const base = { group: 'error' as const, method: 'GET' as const, retry: 'none' as const, reachesHop: false, deep: true };
  return [
    { ...base, id: 'error: 500 at the start', start: (s, r) => r.url(s.a, 'start', 's', '500'), status: 500 },
    { ...base, id: 'error: 500 at the start, POST body', method: 'POST', body: '{"not":"secret"}', start: (s, r) => r.url(s.a, 'start', 's', '500'), status: 500 },
    { ...base, id: 'error: 401 for both tokens', start: (s, r) => r.url(s.a, 'start', 's', '401'), status: 401 },
    { ...base, id: 'error: 500 after a cross-origin hop', start: (s, r) => r.url(s.a, 'start', r.redirect(302, r.url(s.b, 'after', 's', '500'))), reachesHop: true, status: 500 },
    { ...base, id: 'error: connection refused', start: (s, r) => r.url(`http://127.0.0.1:${s.closedPort}`, 'start', 'ok') },
    { ...base, id: 'error: connection refused after a hop', start: (s, r) => r.url(s.a, 'start', r.redirect(302, r.url(`http://127.0.0.1:${s.closedPort}`, 'after', 'ok'))) },
    { ...base, id: 'error: timeout (no answer)', start: (s, r) => r.url(s.a, 'start', 'hang'), timeoutMs: 300 },
    { ...base, id: 'error: aborted by the caller', start: (s, r) => r.url(s.a, 'start', 'hang'), abortAfterMs: 100 },
    { ...base, id: 'error: TLS, server not trusted', start: (s, r) => r.url(s.aTls, 'start', 'ok'), trustTestCa: false },
    { ...base, id: 'error: invalid Location', start: (s, r) => r.url(s.a, 'start', r.redirect(302, 'http://[::1')) },
    { ...base, id: 'error: redirect to file:', start: (s, r) => r.url(s.a, 'start', r.redirect(302, 'file:///etc/passwd')) },
    { ...base, id: 'error: endless same-origin redirects', start: (s, r) => r.url(s.a, 'start', 'loop', '302') },
  ];
}

/** The whole corpus, in table order. */
export const CASES: readonly AdversarialCase[] = [...redirectCases(), ...sameOriginCases(), ...escapeCases(), ...errorCases()];
