import {
  bearer,
  createOriginFilter,
  createRedirectGuard,
  isReplayableBody,
  isTokenSourceError,
  redactSecrets,
  REDACTED,
  tokenAfterUnauthorized,
  type AdapterOptions,
  type TokenSource,
  type TokenSourceError,
} from '@podtoken/core';
import type { AfterResponseHook, BeforeErrorHook, BeforeRedirectHook, BeforeRequestHook, Got, HandlerFunction } from 'got';

/** The options object got hands to beforeRequest and beforeRedirect hooks. */
type HookOptions = Parameters<BeforeRequestHook>[0];

export type { AdapterOptions } from '@podtoken/core';

/**
 * The got hooks {@link tokenSourceHooks} returns: pass them as `hooks` to `got.extend()`
 * or to a single request. Each array holds exactly one podtoken hook.
 */
export interface TokenSourceHooks {
  /** Sets `Authorization: Bearer <token>` on requests to allowed origins. */
  beforeRequest: BeforeRequestHook[];
  /** Removes `Authorization` once a redirect chain leaves the origin it started at. */
  beforeRedirect: BeforeRedirectHook[];
  /**
   * On a 401: invalidates the token and, when the source now holds another and the body
   * can be sent again, retries once.
   */
  afterResponse: AfterResponseHook[];
  /** Removes the token's text from the error before it reaches your `beforeError` hooks and your code. */
  beforeError: BeforeErrorHook[];
}

/**
 * got hooks that plug a {@link TokenSource} into any got instance or request.
 *
 * - **beforeRequest** (every attempt, retry and redirect hop): when the request's origin is
 *   allowed by `origins` (default: every origin) and the call has not left the origin it
 *   started at, awaits `source.getToken({ signal })` with the request's `signal` and sets
 *   `Authorization: Bearer <token>`. A rejection (a `TokenSourceError` such as
 *   `TOKEN_EXPIRED`, or the signal's reason) fails the request before anything is sent; got
 *   wraps it in a `RequestError` whose `cause` is the `TokenSourceError` and whose `code` is
 *   its code. ({@link withTokenSource} unwraps it.) It also wraps the request's `request`
 *   function, which got calls after every beforeRequest hook with the final URL: a token of
 *   ours on a URL that is not allowed (a hook of a later `.extend()` changed it) or on a call
 *   that left its origin is removed there, and the first URL actually requested is where the
 *   call starts.
 * - **beforeRedirect**: as soon as a hop goes to another origin (scheme, host or port) than the
 *   one the call started at, the `Authorization` header is removed and no token is attached
 *   for the rest of the call: later hops, got's own retries (which go to the hop's URL), and
 *   the adapter's 401 retry. The mark lives in `options.context`, which got carries to every
 *   hop and retry of one call. got 14 alone strips the header only when host or port change.
 * - **beforeError**: removes the token's text from the error (its options, got's request, the
 *   ClientRequest's header text, the response) before your `beforeError` hooks and your code
 *   see it (core's `redactSecrets`). got raises an abort (`AbortError`) and
 *   `promise.cancel()` without beforeError hooks: {@link withTokenSource} cleans those too.
 * - **afterResponse** (promise API only; `retryUnauthorized`, default `true`): on a 401 to a
 *   request that carried a token, calls `source.invalidate(sentToken)`; when the source then
 *   holds a different token and the body can be sent again (`isReplayableBody` from core:
 *   none, a string, a Buffer or typed array, an array of chunks; `json` and `form` become a
 *   string; not a stream, an async iterable, a generator, or `FormData`, which got encodes
 *   into a one-shot generator), retries once through got's
 *   `retryWithMergedOptions` (with `preserveHooks: true` where got supports it, so
 *   `afterResponse` hooks added after these still see the retried response). At most one
 *   such retry per call: the retried response, 401 or not, goes to the caller as got would
 *   hand it over (`HTTPError`, or the response with `throwHttpErrors: false`). A 401 whose
 *   body cannot be sent again goes to the caller unchanged; the source is still invalidated,
 *   so the next call carries the fresh token.
 *
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @param options - `origins` and `retryUnauthorized`; validated here (a `TypeError` names the bad option).
 * @returns fresh hook arrays; each call has its own bookkeeping.
 *
 * @example
 * ```ts
 * import got from 'got';
 * import { FileTokenSource } from '@podtoken/core';
 * import { tokenSourceHooks } from '@podtoken/got';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/vault-token' });
 * const vault = got.extend({
 *   prefixUrl: 'https://vault:8200/v1',
 *   hooks: tokenSourceHooks(source, { origins: ['https://vault:8200'] }),
 * });
 * ```
 */
