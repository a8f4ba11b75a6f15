import type { TestProject } from 'vitest/node';
import { CLUSTER_STATE_ENV, ensureBinaries, readClusterState, startCluster, stopCluster, type ClusterState } from './support/cluster.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterState;
  }
}

// One etcd and one kube-apiserver for the whole run. Under the tier's runner (run.mjs) the
// cluster is already up and shared by the Node 20 and Node 24 runs; a bare
// `vitest run --config test/cluster/vitest.config.ts` starts (and stops) its own.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const given = process.env[CLUSTER_STATE_ENV];
  const state = given ? readClusterState(given) : await startCluster({ binDir: ensureBinaries() });
  project.provide('cluster', state);
  return async () => {
    if (!given) await stopCluster(state);
  };
}
