import type { AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import {
  bearer,
  createOriginFilter,
  createRedirectGuard,
  isReplayableBody,
  tokenForRetry,
  type AdapterOptions,
  type RedirectGuard,
  type TokenSource,
} from '@podtoken/core';

export type { AdapterOptions, TokenSource } from '@podtoken/core';

// A string key, not a symbol: axios' mergeConfig copies only string keys into the retry's config.
const RETRIED = '__podtokenRetried';
// Marks our beforeRedirect guard, so a reused config gets one guard, not one per request.
const GUARD = Symbol.for('podtoken.axios.beforeRedirect');
// How many recent token values to remember for stripping them from configs that are reused.
const RECENT = 8;

type BeforeRedirect = NonNullable<InternalAxiosRequestConfig['beforeRedirect']>;
type Guard = BeforeRedirect & { [GUARD]?: BeforeRedirect | undefined };

interface Sent {
  /** The token this request carried. */
  readonly token: string;
  /** Its redirect chain: once a hop left the origin, the token is off and a later 401 is not about it. */
  readonly redirects: RedirectGuard;
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
 *
 * Request interceptors run last-registered-first: call this right after `axios.create()`,
 * so that interceptors you add later (which may change the URL) run before it.
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
export function withTokenSource(instance: AxiosInstance, source: TokenSource, options: AdapterOptions = {}): AxiosInstance {
  if (typeof instance?.interceptors?.request?.use !== 'function' || typeof instance.request !== 'function') {
    throw new TypeError('withTokenSource: instance must be an axios instance (from axios.create())');
  }
  if (typeof source?.getToken !== 'function') throw new TypeError('withTokenSource: source must be a TokenSource (with getToken())');
  if (typeof options !== 'object' || options === null) throw new TypeError('withTokenSource: options must be an object');
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('withTokenSource: retryUnauthorized must be a boolean');
  const allowed = createOriginFilter(options.origins);
  const sent = new WeakMap<object, Sent>();
  const recent: string[] = [];

  instance.interceptors.request.use(async (config) => {
    const url = resolvedUrl(instance, config);
    if (url === undefined || !allowed(url)) {
      const header = config.headers.get('Authorization');
      if (typeof header === 'string' && recent.includes(header)) config.headers.delete('Authorization');
      return config;
    }
    const signal = abortSignal(config.signal);
    const token = await source.getToken(signal === undefined ? undefined : { signal });
    const value = bearer(token);
    config.headers.set('Authorization', value);
    if (!recent.includes(value)) {
      recent.push(value);
      if (recent.length > RECENT) recent.shift();
    }
    const state: Sent = { token, redirects: createRedirectGuard(url) };
    sent.set(config, state);
    config.beforeRedirect = guardRedirects(config.beforeRedirect, state.redirects);
    return config;
  });

  async function retry(config: InternalAxiosRequestConfig | undefined): Promise<AxiosResponse | undefined> {
    if (!retryUnauthorized || config === undefined) return undefined;
    const state = sent.get(config);
    if (state === undefined || state.redirects.left || (config as unknown as Record<string, unknown>)[RETRIED] === true) return undefined;
    if (!isReplayableBody(config.data)) {
      // No second try, but the next request should not meet the same fate.
      await source.invalidate?.(state.token);
      return undefined;
    }
    const next = await tokenForRetry(source, state.token, abortSignal(config.signal));
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

  instance.interceptors.response.use(
    async (response) => (response.status === 401 ? ((await retry(response.config)) ?? response) : response),
    async (error: unknown) => {
      const { response, config } = (error ?? {}) as { response?: AxiosResponse; config?: InternalAxiosRequestConfig };
      if (response?.status === 401) {
        const retried = await retry(config);
        if (retried !== undefined) return retried;
      }
      throw error;
    },
  );
  return instance;
}

/** The request's full URL as axios will send it (`baseURL` + `url` + `params`), or undefined. */
function resolvedUrl(instance: AxiosInstance, config: InternalAxiosRequestConfig): URL | undefined {
  try {
    return new URL(instance.getUri(config));
  } catch {
    return undefined; // relative or invalid: axios fails it on its own, without our token
  }
}

/**
 * A `beforeRedirect` that runs the caller's own hook, then takes the token off from the first
 * hop to another origin on (the rule of core's `createRedirectGuard`).
 */
function guardRedirects(existing: BeforeRedirect | undefined, redirects: RedirectGuard): BeforeRedirect {
  // A config reused from an earlier response already holds a guard: wrap what it wrapped.
  const own = existing !== undefined && GUARD in existing ? (existing as Guard)[GUARD] : existing;
  const guard: Guard = (options, responseDetails, requestDetails) => {
    own?.(options, responseDetails, requestDetails);
    if (redirects.allows(String(options['href']))) return;
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
