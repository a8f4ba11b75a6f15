import { readFileSync, statSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { FileTokenSource, type TokenSource } from '@podtoken/core';
import type { Binding } from './internal/binding.js';
import { CaBundle, isCertificateBundle } from './internal/caBundle.js';
import { install, uninstall } from './internal/kubeConfigState.js';
import { loadClientNode } from './internal/loadClientNode.js';
import { SharedDispatcher } from './internal/sharedDispatcher.js';
import { NotInClusterError } from './notInClusterError.js';

/** Where the kubelet mounts the default ServiceAccount volume (`token`, `ca.crt`, `namespace`) in every pod. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

// The names client-node's own loadFromCluster() gives, so code that looks them up still works.
const CLUSTER_NAME = 'inCluster';
const USER_NAME = 'inClusterUser';
const CONTEXT_NAME = 'inClusterContext';
// Safety net for lost folder events; the watcher normally sees a CA change at once.
const CA_POLL_INTERVAL = 60_000;

/** Options of {@link loadInCluster}. Every one is optional. */
export interface LoadInClusterOptions {
  /**
   * A folder prefixed to every path read: the service-account files are looked up in
   * `${root}/var/run/secrets/kubernetes.io/serviceaccount`. For tests, and for pods that
   * mount the volume under another root.
   * @default '' (the real paths)
   */
  root?: string;
  /**
   * Where tokens come from. When given, the token file is not required and
   * {@link closeInCluster} leaves the source open (it is yours).
   * @default a FileTokenSource on `${root}/var/run/secrets/kubernetes.io/serviceaccount/token`
   */
  source?: TokenSource;
  /**
   * The KubeConfig to load into (its clusters, users and contexts are replaced). Pass
   * `new KubeConfig()` from your own copy of `@kubernetes/client-node` when the app has more
   * than one (e.g. 2.x in the app, 1.x resolved here).
   * @default new KubeConfig() from the `@kubernetes/client-node` this package resolves (loaded on
   *   first use; a 2.x on Node < 22 throws a {@link ClientNodeVersionError})
   */
  kubeConfig?: KubeConfig;
  /**
   * On a 401 from an API client, re-read the token and send the request once more when it
   * changed. The source is invalidated on a 401 either way.
   * @default true
   */
  retryUnauthorized?: boolean;
}

/** What {@link loadInCluster} returns: a KubeConfig that `await using` closes. */
export type InClusterKubeConfig = KubeConfig & AsyncDisposable;

/** What one loadInCluster call opened for a KubeConfig. */
interface Loaded {
  readonly binding: Binding;
  close(): Promise<void>;
}

const owned = new WeakMap<KubeConfig, Loaded>();

/**
 * The in-cluster KubeConfig, like client-node's `loadFromCluster()`, but whose token follows
 * every kubelet rotation within milliseconds, never blocks the event loop, and recovers
 * from a 401; and whose CA follows a `kube-root-ca.crt` change without a restart.
 *
 * - Server: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` (an IPv6 host in
 *   brackets). The host must be an IPv4 address, an IPv6 address without a zone id, or a DNS
 *   name; the port a number from 1 to 65535: anything else (a space, a path, `%eth0`) is named
 *   in the {@link NotInClusterError}. The token is sent to this origin only.
 * - CA: `ca.crt`, kept in memory; the folder is watched and each new connection uses the
 *   bundle read last (a torn or invalid bundle never replaces a good one).
 * - Token: a `FileTokenSource` on the default path (or `options.source`), plugged in with
 *   {@link withTokenSource}.
 * - Namespace: the `namespace` file, set on the context (read it with {@link currentNamespace}).
 *
 * The files are read once, synchronously, here (start-up); never on a request. The token
 * source and the CA watcher stay open until {@link closeInCluster} (or `await using`); the
 * token source's watcher keeps the process alive until then. Loading again into the same
 * KubeConfig (`kubeConfig`) releases what the previous load opened, its binding and every
 * agent client-node cached.
 *
 * With client-node 2.x, every request of this config shares one undici Agent per CA (2.x
 * alone builds one per request, each keeping its sockets open), closed when the CA changes.
 *
 * @throws {@link NotInClusterError} when the environment variables or files are missing or
 *   unusable, naming each. {@link ClientNodeVersionError} when no `kubeConfig` is given and the
 *   client-node this package resolves cannot load on this Node. `TypeError` for bad options.
 *
 * @example
 * ```ts
 * import { CoreV1Api } from '@kubernetes/client-node';
 * import { closeInCluster, currentNamespace, loadInCluster } from '@podtoken/kubernetes';
 *
 * const config = loadInCluster();
 * const api = config.makeApiClient(CoreV1Api);
 * const pods = await api.listNamespacedPod({ namespace: currentNamespace(config) ?? 'default' });
 * await closeInCluster(config);
 * ```
 */
export function loadInCluster(options: LoadInClusterOptions = {}): InClusterKubeConfig {
  if (typeof options !== 'object' || options === null) throw new TypeError('loadInCluster: options must be an object');
  const { root, source: givenSource, kubeConfig } = options;
  if (root !== undefined && (typeof root !== 'string' || root === '')) {
    throw new TypeError('loadInCluster: root must be a non-empty string (a folder path)');
  }
  if (givenSource !== undefined && (typeof givenSource !== 'object' || givenSource === null || typeof givenSource.getToken !== 'function')) {
    throw new TypeError('loadInCluster: source must be a TokenSource (an object with getToken())');
  }
  if (kubeConfig !== undefined && typeof kubeConfig?.addAuthenticator !== 'function') {
    throw new TypeError('loadInCluster: kubeConfig must be a KubeConfig from @kubernetes/client-node');
  }
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('loadInCluster: retryUnauthorized must be a boolean');

  const dir = root === undefined ? SERVICE_ACCOUNT_DIR : join(root, SERVICE_ACCOUNT_DIR);
  const tokenPath = join(dir, 'token');
  const caPath = join(dir, 'ca.crt');
  const missing: string[] = [];

  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  if (!host) missing.push('KUBERNETES_SERVICE_HOST');
  else if (!isServiceHost(host)) {
    missing.push(`KUBERNETES_SERVICE_HOST (${JSON.stringify(host)} is not an IP address or a DNS name)`);
  }
  if (!port) missing.push('KUBERNETES_SERVICE_PORT');
  else if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65_535) {
    missing.push(`KUBERNETES_SERVICE_PORT (${JSON.stringify(port)} is not a port number)`);
  }
  if (givenSource === undefined && statSync(tokenPath, { throwIfNoEntry: false })?.isFile() !== true) missing.push(tokenPath);
  const ca = readOptional(caPath);
  if (ca === undefined) missing.push(caPath);
  else if (!isCertificateBundle(ca)) missing.push(`${caPath} (holds no valid PEM certificate)`);
  if (missing.length > 0) throw new NotInClusterError(missing);

  const namespace = readOptional(join(dir, 'namespace'))?.toString('utf8').trim() || undefined;
  const server = `https://${isIPv6(host!) ? `[${host!}]` : host!}:${port!}`;

  const config = kubeConfig ?? new (loadClientNode().KubeConfig)();
  // Loading into the same KubeConfig again: what the previous load opened is released, and
  // its binding forgotten (its user entry is about to be replaced anyway).
  const previous = owned.get(config);
  if (previous !== undefined) {
    owned.delete(config);
    uninstall(config, previous.binding);
    previous.close().catch(() => {});
  }
  config.loadFromOptions({
    clusters: [{ name: CLUSTER_NAME, server, caData: ca!.toString('base64'), skipTLSVerify: false }],
    users: [{ name: USER_NAME }],
    contexts: [{ name: CONTEXT_NAME, cluster: CLUSTER_NAME, user: USER_NAME, ...(namespace === undefined ? {} : { namespace }) }],
    currentContext: CONTEXT_NAME,
  });

  const bundle = new CaBundle(caPath, ca!, { pollInterval: CA_POLL_INTERVAL });
  const source = givenSource ?? new FileTokenSource({ path: tokenPath });
  const dispatcher = new SharedDispatcher();
  let binding: Binding;
  try {
    binding = install(config, source, { retryUnauthorized, origins: undefined, ca: bundle, dispatcher }, 'loadInCluster');
  } catch (error) {
    bundle.close();
    if (givenSource === undefined) void (source as FileTokenSource).close();
    throw error;
  }
  bundle.onChange((pem) => {
    // Keep the cluster entry true for exportConfig() and for users other than ours.
    const cluster = config.clusters.find((entry) => entry.name === CLUSTER_NAME);
    if (cluster !== undefined) (cluster as { caData?: string }).caData = pem.toString('base64');
    // client-node 2.x caches the https.Agent it builds for WebSocket helpers (Exec, Attach,
    // PortForward) per cluster and user, and podtoken one undici Agent for the rest: an agent
    // built with the old CA would keep trusting it.
    const agentCache = (config as unknown as { agentCache?: unknown }).agentCache;
    if (agentCache instanceof Map) agentCache.clear();
    dispatcher.retire();
  });

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      bundle.close();
      dispatcher.close();
      if (givenSource === undefined) await (source as FileTokenSource).close();
    })());
  owned.set(config, { binding, close });
  Object.defineProperty(config, Symbol.asyncDispose, { value: () => closeInCluster(config), configurable: true, writable: true });
  return config as InClusterKubeConfig;
}

