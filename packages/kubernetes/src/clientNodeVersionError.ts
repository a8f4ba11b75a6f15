/**
 * Thrown by {@link loadInCluster} (when it makes the KubeConfig itself) when the
 * `@kubernetes/client-node` that this package resolves cannot load on this Node: 2.x needs
 * Node 22 or newer (its `undici` 8 does not load on Node 20), so on Node 20 install
 * `@kubernetes/client-node@1`. Names both versions, instead of the `TypeError` that undici
 * throws while it loads.
 *
 * @example
 * ```ts
 * try {
 *   config = loadInCluster();
 * } catch (error) {
 *   if (error instanceof ClientNodeVersionError) console.error(error.message); // names both versions
 *   throw error;
 * }
 * ```
 */
export class ClientNodeVersionError extends Error {
  /** Always `'CLIENT_NODE_UNSUPPORTED'`, for code that switches on `error.code`. */
  readonly code = 'CLIENT_NODE_UNSUPPORTED';
  /** The version of `@kubernetes/client-node` that was found, e.g. `'2.0.1'`. */
  readonly clientNodeVersion: string;
  /** This process's Node version, e.g. `'20.20.2'`. */
  readonly nodeVersion: string;
  /** The Node versions that client-node needs, e.g. `'>=22.19.0'`. */
  readonly requiredNode: string;

  constructor(clientNodeVersion: string, nodeVersion: string, requiredNode: string, options?: { cause?: unknown }) {
    super(
      `@kubernetes/client-node ${clientNodeVersion} does not load on Node ${nodeVersion}: it needs Node ${requiredNode}. ` +
        'On Node 20 install @kubernetes/client-node@1 (npm install @kubernetes/client-node@1), or run Node 22 or newer.',
      options,
    );
    this.name = 'ClientNodeVersionError';
    this.clientNodeVersion = clientNodeVersion;
    this.nodeVersion = nodeVersion;
    this.requiredNode = requiredNode;
  }
}
