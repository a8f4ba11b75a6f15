import type { Dispatcher } from 'undici';
import {
  bearer,
  createOriginFilter,
  isReplayableBody,
  redactSecrets,
  tokenAfterUnauthorized,
  type AdapterOptions,
  type TokenSource,
} from '@podtoken/core';
import { withAuthorization, withoutOwnAuthorization } from './internal/headers.js';
import { PendingRedirects, type Chain } from './internal/redirectChains.js';

export type { AdapterOptions, TokenSource } from '@podtoken/core';

/** Options of {@link tokenInterceptor} and {@link withTokenSource}. */
export interface TokenInterceptorOptions extends AdapterOptions {
  /**
   * The origins that get the token, as in core's `AdapterOptions` (origin strings, `URL`s of
   * origins, anchored RegExps). Required here, unlike the other adapters: a dispatcher,
   * and the global one above all, carries every request of whatever uses it (every library
   * built on `fetch`), so "every origin" would hand the token to all of them.
   */
  origins: NonNullable<AdapterOptions['origins']>;
}

// The statuses undici's redirect interceptor and fetch follow.
const REDIRECT_STATUSES = new Set([300, 301, 302, 303, 307, 308]);
// How many of our recent `Authorization` values are recognised as ours (rotations overlap).
const RECENT = 4;
const CACHE_SIZE = 256;

/**
 * Makes an undici interceptor, for `dispatcher.compose()`, that gives every request to an
 * allowed origin `Authorization: Bearer <current token>` from `source`. Works with undici's
 * `request`, `stream`, `fetch` (npm undici 7) and, once the composed dispatcher is installed
 * with undici's `setGlobalDispatcher`, with Node's own global `fetch` and every library
 * built on it.
 *
 * For each dispatch whose `origin` is in `options.origins`:
 * - the token is read (with the request's `signal`, when it has one); a `TokenSourceError`
 *   (expired, not ready, closed…) fails the request: it is never sent without its token;
 * - an `Authorization` header of the caller's is replaced, whatever the `headers` shape
 *   (object, flat array, pairs, `Map`, `Headers`); the caller's object is never changed;
 * - on a 401 answered to the token it sent, it calls `source.invalidate(token)` and, when the
 *   source then holds a different token and the body can be sent again (none, a string,
 *   bytes; not a stream or an iterable: see `isReplayableBody` in core), sends the request
 *   once more before the caller's handler sees anything of the 401. A second 401 goes to the
 *   caller. Each 401 is published on `podtoken:request:unauthorized` with `adapter: 'undici'`.
 *
 * Redirects: the token never follows a hop to another origin, nor any hop after it.
 * - With undici's `interceptors.redirect` in either order: composed inside it
 *   (`compose(tokenInterceptor(…), interceptors.redirect())`) the interceptor sees every hop
 *   and decides per hop; composed outside it, undici's redirect handler drops `Authorization`
 *   at the first hop to another origin and the interceptor retries a 401 only when every hop
 *   stayed at the start origin.
 * - With fetch, which follows redirects itself, a redirect answer's `Location` is remembered
 *   and the hop that asks for it is held to the same rule.
 *
 * A request to an origin not allowed is passed on untouched, except that an `Authorization`
 * holding one of this interceptor's recent tokens is removed. A dispatch without `origin`
 * (a `Client` or `Pool` called with only a `path`) gets no token. Errors handed to the
 * caller's handler after a token was set are cleaned of its text (core's `redactSecrets`).
 *
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @param options - `origins` (required) and `retryUnauthorized`; validated here (a `TypeError` names the bad option).
 * @returns an interceptor: `(dispatch) => (opts, handler) => boolean`.
 *
 * @example
 * ```ts
 * import { Agent, interceptors, request } from 'undici';
 * import { FileTokenSource } from '@podtoken/core';
 * import { tokenInterceptor } from '@podtoken/undici';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/api-token' });
 * const dispatcher = new Agent().compose(
 *   tokenInterceptor(source, { origins: ['https://api.internal:8443'] }),
 *   interceptors.redirect({ maxRedirections: 3 }),
 * );
 * const { statusCode, body } = await request('https://api.internal:8443/v1/things', { dispatcher });
 * ```
 */
