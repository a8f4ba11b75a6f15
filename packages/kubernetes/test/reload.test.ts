import { mkdtemp, rm } from 'node:fs/promises';
import type { Agent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isTokenSourceError, staticTokenSource } from '@podtoken/core';
import { ProjectedVolume } from '@podtoken/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeInCluster, loadInCluster, SERVICE_ACCOUNT_DIR } from '../src/index.js';
import { createCa, type TestCa } from './support/pki.js';
import { FLAVORS, type ClientNode } from './support/simulatedPod.js';

// Loading into the same KubeConfig again (loadInCluster twice, e.g. after the volume changed)
// must release what the previous load opened and forget its binding, and no agent cached by
// client-node may keep the previous load's CA. Stand-in token values only.

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const FIRST = 'podtoken-reload-first';
const SECOND = 'podtoken-reload-second';

let ca1: TestCa;
let ca2: TestCa;
const roots: string[] = [];

beforeAll(() => {
  ca1 = createCa('reload-ca-1');
  ca2 = createCa('reload-ca-2');
});
afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function volume(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'podtoken-k8s-reload-'));
  roots.push(root);
  await new ProjectedVolume({ dir: join(root, SERVICE_ACCOUNT_DIR) }).write(files);
  return root;
}

for (const flavor of FLAVORS) {
  describe.runIf(flavor.supported)(`reloading with ${flavor.title}`, () => {
    let k8s: ClientNode;
    beforeAll(async () => {
      k8s = await flavor.load();
      vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
      vi.stubEnv('KUBERNETES_SERVICE_PORT', '6443');
    });

    async function authorization(config: InstanceType<ClientNode['KubeConfig']>): Promise<unknown> {
      const options: { headers?: Record<string, unknown> } = {};
      return config.applyToHTTPSOptions(options).then(
        () => options.headers?.['Authorization'],
        (error: unknown) => (isTokenSourceError(error) ? error.code : error),
      );
    }

    it('a user entry exported before a reload and loaded back gets nothing from the closed binding', async () => {
      vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
      vi.stubEnv('KUBERNETES_SERVICE_PORT', '6443');
      const config = new k8s.KubeConfig();
      loadInCluster({ root: await volume({ token: FIRST, 'ca.crt': ca1.certPem }), kubeConfig: config });
      expect((await authorization(config)) === `Bearer ${FIRST}`).toBe(true);
      const exported = config.exportConfig();
      loadInCluster({ root: await volume({ token: SECOND, 'ca.crt': ca1.certPem }), kubeConfig: config });
      expect((await authorization(config)) === `Bearer ${SECOND}`).toBe(true);
      config.loadFromString(exported); // e.g. a config file written before the reload
      expect(await authorization(config)).toBeUndefined(); // neither a token nor TOKEN_SOURCE_CLOSED
      await closeInCluster(config);
    });

    it.runIf(!flavor.isDefault)('2.x: the WebSocket helpers’ cached agent follows the reload’s CA (2.x only: 1.x caches no agent)', async () => {
      vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
      vi.stubEnv('KUBERNETES_SERVICE_PORT', '6443');
      const config = new k8s.KubeConfig();
      const agentCa = async () => {
        const options: { agent?: Agent } = {};
        await config.applyToHTTPSOptions(options);
        return String((options.agent as (Agent & { options: { ca?: unknown } }) | undefined)?.options.ca);
      };
      loadInCluster({ root: await volume({ token: FIRST, 'ca.crt': ca1.certPem }), kubeConfig: config });
      expect(await agentCa()).toBe(ca1.certPem);
      loadInCluster({ root: await volume({ token: SECOND, 'ca.crt': ca2.certPem }), kubeConfig: config });
      expect(await agentCa()).toBe(ca2.certPem);
      await closeInCluster(config);
    });

    it('1,000 reloads into one KubeConfig: every earlier source is collectable', async () => {
      vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
      vi.stubEnv('KUBERNETES_SERVICE_PORT', '6443');
      const root = await volume({ token: FIRST, 'ca.crt': ca1.certPem });
      const config = new k8s.KubeConfig();
      const sources: Array<WeakRef<object>> = [];
      for (let i = 0; i < 1000; i++) {
        const source = staticTokenSource(`${FIRST}-${i}`);
        sources.push(new WeakRef(source));
        loadInCluster({ root, kubeConfig: config, source });
        await authorization(config); // each binding hands out a token
      }
      await closeInCluster(config);
      for (let i = 0; i < 5; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        gc();
      }
      const alive = sources.slice(0, -1).filter((ref) => ref.deref() !== undefined).length;
      expect(alive).toBe(0);
    });

    it('1,000 reloads with the default FileTokenSource: heap growth after gc (printed; bounded)', async () => {
      vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
      vi.stubEnv('KUBERNETES_SERVICE_PORT', '6443');
      const root = await volume({ token: FIRST, 'ca.crt': ca1.certPem });
      const config = new k8s.KubeConfig();
      const settle = async () => {
        for (let i = 0; i < 3; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          gc();
        }
        return process.memoryUsage().heapUsed;
      };
      for (let i = 0; i < 20; i++) loadInCluster({ root, kubeConfig: config });
      await authorization(config);
      const before = await settle();
      for (let i = 0; i < 1000; i++) {
        loadInCluster({ root, kubeConfig: config });
        if (i % 100 === 0) await authorization(config);
      }
      await closeInCluster(config);
      const grown = (await settle()) - before;
      console.log(`[${flavor.name}] heap after 1,000 reloads into one KubeConfig: ${(grown / 1024 / 1024).toFixed(2)} MiB more than before`);
      expect(grown).toBeLessThan(2 * 1024 * 1024); // the previous code grew 3 MiB here
    });
  });
}
