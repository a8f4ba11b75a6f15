import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isTokenSourceError, staticTokenSource } from '@podtoken/core';
import { ProjectedVolume } from '@podtoken/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeInCluster, currentNamespace, loadInCluster, NotInClusterError, SERVICE_ACCOUNT_DIR } from '../src/index.js';
import { createCa, type TestCa } from './support/pki.js';
import { waitFor } from './support/simulatedPod.js';

const TOKEN = 'podtoken-test-value'; // a stand-in, not a secret

let ca: TestCa;
let ca2: TestCa;
const roots: string[] = [];

beforeAll(() => {
  ca = createCa('unit-ca');
  ca2 = createCa('unit-ca-2');
});
afterEach(() => {
  vi.unstubAllEnvs();
});
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function root(files: Record<string, string> = {}): Promise<{ root: string; dir: string; volume: ProjectedVolume }> {
  const made = await mkdtemp(join(tmpdir(), 'podtoken-k8s-unit-'));
  roots.push(made);
  const dir = join(made, SERVICE_ACCOUNT_DIR);
  const volume = new ProjectedVolume({ dir });
  if (Object.keys(files).length > 0) await volume.write(files);
  return { root: made, dir, volume };
}

function env(host: string, port: string): void {
  vi.stubEnv('KUBERNETES_SERVICE_HOST', host);
  vi.stubEnv('KUBERNETES_SERVICE_PORT', port);
}

async function caOf(config: ReturnType<typeof loadInCluster>): Promise<string> {
  const options: { ca?: unknown } = {};
  await config.applyToHTTPSOptions(options);
  return String(options.ca);
}

