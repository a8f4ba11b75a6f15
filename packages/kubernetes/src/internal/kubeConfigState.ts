import type { ApiConstructor, ApiType, KubeConfig } from '@kubernetes/client-node';
import { bearer, createOriginFilter, type AdapterOptions, type TokenSource } from '@podtoken/core';
import type { CaBundle } from './caBundle.js';
import type { AuthenticationOptions, Authenticator, ConfigurationLike, KubeUser } from './clientNode.js';
import { invalidatingHttpApi } from './unauthorized.js';

/** The `authProvider.name` of a user this package serves. No built-in authenticator claims it. */
export const AUTH_PROVIDER_NAME = 'podtoken';

/** One `withTokenSource` / `loadInCluster` call: what a user's requests get. */
export interface Binding {
  readonly source: TokenSource;
  readonly retryUnauthorized: boolean;
  /** Whether the token may go to the current cluster's server; undefined = always. */
  readonly allowServer: ((server: string) => boolean) | undefined;
  /** The cluster's CA, kept fresh (loadInCluster only). */
  readonly ca: CaBundle | undefined;
}

/** What {@link install} takes. */
export interface InstallOptions {
  readonly retryUnauthorized: boolean;
  readonly origins: AdapterOptions['origins'];
  readonly ca?: CaBundle;
}

// Tokens recently handed out, to tell on a 401 whether the rejected token was ours and
// whose. A handful is plenty: a source changes token once per rotation.
const REMEMBERED_TOKENS = 16;

/** Everything this package added to one KubeConfig: one authenticator, any number of bindings. */
class KubeConfigState {
  readonly #config: KubeConfig;
  readonly #bindings = new Map<string, Binding>();
  readonly #sent = new Map<string, Binding>();
  #nextId = 1;

  constructor(config: KubeConfig) {
    this.#config = config;
    config.addAuthenticator(this.#authenticator());
    this.#wrapMakeApiClient();
  }

  bind(binding: Binding): string {
    const id = `${this.#nextId++}`;
    this.#bindings.set(id, binding);
    return id;
  }

  unbind(id: string): void {
    this.#bindings.delete(id);
  }

  bindingOf(user: KubeUser | null | undefined): Binding | undefined {
    const provider = (user as { authProvider?: { name?: unknown; config?: { id?: unknown } } } | null | undefined)?.authProvider;
    if (provider?.name !== AUTH_PROVIDER_NAME) return undefined;
    const id = provider.config?.id;
    return typeof id === 'string' ? this.#bindings.get(id) : undefined;
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

  #authenticator(): Authenticator {
    return {
      isAuthProvider: (user) => this.bindingOf(user) !== undefined,
      applyAuthentication: async (user, opts) => {
        const binding = this.bindingOf(user);
        if (binding === undefined) return;
        const server = this.#config.getCurrentCluster()?.server;
        if (binding.allowServer !== undefined && (server === undefined || !binding.allowServer(server))) return;
        // From memory after the first load: no disk, no parsing. Rejects with a
        // TokenSourceError (expired, not ready, closed), which fails the request with it.
        const token = await binding.source.getToken();
        this.remember(token, binding);
        const target = opts as AuthenticationOptions & { headers?: Record<string, unknown>; ca?: unknown };
        target.headers ??= {};
        target.headers['Authorization'] = bearer(token);
        // Authenticators run after client-node copied the cluster's CA into the options, and
        // every https.Agent / undici Agent it makes is built from them: the CA read from
        // memory here is the one the next new connection verifies the server with.
        if (binding.ca !== undefined) target.ca = binding.ca.current;
      },
    };
  }

  // API clients (CoreV1Api & co.) send through the Configuration's HttpLibrary, the only
  // place where a request and its response meet: wrap it in every client made from now on.
  #wrapMakeApiClient(): void {
    const config = this.#config;
    const make = config.makeApiClient.bind(config);
    const lookup = (token: string) => this.#sent.get(token);
    const remember = (token: string, binding: Binding) => this.remember(token, binding);
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
      const configuration = { ...captured, httpApi: invalidatingHttpApi(captured.httpApi, lookup, remember) };
      return new apiClientType(configuration as unknown as ConstructorParameters<ApiConstructor<T>>[0]);
    };
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
 * gets the token through `KubeConfig.applyOptions`.
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
  const allowServer = options.origins === undefined ? undefined : createOriginFilter(options.origins, where);
  const state = stateOf(config);
  const previous = users[index]!;
  const binding: Binding = {
    source,
    retryUnauthorized: options.retryUnauthorized,
    allowServer,
    ca: options.ca,
  };
  const id = state.bind(binding);
  const replaced = state.bindingOf(previous);
  if (replaced !== undefined) {
    const oldId = (previous as { authProvider?: { config?: { id?: string } } }).authProvider?.config?.id;
    if (oldId !== undefined) state.unbind(oldId);
  }
  users[index] = podtokenUser(previous, id);
  return binding;
}

function podtokenUser(user: KubeUser, id: string): KubeUser {
  const kept: { -readonly [K in keyof KubeUser]?: KubeUser[K] } = {};
  if (user.certData !== undefined) kept.certData = user.certData;
  if (user.certFile !== undefined) kept.certFile = user.certFile;
  if (user.keyData !== undefined) kept.keyData = user.keyData;
  if (user.keyFile !== undefined) kept.keyFile = user.keyFile;
  if (user.impersonateUser !== undefined) kept.impersonateUser = user.impersonateUser;
  return { ...kept, name: user.name, authProvider: { name: AUTH_PROVIDER_NAME, config: { id } } };
}
