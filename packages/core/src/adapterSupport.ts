import { isTokenSourceError } from './errors.js';
import { channels } from './diagnostics.js';
import { isAnchored } from './internal/anchoredPattern.js';
import type { TokenSource } from './tokenSource.js';

/** Options every HTTP adapter (`@podtoken/axios`, `/got`, `/fetch`) takes. */
export interface AdapterOptions {
  /**
   * Attach the token only to requests for these origins. Each entry is one of:
   * - an origin string, `scheme://host[:port]` and nothing more (`'https://vault:8200'`;
   *   one trailing `/` is tolerated), compared as a URL origin (scheme, host and port;
   *   `https://vault:443` is `https://vault`);
   * - a `URL` object that is a pure origin (`new URL('https://vault:8200')`);
   * - a regular expression tested against the origin, which must be anchored with `^` and
   *   `$` (`/^https:\/\/[a-z-]+\.svc$/`): an unanchored `/api\.example\.com/` would also
   *   match `https://api.example.com.evil.io`.
   *
   * Anything else throws a `TypeError` that names the entry (with any password hidden): an
   * entry with a path (`https://x/api`), credentials (`https://user:pw@x`), a query
   * (`https://x?q`) or a fragment (`https://x#f`) is refused rather than cut down to its
   * origin, and so is an empty array, which would never send the token.
   * Default: every request.
   */
  origins?: Array<string | URL | RegExp>;
  /**
   * On a 401 for the token it sent, an adapter always calls `source.invalidate(sentToken)`
   * (a 401 is the signal to re-read), so the next request carries a fresh token. With
   * `retryUnauthorized`, when the source then holds a different token and the body can be
   * sent again, it also sends the request once more with it; with `false` the 401 goes
   * straight back to the caller.
   * @default true
   */
  retryUnauthorized?: boolean;
}

/**
 * Builds the test adapters use to decide whether a URL may receive the token. Validates
 * `origins` up front, with a `TypeError` that names the bad entry: each string (or `URL`)
 * must be an origin and nothing more, such as `"https://api.example.com"` (no path,
 * credentials, query or fragment: such an entry is refused, never cut down to its origin),
 * each RegExp must be anchored with `^` and `$` (in every top-level alternative), and the
 * array must not be empty.
 *
 * @param origins - {@link AdapterOptions.origins}; `undefined` allows every URL.
 * @param where - the caller's name, for error messages.
 * @returns a predicate that is true when the URL's origin is allowed (false for a URL that
 *   cannot be parsed).
 *
 * @example
 * ```ts
 * const allowed = createOriginFilter(['https://vault:8200', /^https:\/\/[a-z-]+\.svc$/]);
 * allowed('https://vault:8200/v1/secret'); // true
 * allowed('https://vault.evil.io:8200/'); // false
 * createOriginFilter([/vault/]); // TypeError: not anchored with ^ and $
 * createOriginFilter(['https://vault:8200/v1']); // TypeError: has a path
 * ```
 */
export function createOriginFilter(origins: AdapterOptions['origins'], where = 'withTokenSource'): (url: string | URL) => boolean {
  if (origins === undefined) return () => true;
  if (!Array.isArray(origins)) throw new TypeError(`${where}: origins must be an array of strings or RegExps`);
  if (origins.length === 0) {
    throw new TypeError(`${where}: origins is empty, so the token would never be sent; list at least one origin, or leave origins out to send it everywhere`);
  }
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  for (const origin of origins) {
    if (origin instanceof RegExp) {
      if (!isAnchored(origin)) {
        throw new TypeError(
          `${where}: origins holds ${String(origin)}, a RegExp not anchored with ^ and $, so it also matches origins that merely contain a match ` +
            '(/api\\.example\\.com/ matches https://api.example.com.evil.io); anchor it, e.g. /^https:\\/\\/api\\.example\\.com$/, or list the origin as a string',
        );
      }
      patterns.push(origin);
      continue;
    }
    exact.add(parseOrigin(origin, where));
  }
  return (url) => {
    let origin: string;
    try {
      origin = (typeof url === 'string' ? new URL(url) : url).origin;
    } catch {
      return false;
    }
    if (exact.has(origin)) return true;
    return patterns.some((pattern) => {
      pattern.lastIndex = 0;
      return pattern.test(origin);
    });
  };
}

