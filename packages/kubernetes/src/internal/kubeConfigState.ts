import type { ApiConstructor, ApiType, KubeConfig } from '@kubernetes/client-node';
import { bearer, createOriginFilter, isTokenSourceError, type AdapterOptions, type TokenSource } from '@podtoken/core';
import { guardAgent } from './agentGuard.js';
import type { Binding } from './binding.js';
import type { CaBundle } from './caBundle.js';
import type { AuthenticationOptions, Authenticator, ConfigurationLike, KubeConfigInternals, KubeUser, SecurityContextLike } from './clientNode.js';
import { failingAgent, failingDispatcher, isWatchUrl } from './deferredFailure.js';
import type { SharedDispatcher } from './sharedDispatcher.js';
import { invalidatingHttpApi } from './unauthorized.js';

/** The `authProvider.name` of a user this package serves. No built-in authenticator claims it. */
export const AUTH_PROVIDER_NAME = 'podtoken';

/** What {@link install} takes. */
export interface InstallOptions {
  readonly retryUnauthorized: boolean;
  readonly origins: AdapterOptions['origins'];
  readonly ca?: CaBundle;
  readonly dispatcher?: SharedDispatcher;
}

// Tokens recently handed out, to tell on a 401 whether the rejected token was ours and
// whose. A handful is plenty: a source changes token once per rotation.
const REMEMBERED_TOKENS = 16;

/** Everything this package added to one KubeConfig: one authenticator, any number of bindings. */
class KubeConfigState {
  readonly #config: KubeConfig;
  // Keyed by the user entry object itself: a user entry loaded or merged in later, whatever
  // it names, is another object and gets nothing.
  #bindings = new WeakMap<object, Binding>();
  readonly #sent = new Map<string, Binding>();