export function tokenInterceptor(source: TokenSource, options: TokenInterceptorOptions): Dispatcher.DispatcherComposeInterceptor {
  if (typeof source?.getToken !== 'function') throw new TypeError('tokenInterceptor: source must be a TokenSource (with getToken())');
  if (typeof options !== 'object' || options === null) {
    throw new TypeError("tokenInterceptor: options must be an object with origins, e.g. { origins: ['https://api.internal:8443'] }");
  }
  if (options.origins === undefined) {
    throw new TypeError(
      "tokenInterceptor: origins is required: a dispatcher (above all the global one) carries every request of whatever uses it, so list the origins that may get the token, e.g. { origins: ['https://api.internal:8443'] }",
    );
  }
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('tokenInterceptor: retryUnauthorized must be a boolean');
  const filter = createOriginFilter(options.origins, 'tokenInterceptor');

  const originCache = new Map<string, string | null>();
  const allowedCache = new Map<string, boolean>();
  const originOf = (value: unknown): string | undefined => {
    if (value instanceof URL) return value.origin === 'null' ? undefined : value.origin;
    if (typeof value !== 'string') return undefined;
    let origin = originCache.get(value);
    if (origin === undefined) {
      try {
        origin = new URL(value).origin;
        if (origin === 'null') origin = null;
      } catch {
        origin = null;
      }
      if (originCache.size >= CACHE_SIZE) originCache.clear();
      originCache.set(value, origin);
    }
    return origin ?? undefined;
  };
  const allowed = (origin: string): boolean => {
    let verdict = allowedCache.get(origin);
    if (verdict === undefined) {
      verdict = filter(origin);
      if (allowedCache.size >= CACHE_SIZE) allowedCache.clear();
      allowedCache.set(origin, verdict);
    }
    return verdict;
  };

  // Chains undici's redirect interceptor follows: it dispatches its own handler again for each hop.
  const chains = new WeakMap<object, Chain>();
  // Chains fetch follows: a new dispatch (and handler) per hop, matched by URL.
  const pending = new PendingRedirects();
  // The header for the last token: getToken() hands out the same string until a rotation.
  let lastToken: string | undefined;
  let lastHeader = '';
  const recentHeaders: string[] = [];
  const headerFor = (token: string): string => {
    if (token !== lastToken) {
      lastToken = token;
      lastHeader = bearer(token);
      if (!recentHeaders.includes(lastHeader)) {
        recentHeaders.push(lastHeader);
        if (recentHeaders.length > RECENT) recentHeaders.shift();
      }
    }
    return lastHeader;
  };
  const isOwnHeader = (value: unknown): boolean =>
    typeof value === 'string' ? recentHeaders.includes(value) : Array.isArray(value) && value.some((item) => recentHeaders.includes(item as string));

  const shared: Shared = { source, retryUnauthorized, pending, headerFor };

  return (dispatch) =>
    function podtokenDispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      if (typeof handler?.onRequestStart !== 'function') {
        throw new TypeError('tokenInterceptor: use it through dispatcher.compose(), which hands interceptors handlers of the onRequestStart/onResponseStart API');
      }
      const origin = originOf(opts.origin);
      let chain = chains.get(handler);
      if (chain === undefined) {
        chain = (origin === undefined ? undefined : pending.take(origin, opts.path)) ?? { start: origin ?? '', left: origin === undefined };
        chains.set(handler, chain);
      } else if (origin !== undefined) {
        pending.take(origin, opts.path); // the hop we recorded ourselves, when we sit inside the redirect interceptor
      }
      if (origin !== chain.start) chain.left = true;

      if (chain.left || origin === undefined || !allowed(origin)) {
        const headers = recentHeaders.length === 0 ? opts.headers : withoutOwnAuthorization(opts.headers, isOwnHeader);
        const next = headers === opts.headers ? opts : ({ ...opts, headers } as Dispatcher.DispatchOptions);
        // Once a chain has left, its later redirects must be known too (A → B → A).
        return dispatch(next, chain.left && origin !== undefined ? new RedirectWatcher(handler, pending, chain, origin + opts.path) : handler);
      }

      const tokenHandler = new TokenHandler(shared, dispatch, opts, handler, chain, origin);
      const signal = abortSignalOf((opts as { signal?: unknown }).signal);
      source.getToken(signal === undefined ? undefined : { signal }).then(
        (token) => tokenHandler.send(token),
        (error: unknown) => handler.onResponseError?.(NO_CONTROLLER, error as Error),
      );
      return true;
    };
}

