import k8s = require('@kubernetes/client-node');
import podtokenKubernetes = require('@podtoken/kubernetes');
import core = require('@podtoken/core');

// @kubernetes/client-node 1.x is ESM only: require()d (Node >= 20.19; TypeScript >= 5.8 with nodenext).
const source = core.staticTokenSource('not-a-real-token');
const config: k8s.KubeConfig = podtokenKubernetes.withTokenSource(new k8s.KubeConfig(), source);
const api: k8s.CoreV1Api = config.makeApiClient(k8s.CoreV1Api);
const inCluster: k8s.KubeConfig = podtokenKubernetes.loadInCluster();
void api;
void inCluster;
