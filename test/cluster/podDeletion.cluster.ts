import * as nodeFs from 'node:fs';
import { inspect } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { FileTokenSource, type FileTokenSourceOptions, type TokenFileSystem } from '@podtoken/core';
import { closeInCluster, loadInCluster } from '@podtoken/kubernetes';
import { describe, expect, it } from 'vitest';
import { defer, until } from '../helpers.js';
import { auditEvents, createConfigMap, fileToken, recordRequests, startPod, tokenId, type Pod } from './support/kube.js';

// 4. A bound token dies with its pod. After the Pod object is deleted, the API server
// refuses the token (401) once its 10-second token authentication cache has let go of it.
// The caller must get that 401 as a clear error, after at most the one retry podtoken allows
// when the file holds a different token, and nothing may loop: requests are counted where
// they arrive (the API server's audit log) and where they leave (Node's diagnostics
// channels), file reads through the source's `fs`.

// The API server caches a successful token authentication for 10 s.
const AUTH_CACHE_MS = 10_000;

interface Subject {
  pod: Pod;
  api: CoreV1Api;
  reads: () => number;
  path: string;
  sent: () => number;
}

async function subject(prefix: string, sourceOptions: Omit<FileTokenSourceOptions, 'path' | 'fs'>, sent: ReturnType<typeof recordRequests>): Promise<Subject> {
  const pod = await startPod({ prefix, rules: [{ resources: ['configmaps'], verbs: ['get'] }] });
  await createConfigMap(pod.namespace, 'settings');
  let reads = 0;
  const fs: TokenFileSystem = {
    promises: {
      open: (path, flags) => {
        reads += 1;
        return nodeFs.promises.open(path, flags);
      },
    },
    watch: (path, options, listener) => nodeFs.watch(path, options, listener),
  };
  const source = new FileTokenSource({ ...sourceOptions, path: pod.kubelet.path, fs });
  defer(() => source.close());
  pod.useServiceEnv();
  const config = loadInCluster({ root: pod.root, source });
  defer(() => closeInCluster(config));
  const api = config.makeApiClient(CoreV1Api);
  const path = `/api/v1/namespaces/${pod.namespace}/configmaps/settings`;
  for (let i = 0; i < 3; i++) await api.readNamespacedConfigMap({ name: 'settings', namespace: pod.namespace });
  return { pod, api, reads: () => reads, path, sent: () => sent.filter((request) => request.url.endsWith(path)).length };
}

/** One call, which must be refused; what it cost, counted at both ends. */
async function refusedCall(s: Subject) {
  const [reads, sent, arrived] = [s.reads(), s.sent(), (await auditEvents(s.path)).length];
  const error = (await s.api.readNamespacedConfigMap({ name: 'settings', namespace: s.pod.namespace }).then(
    () => undefined,
    (caught: unknown) => caught,
  )) as (Error & { code?: number; body?: unknown }) | undefined;
  const requests = s.sent() - sent;
  // The audit log is written as the API server answers: wait for this call's events, then a little more for any stray one.
  await until('the audit log holds the call', async () => (await auditEvents(s.path)).length >= arrived + requests);
  await sleep(300);
  const audited = (await auditEvents(s.path)).slice(arrived);
  return { error, requests, reads: s.reads() - reads, audited: audited.map((event) => event.responseStatus?.code) };
}

describe('the pod is deleted: its token is refused', () => {
  it('the 401 reaches the caller as a clear error after at most the one retry; nothing loops', async () => {
    const sent = recordRequests();
    // (a) The usual case: the file still holds the token the API server now refuses.
    const stale = await subject('deleted-a', {}, sent);
    // (b) The kubelet wrote one more token just before the deletion and the source has not
    //     seen it (no watcher, no poll: as if the folder event were lost): the 401 makes it
    //     re-read, it finds a different token and retries once, and that one is refused too.
    const missed = await subject('deleted-b', { watch: false, pollInterval: 0 }, sent);
    const firstOfB = await fileToken(missed.pod.kubelet.path);
    expect((await missed.pod.kubelet.rotate()).swapped).toBe(true);
    const secondOfB = await fileToken(missed.pod.kubelet.path);

    await Promise.all([stale.pod.delete(), missed.pod.delete()]);
    // Nothing sends these tokens while the API server's cache forgets them.
    await sleep(AUTH_CACHE_MS + 1_000);

    const a = await refusedCall(stale);
    expect(a.error?.code, '(a) the caller sees a 401').toBe(401);
    expect(a, '(a) one request, one re-read').toMatchObject({ requests: 1, reads: 1, audited: [401] });

    const sentBefore = sent.length;
    const b = await refusedCall(missed);
    expect(b.error?.code, '(b) the caller sees a 401').toBe(401);
    expect(b, '(b) the request and the one retry, one re-read').toMatchObject({ requests: 2, reads: 1, audited: [401, 401] });
    const bRequests = sent.slice(sentBefore).filter((request) => request.url.endsWith(missed.path));
    expect(bRequests.map((request) => request.tokenId)).toEqual([tokenId(firstOfB), tokenId(secondOfB)]);

    // Later calls cost one request and at most one re-read each (core joins repeated 401s for
    // the same token within its 1 s cooldown on a watched file), and idle time costs nothing.
    for (const s of [stale, missed]) {
      for (let i = 0; i < 3; i++) {
        const call = await refusedCall(s);
        expect(call).toMatchObject({ requests: 1, audited: [401] });
        expect(call.reads).toBeLessThanOrEqual(1);
      }
      const [reads, requests] = [s.reads(), s.sent()];
      await sleep(2_000);
      expect([s.reads(), s.sent()], 'no reads or requests while idle').toEqual([reads, requests]);
    }

    for (const [s, error] of [[stale, a.error], [missed, b.error]] as const) {
      // client-node's ApiException for a 401 (its OpenAPI spec declares no body for it).
      expect(error?.message).toMatch(/^HTTP-Code: 401\nMessage: Unauthorized\n/);
      const token = await fileToken(s.pod.kubelet.path);
      for (const rendering of [inspect(error, { depth: 8 }), String(error)]) expect(rendering.includes(token)).toBe(false);
    }
    // The kubelet cannot get a token for a pod that is gone.
    const afterDeletion = await stale.pod.kubelet.rotate();
    expect(afterDeletion.error).toMatch(/not found/i);
    console.log(
      `[cluster 4] pod deleted: (a) 401 after ${a.requests} request and ${a.reads} re-read; (b) after ${b.requests} requests (the one retry) and ${b.reads} re-read; ` +
        'then 1 request and 1 re-read per call, none while idle',
    );
  });
});
