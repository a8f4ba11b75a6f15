import type { LookupAddress } from 'axios';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTokenSource, type FileTokenSourceOptions } from '@podtoken/core';
import { FakeKubelet, ProjectedVolume, createIssuer, startTokenServer, type Issuer, type TokenServer } from '@podtoken/testing';

/** The API server audience the simulated pod's token is for. */
export const AUDIENCE = 'https://kubernetes.default.svc';

/** A simulated pod: issuer, projected volume in a temp folder, kubelet, source and a verifying server. */
export interface Pod {
  readonly dir: string;
  readonly issuer: Issuer;
  readonly volume: ProjectedVolume;
  readonly kubelet: FakeKubelet;
  readonly source: FileTokenSource;
  readonly server: TokenServer;
  close(): Promise<void>;
}

export interface PodOptions {
  /** The kubelet's expirationSeconds. @default 3607 */
  expirationSeconds?: number;
  /** The kubelet's rotateAfter. @default 0.8 */
  rotateAfter?: number;
  /** Start the kubelet's rotation timer (otherwise only rotate() writes). @default false */
  rotate?: boolean;
  /** FileTokenSource options. */
  source?: Omit<FileTokenSourceOptions, 'path'>;
}

export async function startPod(options: PodOptions = {}): Promise<Pod> {
  const dir = await mkdtemp(join(tmpdir(), 'podtoken-axios-'));
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir: join(dir, 'tokens') });
  const kubelet = new FakeKubelet({
    volume,
    issuer,
    audience: AUDIENCE,
    ...(options.expirationSeconds === undefined ? {} : { expirationSeconds: options.expirationSeconds }),
    ...(options.rotateAfter === undefined ? {} : { rotateAfter: options.rotateAfter }),
  });
  if (options.rotate) await kubelet.start();
  else await kubelet.rotate();
  const source = new FileTokenSource({ path: kubelet.path, audience: AUDIENCE, ...options.source });
  await source.ready();
  const server = await startTokenServer({ issuer, audience: AUDIENCE });
  return {
    dir,
    issuer,
    volume,
    kubelet,
    source,
    server,
    async close() {
      kubelet.stop();
      await Promise.all([source.close(), server.close()]);
      // A rotation already under way may still be writing into the folder: rm retries ENOTEMPTY.
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

/**
 * An axios `lookup` that maps every host name to 127.0.0.1, so tests can use `api.test`
 * and `sub.api.test` without DNS (axios adapts an async lookup to Node's `all` option).
 */
export async function loopbackLookup(): Promise<LookupAddress> {
  return { address: '127.0.0.1', family: 4 };
}
