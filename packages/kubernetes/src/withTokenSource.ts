import type { KubeConfig } from '@kubernetes/client-node';
import type { AdapterOptions, TokenSource } from '@podtoken/core';
import { install } from './internal/kubeConfigState.js';

/**
 * Makes every request of `config` carry the current token of `source`: API clients
 * (`makeApiClient(CoreV1Api)`, `KubernetesObjectApi`), `Watch`, `Log`, `Exec`, `Attach`,
 * `PortForward`, `Metrics`, `Health` and informers alike. Returns `config`.
 *
 * How: the current user's entry is replaced by one that only podtoken's authenticator
 * (registered with `KubeConfig.addAuthenticator`) claims; the built-in ones (token file,
 * exec, OIDC, static `token`) no longer apply to it. Client certificates and impersonation
 * are kept. The token comes from the source's memory: no file is read per request.
 *
 * On a 401 from an API client made with `config.makeApiClient()` *after* this call, the
 * source is invalidated and, when it then holds a different token, the request is sent
 * once more with it (`retryUnauthorized`, default true). `Watch`, `Log` and the WebSocket
 * helpers hand the 401 to your callback (client-node gives no hook there); their next
 * request carries whatever token the source holds by then.
 *
 * It binds the current *user entry* (that object: an entry loaded or merged in later gets
 * nothing; after `loadFromFile()`, call it again), not a context. Contexts that share the user
 * would all get the token, so without `origins` the token goes only to the origin of the
 * current cluster's server as it is now; for a kubeconfig with several clusters, list in
 * `origins` exactly the servers this token is for. The destination is checked for each
 * request (its own URL, and each connection's real destination), and the token never follows a
 * redirect to another origin, nor any later hop of that chain.
 *
 * A token source error fails API client calls with the `TokenSourceError`, and reaches a
 * `Watch` (and so an informer's `error` callback) through `done(err)`, never as an unhandled
 * rejection.
 *
 * Calling it again for the same user replaces the source (and releases the previous one).
 * Throws a `TypeError` when the config has no current context, user or cluster server, or
 * `options.origins` holds a bad entry.
 *
 * @param config - A loaded KubeConfig, from `@kubernetes/client-node` 1.x or 2.x.
 * @param source - Where tokens come from, e.g. a `FileTokenSource`.
 * @param options - `retryUnauthorized` (default true); `origins`: send the token only to
 *   requests whose destination has one of these origins, given as strings or as RegExps
 *   anchored with `^` and `$`; an empty array is refused (default: the origin of the current
 *   cluster's server at the time of this call).
 * @returns `config`, changed in place.
 *
 * @example
 * ```ts
 * import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
 * import { FileTokenSource } from '@podtoken/core';
 * import { withTokenSource } from '@podtoken/kubernetes';
 *
 * const config = new KubeConfig();
 * config.loadFromDefault();
 * withTokenSource(config, new FileTokenSource({ path: '/var/run/secrets/tokens/kube-token' }), {
 *   origins: ['https://fleet-api.example.com:6443'], // the servers this token is for
 * });
 * const pods = await config.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'default' });
 * ```
 */
export function withTokenSource(config: KubeConfig, source: TokenSource, options: AdapterOptions = {}): KubeConfig {
  if (typeof config !== 'object' || config === null || typeof config.addAuthenticator !== 'function') {
    throw new TypeError('withTokenSource: config must be a KubeConfig from @kubernetes/client-node (1.x or 2.x)');
  }
  if (typeof source !== 'object' || source === null || typeof source.getToken !== 'function') {
    throw new TypeError('withTokenSource: source must be a TokenSource (an object with getToken())');
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('withTokenSource: options must be an object');
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('withTokenSource: retryUnauthorized must be a boolean');
  install(config, source, { retryUnauthorized, origins: options.origins }, 'withTokenSource');
  return config;
}
