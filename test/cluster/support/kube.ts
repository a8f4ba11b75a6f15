import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type { ClientRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { tokenId } from '@podtoken/testing';
import { inject, vi } from 'vitest';
import { defer, tempDir } from '../../helpers.js';

// What the cluster tests share: the running API server (from globalSetup), admin calls to
// it, the podtoken-kubelet program, and ways to see which token went where without ever
// printing one (tokens are named by a hash prefix, compared in memory).

export const cluster = inject('cluster');
export const caPem = readFileSync(cluster.caFile, 'utf8');
const agent = new Agent({ keepAlive: true, ca: caPem });
const SA_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';

/** Wall-clock milliseconds with µs resolution: the clock podtoken-kubelet reports write times on. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** A short, stable name for a token (a hash prefix): never the token. */
export { tokenId };

/** The claims of a JWT, decoded without a check (tests compare them to the API's answers). */
export function claimsOf(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
}

export interface KubeAnswer<T = any> {
  status: number;
  body: T;
}

/**
 * A call to the real API server through node:https with its CA, as the cluster admin unless
 * `token` says otherwise. Answers with the status and the parsed body; never throws on a status.
 */
export function kube<T = any>(method: string, path: string, body?: unknown, token = cluster.adminToken, accept = 'application/json'): Promise<KubeAnswer<T>> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${cluster.server}${path}`,
      {
        method,
        agent,
        headers: {
          authorization: `Bearer ${token}`,
          accept,
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed as T });
        });
      },
    );
    req.on('error', reject).end(payload);
  });
}

/** Like {@link kube}, but any status outside 2xx throws (with the API's message, never a token). */
export async function kubeOk<T = any>(method: string, path: string, body?: unknown, token?: string, accept?: string): Promise<T> {
  const answer = await kube<T>(method, path, body, token, accept);
  if (answer.status < 200 || answer.status > 299) {
    const message = (answer.body as { message?: string } | undefined)?.message ?? '';
    throw new Error(`${method} ${path}: HTTP ${answer.status} ${message}`);
  }
  return answer.body;
}

/** Creates a namespace with a fresh name (never deleted: there is no namespace controller to finalize it). */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await kubeOk('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

export async function createServiceAccount(namespace: string, name: string): Promise<{ uid: string }> {
  const sa = await kubeOk('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
  return { uid: sa.metadata.uid };
}

/** A Role with `rules` in `namespace`, bound to the ServiceAccount. */
export async function allow(namespace: string, serviceAccount: string, rules: Array<{ resources: string[]; verbs: string[] }>): Promise<void> {
  const name = `${serviceAccount}-${randomBytes(2).toString('hex')}`;
  await kubeOk('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name },
    rules: rules.map((rule) => ({ apiGroups: [''], ...rule })),
  });
  await kubeOk('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
  });
}

export async function createConfigMap(namespace: string, name: string, data: Record<string, string> = { hello: 'world' }): Promise<void> {
  await kubeOk('POST', `/api/v1/namespaces/${namespace}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });
}

/** A token straight from the TokenRequest API (for a service's own credential, not a pod's volume). */
export async function requestToken(namespace: string, serviceAccount: string, spec: { audiences?: string[]; expirationSeconds?: number } = {}): Promise<string> {
  const answer = await kubeOk('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600, ...spec },
  });
  return answer.status.token;
}

/** One projected ServiceAccount token volume of a pod, as its spec says and podtoken-kubelet writes it. */
export interface VolumeSpec {
  /** The volume's folder, relative to the pod's root. */
  mountPath: string;
  /** The token's file name. @default 'token' */
  file?: string;
  audience?: string;
  /** @default 3607 */
  expirationSeconds?: number;
  /** Also write `ca.crt` (the API server's CA) and `namespace`, as the default volume does. */
  serviceAccountFiles?: boolean;
}