// scheme://authority with an optional single trailing slash: nothing the URL parser would
// drop or move (a path, a query, a fragment, backslashes, blanks) and no userinfo.
const ORIGIN_TEXT = /^[a-z][a-z\d+\-.]*:\/\/[^/\\?#@\s]+\/?$/i;

/**
 * The origin an `origins` entry stands for, or a `TypeError` saying why the entry is not
 * an origin. The entry is quoted with any userinfo hidden: `https://user:pw@x` must not put
 * a password in an error message.
 */
function parseOrigin(entry: unknown, where: string): string {
  const isUrl = entry instanceof URL;
  if (typeof entry !== 'string' && !isUrl) {
    throw new TypeError(`${where}: origins holds ${describeEntry(entry)}; each entry must be an origin string like "https://api.example.com", a URL of one, or an anchored RegExp`);
  }
  let url: URL | undefined;
  try {
    url = new URL(entry);
  } catch {
    url = undefined;
  }
  if (url === undefined || url.origin === 'null') {
    throw new TypeError(`${where}: origins holds ${quote(entry)}, which is not an origin like "https://api.example.com"`);
  }
  const extra = url.username !== '' || url.password !== '' || (typeof entry === 'string' && /^[^/]*\/\/[^/?#]*@/.test(entry))
    ? 'credentials'
    : url.pathname !== '/'
      ? `a path (${url.pathname})`
      : url.search !== '' || url.href.includes('?')
        ? 'a query'
        : url.hash !== '' || url.href.includes('#')
          ? 'a fragment'
          : typeof entry === 'string' && !ORIGIN_TEXT.test(entry)
            ? 'characters an origin cannot hold'
            : undefined;
  if (extra !== undefined) {
    throw new TypeError(
      `${where}: origins holds ${quote(entry)}, which has ${extra}: an entry must be an origin (scheme://host[:port]) and nothing more, ` +
        `e.g. ${JSON.stringify(url.origin)}; the token is sent to the whole origin, never only to a path of it`,
    );
  }
  return url.origin;
}

/** An `origins` entry as an error message shows it: quoted, its userinfo hidden. */
function quote(entry: string | URL): string {
  const text = String(entry).replace(/^([^/]*\/\/)[^/?#]*@/, '$1***@');
  return `${entry instanceof URL ? 'the URL ' : ''}${JSON.stringify(text)}`;
}

function describeEntry(entry: unknown): string {
  if (entry === null) return 'null';
  if (typeof entry === 'object') return `an object (${Object.prototype.toString.call(entry).slice(8, -1)})`;
  return `a ${typeof entry}`;
}

/** The `Authorization` header value for `token`. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/**
 * After a 401 for `sentToken`: invalidates the source and returns the token to retry with,
 * or `undefined` when there is nothing better to send (the source still holds the rejected
 * token, or cannot give one now): then the 401 stands and goes back to the caller.
 */
export async function tokenForRetry(source: TokenSource, sentToken: string, signal?: AbortSignal): Promise<string | undefined> {
  if (source.invalidate === undefined) return undefined;
  let next: string;
  try {
    await source.invalidate(sentToken);
    next = await source.getToken(signal === undefined ? undefined : { signal });
  } catch (error) {
    // A source that fails now (expired, closed) has no better token: the caller gets the
    // server's 401, which says more than our error would. An abort still propagates.
    if (isTokenSourceError(error)) return undefined;
    throw error;
  }
  return next === sentToken ? undefined : next;
}

/** Options of {@link tokenAfterUnauthorized}. */
export interface TokenAfterUnauthorizedOptions {
  /**
   * Whether the adapter may send the request a second time: usually
   * `isReplayableBody(body)`, computed on the body as it stands (or as it stood before a
   * stream was consumed). `false` means no retry, whatever the source holds.
   */
  replayable: boolean;
  /** The request's signal, passed on to `source.getToken()` when a retry is possible. */
  signal?: AbortSignal | undefined;
  /**
   * The adapter's name (`axios`, `grpc`…): with it, the 401 and what came of it are
   * published on the `podtoken:request:unauthorized` diagnostics channel.
   */
  adapter?: string;
  /**
   * The adapter's `retryUnauthorized` option, only to say why there was no retry in that
   * event (`retry-disabled` rather than `not-replayable`). Pass `replayable` as
   * `retryUnauthorized && isReplayableBody(body)`, as before.
   */
  retryUnauthorized?: boolean;
}

/**
 * The decision every adapter makes after a 401 for `sentToken`, in one place:
 *
 * - the request cannot be sent again (`replayable: false`): calls
 *   `source.invalidate(sentToken)` so that the *next* request carries a fresh token, and
 *   returns `undefined`: the 401 goes back to the caller unchanged;
 * - otherwise: {@link tokenForRetry}, i.e. the token to send the request once more with, or
 *   `undefined` when the source has nothing newer.
 *
 * A 401 is the server saying the token is stale, so the source is told in both cases; only
 * the retry depends on the body. A `TokenSourceError` from the source (closed, expired) is
 * swallowed, as in {@link tokenForRetry}: the server's 401 says more. Other errors, such as the
 * signal's abort reason, propagate.
 *
 * @param source - the source the rejected token came from.
 * @param sentToken - the token the 401 answered.
 * @param options - whether the request can be sent again, and its signal.
 * @returns the token to retry with, or `undefined` to hand the 401 to the caller.
 *
 * @example
 * ```ts
 * const next = await tokenAfterUnauthorized(source, sent, { replayable: isReplayableBody(body), signal });
 * if (next === undefined) return response; // the 401 stands; the next request reads afresh
 * headers.authorization = bearer(next); // send once more
 * ```
 */
export async function tokenAfterUnauthorized(source: TokenSource, sentToken: string, options: TokenAfterUnauthorizedOptions): Promise<string | undefined> {
  let next: string | undefined;
  if (options.replayable) {
    next = await tokenForRetry(source, sentToken, options.signal);
  } else {
    try {
      await source.invalidate?.(sentToken);
    } catch (error) {
      if (!isTokenSourceError(error)) throw error;
    }
  }
  if (options.adapter !== undefined && channels.requestUnauthorized.hasSubscribers) {
    const reason = next !== undefined ? 'retried' : options.replayable ? 'token-unchanged' : options.retryUnauthorized === false ? 'retry-disabled' : 'not-replayable';
    const name = source.name;
    const path = (source as { path?: unknown }).path;
    channels.requestUnauthorized.publish({
      adapter: options.adapter,
      ...(typeof name === 'string' ? { source: { name, path: typeof path === 'string' ? path : name } } : {}),
      retried: next !== undefined,
      reason,
      at: new Date(),
    });
  }
  return next;
}

/**
 * Whether a request body can be sent a second time (on a 401 retry, or on a 307/308
 * redirect): `undefined`, `null`, strings, bytes (`ArrayBuffer`, typed arrays, `Buffer`),
 * `URLSearchParams`, `Blob`, `FormData` and plain objects can; a body that is consumed by
 * being sent cannot: a Node stream (it has `pipe()`), a web `ReadableStream` (`getReader()`),
 * an async iterable, or an iterator such as a generator (`next()`; an array or a `Set` is
 * iterated afresh each time, so it can).
 *
 * Adapters call it on the body as it stands when they decide, after the HTTP client has
 * serialized `json`/`form` options and converted a spec `FormData` into whatever it sends.
 *
 * @example
 * ```ts
 * isReplayableBody('{"a":1}'); // true
 * isReplayableBody(fs.createReadStream('upload.bin')); // false
 * ```
 */
export function isReplayableBody(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return true;
  const candidate = body as { pipe?: unknown; getReader?: unknown; next?: unknown; [Symbol.asyncIterator]?: unknown };
  return (
    typeof candidate.pipe !== 'function' &&
    typeof candidate.getReader !== 'function' &&
    typeof candidate[Symbol.asyncIterator] !== 'function' &&
    typeof candidate.next !== 'function'
  );
}

/**
 * The redirect rule every adapter follows, for one redirect chain: see
 * {@link createRedirectGuard}.
 */
export interface RedirectGuard {
  /**
   * Records the next hop of the chain and says whether the token may go there: true while
   * every hop so far, this one included, has the starting origin; false from the first hop
   * to another origin (or to a URL that cannot be parsed) on, for good, even when the chain
   * comes back to the starting origin.
   */
  allows(url: string | URL): boolean;
  /** Whether a hop has left the starting origin: the token is off for the rest of the chain. */
  readonly left: boolean;
}

/**
 * Starts the bookkeeping for one redirect chain that begins at `start`. Adapters that follow
 * redirects call {@link RedirectGuard.allows} with each hop's URL and remove `Authorization`
 * when it says false. Once a hop leaves the starting origin (scheme, host and port), the
 * token stays off for every later hop, including one that comes back to the starting origin
 * (A → B → A): B chose that last hop, not A.
 *
 * @param start - the URL the request was first sent to.
 *
 * @example
 * ```ts
 * const redirects = createRedirectGuard('https://api.example.com/v1/items');
 * redirects.allows('https://api.example.com/v2/items'); // true: same origin
 * redirects.allows('https://cdn.example.com/items'); // false: another origin
 * redirects.allows('https://api.example.com/v1/items'); // false: the token stays off
 * ```
 */
export function createRedirectGuard(start: string | URL): RedirectGuard {
  const origin = originOf(start);
  let left = origin === undefined;
  return {
    allows(url) {
      if (!left && originOf(url) !== origin) left = true;
      return !left;
    },
    get left() {
      return left;
    },
  };
}

/** The URL's origin; undefined when it cannot be parsed or has no origin of its own (`data:`, `file:`). */
function originOf(url: string | URL): string | undefined {
  try {
    const origin = new URL(url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}
