import { isTokenSourceError, TokenSourceError, type TokenSource } from '@podtoken/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeInCluster, loadInCluster, withTokenSource, type LoadInClusterOptions } from '../src/index.js';
import { FLAVORS, startSimulatedPod, waitFor, type ClientNode, type SimulatedPod } from './support/simulatedPod.js';

// An informer re-watches from its watch's `done` callback without a catch: if `watch()`
// rejects there (the token source failing inside client-node's option building), the
// rejection is unhandled and ends the process (exit code 1). A source error must reach the
// informer's `error` callback instead. An `unhandledRejection` listener records what would
// have ended the process; vitest reports it as well.

/** The TokenSourceError an informer's error callback got: itself (1.x) or as the cause of undici's `fetch failed` (2.x). */
function tokenErrorIn(error: unknown): TokenSourceError | undefined {
  if (isTokenSourceError(error)) return error;
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return isTokenSourceError(cause) ? cause : undefined;
}

for (const flavor of FLAVORS) {
  describe.runIf(flavor.supported)(`informers with ${flavor.title}`, () => {
    let k8s: ClientNode;
    const cleanups: Array<() => Promise<void>> = [];
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);

    async function pod(): Promise<SimulatedPod> {
      k8s ??= await flavor.load();
      const started = await startSimulatedPod();
      cleanups.push(() => started.close());
      return started;
    }

    function load(options: LoadInClusterOptions) {
      const config = loadInCluster(flavor.isDefault ? options : { ...options, kubeConfig: new k8s.KubeConfig() });
      cleanups.push(() => closeInCluster(config));
      return config;
    }

    afterEach(async () => {
      process.off('unhandledRejection', onUnhandled);
      unhandled.length = 0;
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
      vi.unstubAllEnvs();
    });

    async function startInformer(config: InstanceType<ClientNode['KubeConfig']>, cluster: SimulatedPod) {
      const api = config.makeApiClient(k8s.CoreV1Api);
      const path = `/api/v1/namespaces/${cluster.namespace}/pods`;
      const informer = k8s.makeInformer(config, path, () => api.listNamespacedPod({ namespace: cluster.namespace }));
      const errors: unknown[] = [];
      informer.on('error', (error: unknown) => void errors.push(error));
      cleanups.push(async () => void (await informer.stop()));
      await informer.start();
      // Listed, then watching from the list's resourceVersion: a re-watch skips the list.
      expect(await waitFor(() => cluster.server.requests.some((request) => request.watch && request.status === 200), 10_000)).toBe(true);
      return { informer, errors };
    }

    it('the source closed (closeInCluster, `await using`) before the informer stops: its re-watch reports TOKEN_SOURCE_CLOSED to the error callback', async () => {
      process.on('unhandledRejection', onUnhandled);
      const cluster = await pod();
      const config = load({ root: cluster.root });
      const { informer, errors } = await startInformer(config, cluster);

      await closeInCluster(config); // the app's shutdown closes the source first…
      cluster.server.endWatches(); // …and the API server ends the watch: the informer re-watches
      expect(await waitFor(() => errors.length > 0 || unhandled.length > 0, 15_000)).toBe(true);
      await informer.stop();

      expect(unhandled.map((reason) => tokenErrorIn(reason)?.code ?? String(reason))).toEqual([]);
      expect(errors.map((error) => tokenErrorIn(error)?.code)).toEqual(['TOKEN_SOURCE_CLOSED']);
    });

    it('a source that rejects with TOKEN_EXPIRED (the kubelet stopped rotating): the error callback gets it, the process lives', async () => {
      process.on('unhandledRejection', onUnhandled);
      const cluster = await pod();
      let expired = false;
      const source: TokenSource = {
        getToken: async () => {
          if (expired) throw new TokenSourceError('TOKEN_EXPIRED', 'The token expired and no newer one was written.');
          return cluster.first.token;
        },
      };
      const config = new k8s.KubeConfig();
      config.loadFromCluster(cluster.root);
      withTokenSource(config, source);
      const { informer, errors } = await startInformer(config, cluster);

      expired = true;
      cluster.server.endWatches();
      expect(await waitFor(() => errors.length > 0 || unhandled.length > 0, 15_000)).toBe(true);
      await informer.stop();

      expect(unhandled.map((reason) => tokenErrorIn(reason)?.code ?? String(reason))).toEqual([]);
      expect(errors.map((error) => tokenErrorIn(error)?.code)).toEqual(['TOKEN_EXPIRED']);
    });

    it('Watch hands a source error to done(err), not to a rejection of watch()', async () => {
      const cluster = await pod();
      const config = load({ root: cluster.root });
      await closeInCluster(config);
      let done: unknown = 'not called';
      const watched = await new k8s.Watch(config)
        .watch(`/api/v1/namespaces/${cluster.namespace}/pods`, {}, () => {}, (error: unknown) => {
          done = error;
        })
        .then(
          () => 'resolved',
          (error: unknown) => `rejected: ${String(error)}`,
        );
      expect(watched).toBe('resolved');
      expect(await waitFor(() => done !== 'not called', 5_000)).toBe(true);
      expect(tokenErrorIn(done)?.code).toBe('TOKEN_SOURCE_CLOSED');
      // Nothing reached the server without a token.
      expect(cluster.server.requests.filter((request) => request.watch)).toEqual([]);
    });

    it('an API client call still rejects with the TokenSourceError itself', async () => {
      const cluster = await pod();
      const config = load({ root: cluster.root });
      await closeInCluster(config);
      const error = await config
        .makeApiClient(k8s.CoreV1Api)
        .listNamespacedPod({ namespace: cluster.namespace })
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(isTokenSourceError(error) && error.code).toBe('TOKEN_SOURCE_CLOSED');
    });
  });
}
