import type { KubeConfig } from '@kubernetes/client-node';

// The few shapes of @kubernetes/client-node this package touches, written structurally so
// that one build serves 1.x (node-fetch, https.Agent) and 2.x (undici, Dispatcher) alike:
// the declarations of whichever copy the app installed are the ones that count.

/** What `KubeConfig.addAuthenticator` takes (the type is not exported by the package). */
export type Authenticator = Parameters<KubeConfig['addAuthenticator']>[0];

/** The options object an authenticator fills: `https.RequestOptions` or `WebSocket.ClientOptions`. */
export type AuthenticationOptions = Parameters<Authenticator['applyAuthentication']>[1];

/** A user entry of a KubeConfig. */
export type KubeUser = KubeConfig['users'][number];

/** The generated client's `RequestContext`, as far as a retry needs it. */
export interface RequestContextLike {
  getUrl?(): string;
  getHeaders(): Record<string, string>;
  setHeaderParam(key: string, value: string): void;
  getBody(): unknown;
  getSignal?(): AbortSignal | undefined;
}

/** The generated client's `ResponseContext`. */
export interface ResponseContextLike {
  httpStatusCode: number;
  body: { text(): Promise<string> };
}

/** The generated client's `Observable` stub (`gen/rxjsStub.js`): a promise with `toPromise()`. */
export interface ObservableLike<T> {
  toPromise(): Promise<T>;
}

/** The generated client's `HttpLibrary`: what actually sends a request of an API client. */
export interface HttpLibraryLike {
  send(request: RequestContextLike): ObservableLike<ResponseContextLike>;
}

/** The generated client's `Configuration`, which `makeApiClient` builds and hands to the API class. */
export interface ConfigurationLike {
  httpApi: HttpLibraryLike;
}

/** A cluster entry of a KubeConfig. */
export type KubeCluster = KubeConfig['clusters'][number];

/**
 * The KubeConfig methods podtoken wraps on each instance it serves, some private in the
 * declarations or present in one major only: `applyToFetchOptions` (1.x), `createAgent`
 * (both: the `http(s).Agent` of 1.x requests and of the WebSocket helpers),
 * `createDispatcher` and `agentCache` (2.x).
 */
export interface KubeConfigInternals {
  applySecurityAuthentication(context: SecurityContextLike): Promise<void>;
  applyToFetchOptions?(opts: Record<string, unknown>): Promise<Record<string, unknown>>;
  createAgent?(cluster: KubeCluster | null, agentOptions: Record<string, unknown>): unknown;
  createDispatcher?(cluster: KubeCluster | null, agentOptions: Record<string, unknown>): unknown;
  agentCache?: unknown;
}

/** The generated `RequestContext` as `applySecurityAuthentication` sees it. */
export interface SecurityContextLike {
  getUrl(): string;
  getHeaders(): Record<string, string>;
  setDispatcher?(dispatcher: unknown): void;
}
