import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { closeInCluster, loadInCluster } from '@podtoken/kubernetes';
import { describe, expect, it } from 'vitest';
import { defer, percentile } from '../helpers.js';
import { createConfigMap, fileToken, ms, recordRequests, startPod, tokenId, type KubeletEvent } from './support/kube.js';

// 6. Side by side on the real API server, in one process, interleaved: client-node 1.4.0
// with @podtoken/kubernetes' loadInCluster({ root }) ("ours") and with its own
// loadFromCluster(root) ("theirs", which re-reads the token file at most once a minute).
// Both read the same pod's volume and call the same API. Latency and stale windows are
// printed, never asserted (no timed assertion on a shared 2-core machine; bench/cluster.mjs
// measures the same with more rounds).
//
// Stale window of a rotation: how long after the kubelet's writer began writing the new token
// a client goes on sending an older one. Requests are what we see, so it is bracketed: the
// client switched after its last request with an older token (lower bound, 0 when there was
// none) and by its first with this one or a newer one (upper bound). Both are printed.

const ROTATIONS = 10;
const EVERY_MS = 6_500;

describe('@podtoken/kubernetes vs client-node’s own in-cluster config', () => {
  it(`same calls, interleaved, across ${ROTATIONS} real rotations over ~${Math.round((ROTATIONS * EVERY_MS) / 1000)} s`, async () => {
    const pod = await startPod({ prefix: 'side-by-side', rules: [{ resources: ['configmaps'], verbs: ['get'] }] });
    await createConfigMap(pod.namespace, 'ours');
    await createConfigMap(pod.namespace, 'theirs');
    pod.useServiceEnv();
    const oursConfig = loadInCluster({ root: pod.root });
    defer(() => closeInCluster(oursConfig));
    const theirsConfig = new KubeConfig();
    theirsConfig.loadFromCluster(pod.root);
    const clients = {
      ours: oursConfig.makeApiClient(CoreV1Api),
      theirs: theirsConfig.makeApiClient(CoreV1Api),
    };
    const sent = recordRequests();
    const pathOf = (name: 'ours' | 'theirs') => `/api/v1/namespaces/${pod.namespace}/configmaps/${name}`;
    const latency = { ours: [] as number[], theirs: [] as number[] };
    const failures = { ours: 0, theirs: 0 };
    const call = async (name: 'ours' | 'theirs') => {
      const start = performance.now();
      try {
        await clients[name].readNamespacedConfigMap({ name, namespace: pod.namespace });
        latency[name].push(performance.now() - start);
      } catch {
        failures[name] += 1;
      }
    };
    // Warm both (connections, first token read), then measure.
    for (let i = 0; i < 20; i++) await Promise.all([call('ours'), call('theirs')]).then(() => undefined);
    latency.ours.length = latency.theirs.length = 0;

    let running = true;
    defer(() => void (running = false));
    const traffic = (async () => {
      while (running) {
        const order = Math.random() < 0.5 ? (['ours', 'theirs'] as const) : (['theirs', 'ours'] as const);
        for (const name of order) await call(name);
      }
    })();
    const ids = [tokenId(await fileToken(pod.kubelet.path))];
    const rotations: KubeletEvent[] = [];
    for (let i = 1; i <= ROTATIONS; i++) {
      await sleep(EVERY_MS);
      const rotation = await pod.kubelet.rotate();
      expect(rotation.swapped).toBe(true);
      rotations.push(rotation);
      ids.push(tokenId(await fileToken(pod.kubelet.path)));
    }
    await sleep(EVERY_MS);
    running = false;
    await traffic;

    expect(failures).toEqual({ ours: 0, theirs: 0 });
    const stale = { ours: { lower: [] as number[], upper: [] as number[] }, theirs: { lower: [] as number[], upper: [] as number[] } };
    const unresolved = { ours: 0, theirs: 0 };
    for (const name of ['ours', 'theirs'] as const) {
      const requests = sent.filter((request) => request.url.endsWith(pathOf(name))).map((request) => ({ at: request.at, index: ids.indexOf(request.tokenId ?? '') }));
      expect(requests.every(({ index }, i) => index >= 0 && (i === 0 || index >= requests[i - 1]!.index)), `${name}: never an older token after a newer one`).toBe(true);
      rotations.forEach((rotation, r) => {
        const after = requests.filter((request) => request.at >= rotation.writeStart!);
        const lastOld = after.filter((request) => request.index <= r).at(-1);
        const firstNew = after.find((request) => request.index >= r + 1);
        stale[name].lower.push(lastOld === undefined ? 0 : lastOld.at - rotation.writeStart!);
        if (firstNew) stale[name].upper.push(firstNew.at - rotation.writeStart!);
        else unresolved[name] += 1;
      });
    }
    // Ours sends every rotation's token before the next one.
    expect(unresolved.ours).toBe(0);

    const figures = (values: number[]) => `p50 ${ms(percentile(values, 50))}, p99 ${ms(percentile(values, 99))}`;
    const line = (name: 'ours' | 'theirs') =>
      `${name}: latency p50 ${ms(percentile(latency[name], 50))}, p99 ${ms(percentile(latency[name], 99))} (${latency[name].length} calls); ` +
      `stale window at least ${figures(stale[name].lower)}, at most ${figures(stale[name].upper)}` +
      (unresolved[name] > 0 ? ` (${unresolved[name]} rotation(s) not yet picked up when the run ended)` : '');
    console.log(
      `[cluster 6] side by side, client-node 1.4.0 on Node ${process.versions.node}, ${ROTATIONS} real rotations (load average ${loadavg()[0]!.toFixed(1)}):\n  ${line('ours')}\n  ${line('theirs')}\n` +
        `  latency ratio ours/theirs (p50) ${(percentile(latency.ours, 50) / percentile(latency.theirs, 50)).toFixed(3)} (target ≤ 1: no slower); ` +
        'stale window target: ours p99 < 50 ms; theirs up to 60 s',
    );
  });
});