describe('loadInCluster', () => {
  it('outside a pod: a NotInClusterError naming every missing variable and file', async () => {
    const { root: empty, dir } = await root();
    env('', '');
    let error: unknown;
    try {
      loadInCluster({ root: empty });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(NotInClusterError);
    const notInCluster = error as NotInClusterError;
    expect(notInCluster.code).toBe('NOT_IN_CLUSTER');
    expect(notInCluster.missing).toEqual(['KUBERNETES_SERVICE_HOST', 'KUBERNETES_SERVICE_PORT', join(dir, 'token'), join(dir, 'ca.crt')]);
    for (const missing of notInCluster.missing) expect(notInCluster.message).toContain(missing);
  });

  it('names a bad port and a ca.crt that holds no certificate', async () => {
    const { root: made, dir } = await root({ token: TOKEN, 'ca.crt': 'not a certificate', namespace: 'ns' });
    env('10.96.0.1', 'https');
    expect(() => loadInCluster({ root: made })).toThrow(NotInClusterError);
    try {
      loadInCluster({ root: made });
    } catch (error) {
      expect((error as NotInClusterError).missing).toEqual([
        'KUBERNETES_SERVICE_PORT ("https" is not a port number)',
        `${join(dir, 'ca.crt')} (holds no valid PEM certificate)`,
      ]);
    }
  });

  it.each([
    [' 10.96.0.1', 'a leading space'],
    ['10.96.0.1 ', 'a trailing space'],
    ['10.96.0.1/evil', 'a path'],
    ['kubernetes.default.svc/evil?x=1', 'a path and a query'],
    ['fe80::1%eth0', 'an IPv6 zone id'],
    ['user@10.96.0.1', 'user info'],
    ['10.96.0.1:443', 'a port'],
    ['[fd00::1]', 'brackets'],
    ['999.1.1.1', 'a dotted number that is no IPv4 address'],
    ['exa mple.svc', 'a space inside'],
    ['-bad.svc', 'a label that starts with a hyphen'],
  ])('KUBERNETES_SERVICE_HOST %j (%s): a NotInClusterError that names the variable', async (host) => {
    const { root: made } = await root({ token: TOKEN, 'ca.crt': ca.certPem });
    env(host, '443');
    let error: unknown;
    try {
      loadInCluster({ root: made, source: staticTokenSource(TOKEN) });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(NotInClusterError);
    expect((error as NotInClusterError).code).toBe('NOT_IN_CLUSTER');
    expect((error as NotInClusterError).missing).toEqual([`KUBERNETES_SERVICE_HOST (${JSON.stringify(host)} is not an IP address or a DNS name)`]);
  });

  it.each(['0', '65536', '+443', '443/evil', ' 443', '0x1bb'])('KUBERNETES_SERVICE_PORT %j: a NotInClusterError that names the variable', async (port) => {
    const { root: made } = await root({ token: TOKEN, 'ca.crt': ca.certPem });
    env('10.96.0.1', port);
    expect(() => loadInCluster({ root: made, source: staticTokenSource(TOKEN) })).toThrow(/KUBERNETES_SERVICE_PORT/);
  });

  it('builds the config client-node’s loadFromCluster builds, minus the file reads per request', async () => {
    const { root: made } = await root({ token: TOKEN, 'ca.crt': ca.certPem, namespace: 'team-a\n' });
    env('10.96.0.1', '443');
    const config = loadInCluster({ root: made, source: staticTokenSource(TOKEN) });
    expect(config.getCurrentContext()).toBe('inClusterContext');
    expect(currentNamespace(config)).toBe('team-a');
    const cluster = config.getCurrentCluster();
    expect(cluster).toMatchObject({ name: 'inCluster', server: 'https://10.96.0.1:443', skipTLSVerify: false });
    expect(cluster?.caFile).toBeUndefined(); // client-node would readFileSync a caFile on every request
    expect(cluster?.caData).toBe(Buffer.from(ca.certPem).toString('base64'));
    const user = config.getCurrentUser();
    expect(user?.name).toBe('inClusterUser');
    expect(user?.token).toBeUndefined();
    expect(JSON.stringify(user?.authProvider ?? {}).includes('tokenFile')).toBe(false);
    expect(await caOf(config)).toBe(ca.certPem);
    await closeInCluster(config);
  });

  it.each([
    ['fd00:10:96::1', 'https://[fd00:10:96::1]:443'],
    ['kubernetes.default.svc', 'https://kubernetes.default.svc:443'],
    ['Kubernetes.Default.svc.cluster.local.', 'https://Kubernetes.Default.svc.cluster.local.:443'],
    ['10.96.0.1', 'https://10.96.0.1:443'],
  ])('host %s → server %s', async (host, server) => {
    const { root: made } = await root({ token: TOKEN, 'ca.crt': ca.certPem });
    env(host, '443');
    const config = loadInCluster({ root: made, source: staticTokenSource(TOKEN) });
    expect(config.getCurrentCluster()?.server).toBe(server);
    expect(currentNamespace(config)).toBeUndefined(); // no namespace file
    await closeInCluster(config);
  });

  it('with a source of your own the token file is not required, and closeInCluster leaves the source open', async () => {
    const { root: made } = await root({ 'ca.crt': ca.certPem, namespace: 'ns' });
    env('127.0.0.1', '6443');
    const source = staticTokenSource(TOKEN);
    const config = loadInCluster({ root: made, source });
    await closeInCluster(config);
    const options: { headers?: Record<string, unknown> } = {};
    await config.applyToHTTPSOptions(options);
    expect(options.headers?.['Authorization'] === `Bearer ${TOKEN}`).toBe(true);
  });

  it('closeInCluster (or Symbol.asyncDispose) closes the token source it created', async () => {
    const { root: made } = await root({ token: TOKEN, 'ca.crt': ca.certPem, namespace: 'ns' });
    env('127.0.0.1', '6443');
    const config = loadInCluster({ root: made });
    const options: { headers?: Record<string, unknown> } = {};
    await config.applyToHTTPSOptions(options);
    expect(options.headers?.['Authorization'] === `Bearer ${TOKEN}`).toBe(true);
    await config[Symbol.asyncDispose]();
    await closeInCluster(config); // again: a no-op
    const error = await config.applyToHTTPSOptions({}).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isTokenSourceError(error) && error.code).toBe('TOKEN_SOURCE_CLOSED');
  });

  it('ca.crt: a torn write never replaces a good bundle; the next good one is used', async () => {
    const { root: made, volume } = await root({ token: TOKEN, 'ca.crt': ca.certPem, namespace: 'ns' });
    env('127.0.0.1', '6443');
    const config = loadInCluster({ root: made, source: staticTokenSource(TOKEN) });
    await volume.update('ca.crt', ca2.certPem.slice(0, 200));
    await sleep(200);
    expect(await caOf(config)).toBe(ca.certPem);
    await volume.update('ca.crt', ca2.certPem);
    expect(await waitFor(async () => (await caOf(config)) === ca2.certPem, 10_000, 10)).toBe(true);
    await closeInCluster(config);
  });

  it('ca.crt rewritten in place (not the atomic-writer layout) is picked up too', async () => {
    const { root: made, dir } = await root();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'ca.crt'), ca.certPem);
    env('127.0.0.1', '6443');
    const config = loadInCluster({ root: made, source: staticTokenSource(TOKEN) });
    await writeFile(join(dir, 'ca.crt'), ca2.certPem);
    expect(await waitFor(async () => (await caOf(config)) === ca2.certPem, 10_000, 10)).toBe(true);
    await closeInCluster(config);
  });

  it('validates its options with TypeErrors', async () => {
    expect(() => loadInCluster({ root: '' })).toThrow(/root must be a non-empty string/);
    expect(() => loadInCluster({ source: {} as never })).toThrow(/source must be a TokenSource/);
    expect(() => loadInCluster({ kubeConfig: {} as never })).toThrow(/kubeConfig must be a KubeConfig/);
    expect(() => loadInCluster({ retryUnauthorized: 1 as never })).toThrow(/retryUnauthorized/);
  });
});