/**
 * Composes {@link tokenInterceptor} onto `dispatcher`: `dispatcher.compose(tokenInterceptor(source, options))`.
 * Pass the result as `dispatcher` to undici's `request`/`fetch`, or install it for the whole
 * process with undici's `setGlobalDispatcher`, which Node's global `fetch` reads too.
 *
 * @param dispatcher - an undici `Agent` (or any dispatcher whose requests carry `origin`), possibly composed already.
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @param options - `origins` (required) and `retryUnauthorized`.
 * @returns the composed dispatcher; `dispatcher` itself is unchanged.
 *
 * @example
 * ```ts
 * import { Agent, setGlobalDispatcher } from 'undici';
 * import { FileTokenSource } from '@podtoken/core';
 * import { withTokenSource } from '@podtoken/undici';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/api-token' });
 * setGlobalDispatcher(withTokenSource(new Agent(), source, { origins: ['https://api.internal:8443'] }));
 * const response = await fetch('https://api.internal:8443/v1/things'); // global fetch, with the token
 * ```
 */
export function withTokenSource(dispatcher: Dispatcher, source: TokenSource, options: TokenInterceptorOptions): Dispatcher.ComposedDispatcher {
  if (typeof (dispatcher as { compose?: unknown } | null)?.compose !== 'function') {
    throw new TypeError('withTokenSource: dispatcher must be an undici Dispatcher (an Agent from undici 7, with compose())');
  }
  return dispatcher.compose(tokenInterceptor(source, options));
}

/** What every {@link TokenHandler} of one interceptor shares. */
interface Shared {
  readonly source: TokenSource;
  readonly retryUnauthorized: boolean;
  readonly pending: PendingRedirects;
  headerFor(token: string): string;
}

// The controller argument for an error before the request started (undici's dns interceptor passes null too).
const NO_CONTROLLER = null as unknown as Dispatcher.DispatchController;

function abortSignalOf(signal: unknown): AbortSignal | undefined {
  return signal instanceof AbortSignal ? signal : undefined;
}

function locationOf(headers: Record<string, string | string[] | undefined>): string | undefined {
  const location = headers['location'];
  return Array.isArray(location) ? location[0] : location;
}

/** Passes everything on, and records a redirect answer so fetch's hop after it keeps the chain's rule. */
class RedirectWatcher implements Dispatcher.DispatchHandler {
  constructor(
    private readonly handler: Dispatcher.DispatchHandler,
    private readonly pending: PendingRedirects,
    private readonly chain: Chain,
    private readonly url: string,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: never): void {
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.handler.onResponseStarted?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    const location = REDIRECT_STATUSES.has(statusCode) ? locationOf(headers) : undefined;
    if (location !== undefined) this.pending.add(location, this.url, this.chain);
    this.handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.handler.onResponseError?.(controller, error);
  }
}

/**
 * Where a 401 stands: `pass` forwards everything; `deciding` holds the 401 (paused, chunks
 * kept) while the source re-reads; `flushing` hands the held 401 over; `discarding` drops
 * the 401's body before the retry.
 */
type Phase = 'pass' | 'deciding' | 'flushing' | 'discarding';

/** One request that carries the token: sets it, retries a 401 once, cleans errors. */
class TokenHandler implements Dispatcher.DispatchHandler {
  readonly #shared: Shared;
  readonly #dispatch: Dispatcher.Dispatch;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #chain: Chain;
  readonly #url: string;
  readonly #origin: string;
  readonly #replayable: boolean;
  /** Tokens this request carried: what errors are cleaned of. */
  readonly #sent: string[] = [];
  #token = '';
  #retried = false;
  /** onRequestStart calls for the current attempt: more than one means hops below us. */
  #starts = 0;
  #history: unknown[] | undefined;
  #phase: Phase = 'pass';
  #held: { statusCode: number; headers: Record<string, string | string[] | undefined>; statusMessage: string | undefined } | undefined;
  #chunks: Buffer[] = [];
  #ended: { trailers: Record<string, string | string[] | undefined> } | undefined;
  #error: Error | undefined;
  #next: string | undefined;

  constructor(shared: Shared, dispatch: Dispatcher.Dispatch, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler, chain: Chain, origin: string) {
    this.#shared = shared;
    this.#dispatch = dispatch;
    this.#opts = opts;
    this.#handler = handler;
    this.#chain = chain;
    this.#origin = origin;
    this.#url = origin + opts.path;
    this.#replayable = isReplayableBody(opts.body);
  }

