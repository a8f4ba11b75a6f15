/**
 * Thrown by {@link loadInCluster} when the process does not look like it runs in a pod:
 * the service's environment variables are not set, or the service-account files are not
 * where they should be. `missing` names each one.
 *
 * @example
 * ```ts
 * try {
 *   config = loadInCluster();
 * } catch (error) {
 *   if (error instanceof NotInClusterError) {
 *     config = new KubeConfig();
 *     config.loadFromDefault(); // running on a laptop: use ~/.kube/config
 *   } else throw error;
 * }
 * ```
 */
export class NotInClusterError extends Error {
  /** Always `'NOT_IN_CLUSTER'`, for code that switches on `error.code`. */
  readonly code = 'NOT_IN_CLUSTER';
  /**
   * What is missing, one entry each: an environment variable's name
   * (`KUBERNETES_SERVICE_HOST`) or a file's path, with a reason when it exists but is unusable.
   */
  readonly missing: readonly string[];

  constructor(missing: readonly string[]) {
    super(
      `Not running in a Kubernetes pod (or the service-account volume is not mounted): missing ${missing.join(', ')}. ` +
        'In a pod, check automountServiceAccountToken; elsewhere, pass { root } pointing at a copy of the service-account folder, or load a kubeconfig.',
    );
    this.name = 'NotInClusterError';
    this.missing = Object.freeze([...missing]);
  }
}
