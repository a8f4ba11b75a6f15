/** What a running cluster's users need; JSON, handed from the runner to test runs. */
export interface ClusterState {
  /** `https://127.0.0.1:<port>` */
  readonly server: string;
  readonly host: string;
  /** The API server's secure port. */
  readonly port: number;
  /** The API server's serving certificate and its CA: what a pod's `ca.crt` holds. */
  readonly caFile: string;
  /** A static token of a `system:masters` user. Never print it. */
  readonly adminToken: string;
  /** The same, in a file: what podtoken-kubelet authenticates with (as the node). */
  readonly adminTokenFile: string;
  /** `--service-account-issuer`, also the API server's audience. */
  readonly issuer: string;
  /** The API server's audit log: one JSON event a line, level Metadata. */
  readonly auditLog: string;
  readonly binDir: string;
  readonly stateDir: string;
  /** The real processes. */
  readonly pids: { readonly etcd: number; readonly apiserver: number };
  readonly watchdogs: { readonly etcd: number; readonly apiserver: number };
  readonly startedInMs: number;
}

export const CLUSTER_STATE_ENV: 'PODTOKEN_CLUSTER_STATE';
export const ISSUER: string;
/** Runs build.sh (a no-op once built) and returns the folder with kube-apiserver and podtoken-kubelet. */
export function ensureBinaries(): string;
/** Starts etcd and kube-apiserver on loopback; resolves once /readyz answers 200. */
export function startCluster(options: { binDir: string; log?: (line: string) => void }): Promise<ClusterState>;
/** Stops kube-apiserver and etcd by PID and removes the state folder. */
export function stopCluster(state: ClusterState): Promise<void>;
export function readClusterState(path: string): ClusterState;