export interface KubeletEvent {
  event: string;
  command?: string;
  error?: string;
  podUID?: string;
  swapped: boolean;
  folder?: string;
  /** Wall-clock ms when AtomicWriter.Write() began and returned; the `..data` swap is in between. */
  writeStart?: number;
  writeEnd?: number;
  minted: boolean;
  expirationTimestamp?: number;
  claims?: {
    iss: string;
    sub: string;
    aud: string[];
    iat: number;
    nbf: number;
    exp: number;
    jti?: string;
    warnafter?: number;
    podName?: string;
    podUID?: string;
    nodeName?: string;
  };
}

/** A running podtoken-kubelet: the kubelet's token manager and AtomicWriter for one volume. */
export interface Kubelet {
  readonly dir: string;
  /** The token file's path. */
  readonly path: string;
  /** The first mount's event. */
  readonly ready: KubeletEvent;
  /** Every event so far, the periodic syncs' included. */
  readonly events: readonly KubeletEvent[];
  /** Drops the token manager's cache for the pod and syncs: a fresh token, written through the writer. */
  rotate(): Promise<KubeletEvent>;
  /** A periodic sync: the cached token, which the writer does not write again. */
  sync(): Promise<KubeletEvent>;
  /** Ends it by closing its stdin; kills it by PID when it has not exited after 5 s. */
  stop(): Promise<void>;
}