  constructor(config: KubeConfig) {
    this.#config = config;
    config.addAuthenticator(this.#authenticator());
    this.#wrapMakeApiClient();
    this.#wrapTransport();
  }

  bind(binding: Binding): void {
    this.#bindings.set(binding.user, binding);
  }

  /** Forgets `binding`: its user entry gets no token any more, and its tokens are no longer recognised. */
  release(binding: Binding): void {
    if (this.#bindings.get(binding.user) === binding) this.#bindings.delete(binding.user);
    for (const [token, owner] of this.#sent) if (owner === binding) this.#sent.delete(token);
  }

  /** Releases every binding whose user entry the KubeConfig no longer holds (a reload replaced it). */
  releaseDetached(): void {
    const live = new Set<unknown>(this.#config.users);
    const detached = new Set<Binding>();
    for (const owner of this.#sent.values()) if (!live.has(owner.user)) detached.add(owner);
    for (const binding of detached) this.release(binding);
  }

  bindingOf(user: KubeUser | null | undefined): Binding | undefined {
    return typeof user === 'object' && user !== null ? this.#bindings.get(user) : undefined;
  }

  lookup(token: string): Binding | undefined {
    return this.#sent.get(token);
  }

  remember(token: string, binding: Binding): void {
    if (this.#sent.get(token) === binding) return;
    this.#sent.delete(token);
    this.#sent.set(token, binding);
    if (this.#sent.size > REMEMBERED_TOKENS) {
      const oldest = this.#sent.keys().next();
      if (!oldest.done) this.#sent.delete(oldest.value);
    }
  }

  /** The binding whose token `headers` carries (`Authorization: Bearer …`), if one of ours does. */
  bindingOfHeaders(headers: Record<string, unknown>): { binding: Binding; name: string } | undefined {
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase() !== 'authorization') continue;
      const value = headers[name];
      const token = typeof value === 'string' && value.startsWith('Bearer ') ? value.slice('Bearer '.length) : undefined;
      const binding = token === undefined ? undefined : this.#sent.get(token);
      if (binding !== undefined) return { binding, name };
    }
    return undefined;
  }

  /** A cached agent of client-node 2.x (WebSocket helpers) was built for the CA and binding of its time: drop them all. */
  clearAgentCache(): void {
    const cache = (this.#config as unknown as KubeConfigInternals).agentCache;
    if (cache instanceof Map) cache.clear();
  }

  #authenticator(): Authenticator {
    return {
      isAuthProvider: (user) => this.bindingOf(user) !== undefined,
      applyAuthentication: async (user, opts) => {
        const binding = this.bindingOf(user);
        if (binding === undefined) return;
        // A first, coarse check; each request's own destination is checked again where it
        // is known (applySecurityAuthentication, the agent of every 1.x request and WebSocket).
        const server = this.#config.getCurrentCluster()?.server;
        if (server === undefined || !binding.allows(server)) return;
        // From memory after the first load: no disk, no parsing. Rejects with a
        // TokenSourceError (expired, not ready, closed), which fails the request with it.
        const token = await binding.source.getToken();
        this.remember(token, binding);
        const target = opts as AuthenticationOptions & { headers?: Record<string, unknown>; ca?: unknown };
        target.headers ??= {};
        target.headers['Authorization'] = bearer(token);
        // Authenticators run after client-node copied the cluster's CA into the options, and
        // every agent it makes is built from them: the CA read from memory here is the one
        // the next new connection verifies the server with.
        if (binding.ca !== undefined) target.ca = binding.ca.current;
      },
    };
  }

  // API clients (CoreV1Api & co.) send through the Configuration's HttpLibrary, the only
  // place where a request and its response meet: wrap it in every client made from now on.
  #wrapMakeApiClient(): void {
    const config = this.#config;
    const make = config.makeApiClient.bind(config);
    const state = this;
    config.makeApiClient = function makeApiClient<T extends ApiType>(apiClientType: ApiConstructor<T>): T {
      let captured: ConfigurationLike | undefined;
      // client-node builds the Configuration (server, auth methods, its middleware) and
      // hands it to the class it is given: give it one that keeps the Configuration.
      class CaptureConfiguration {
        constructor(configuration: unknown) {
          captured = configuration as ConfigurationLike;
        }
      }
      make(CaptureConfiguration as unknown as ApiConstructor<ApiType>);
      if (captured === undefined || typeof captured.httpApi?.send !== 'function') return make(apiClientType);
      const configuration = { ...captured, httpApi: invalidatingHttpApi(captured.httpApi, state) };
      return new apiClientType(configuration as unknown as ConstructorParameters<ApiConstructor<T>>[0]);
    };
  }

  // The transport seams of client-node, wrapped on this instance only:
  // - applySecurityAuthentication (API clients; in 2.x also Watch, Log, Metrics, Health): the
  //   request's own URL is checked; a 2.x watch gets a source error through its transport;
  // - applyToFetchOptions (1.x Watch, Log, Metrics, Health): a source error goes through the transport;
  // - createAgent (every 1.x request, the WebSocket helpers of both): see guardAgent;
  // - createDispatcher (2.x): one undici Agent per CA for in-cluster configs.
  #wrapTransport(): void {
    const kubeConfig = this.#config;
    const config = kubeConfig as unknown as KubeConfigInternals;
    const state = this;

    const applySecurityAuthentication = config.applySecurityAuthentication;
    config.applySecurityAuthentication = async function (this: KubeConfigInternals, context: SecurityContextLike) {
      try {
        await applySecurityAuthentication.call(this, context);
      } catch (error) {
        if (isTokenSourceError(error) && typeof context.setDispatcher === 'function' && isWatchUrl(context.getUrl())) {
          context.setDispatcher(failingDispatcher(error));
          return;
        }
        throw error;
      }
      const headers = context.getHeaders();
      const ours = state.bindingOfHeaders(headers);
      if (ours !== undefined && !ours.binding.allows(context.getUrl())) delete headers[ours.name];
    };

    const applyToFetchOptions = config.applyToFetchOptions;
    if (typeof applyToFetchOptions === 'function') {
      config.applyToFetchOptions = async function (this: KubeConfigInternals, opts: Record<string, unknown>) {
        try {
          return await applyToFetchOptions.call(this, opts);
        } catch (error) {
          if (!isTokenSourceError(error)) throw error;
          return { agent: failingAgent(error), headers: {}, method: opts['method'], timeout: opts['timeout'] };
        }
      };
    }

    const createAgent = config.createAgent;
    if (typeof createAgent === 'function') {
      // 2.x caches these agents (WebSocket helpers, which follow no redirect); 1.x makes one
      // per request, which node-fetch reuses for each redirect hop: a redirect chain.
      const perRequest = !(config.agentCache instanceof Map);
      config.createAgent = function (this: KubeConfigInternals, cluster, agentOptions) {
        const agent = createAgent.call(this, cluster, agentOptions);
        const binding = state.bindingOf(kubeConfig.getCurrentUser());
        return binding === undefined ? agent : guardAgent(agent, binding, perRequest);
      };
    }

    const createDispatcher = config.createDispatcher;
    if (typeof createDispatcher === 'function') {
      config.createDispatcher = function (this: KubeConfigInternals, cluster, agentOptions) {
        const make = () => createDispatcher.call(this, cluster, agentOptions);
        const binding = state.bindingOf(kubeConfig.getCurrentUser());
        const shared = binding?.dispatcher;
        const sharable =
          shared !== undefined &&
          binding?.ca !== undefined &&
          agentOptions['ca'] === binding.ca.current &&
          agentOptions['cert'] === undefined &&
          agentOptions['key'] === undefined &&
          agentOptions['pfx'] === undefined &&
          !cluster?.proxyUrl;
        return sharable ? shared.get(agentOptions['ca'], make as () => ReturnType<SharedDispatcher['get']>) : make();
      };
    }
  }
}

const states = new WeakMap<KubeConfig, KubeConfigState>();

function stateOf(config: KubeConfig): KubeConfigState {
  let state = states.get(config);
  if (state === undefined) {
    state = new KubeConfigState(config);
    states.set(config, state);
  }
  return state;
}

/**
 * Points the KubeConfig's current user at `source`: the user entry is replaced by one that
 * only our authenticator claims (keeping client certificates and impersonation, dropping
 * token, token file, exec, auth provider and basic auth), so every request of every helper
 * gets the token through `KubeConfig.applyOptions`. Without `origins`, the token may go to
 * the origin of the current cluster's server only, as it is now.
 */
export function install(config: KubeConfig, source: TokenSource, options: InstallOptions, where: string): Binding {
  const contextName = config.getCurrentContext();
  const context = contextName ? config.getContextObject(contextName) : null;
  if (!context) {
    throw new TypeError(
      `${where}: the KubeConfig has no current context. Load one first (loadFromDefault(), loadFromOptions(), …) or use loadInCluster().`,
    );
  }
  const users = config.users;
  const index = users.findIndex((user) => user.name === context.user);
  if (index < 0) {
    throw new TypeError(`${where}: the current context "${context.name}" names the user "${context.user}", which the KubeConfig does not hold.`);
  }
  // Validated before anything is changed: a bad entry throws a TypeError naming it.
  let allows: Binding['allows'];
  if (options.origins === undefined) {
    const server = config.getCurrentCluster()?.server;
    let origin: string | undefined;
    try {
      origin = server === undefined ? undefined : new URL(server).origin;
    } catch {
      origin = undefined;
    }
    if (origin === undefined || origin === 'null') {
      throw new TypeError(
        `${where}: the current context "${context.name}" has no cluster with a valid server URL (cluster "${context.cluster}"), and no origins were given.`,
      );
    }
    allows = createOriginFilter([origin], where);
  } else {
    allows = createOriginFilter(options.origins, where);
  }
  const state = stateOf(config);
  const previous = users[index]!;
  const user = podtokenUser(previous);
  const binding: Binding = {
    user,
    source,
    retryUnauthorized: options.retryUnauthorized,
    allows,
    ca: options.ca,
    dispatcher: options.dispatcher,
  };
  const replaced = state.bindingOf(previous);
  if (replaced !== undefined) state.release(replaced);
  users[index] = user;
  state.bind(binding);
  state.releaseDetached();
  state.clearAgentCache();
  return binding;
}

/** Forgets `binding` (closeInCluster, a reload): its user entry gets no token any more. */
export function uninstall(config: KubeConfig, binding: Binding): void {
  const state = states.get(config);
  if (state === undefined) return;
  state.release(binding);
  state.clearAgentCache();
}

function podtokenUser(user: KubeUser): KubeUser {
  const kept: { -readonly [K in keyof KubeUser]?: KubeUser[K] } = {};
  if (user.certData !== undefined) kept.certData = user.certData;
  if (user.certFile !== undefined) kept.certFile = user.certFile;
  if (user.keyData !== undefined) kept.keyData = user.keyData;
  if (user.keyFile !== undefined) kept.keyFile = user.keyFile;
  if (user.impersonateUser !== undefined) kept.impersonateUser = user.impersonateUser;
  // No id, no reference to the binding: nothing here can be copied into another entry.
  return { ...kept, name: user.name, authProvider: { name: AUTH_PROVIDER_NAME, config: {} } };
}