export function tokenSourceHooks(source: TokenSource, options: AdapterOptions = {}): TokenSourceHooks {
  return createHooks(source, options, 'tokenSourceHooks').hooks;
}

/**
 * Returns `client.extend(...)` with {@link tokenSourceHooks} installed: every request of the
 * new instance carries the source's current token (only to `origins`, when given), a 401
 * is retried once with a fresh token, and the token never follows a redirect to another origin.
 * The given client is not changed.
 *
 * It also installs a got handler so that a failure of the source rejects the call with the
 * `TokenSourceError` itself (`isTokenSourceError(error)` is true, `error.code` is e.g.
 * `'TOKEN_EXPIRED'`), not got's `RequestError` wrapper; `beforeError` hooks still see the
 * wrapper. Streams (`client.stream()`) emit the wrapper: read `error.cause` there. The same
 * handler cleans the token out of every other error the promise rejects with, aborts and
 * cancels included.
 *
 * @param client - a got instance: `got` itself or one made with `got.extend()`.
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @param options - `origins` and `retryUnauthorized`; validated here (a `TypeError` names the bad option).
 *
 * @example
 * ```ts
 * import got from 'got';
 * import { FileTokenSource, isTokenSourceError } from '@podtoken/core';
 * import { withTokenSource } from '@podtoken/got';
 *
 * const source = new FileTokenSource({ audience: 'https://kubernetes.default.svc' });
 * const api = withTokenSource(got.extend({ prefixUrl: 'https://kubernetes.default.svc' }), source, {
 *   origins: ['https://kubernetes.default.svc'],
 * });
 * try {
 *   const pods = await api.get('api/v1/namespaces/default/pods').json();
 * } catch (error) {
 *   if (isTokenSourceError(error)) console.error(`no usable token: ${error.code}`);
 *   else throw error;
 * }
 * ```
 */
export function withTokenSource(client: Got, source: TokenSource, options: AdapterOptions = {}): Got {
  if (typeof client !== 'function' || typeof (client as Partial<Got>).extend !== 'function') {
    throw new TypeError('withTokenSource: client must be a got instance (got, or one made with got.extend())');
  }
  const { hooks, clean } = createHooks(source, options, 'withTokenSource');
  return client.extend({ hooks, handlers: [finalErrors(clean)] });
}

