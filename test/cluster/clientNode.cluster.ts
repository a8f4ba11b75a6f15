import { inspect } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import * as clientNode from '@kubernetes/client-node';
import { closeInCluster, currentNamespace, loadInCluster } from '@podtoken/kubernetes';
import { describe, expect, it } from 'vitest';
import { defer, until } from '../helpers.js';
import { createConfigMap, fileToken, recordRequests, startPod, tokenId, type Pod } from './support/kube.js';

// 3. @podtoken/kubernetes' loadInCluster({ root }) against the real API server, with
// client-node 1.x (Node 20) and 2.x (Node 22+; the tier runs this file again on Node 24).
// PODTOKEN_CLIENT_NODE=1|2 limits the run to one major.

type ClientNode = typeof clientNode;
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const only = process.env['PODTOKEN_CLIENT_NODE'];
const FLAVORS = [
  { name: 'client-node 1.4.0', major: 1, supported: true, load: async (): Promise<ClientNode> => clientNode },
  { name: 'client-node 2.0.1', major: 2, supported: NODE_MAJOR >= 22, load: async () => (await import('client-node-v2')) as unknown as ClientNode },
].filter((flavor) => only === undefined || String(flavor.major) === only);

const ROTATIONS = 5;
const CONFIGMAPS = [{ resources: ['configmaps'], verbs: ['get', 'list'] }];

for (const flavor of FLAVORS) {
  describe.runIf(flavor.supported)(`loadInCluster({ root }) with ${flavor.name} on Node ${NODE_MAJOR}`, () => {
    function load(k8s: ClientNode, pod: Pod) {
      pod.useServiceEnv();
      const config = loadInCluster({ root: pod.root, ...(flavor.major === 1 ? {} : { kubeConfig: new k8s.KubeConfig() }) });
      defer(() => closeInCluster(config));
      return config;
    }

    it(`API calls keep succeeding across ${ROTATIONS} real rotations (0 failures), each new token sent, never an older one again`, async () => {
      const k8s = await flavor.load();
      const pod = await startPod({ prefix: `incluster-v${flavor.major}`, rules: CONFIGMAPS });
      await createConfigMap(pod.namespace, 'settings');
      const config = load(k8s, pod);
      expect(currentNamespace(config)).toBe(pod.namespace);
      const api = config.makeApiClient(k8s.CoreV1Api);
      const sent = recordRequests();
      const path = `/api/v1/namespaces/${pod.namespace}/configmaps/settings`;
      const ours = () => sent.filter((request) => request.url.endsWith(path));

      let running = true;
      let calls = 0;
      const failures: string[] = [];
      const traffic = (async () => {
        while (running) {
          try {
            const configMap = await api.readNamespacedConfigMap({ name: 'settings', namespace: pod.namespace });
            if (configMap.data?.['hello'] !== 'world') failures.push('unexpected answer');
          } catch (error) {
            failures.push(error instanceof Error ? error.message.split('\n')[0]! : String(error));
          }
          calls += 1;
        }
      })();
      defer(() => void (running = false));

      const ids = [tokenId(await fileToken(pod.kubelet.path))];
      await until('the first token sent', () => ours().some((request) => request.tokenId === ids[0]));
      for (let i = 1; i <= ROTATIONS; i++) {
        await sleep(200);
        const rotation = await pod.kubelet.rotate();
        expect(rotation.swapped, `rotation ${i} swapped`).toBe(true);
        const id = tokenId(await fileToken(pod.kubelet.path));
        ids.push(id);
        await until(`rotation ${i}'s token sent`, () => ours().some((request) => request.tokenId === id));
      }
      await sleep(200);
      running = false;
      await traffic;

      expect(failures).toEqual([]);
      // Which token each request carried, as an index into the rotations: never decreasing.
      const order = ours().map((request) => ids.indexOf(request.tokenId ?? ''));
      expect(order.every((index) => index >= 0), 'every request carried one of the volume’s tokens').toBe(true);
      expect(order.every((index, i) => i === 0 || index >= order[i - 1]!), 'never an older token after a newer one').toBe(true);
      console.log(`[cluster 3] ${flavor.name} on Node ${process.versions.node}: ${calls} calls across ${ROTATIONS} real rotations, 0 failures`);
    });

    it('an RBAC refusal (403) and an authentication refusal (401) reach the caller as clearly different errors', async () => {
      const k8s = await flavor.load();
      // Allowed configmaps only: listing secrets is an RBAC refusal.
      const allowed = await startPod({ prefix: `forbidden-v${flavor.major}`, rules: CONFIGMAPS });
      const forbidden = await refusal(() => load(k8s, allowed).makeApiClient(k8s.CoreV1Api).listNamespacedSecret({ namespace: allowed.namespace }));
      // A token for another audience: the API server does not authenticate it at all.
      const stranger = await startPod({ prefix: `unauthorized-v${flavor.major}`, rules: CONFIGMAPS, defaultAudience: 'not-the-api-server' });
      const sent = recordRequests();
      const unauthorized = await refusal(() => load(k8s, stranger).makeApiClient(k8s.CoreV1Api).readNamespacedConfigMap({ name: 'any', namespace: stranger.namespace }));

      // client-node's own ApiException, as podtoken hands the response on untouched: for a 403
      // it carries the API server's Status; for a 401 the OpenAPI spec declares no body, so
      // client-node says "Unauthorized" and drops it.
      expect(unauthorized.error.constructor).toBe(forbidden.error.constructor);
      expect(forbidden.code).toBe(403);
      expect(forbidden.error.message).toMatch(/^HTTP-Code: 403\n/);
      expect(forbidden.body?.reason).toBe('Forbidden');
      expect(forbidden.body?.message).toContain(`User "system:serviceaccount:${allowed.namespace}:app" cannot list resource "secrets"`);
      expect(unauthorized.code).toBe(401);
      expect(unauthorized.error.message).toMatch(/^HTTP-Code: 401\nMessage: Unauthorized\n/);
      // The 401 made podtoken re-read the file: the same token, so no second attempt.
      expect(sent.filter((request) => request.url.includes(`/namespaces/${stranger.namespace}/`)).length).toBe(1);
      for (const [pod, error] of [[allowed, forbidden.error], [stranger, unauthorized.error]] as const) {
        const token = await fileToken(pod.kubelet.path);
        for (const rendering of [inspect(error, { depth: 8 }), String(error), JSON.stringify(error)]) expect(rendering.includes(token)).toBe(false);
      }
      console.log(
        `[cluster 3] ${flavor.name}: 403 → ${forbidden.error.constructor.name} code ${forbidden.code} (${forbidden.body?.reason}: ${forbidden.body?.message}); ` +
          `401 → ${unauthorized.error.constructor.name} code ${unauthorized.code} (${unauthorized.error.message.split('\n')[1]})`,
      );
    });
  });
}

/** Runs `call`, which must fail with client-node's ApiException; returns its code and parsed body. */
async function refusal(call: () => Promise<unknown>): Promise<{ error: Error; code: number; body: { reason?: string; message?: string } | undefined }> {
  const error = await call().then(
    () => {
      throw new Error('the call succeeded, a refusal was expected');
    },
    (caught: unknown) => caught as Error & { code?: number; body?: unknown },
  );
  const raw = (error as { body?: unknown }).body;
  const body = typeof raw === 'string' ? JSON.parse(raw) : (raw as { reason?: string; message?: string } | undefined);
  return { error, code: (error as { code?: number }).code ?? 0, body };
}
