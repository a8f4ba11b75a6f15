import type { TokenSource } from '@podtoken/core';
import type { CaBundle } from './caBundle.js';
import type { KubeUser } from './clientNode.js';
import type { SharedDispatcher } from './sharedDispatcher.js';

/** One `withTokenSource` / `loadInCluster` call: what the requests of one user entry get. */
export interface Binding {
  /** The user entry this binding serves: bindings are found by this object, never by a name or id. */
  readonly user: KubeUser;
  readonly source: TokenSource;
  readonly retryUnauthorized: boolean;
  /** Whether the token may go to this URL (its origin is in `origins`, or is the bind-time server's). */
  readonly allows: (url: string | URL) => boolean;
  /** The cluster's CA, kept fresh (loadInCluster only). */
  readonly ca: CaBundle | undefined;
  /** client-node 2.x: one undici Agent per CA for every request of this binding (loadInCluster only). */
  readonly dispatcher: SharedDispatcher | undefined;
}
