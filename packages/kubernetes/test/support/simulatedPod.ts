import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as clientNode from '@kubernetes/client-node';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer, type Rotation } from '@podtoken/testing';
import { decodeJwt } from 'jose';
import { vi } from 'vitest';
import { SERVICE_ACCOUNT_DIR } from '../../src/index.js';
import { startApiServer, type ApiServer } from './apiServer.js';
import { createCa, issueServerCert, type TestCa, type TestServerCert } from './pki.js';

/** The `@kubernetes/client-node` module, whichever major. */
export type ClientNode = typeof clientNode;

/** A client-node copy the suites run against. */
export interface Flavor {
  readonly name: string;
  /** Whether it loads on this Node (2.x needs Node >= 22: undici 8). */
  readonly supported: boolean;
  /** A suite title that says, when the flavor is skipped, why. */
  readonly title: string;
  /** How this package's tests import it. */
  readonly specifier: string;
  /** The copy `@podtoken/kubernetes` itself imports (then loadInCluster needs no `kubeConfig`). */
  readonly isDefault: boolean;
  load(): Promise<ClientNode>;
}

export const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

export const FLAVORS: readonly Flavor[] = [
  { name: 'client-node 1.4.0', supported: true, title: 'client-node 1.4.0', specifier: '@kubernetes/client-node', isDefault: true, load: async () => clientNode },
  {
    name: 'client-node 2.0.1',
    supported: NODE_MAJOR >= 22,
    title:
      NODE_MAJOR >= 22
        ? 'client-node 2.0.1'
        : `client-node 2.0.1 (skipped: it needs Node >= 22, its undici 8 does not load on Node ${process.versions.node}; run with npx --yes node@24 node_modules/vitest/vitest.mjs)`,
    specifier: 'client-node-v2',
    isDefault: false,
    load: async () => (await import('client-node-v2')) as unknown as ClientNode,
  },
];

/** Everything a pod sees, on this machine: the service-account volume under `root`, the API server's env, the API server. */
export interface SimulatedPod {
  /** What to pass as `loadInCluster({ root })`. */
  readonly root: string;
  /** `${root}/var/run/secrets/kubernetes.io/serviceaccount`. */
  readonly dir: string;
  readonly tokenPath: string;
  readonly namespace: string;
  readonly issuer: Issuer;
  readonly ca: TestCa;
  readonly server: ApiServer;
  /** The service-account volume, written with the kubelet's atomic-writer layout. */
  readonly volume: ProjectedVolume;
  /** Rotates the token in that volume. */
  readonly kubelet: FakeKubelet;
  /** The first token's rotation. */
  readonly first: Rotation;
  close(): Promise<void>;
}

// RSA key generation is the slow part of a set-up (~0.4 s a key on this machine): one
// issuer, CA and serving certificate per test file, each pod still with its own server,
// volume and kubelet.
let shared: Promise<{ issuer: Issuer; ca: TestCa; tls: TestServerCert }> | undefined;

async function makeShared() {
  const ca = createCa('podtoken-test-cluster-ca');
  return { issuer: await createIssuer(), ca, tls: issueServerCert(ca) };
}

/** Options of {@link startSimulatedPod}. */
export interface SimulatedPodOptions {
  revokeSuperseded?: boolean;
  namespace?: string;
}

/**
 * Starts an API server stand-in (HTTPS on 127.0.0.1, a CA made now), writes the
 * service-account volume (`token`, `ca.crt`, `namespace`) under a fresh temporary root and
 * points `KUBERNETES_SERVICE_HOST`/`_PORT` at the server (undone by `vi.unstubAllEnvs()`).
 */
export async function startSimulatedPod(options: SimulatedPodOptions = {}): Promise<SimulatedPod> {
  const namespace = options.namespace ?? 'podtoken-e2e';
  const root = await mkdtemp(join(tmpdir(), 'podtoken-k8s-'));
  const dir = join(root, SERVICE_ACCOUNT_DIR);
  const { issuer, ca, tls } = await (shared ??= makeShared());
  const server = await startApiServer({
    issuer,
    audience: issuer.issuer,
    tls,
    ...(options.revokeSuperseded === undefined ? {} : { revokeSuperseded: options.revokeSuperseded }),
  });
  const volume = new ProjectedVolume({ dir });
  const kubelet = new FakeKubelet({
    volume,
    issuer,
    mint: { namespace, serviceAccount: 'lister', pod: 'app-0' },
    files: { 'ca.crt': ca.certPem, namespace },
  });
  // Rotations are driven by the tests (kubelet.rotate()), never by its timer.
  const first = await kubelet.rotate();
  vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
  vi.stubEnv('KUBERNETES_SERVICE_PORT', String(server.port));
  return {
    root,
    dir,
    tokenPath: kubelet.path,
    namespace,
    issuer,
    ca,
    server,
    volume,
    kubelet,
    first,
    async close() {
      kubelet.stop();
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** The `jti` of a token: how tests name tokens without ever printing one. */
export function jtiOf(token: string): string {
  const jti = decodeJwt(token).jti;
  if (typeof jti !== 'string') throw new Error('token without jti');
  return jti;
}

/** Polls `condition` every `step` ms until it holds or `timeout` ms passed; returns whether it held. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeout = 10_000, step = 2): Promise<boolean> {
  const deadline = performance.now() + timeout;
  while (performance.now() < deadline) {
    if (await condition()) return true;
    await sleep(step);
  }
  return condition();
}

/** Milliseconds with one decimal. */
export function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}