  /** Dispatches the request with `token`. */
  send(token: string): void {
    this.#token = token;
    if (!this.#sent.includes(token)) this.#sent.push(token);
    this.#starts = 0;
    this.#history = undefined;
    const opts = { ...this.#opts, headers: withAuthorization(this.#opts.headers, this.#shared.headerFor(token)) } as Dispatcher.DispatchOptions;
    try {
      this.#dispatch(opts, this);
    } catch (error) {
      this.onResponseError(NO_CONTROLLER, error as Error);
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#starts++;
    const history = (context as { history?: unknown } | null | undefined)?.history;
    if (Array.isArray(history)) this.#history = history;
    this.#handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, socket: never): void {
    this.#handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    this.#handler.onResponseStarted?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode === 401 && !this.#retried && this.#tokenReachedAnswerer()) {
      this.#retried = true;
      this.#phase = 'deciding';
      this.#held = { statusCode, headers, statusMessage };
      controller.pause();
      void this.#decide(controller);
      return;
    }
    if (this.#starts <= 1 && REDIRECT_STATUSES.has(statusCode)) {
      const location = locationOf(headers);
      if (location !== undefined) this.#shared.pending.add(location, this.#url, this.#chain);
    }
    this.#handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#phase === 'pass') this.#handler.onResponseData?.(controller, chunk);
    else if (this.#phase !== 'discarding') this.#chunks.push(chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#phase === 'pass') {
      this.#handler.onResponseEnd?.(controller, trailers);
      return;
    }
    this.#ended = { trailers };
    if (this.#phase === 'discarding') this.#resend();
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    // No client we know puts request headers in its errors; one that did must not carry the token off.
    if (typeof error === 'object' && error !== null) redactSecrets(error, this.#sent);
    if (this.#phase === 'deciding' || this.#phase === 'flushing') {
      this.#error = error;
      return;
    }
    this.#phase = 'pass';
    this.#handler.onResponseError?.(controller, error);
  }

  /**
   * Whether the 401 answered our token. Without hops below us it did. When undici's redirect
   * interceptor sits below us and followed hops, it did only if every hop stayed at the start
   * origin (the redirect handler drops Authorization at the first hop elsewhere): its
   * `context.history` lists the hops; without one (another interceptor re-dispatched), the
   * 401 is handed over as it is.
   */
  #tokenReachedAnswerer(): boolean {
    if (this.#starts <= 1) return true;
    const history = this.#history;
    if (history === undefined || history.length < this.#starts) return false;
    return history.every((url) => url instanceof URL && url.origin === this.#origin);
  }

  async #decide(controller: Dispatcher.DispatchController): Promise<void> {
    const { source, retryUnauthorized } = this.#shared;
    const signal = abortSignalOf((this.#opts as { signal?: unknown }).signal);
    let next: string | undefined;
    try {
      next = await tokenAfterUnauthorized(source, this.#token, {
        replayable: retryUnauthorized && this.#replayable,
        signal,
        adapter: 'undici',
        retryUnauthorized,
      });
    } catch {
      next = undefined; // an abort: the caller's handler learns it from its own controller
    }
    if (this.#error !== undefined) {
      const error = this.#error;
      this.#reset();
      this.#handler.onResponseError?.(controller, error);
      return;
    }
    if (next === undefined) {
      this.#flush(controller);
      return;
    }
    this.#next = next;
    this.#phase = 'discarding';
    this.#chunks = [];
    if (this.#ended !== undefined) this.#resend();
    else controller.resume();
  }

  /** Hands the held 401 to the caller, then lets the rest flow. */
  #flush(controller: Dispatcher.DispatchController): void {
    const held = this.#held!;
    this.#phase = 'flushing';
    // Resumed first: data that arrives now joins the held chunks, so the caller sees the body in order.
    controller.resume();
    this.#handler.onResponseStart?.(controller, held.statusCode, held.headers, held.statusMessage);
    for (let i = 0; i < this.#chunks.length; i++) this.#handler.onResponseData?.(controller, this.#chunks[i]!);
    const ended = this.#ended;
    const error = this.#error;
    this.#reset();
    if (ended !== undefined) this.#handler.onResponseEnd?.(controller, ended.trailers);
    else if (error !== undefined) this.#handler.onResponseError?.(controller, error);
  }

  #resend(): void {
    const next = this.#next!;
    this.#reset();
    this.send(next);
  }

  #reset(): void {
    this.#phase = 'pass';
    this.#held = undefined;
    this.#chunks = [];
    this.#ended = undefined;
    this.#error = undefined;
    this.#next = undefined;
  }
}