/** Starts podtoken-kubelet for one volume of a pod; stopped after the test. */
export async function startKubelet(options: {
  namespace: string;
  serviceAccount: string;
  pod: string;
  dir: string;
  file?: string;
  audience?: string;
  expirationSeconds?: number;
  serviceAccountFiles?: boolean;
  syncPeriod?: string;
}): Promise<Kubelet> {
  const args = [
    `-server=${cluster.server}`,
    `-ca-file=${cluster.caFile}`,
    `-credential-file=${cluster.adminTokenFile}`,
    `-namespace=${options.namespace}`,
    `-service-account=${options.serviceAccount}`,
    `-pod=${options.pod}`,
    `-dir=${options.dir}`,
    `-file=${options.file ?? 'token'}`,
    `-expiration-seconds=${options.expirationSeconds ?? 3607}`,
    `-sync-period=${options.syncPeriod ?? '0'}`,
  ];
  if (options.audience !== undefined) args.push(`-audience=${options.audience}`);
  if (options.serviceAccountFiles) args.push(`-ca-crt=${cluster.caFile}`, '-write-namespace');
  const child: ChildProcessWithoutNullStreams = spawn(join(cluster.binDir, 'podtoken-kubelet'), args, { stdio: 'pipe' });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const events: KubeletEvent[] = [];
  const waiting: Array<{ command: string; resolve: (event: KubeletEvent) => void; reject: (error: Error) => void }> = [];
  let exited: Error | undefined;
  const fail = (error: Error) => {
    exited = error;
    for (const w of waiting.splice(0)) w.reject(error);
  };
  child.on('exit', (code, signal) => fail(new Error(`podtoken-kubelet exited (${code ?? signal}); stderr: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as KubeletEvent;
    events.push(event);
    if (event.event === 'fatal') return fail(new Error(`podtoken-kubelet: ${event.error}`));
    const command = event.event === 'ready' ? 'ready' : event.command;
    const index = waiting.findIndex((w) => w.command === command);
    if (index >= 0) waiting.splice(index, 1)[0]!.resolve(event);
  });
  const next = (command: string) =>
    new Promise<KubeletEvent>((resolve, reject) => {
      if (exited) return reject(exited);
      waiting.push({ command, resolve, reject });
      if (command !== 'ready') child.stdin.write(`${command}\n`);
    });

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin.end();
      const timer = setTimeout(() => child.pid !== undefined && process.kill(child.pid, 'SIGKILL'), 5000);
      await done;
      clearTimeout(timer);
    })());
  defer(stop);

  const ready = await next('ready');
  if (ready.error) throw new Error(`podtoken-kubelet's first mount failed: ${ready.error}`);
  return {
    dir: options.dir,
    path: join(options.dir, options.file ?? 'token'),
    ready,
    events,
    rotate: () => next('rotate'),
    sync: () => next('sync'),
    stop,
  };
}

/** A pod as the tests see it: created through the API, never scheduled, its volumes written by podtoken-kubelet. */
export interface Pod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  readonly serviceAccountUid: string;
  /** What the pod's processes see as `/`: pass it as `loadInCluster({ root })`. */
  readonly root: string;
  /** `${root}/var/run/secrets/kubernetes.io/serviceaccount` */
  readonly serviceAccountDir: string;
  /** One kubelet per volume, by mount path; `default` for the ServiceAccount volume. */
  readonly kubelets: Record<string, Kubelet>;
  /** The default volume's kubelet. */
  readonly kubelet: Kubelet;
  /** Points KUBERNETES_SERVICE_HOST/PORT at the API server for this test. */
  useServiceEnv(): void;
  /** Deletes the Pod object (immediately: it was never scheduled). */
  delete(): Promise<void>;
}

/**
 * Creates a namespace, a ServiceAccount (with `rules` bound to it), a Pod using it, and starts
 * podtoken-kubelet for the default ServiceAccount volume (token 3607 s, ca.crt, namespace)
 * and for each of `volumes`.
 */
export async function startPod(options: {
  prefix: string;
  serviceAccount?: string;
  rules?: Array<{ resources: string[]; verbs: string[] }>;
  /** The default volume's token audience (unset: the API server's). A wrong one makes every API call a 401. */
  defaultAudience?: string;
  volumes?: Record<string, VolumeSpec>;
}): Promise<Pod> {
  const namespace = await createNamespace(options.prefix);
  const serviceAccount = options.serviceAccount ?? 'app';
  const { uid: serviceAccountUid } = await createServiceAccount(namespace, serviceAccount);
  if (options.rules) await allow(namespace, serviceAccount, options.rules);
  const volumes: Record<string, VolumeSpec> = {
    default: {
      mountPath: SA_DIR,
      serviceAccountFiles: true,
      ...(options.defaultAudience === undefined ? {} : { audience: options.defaultAudience }),
    },
    ...options.volumes,
  };
  const name = 'app-0';
  // The spec says what podtoken-kubelet writes (the default volume as newer clusters'
  // kube-api-access-*); automount is off because 1.20's admission would otherwise want a
  // legacy token Secret, which only the controller manager (not running) creates.
  const podObject = await kubeOk('POST', `/api/v1/namespaces/${namespace}/pods`, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      serviceAccountName: serviceAccount,
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'app',
          image: 'registry.invalid/podtoken-app:never-pulled',
          volumeMounts: Object.entries(volumes).map(([key, v]) => ({ name: volumeName(key), mountPath: `/${v.mountPath}`, readOnly: true })),
        },
      ],
      volumes: Object.entries(volumes).map(([key, v]) => ({
        name: volumeName(key),
        projected: {
          sources: [
            {
              serviceAccountToken: {
                path: v.file ?? 'token',
                expirationSeconds: v.expirationSeconds ?? 3607,
                ...(v.audience === undefined ? {} : { audience: v.audience }),
              },
            },
            ...(v.serviceAccountFiles
              ? [
                  { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
                  { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
                ]
              : []),
          ],
        },
      })),
    },
  });
  const root = await tempDir('podtoken-clusterpod-');
  const kubelets: Record<string, Kubelet> = {};
  for (const [key, v] of Object.entries(volumes)) {
    const dir = join(root, v.mountPath);
    await mkdir(dir, { recursive: true });
    kubelets[key] = await startKubelet({
      namespace,
      serviceAccount,
      pod: name,
      dir,
      ...(v.file === undefined ? {} : { file: v.file }),
      ...(v.audience === undefined ? {} : { audience: v.audience }),
      ...(v.expirationSeconds === undefined ? {} : { expirationSeconds: v.expirationSeconds }),
      ...(v.serviceAccountFiles ? { serviceAccountFiles: true } : {}),
    });
  }
  return {
    namespace,
    name,
    uid: podObject.metadata.uid,
    serviceAccount,
    serviceAccountUid,
    root,
    serviceAccountDir: join(root, SA_DIR),
    kubelets,
    kubelet: kubelets['default']!,
    useServiceEnv() {
      vi.stubEnv('KUBERNETES_SERVICE_HOST', cluster.host);
      vi.stubEnv('KUBERNETES_SERVICE_PORT', String(cluster.port));
      defer(() => vi.unstubAllEnvs());
    },
    async delete() {
      await kubeOk('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`);
    },
  };
}

function volumeName(key: string): string {
  return key === 'default' ? 'kube-api-access' : `token-${key.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`;
}

/** The token in a file now: for comparing, never for printing. */
export async function fileToken(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim();
}

/** One event of the API server's audit log (level Metadata). */
export interface AuditEvent {
  stage: string;
  requestURI: string;
  verb: string;
  user?: { username?: string; extra?: Record<string, string[]> };
  responseStatus?: { code?: number };
  stageTimestamp: string;
  userAgent?: string;
}

/**
 * One audit event per request whose URI starts with `prefix`, in the order the API server
 * wrote them (as it answers). A request it refused to authenticate is logged at stage
 * ResponseStarted only; any other at ResponseComplete (and long-running ones at both).
 */
export async function auditEvents(prefix: string): Promise<AuditEvent[]> {
  const text = await readFile(cluster.auditLog, 'utf8');
  const requests = new Map<string, AuditEvent>();
  for (const line of text.split('\n')) {
    if (!line.includes(prefix)) continue;
    const event = JSON.parse(line) as AuditEvent & { auditID: string };
    if (event.requestURI.startsWith(prefix) && !requests.has(event.auditID)) requests.set(event.auditID, event);
  }
  return [...requests.values()];
}

/** A request as it left this process: its URL, when, and which token (by id) it carried. */
export interface SentRequest {
  readonly at: number;
  readonly method: string;
  readonly url: string;
  readonly tokenId: string | undefined;
}

/**
 * Records every HTTP request this process sends, through node:http (client-node 1.x, axios,
 * got) and undici (global fetch, client-node 2.x), with the bearer token's id. Node's
 * diagnostics channels see the request as it is sent, whoever built it: the same lens on
 * podtoken and on client-node's own code. Stopped after the test.
 */
export function recordRequests(): SentRequest[] {
  const sent: SentRequest[] = [];
  const onHttp = (message: unknown) => {
    const req = (message as { request: ClientRequest }).request;
    // node-fetch 2 (client-node 1.x) sets every header as an array of values.
    const header = [req.getHeader('authorization')].flat()[0];
    sent.push({ at: wallNow(), method: req.method, url: `${req.protocol}//${req.host}${req.path}`, tokenId: bearerId(typeof header === 'string' ? header : undefined) });
  };
  const onUndici = (message: unknown) => {
    const req = (message as { request: { origin: string | URL; method: string; path: string; headers: string[] | string } }).request;
    let header: string | undefined;
    if (Array.isArray(req.headers)) {
      for (let i = 0; i + 1 < req.headers.length; i += 2) if (String(req.headers[i]).toLowerCase() === 'authorization') header = String(req.headers[i + 1]);
    } else {
      header = /^authorization:\s*(.*)$/im.exec(req.headers)?.[1]?.trim();
    }
    sent.push({ at: wallNow(), method: req.method, url: `${String(req.origin).replace(/\/$/, '')}${req.path}`, tokenId: bearerId(header) });
  };
  subscribe('http.client.request.start', onHttp);
  subscribe('undici:request:create', onUndici);
  defer(() => {
    unsubscribe('http.client.request.start', onHttp);
    unsubscribe('undici:request:create', onUndici);
  });
  return sent;
}

function bearerId(header: string | undefined): string | undefined {
  const token = header === undefined ? undefined : /^Bearer\s+(.+)$/i.exec(header)?.[1];
  return token === undefined ? undefined : tokenId(token);
}

/** Milliseconds with two decimals. */
export function ms(value: number): string {
  return `${value.toFixed(2)} ms`;
}