function createHooks(source: TokenSource, options: AdapterOptions, where: string): { hooks: TokenSourceHooks; clean: (error: unknown) => void } {
  if (typeof source !== 'object' || source === null || typeof source.getToken !== 'function') {
    throw new TypeError(`${where}: source must be a TokenSource (an object with getToken())`);
  }
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') {
    throw new TypeError(`${where}: retryUnauthorized must be a boolean, got ${typeof retryUnauthorized}`);
  }
  const allowed = createOriginFilter(options.origins, where);

  // got makes a new Options object for every attempt and every redirect hop, and passes that
  // same object to beforeRequest and (as response.request.options) to afterResponse.
  const sentTokens = new WeakMap<object, string>();
  // Marks a call this hook set already retried, in `context`: got copies context (symbol keys
  // included) to the retried attempt, and a symbol of our own cannot collide with user data.
  const retried = Symbol('podtoken.got.retried');
  // The token values this hook set handed out lately: what the last check strips and what
  // errors are cleaned of.
  const recent: string[] = [];

  // The header value is built once per token, not once per request (a token is ~1 KiB).
  let header = { token: '', value: '' };
  const beforeRequest: BeforeRequestHook = async (requestOptions) => {
    // First, so that it runs whatever happens below: the last look at the URL and headers,
    // after every beforeRequest hook (ours and those added later) has run.
    installLastCheck(requestOptions);
    const url = requestOptions.url;
    if (url === undefined) return;
    const chain = chainOf(requestOptions);
    if (chain.left || (chain.start !== undefined && originOf(url) !== chain.start) || !allowed(url)) {
      // A retry or hop of a call that left its origin, or an origin that is not allowed:
      // no token, and none of ours carried over from an earlier attempt.
      if (chain.start !== undefined && originOf(url) !== chain.start) chain.left = true;
      stripOwnToken(requestOptions.headers);
      sentTokens.delete(requestOptions);
      return;
    }
    const signal = requestOptions.signal;
    const token = await source.getToken(signal === undefined ? undefined : { signal });
    if (header.token !== token) {
      header = { token, value: bearer(token) };
      if (!recent.includes(token)) {
        recent.push(token);
        if (recent.length > RECENT) recent.shift();
      }
    }
    requestOptions.headers.authorization = header.value;
    sentTokens.set(requestOptions, token);
  };

  /**
   * Wraps the request's `request` function (got calls it with the final URL, after every
   * beforeRequest hook): a hook added by a later `.extend()` may have changed the URL after
   * ours set the token. The first URL actually requested is where the call's chain starts.
   */
  const installLastCheck = (requestOptions: HookOptions): void => {
    const current = requestOptions.request as (RequestFunctionLike & { [ORIGINAL]?: RequestFunctionLike | undefined }) | undefined;
    const original = current !== undefined && ORIGINAL in current ? current[ORIGINAL] : current;
    const lastCheck = function (this: unknown, ...args: unknown[]): unknown {
      const url = requestOptions.url;
      const chain = chainOf(requestOptions);
      const origin = url === undefined ? undefined : originOf(url);
      if (chain.start === undefined) chain.start = origin;
      else if (origin !== chain.start) chain.left = true;
      if (chain.left || origin === undefined || !allowed(url!)) {
        if (stripOwnToken(requestOptions.headers)) sentTokens.delete(requestOptions);
      }
      // undefined: got falls back to its own http/https/http2 request function.
      return original === undefined ? undefined : original.apply(this, args);
    } as RequestFunctionLike & { [ORIGINAL]?: RequestFunctionLike | undefined };
    lastCheck[ORIGINAL] = original;
    requestOptions.request = lastCheck as HookOptions['request'];
  };

  /** Removes `Authorization` when it holds one of our tokens (or a redacted one); keeps a header of yours. */
  const stripOwnToken = (headers: Record<string, string | string[] | undefined>): boolean => {
    const value = headers['authorization'];
    if (typeof value !== 'string') return false;
    if (!value.includes(REDACTED) && !recent.some((token) => value.includes(token))) return false;
    delete headers['authorization'];
    return true;
  };

  const beforeRedirect: BeforeRedirectHook = (updatedOptions, response) => {
    // got hands each hook the whole chain: redirectUrls already holds the hop about to be
    // made, requestUrl is where the call began (chain.start: where it was first sent).
    const chain = chainOf(updatedOptions);
    const redirects = createRedirectGuard(chain.start ?? response.requestUrl);
    if (!chain.left && response.redirectUrls.every((hop) => redirects.allows(hop))) return;
    chain.left = true;
    delete updatedOptions.headers.authorization;
  };

  // Errors hold the options (headers), got's request, the ClientRequest (its raw header text)
  // and the response: all of them hold the token until it is taken out here.
  const clean = (error: unknown): void => {
    if (typeof error === 'object' && error !== null && recent.length > 0) redactSecrets(error, recent);
  };
  const beforeError: BeforeErrorHook = (error) => {
    clean(error);
    return error;
  };

  // Not async: every response passes through here, and only a 401 needs a promise.
  const afterResponse: AfterResponseHook = (response, retryWithMergedOptions) => {
    if (response.statusCode !== 401) return response;
    return retryAfterUnauthorized(response, retryWithMergedOptions);
  };

  const retryAfterUnauthorized = async (
    response: Parameters<AfterResponseHook>[0],
    retryWithMergedOptions: Parameters<AfterResponseHook>[1],
  ): Promise<Awaited<ReturnType<AfterResponseHook>>> => {
    const requestOptions = response.request.options;
    const sent = sentTokens.get(requestOptions);
    if (sent === undefined) return response;
    const context = requestOptions.context as Record<symbol, unknown>;
    const retriedAt = context[retried];
    if (typeof retriedAt === 'number' && response.retryCount >= retriedAt) return response;
    // got has by now serialized json/form to a string and encoded FormData into a one-shot
    // generator. A body that cannot be sent again still invalidates, so the next call carries
    // a fresh token, as with the other adapters. A source that cannot give a token now
    // (expired, closed…) yields undefined: the server's 401 stands.
    // Every 401 for our token makes the source re-read; only the second attempt depends on
    // retryUnauthorized and on whether the body can be sent again.
    const next = await tokenAfterUnauthorized(source, sent, {
      replayable: retryUnauthorized && isReplayableBody(requestOptions.body),
      signal: requestOptions.signal,
      adapter: 'got',
      retryUnauthorized,
    });
    if (next === undefined) return response;
    const retry = { headers: { authorization: bearer(next) }, context: { [retried]: response.retryCount + 1 } };
    try {
      // preserveHooks: afterResponse hooks added after these (a later extend()) still see the
      // retried response; without it got drops them for the retry. The `retried` mark keeps
      // this hook from retrying the retried response again.
      return await retryWithMergedOptions({ ...retry, preserveHooks: true });
    } catch (error) {
      // got releases without preserveHooks reject it as an unknown option before retrying.
      if (error instanceof Error && error.name !== 'RetryError' && error.message.includes('preserveHooks')) {
        return retryWithMergedOptions(retry);
      }
      throw error;
    }
  };

  return {
    hooks: { beforeRequest: [beforeRequest], beforeRedirect: [beforeRedirect], afterResponse: [afterResponse], beforeError: [beforeError] },
    clean,
  };
}

