export { withTokenSource } from './withTokenSource.js';
export { loadInCluster, closeInCluster, currentNamespace, SERVICE_ACCOUNT_DIR } from './loadInCluster.js';
export type { LoadInClusterOptions, InClusterKubeConfig } from './loadInCluster.js';
export { NotInClusterError } from './notInClusterError.js';
export { ClientNodeVersionError } from './clientNodeVersionError.js';
export type { AdapterOptions } from '@podtoken/core';
