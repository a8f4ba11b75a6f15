import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { DEFAULT_TOKEN_PATH } from '@podtoken/core';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { vi } from 'vitest';
import { startApiServer, type ApiServer, type ApiServerOptions } from './apiServer.js';

/** The verifying service's pod, on this machine: its ServiceAccount volume under `root`, and its API server. */
export interface VerifierPod {
  /** What to pass as `root` (and `loadInCluster({ root })`). */
  readonly root: string;
  /** The cluster's signer. */
  readonly issuer: Issuer;
  readonly server: ApiServer;
  /** Writes the verifier's own token into its volume (kubelet layout). */
  readonly kubelet: FakeKubelet;
  close(): Promise<void>;
}

let sharedIssuer: Promise<Issuer> | undefined;

/** One signer per test file: RSA key generation is the slow part of a set-up. */
export function clusterIssuer(): Promise<Issuer> {
  return (sharedIssuer ??= createIssuer());
}

/**
 * Starts the API server stand-in and writes the verifier's ServiceAccount volume (`token`,
 * `ca.crt`, `namespace`) under a fresh root, the way the kubelet does, then points
 * `KUBERNETES_SERVICE_HOST`/`_PORT` at the server (undone by `vi.unstubAllEnvs()`).
 */
export async function startVerifierPod(options: Omit<ApiServerOptions, 'issuer'> = {}): Promise<VerifierPod> {
  const issuer = await clusterIssuer();
  const server = await startApiServer({ ...options, issuer });
  const root = await mkdtemp(join(tmpdir(), 'podtoken-verify-'));
  const volume = new ProjectedVolume({ dir: join(root, dirname(DEFAULT_TOKEN_PATH)) });
  const kubelet = new FakeKubelet({
    volume,
    issuer,
    mint: { namespace: 'svc', serviceAccount: 'verifier', pod: 'verifier-0' },
    files: { 'ca.crt': server.ca.certPem, namespace: 'svc' },
  });
  await kubelet.rotate();
  vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
  vi.stubEnv('KUBERNETES_SERVICE_PORT', String(server.port));
  return {
    root,
    issuer,
    server,
    kubelet,
    async close() {
      kubelet.stop();
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** A KubeConfig for `server` with a static token: how a service outside a pod would call it. */
export function kubeConfigFor(server: ApiServer, token: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'test', server: server.url, caData: Buffer.from(server.ca.certPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'verifier', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'verifier' }],
    currentContext: 'test',
  });
  return config;
}