/** Where a call's redirect chain started, and whether it has left that origin (for good). */
interface Chain {
  /** The origin of the first URL actually requested; undefined before the first request. */
  start: string | undefined;
  left: boolean;
}

// One chain per call, kept in `options.context`: got copies the context of an attempt to its
// redirect hops and retries (a shallow copy, so they share this object), while every new
// call starts from the instance's context, which never holds it.
const CHAIN = Symbol('podtoken.got.chain');
// Our last-check wrapper remembers the request function it wraps.
const ORIGINAL = Symbol('podtoken.got.original');
// How many recent token values to remember for stripping and redacting.
const RECENT = 8;

type RequestFunctionLike = (...args: unknown[]) => unknown;

function chainOf(options: HookOptions): Chain {
  const context = options.context as Record<symbol, unknown>;
  let chain = context[CHAIN] as Chain | undefined;
  if (chain === undefined) {
    chain = { start: undefined, left: false };
    context[CHAIN] = chain;
  }
  return chain;
}

function originOf(url: string | URL): string | undefined {
  try {
    const origin = (typeof url === 'string' ? new URL(url) : url).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

// got wraps anything a hook throws in a RequestError (error.cause). For callers of
// withTokenSource, a failing source rejects with the TokenSourceError itself, as with the
// other podtoken adapters. got copies its promise's methods (json(), cancel()…) onto the
// promise a handler returns, so those keep working. Every other error is cleaned of the
// token here as well: got raises an abort (AbortError) and promise.cancel() (CancelError)
// without running beforeError hooks.
function finalErrors(clean: (error: unknown) => void): HandlerFunction {
  return (options, next) => {
    const result = next(options);
    if (options.isStream || typeof (result as Partial<PromiseLike<unknown>>).then !== 'function') return result;
    const unwrapped = (result as PromiseLike<unknown>).then(undefined, (error: unknown) => {
      const tokenSourceError = tokenSourceErrorOf(error);
      if (tokenSourceError !== undefined) throw tokenSourceError;
      clean(error);
      throw error;
    });
    return unwrapped as unknown as typeof result;
  };
}

function tokenSourceErrorOf(error: unknown): TokenSourceError | undefined {
  if (isTokenSourceError(error)) return error;
  const cause = typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  return isTokenSourceError(cause) ? cause : undefined;
}
