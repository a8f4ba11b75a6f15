import { statSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { dirname, join } from 'node:path';
import { DEFAULT_TOKEN_PATH } from '@podtoken/core';

/** Where the pod's API server is, and the files to reach it with. */
export interface InClusterEndpoint {
  /** `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` */
  readonly origin: string;
  readonly caPath: string;
  readonly tokenPath: string;
}

/**
 * The in-cluster API server, as client-go finds it: the service environment variables and
 * the default ServiceAccount volume (under `root`, for tests). Returns the list of what is
 * missing instead when the process does not look like it runs in a pod.
 */
export function inClusterEndpoint(root: string | undefined): InClusterEndpoint | { missing: string[] } {
  const dir = root === undefined ? dirname(DEFAULT_TOKEN_PATH) : join(root, dirname(DEFAULT_TOKEN_PATH));
  const caPath = join(dir, 'ca.crt');
  const tokenPath = join(dir, 'token');
  const host = process.env['KUBERNETES_SERVICE_HOST'];
  const port = process.env['KUBERNETES_SERVICE_PORT'];
  const missing: string[] = [];
  if (!host) missing.push('KUBERNETES_SERVICE_HOST');
  if (!port || !/^\d{1,5}$/.test(port)) missing.push('KUBERNETES_SERVICE_PORT');
  for (const path of [caPath, tokenPath]) if (statSync(path, { throwIfNoEntry: false }) === undefined) missing.push(path);
  if (missing.length > 0) return { missing };
  return { origin: `https://${isIPv6(host!) ? `[${host!}]` : host!}:${port!}`, caPath, tokenPath };
}