/**
 * Releases what {@link loadInCluster} opened for `config`: the CA watcher, and the token
 * source it created (not one you passed). Requests made afterwards fail with
 * `TOKEN_SOURCE_CLOSED`. A no-op for any other KubeConfig, and when called again.
 *
 * @example
 * ```ts
 * const config = loadInCluster();
 * try {
 *   // …
 * } finally {
 *   await closeInCluster(config);
 * }
 * ```
 */
export async function closeInCluster(config: KubeConfig): Promise<void> {
  await owned.get(config)?.close();
}

/**
 * The namespace of `config`'s current context: for a config from {@link loadInCluster},
 * the pod's own namespace (from the `namespace` file). Undefined when the context sets none.
 *
 * @example
 * ```ts
 * const namespace = currentNamespace(config) ?? 'default';
 * ```
 */
export function currentNamespace(config: KubeConfig): string | undefined {
  const name = config.getCurrentContext();
  return (name ? config.getContextObject(name)?.namespace : undefined) || undefined;
}

// RFC 1123 host names: letters, digits and inner hyphens, dot-separated, at most 253 characters.
const DNS_NAME = /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * Whether `host` can stand as the host of the server URL: an IPv4 address, an IPv6 address
 * without a zone id (`fe80::1%eth0` names an interface of this machine, not the API server's
 * address, and has no place in a URL), or a DNS name. No spaces, no path, no port, no user.
 */
function isServiceHost(host: string): boolean {
  if (isIPv4(host)) return true;
  if (isIPv6(host)) return !host.includes('%');
  return DNS_NAME.test(host) && !/^[\d.]+$/.test(host);
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}
