import {
  bearer,
  createOriginFilter,
  createRedirectGuard,
  isReplayableBody,
  redactSecrets,
  tokenAfterUnauthorized,
  type AdapterOptions,
  type RedirectGuard,
  type TokenSource,
} from '@podtoken/core';

export type { AdapterOptions, TokenSource } from '@podtoken/core';

/**
 * The least a response must offer for the wrapper to work: `Response` from
 * `globalThis.fetch` (undici), node-fetch 3 and node-fetch 2 all fit.
 */
export interface ResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<unknown>;
}

/**
 * Any fetch-compatible function: `globalThis.fetch` (undici), node-fetch 3, node-fetch 2.
 * Its own parameter and response types are kept by {@link withTokenSource}.
 */
export type FetchLike = (input: never, init?: never) => Promise<ResponseLike>;

/** The `init` fields the wrapper reads; everything else is passed through untouched. */
interface InitFields {
  method?: string;
  headers?: unknown;
  body?: unknown;
  signal?: AbortSignal | null;
  redirect?: string;
  /** node-fetch's own limit on redirects. */
  follow?: number;
}

/** The `Request` fields the wrapper reads when the input is a `Request` (of any fetch implementation). */
interface RequestFields {
  url: string;
  method?: string;
  headers?: unknown;
  body?: unknown;
  signal?: AbortSignal | null;
  redirect?: string;
}

type RawFetch = (input: unknown, init?: Record<string, unknown>) => Promise<ResponseLike>;

const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
// The fetch standard's request-body-header names: dropped with the body on a 301/302/303.
const BODY_HEADERS = ['content-encoding', 'content-language', 'content-location', 'content-type', 'content-length'];

/**
 * Wraps a fetch function so that every request to an allowed origin carries
 * `Authorization: Bearer <current token>` from `source`. Works with `globalThis.fetch`
 * (undici), node-fetch 3 and node-fetch 2, and returns a function of the same type
 * (with the original's static properties, e.g. node-fetch 2's `fetch.Headers`).
 *
 * For a request whose origin is allowed (`options.origins`; default: every request):
 * - the token is read with the request's `AbortSignal`; a `TokenSourceError` (expired,
 *   not ready, closed…) rejects the call: a request is never sent without its token;
 * - on a 401 for the token it sent, it calls `source.invalidate(token)` and, when the
 *   source then holds a different token and the body can be sent again (none, a string,
 *   bytes, `URLSearchParams`, `Blob`, `FormData`; not a stream or a generator: see
 *   `isReplayableBody` in core), sends the request once more. A second 401 is returned
 *   to the caller;
 * - with `redirect: 'follow'` (the default) it follows redirects itself (the underlying
 *   fetch is called with `redirect: 'manual'`) and drops the token for good at the first
 *   hop to another origin, because node-fetch 2 and 3 keep `Authorization` on a redirect
 *   to the same host name on another port or to a subdomain. `redirect: 'manual'` and
 *   `'error'` are passed through as they are.
 *
 * Requests to other origins are passed to `fetch` untouched. An error the wrapper passes on
 * after it set a token is cleaned of the token's text (core's `redactSecrets`); no supported
 * fetch puts request headers in its errors, and the wrapper builds no `Request` of its own.
 *
 * @example
 * ```ts
 * import { FileTokenSource } from '@podtoken/core';
 * import { withTokenSource } from '@podtoken/fetch';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/api-token' });
 * const apiFetch = withTokenSource(fetch, source, { origins: ['https://api.internal:8443'] });
 * const response = await apiFetch('https://api.internal:8443/v1/things');
 * ```
 */
