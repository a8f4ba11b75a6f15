// Type-only: axios' own types are used inside, never in the public signature (see AxiosLike).
import type { AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import {
  bearer,
  createOriginFilter,
  createRedirectGuard,
  isReplayableBody,
  redactSecrets,
  REDACTED,
  tokenAfterUnauthorized,
  type AdapterOptions,
  type RedirectGuard,
  type TokenSource,
} from '@podtoken/core';

export type { AdapterOptions, TokenSource } from '@podtoken/core';

/**
 * What the adapter needs of an axios instance: its two interceptor managers and
 * `request()`. A structural type rather than axios' `AxiosInstance`: axios ships separate
 * declarations for `import` and `require` (`index.d.ts`, `index.d.cts`), so in a CommonJS
 * TypeScript app the instance's `AxiosInstance` is not the one an ESM package would name,
 * and the call would not typecheck. Every axios 1.x instance, from either entry, fits.
 * `withTokenSource` returns the instance with its own type.
 */
export interface AxiosLike {
  // `any` where axios' own types would go: its config and response types are declared twice
  // (CJS and ESM), and axios types `use` as a function property (checked strictly, not
  // bivariantly), so only `any` callbacks accept both copies. The adapter uses axios' types inside.
  interceptors: {
    request: {
      use(onFulfilled?: ((config: any) => any) | null, onRejected?: ((error: any) => any) | null, options?: any): number;
    };
    response: {
      use(onFulfilled?: ((response: any) => any) | null, onRejected?: ((error: any) => any) | null, options?: any): number;
    };
  };
  request(config: any): Promise<any>;
}

// A string key, not a symbol: axios' mergeConfig copies only string keys into the retry's config.
const RETRIED = '__podtokenRetried';
// Marks our beforeRedirect guard, so a reused config gets one guard, not one per request.
const GUARD = Symbol.for('podtoken.axios.beforeRedirect');
// How many recent token values to remember for stripping them from configs that are reused
// and for cleaning errors.
const RECENT = 8;

type BeforeRedirect = NonNullable<InternalAxiosRequestConfig['beforeRedirect']>;
type Guard = BeforeRedirect & { [GUARD]?: BeforeRedirect | undefined };

/** What the adapter knows about one request that carried the token. */
interface Sent {
  /** The token this request carried. */
  readonly token: string;
  /** The config it was sent with: its URL is the start of the redirect chain. */
  readonly config: InternalAxiosRequestConfig;
  /**
   * Its redirect chain, made at the first redirect (most requests have none): once a hop
   * left the origin, the token is off and a later 401 is not about it.
   */
  redirects: RedirectGuard | undefined;
}

/**
 * Plugs `source` into an axios instance: installs a request interceptor that sets
 * `Authorization: Bearer <current token>` on every request whose URL (`baseURL` + `url`)
 * has an allowed origin (`options.origins`; default: every request), and a response
 * interceptor for 401s. Returns the same instance.
 *
 * - The token is read with the request's `signal`; a `TokenSourceError` (expired, not
 *   ready, closed…) rejects the request: it is never sent without its token.
 * - On a 401 for the token it carried (also one let through by `validateStatus`), it calls
 *   `source.invalidate(token)` and, when the source then holds a different token and the
 *   body can be sent again (`isReplayableBody` from core: not a stream or a generator),
 *   sends the request once more. The retried config is marked, so a second 401 goes to
 *   the caller as it is.
 * - Redirects (the Node http adapter follows them with follow-redirects): a guard in
 *   `beforeRedirect` removes the token at the first hop to another origin, whatever the
 *   axios and follow-redirects versions do (follow-redirects alone keeps it for a
 *   subdomain). Your own `beforeRedirect` still runs, before the guard.
 * - A request to an origin that is not allowed never gets the token, and a token this
 *   adapter set earlier is removed from a reused config (`instance.request(response.config)`).
 * - Errors leave the adapter without the token's text: the response interceptor runs core's
 *   `redactSecrets` on each one (its config, follow-redirects' options, the ClientRequest's
 *   header text and header map, a fetch `Request`, the response), so `console.log(error)`,
 *   `error.toJSON()` and logger serializers cannot print it. A retry helper that re-sends
 *   `error.config` (axios-retry) gets a fresh token from the request interceptor.
 *
 * The instance is typed structurally ({@link AxiosLike}) and returned with its own type, so
 * CommonJS apps, whose `AxiosInstance` comes from axios' `index.d.cts`, can pass theirs.
 *
 * Request interceptors run last-registered-first, response interceptors first-registered-first:
 * call this right after `axios.create()`, so that request interceptors you add later (which
 * may change the URL) run before it, and response interceptors you add later (loggers,
 * axios-retry) see errors already cleaned.
 *
 * @param client - an axios instance (`axios.create()`, or `axios` itself).
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @param options - `origins` and `retryUnauthorized`; validated here (a `TypeError` names the bad option).
 * @returns `client` itself, with its own type.
 *
 * @example
 * ```ts
 * import axios from 'axios';
 * import { FileTokenSource } from '@podtoken/core';
 * import { withTokenSource } from '@podtoken/axios';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/api-token' });
 * const api = withTokenSource(axios.create({ baseURL: 'https://api.internal:8443' }), source, {
 *   origins: ['https://api.internal:8443'],
 * });
 * const { data } = await api.get('/v1/things');
 * ```
 */
export function withTokenSource<I extends AxiosLike>(client: I, source: TokenSource, options: AdapterOptions = {}): I {
  const instance = client as unknown as AxiosInstance;
  if (typeof instance?.interceptors?.request?.use !== 'function' || typeof instance.request !== 'function') {
    throw new TypeError('withTokenSource: instance must be an axios instance (from axios.create())');
  }
  if (typeof source?.getToken !== 'function') throw new TypeError('withTokenSource: source must be a TokenSource (with getToken())');
  if (typeof options !== 'object' || options === null) throw new TypeError('withTokenSource: options must be an object');
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('withTokenSource: retryUnauthorized must be a boolean');
  const allowed = createOriginFilter(options.origins);
  // Without `origins` every request gets the token, so the URL is not needed until a redirect:
  // resolving it costs more than the rest of the interceptor.
  const everyOrigin = options.origins === undefined;
  const sent = new WeakMap<object, Sent>();
  // Token values handed out lately (raw, not the header): what errors are cleaned of.
  const recent: string[] = [];
  // The header for the last token seen: getToken() hands out the same string until a
  // rotation, so this saves building (and axios re-checking) a new ~1 KB string per request.
  let lastToken: string | undefined;
  let lastHeader = '';

  instance.interceptors.request.use(async (config) => {
    if (!everyOrigin) {
      const url = requestUrl(config);
      if (url === undefined || !allowed(url)) {
        const header = config.headers.get('Authorization');
        if (typeof header === 'string' && isOwnHeader(header)) config.headers.delete('Authorization');
        return config;
      }
    }
    const signal = abortSignal(config.signal);
    const token = await source.getToken(signal === undefined ? undefined : { signal });
    if (token !== lastToken) {
      lastToken = token;
      lastHeader = bearer(token);
      if (!recent.includes(token)) {
        recent.push(token);
        if (recent.length > RECENT) recent.shift();
      }
    }
    config.headers.set('Authorization', lastHeader);
    const state: Sent = { token, config, redirects: undefined };
    sent.set(config, state);
    config.beforeRedirect = guardRedirects(config.beforeRedirect, state);
    return config;
  });

  /** Whether an `Authorization` value is one this adapter set (a recent token, or one cleaned from an error). */
  function isOwnHeader(header: string): boolean {
    return header.includes(REDACTED) || recent.some((token) => header.includes(token));
  }

  async function retry(config: InternalAxiosRequestConfig | undefined): Promise<AxiosResponse | undefined> {
    if (config === undefined) return undefined;
    const state = sent.get(config);
    if (state === undefined || state.redirects?.left === true || (config as unknown as Record<string, unknown>)[RETRIED] === true) return undefined;
    // Every 401 for our token makes the source re-read; only the second attempt depends on
    // retryUnauthorized and on whether the body can be sent again.
    const next = await tokenAfterUnauthorized(source, state.token, {
      replayable: retryUnauthorized && isReplayableBody(config.data),
      signal: abortSignal(config.signal),
      adapter: 'axios',
      retryUnauthorized,
    });
    if (next === undefined) return undefined;
    // The mark lives only while the retry is in flight: a config reused later starts afresh.
    try {
      const response = await instance.request({ ...config, [RETRIED]: true } as InternalAxiosRequestConfig);
      unmark(response.config);
      return response;
    } catch (error) {
      unmark((error as { config?: unknown } | undefined)?.config);
      throw error;
    }
  }

  // Not async: a 2xx response goes back to axios as it is, without a promise of our own.
  instance.interceptors.response.use(
    (response) => (response.status === 401 ? retry(response.config).then((retried) => retried ?? response) : response),
    async (error: unknown) => {
      const { response, config } = (error ?? {}) as { response?: AxiosResponse; config?: InternalAxiosRequestConfig };
      if (response?.status === 401) {
        let retried: AxiosResponse | undefined;
        try {
          retried = await retry(config);
        } catch (retryError) {
          throw clean(retryError);
        }
        if (retried !== undefined) return retried;
      }
      throw clean(error);
    },
  );
  return client;

  /**
   * Takes the token's text out of an error before it leaves the adapter: its config
   * (`Authorization`), its request (follow-redirects' options, the ClientRequest's raw header
   * text and header map, a fetch `Request`'s headers), its response. A config re-sent later
   * (axios-retry sends `error.config` again) gets a fresh token from the request interceptor.
   */
  function clean(error: unknown): unknown {
    if (typeof error === 'object' && error !== null) redactSecrets(error, recent);
    return error;
  }
}

// axios refuses `http:host` (no `//`), which the URL parser would accept: see requestUrl().
const MALFORMED_HTTP = /^https?:(?!\/\/)/i;
const LEADING_BLANKS = /^[\x00-\x20]+/;
const TABS_AND_NEWLINES = /[\t\n\r]/g;
const ABSOLUTE_URL = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/**
 * The URL axios will send the request to, parsed, or undefined when axios cannot send it
 * (relative, invalid). Follows axios' `buildFullPath` on the merged config the interceptor
 * gets: `baseURL` + `url`, unless `url` is absolute and `allowAbsoluteUrls` is not false.
 * `params` are left out: a query cannot change the origin. Why not `instance.getUri(config)`:
 * it merges the config with the defaults a second time, the costliest step of a request.
 */
function requestUrl(config: InternalAxiosRequestConfig): URL | undefined {
  const { baseURL, url } = config;
  let full: string;
  if (baseURL && (config.allowAbsoluteUrls === false || !(typeof url === 'string' && ABSOLUTE_URL.test(url)))) {
    if (typeof baseURL !== 'string' || (url !== undefined && typeof url !== 'string') || isMalformedHttp(baseURL)) return undefined;
    full = combineUrls(baseURL, url);
  } else if (typeof url === 'string') {
    full = url;
  } else if ((url as unknown) instanceof URL) {
    full = (url as unknown as URL).href; // not in axios' types, but its http adapter takes one
  } else {
    return undefined;
  }
  if (typeof url === 'string' && isMalformedHttp(url)) return undefined;
  try {
    return new URL(full);
  } catch {
    return undefined; // relative or invalid: axios fails it on its own, without our token
  }
}

/** axios' check (`assertValidHttpProtocolURL`): it sees the URL as the URL parser would, without leading blanks, tabs or newlines. */
function isMalformedHttp(url: string): boolean {
  return MALFORMED_HTTP.test(url.replace(LEADING_BLANKS, '').replace(TABS_AND_NEWLINES, ''));
}

/** axios' `combineURLs`: one `/` between the base and the relative part. */
function combineUrls(baseURL: string, relativeURL: string | undefined): string {
  if (!relativeURL) return baseURL;
  return `${baseURL.replace(/\/+$/, '')}/${relativeURL.replace(/^\/+/, '')}`;
}

/**
 * A `beforeRedirect` that runs the caller's own hook, then takes the token off from the first
 * hop to another origin on (the rule of core's `createRedirectGuard`). The chain's start is
 * resolved at the first redirect, not for every request.
 */
function guardRedirects(existing: BeforeRedirect | undefined, state: Sent): BeforeRedirect {
  // A config reused from an earlier response already holds a guard: wrap what it wrapped.
  const own = existing !== undefined && GUARD in existing ? (existing as Guard)[GUARD] : existing;
  const guard: Guard = (options, responseDetails, requestDetails) => {
    own?.(options, responseDetails, requestDetails);
    // A start that cannot be resolved has no origin: the guard then strips at once.
    state.redirects ??= createRedirectGuard(requestUrl(state.config) ?? '');
    if (state.redirects.allows(String(options['href']))) return;
    const headers = options['headers'] as Record<string, unknown> | undefined;
    for (const name of Object.keys(headers ?? {})) if (name.toLowerCase() === 'authorization') delete headers![name];
  };
  guard[GUARD] = own;
  return guard;
}

function unmark(config: unknown): void {
  if (typeof config === 'object' && config !== null) delete (config as Record<string, unknown>)[RETRIED];
}

function abortSignal(signal: unknown): AbortSignal | undefined {
  return signal instanceof AbortSignal ? signal : undefined;
}
