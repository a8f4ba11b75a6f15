import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { loadInCluster, withTokenSource } from '@podtoken/kubernetes';
import { staticTokenSource } from '@podtoken/core';

const source = staticTokenSource('not-a-real-token');
const config: KubeConfig = withTokenSource(new KubeConfig(), source);
const api: CoreV1Api = config.makeApiClient(CoreV1Api);
const inCluster: KubeConfig = loadInCluster();
void api;
void inCluster;