export function withTokenSource<F extends FetchLike>(fetch: F, source: TokenSource, options: AdapterOptions = {}): F {
  if (typeof fetch !== 'function') throw new TypeError('withTokenSource: fetch must be a function');
  if (typeof source?.getToken !== 'function') throw new TypeError('withTokenSource: source must be a TokenSource (with getToken())');
  if (typeof options !== 'object' || options === null) throw new TypeError('withTokenSource: options must be an object');
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('withTokenSource: retryUnauthorized must be a boolean');
  const allowed = createOriginFilter(options.origins);
  // Without `origins` every request gets the token, so the URL is parsed only if a redirect
  // needs it: most requests never pay for that.
  const everyOrigin = options.origins === undefined;
  const raw = fetch as unknown as RawFetch;

  const wrapped = async function fetchWithToken(input: unknown, init?: Record<string, unknown>): Promise<ResponseLike> {
    const sent: string[] = [];
    try {
      return await send(input, init, sent);
    } catch (error) {
      // No fetch implementation we support puts request headers in its errors today; one
      // that did (or a cause chain that reaches a Request) must not carry the token off.
      if (sent.length > 0 && typeof error === 'object' && error !== null) redactSecrets(error, sent);
      throw error;
    }
  };

  const send = async (input: unknown, init: Record<string, unknown> | undefined, sent: string[]): Promise<ResponseLike> => {
    const request = asRequest(input);
    const href = request?.url ?? (typeof input === 'string' ? input : input instanceof URL ? input.href : undefined);
    // Not a URL we can read: let fetch handle (or report) it its own way, without our token.
    if (href === undefined) return raw(input, init);
    if (!everyOrigin) {
      let url: URL;
      try {
        url = new URL(href);
      } catch {
        return raw(input, init); // let fetch report the bad URL its own way
      }
      if (!allowed(url)) return raw(input, init);
    }

    const fields = (init ?? {}) as InitFields;
    const signal = (fields.signal ?? request?.signal) || undefined;
    const headers = toHeaderRecord(fields.headers ?? request?.headers);
    let method = fields.method ?? request?.method ?? 'GET';
    // A Request's body is a stream it owns: it can be sent once, and only inside that Request.
    let body: unknown = 'body' in fields ? fields.body : undefined;
    let requestHasBody = request !== undefined && !('body' in fields) && request.body != null;
    let replayable = !requestHasBody && isReplayableBody(body);

    let token = await source.getToken(signal === undefined ? undefined : { signal });
    sent.push(token);
    setHeader(headers, 'authorization', bearer(token));

    const follow = (fields.redirect ?? request?.redirect ?? 'follow') === 'follow';
    const maxRedirects = typeof fields.follow === 'number' ? fields.follow : MAX_REDIRECTS;
    // Made at the first redirect: a request without one never needs it.
    let guard: RedirectGuard | undefined;
    let retried = false;
    let redirects = 0;
    let current: string | URL = href;
    let first = true;

    for (;;) {
      const hopInit: Record<string, unknown> = { ...init, method, headers: { ...headers } };
      if (follow) hopInit['redirect'] = 'manual';
      if (signal !== undefined) hopInit['signal'] = signal;
      if (!first || !requestHasBody) hopInit['body'] = body ?? null;
      if (body == null) delete hopInit['body'];
      // The first hop keeps the caller's Request (its body, mode, credentials…); later hops go by URL.
      const response = await raw(first && request !== undefined ? input : typeof current === 'string' ? current : current.href, hopInit);
      first = false;

      if (response.status === 401 && guard?.left !== true && !retried) {
        retried = true;
        // Every 401 for our token makes the source re-read; only the second attempt depends
        // on retryUnauthorized and on whether the body can be sent again.
        const next = await tokenAfterUnauthorized(source, token, {
          replayable: retryUnauthorized && replayable,
          signal,
          adapter: 'fetch',
          retryUnauthorized,
        });
        if (next !== undefined) {
          await discard(response);
          token = next;
          sent.push(token);
          setHeader(headers, 'authorization', bearer(token));
          continue;
        }
        return response;
      }

      if (!follow || !REDIRECT_STATUSES.has(response.status)) return markRedirected(response, redirects);
      const location = response.headers.get('location');
      if (location === null) return markRedirected(response, redirects);

      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new TypeError(`withTokenSource: the redirect from ${originText(current)} has an invalid Location`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new TypeError(`withTokenSource: refusing to follow a redirect to a ${next.protocol} URL`);
      }
      if (++redirects > maxRedirects) {
        const start = new URL(href); // parsed already, as the base of the first Location
        throw new TypeError(`withTokenSource: more than ${maxRedirects} redirects from ${start.origin}${start.pathname}`);
      }
      // The fetch standard's HTTP-redirect fetch, steps 11–13.
      const status = response.status;
      const verb = method.toUpperCase();
      if ((status === 303 && verb !== 'GET' && verb !== 'HEAD') || ((status === 301 || status === 302) && verb === 'POST')) {
        method = 'GET';
        body = undefined;
        replayable = true;
        requestHasBody = false;
        for (const name of BODY_HEADERS) deleteHeader(headers, name);
      } else if (requestHasBody || !replayable) {
        throw new TypeError(
          `withTokenSource: cannot follow a ${status} redirect with a body that can only be sent once; pass the body as a string or bytes, or use redirect: 'manual'`,
        );
      }
      // From the first hop to another origin on, the token stays behind.
      guard ??= createRedirectGuard(href);
      if (!guard.allows(next)) deleteHeader(headers, 'authorization');
      await discard(response);
      current = next;
    }
  };

  // Keep what the function carries besides being callable (node-fetch 2's fetch.Headers, etc.).
  for (const key of Object.keys(fetch)) {
    Object.defineProperty(wrapped, key, Object.getOwnPropertyDescriptor(fetch, key) ?? { value: undefined });
  }
  return wrapped as unknown as F;
}

/** The origin of a URL the wrapper sent a request to, for an error message. */
function originText(url: string | URL): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an invalid URL';
  }
}

function asRequest(input: unknown): RequestFields | undefined {
  if (typeof input !== 'object' || input === null || input instanceof URL) return undefined;
  const url = (input as { url?: unknown }).url;
  return typeof url === 'string' ? (input as RequestFields) : undefined;
}

/** Copies any headers shape (plain object, pairs, `Headers` of any implementation) into a plain object. */
function toHeaderRecord(headers: unknown): Record<string, string> {
  if (headers == null) return {};
  const prototype: unknown = Object.getPrototypeOf(headers);
  if (prototype === Object.prototype || prototype === null) {
    // The common case, copied without a Headers round trip (several µs): the names keep their
    // case (setHeader and deleteHeader ignore it), and fetch validates names and values itself.
    const record: Record<string, string> = {};
    for (const name of Object.keys(headers)) record[name] = String((headers as Record<string, unknown>)[name]);
    return record;
  }
  // The global Headers accepts a record or any iterable of pairs: node-fetch's Headers are iterable.
  return Object.fromEntries(new Headers(headers as ConstructorParameters<typeof Headers>[0]));
}

function setHeader(headers: Record<string, string>, name: string, value: string): void {
  deleteHeader(headers, name);
  headers[name] = value;
}

function deleteHeader(headers: Record<string, string>, name: string): void {
  for (const key of Object.keys(headers)) if (key.toLowerCase() === name) delete headers[key];
}

/** Reads and drops a response we will not return, so its connection goes back to the pool. */
async function discard(response: ResponseLike): Promise<void> {
  try {
    await response.arrayBuffer();
  } catch {
    // nothing to free
  }
}

/** Sets `redirected` on a response reached through redirects the wrapper followed. */
function markRedirected(response: ResponseLike, redirects: number): ResponseLike {
  if (redirects > 0) {
    try {
      Object.defineProperty(response, 'redirected', { value: true, configurable: true });
    } catch {
      // a frozen response keeps its own value
    }
  }
  return response;
}
