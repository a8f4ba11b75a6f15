// @ts-check
// Starts and stops the real thing the cluster tier runs against: etcd and kube-apiserver on
// loopback, with ports picked at run time and state in a temp folder. Plain JavaScript so
// that the tier's runner (run.mjs), vitest's globalSetup and the benchmarks all share it.
//
// Every process is started under a small bash watchdog whose stdin is a pipe from this
// process: when this process ends, however it ends (even SIGKILL), the pipe closes and the
// watchdog stops its child by PID. stopCluster() stops them by PID first.
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The environment variable through which a running cluster's state file is handed to test runs. */
export const CLUSTER_STATE_ENV = 'PODTOKEN_CLUSTER_STATE';
/** The issuer (and default API audience) the API server is started with. */
export const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const STATE_PREFIX = 'podtoken-cluster-';

const here = dirname(fileURLToPath(import.meta.url));
/** What this process started, by state folder: stopCluster() lets go of it. @type {Map<string, () => void>} */
const owned = new Map();

/**
 * Runs build.sh (a no-op after the first build on a machine) and returns the folder holding
 * `kube-apiserver` and `podtoken-kubelet`.
 * @returns {string}
 */
export function ensureBinaries() {
  const result = spawnSync('bash', [join(here, '..', 'build.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`test/cluster/build.sh failed (exit ${result.status ?? result.signal})`);
  const bin = result.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(join(bin, 'kube-apiserver')) || !existsSync(join(bin, 'podtoken-kubelet'))) {
    throw new Error(`test/cluster/build.sh printed ${JSON.stringify(bin)}, which holds no kube-apiserver and podtoken-kubelet`);
  }
  return bin;
}

/**
 * @typedef {object} ClusterState
 * @property {string} server         https://127.0.0.1:<port>
 * @property {string} host           127.0.0.1
 * @property {number} port           the API server's secure port
 * @property {string} caFile         the API server's serving certificate and its CA (what a pod's ca.crt holds)
 * @property {string} adminToken     a static token of a system:masters user (never printed)
 * @property {string} adminTokenFile the same, in a file (what podtoken-kubelet authenticates with, as the node)
 * @property {string} issuer         --service-account-issuer
 * @property {string} auditLog       the API server's audit log (one JSON event a line, level Metadata)
 * @property {string} binDir
 * @property {string} stateDir
 * @property {{ etcd: number, apiserver: number }} pids        the real processes
 * @property {{ etcd: number, apiserver: number }} watchdogs
 * @property {number} startedInMs
 */

/**
 * Starts etcd and kube-apiserver and resolves once the API server answers /readyz.
 * @param {{ binDir: string, log?: (line: string) => void }} options
 * @returns {Promise<ClusterState>}
 */
export async function startCluster({ binDir, log = (line) => console.error(line) }) {
  const started = performance.now();
  await removeAbandonedStateDirs();
  const stateDir = await mkdtemp(join(tmpdir(), STATE_PREFIX));
  /** @type {Array<{ pid: number, watchdog: import('node:child_process').ChildProcess }>} */
  const running = [];
  // On exit, however the tests ended: kill by PID (synchronously: an exit hook cannot wait).
  const abort = (stopped = false) => {
    for (const { pid, watchdog } of running.splice(0)) {
      if (!stopped) kill(pid, 'SIGKILL');
      watchdog.stdin?.destroy();
    }
    process.removeListener('exit', onExit);
    owned.delete(stateDir);
  };
  const onExit = () => abort();
  process.on('exit', onExit);
  owned.set(stateDir, () => abort(true));
  try {
    const [etcdPort, peerPort, port] = await freePorts(3);
    const adminToken = randomBytes(24).toString('hex');
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await mkdir(join(stateDir, 'certs'));
    await writeFile(join(stateDir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
    await writeFile(join(stateDir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(join(stateDir, 'tokens.csv'), `${adminToken},podtoken-admin,podtoken-admin,"system:masters"\n`, { mode: 0o600 });
    await writeFile(join(stateDir, 'admin-token'), adminToken, { mode: 0o600 });
    await writeFile(join(stateDir, 'audit-policy.yaml'), 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived"]\nrules:\n  - level: Metadata\n');

    const etcd = await supervise(stateDir, 'etcd', 'etcd', [
      '--name=podtoken',
      `--data-dir=${join(stateDir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=podtoken=http://127.0.0.1:${peerPort}`,
    ]);
    running.push(etcd);
    await waitUntil('etcd healthy', etcd, async () => {
      const response = await fetch(`http://127.0.0.1:${etcdPort}/health`).catch(() => undefined);
      return response?.ok === true;
    });

    const server = `https://127.0.0.1:${port}`;
    const apiserver = await supervise(stateDir, 'apiserver', join(binDir, 'kube-apiserver'), [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      '--insecure-port=0',
      `--cert-dir=${join(stateDir, 'certs')}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--authorization-mode=RBAC',
      `--token-auth-file=${join(stateDir, 'tokens.csv')}`,
      `--service-account-issuer=${ISSUER}`,
      `--service-account-key-file=${join(stateDir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(stateDir, 'sa.key')}`,
      `--api-audiences=${ISSUER}`,
      `--service-account-jwks-uri=${server}/openid/v1/jwks`,
      `--audit-log-path=${join(stateDir, 'audit.log')}`,
      `--audit-policy-file=${join(stateDir, 'audit-policy.yaml')}`,
      '--profiling=false',
    ]);
    running.push(apiserver);
    const caFile = join(stateDir, 'certs', 'apiserver.crt');
    await waitUntil('kube-apiserver ready (/readyz)', apiserver, async () => {
      if (!existsSync(caFile)) return false;
      const answer = await httpsGet(`${server}/readyz`, readFileSync(caFile), adminToken).catch(() => undefined);
      return answer?.status === 200;
    });

    /** @type {ClusterState} */
    const state = {
      server,
      host: '127.0.0.1',
      port,
      caFile,
      adminToken,
      adminTokenFile: join(stateDir, 'admin-token'),
      issuer: ISSUER,
      auditLog: join(stateDir, 'audit.log'),
      binDir,
      stateDir,
      pids: { etcd: etcd.pid, apiserver: apiserver.pid },
      watchdogs: { etcd: /** @type {number} */ (etcd.watchdog.pid), apiserver: /** @type {number} */ (apiserver.watchdog.pid) },
      startedInMs: Math.round(performance.now() - started),
    };
    await writeFile(join(stateDir, 'state.json'), JSON.stringify(state), { mode: 0o600 });
    log(`› cluster: etcd ${etcdPort}, kube-apiserver ${server} ready in ${(state.startedInMs / 1000).toFixed(1)} s (state ${stateDir})`);
    return state;
  } catch (error) {
    abort();
    for (const name of ['apiserver', 'etcd']) {
      const tail = await readFile(join(stateDir, `${name}.log`), 'utf8').catch(() => '');
      if (tail) log(`--- ${name}.log (last lines)\n${tail.split('\n').slice(-15).join('\n')}`);
    }
    await rm(stateDir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * Stops kube-apiserver, then etcd, by PID (SIGTERM, SIGKILL after 5 s), and removes the state folder.
 * @param {ClusterState} state
 */
export async function stopCluster(state) {
  for (const name of /** @type {const} */ (['apiserver', 'etcd'])) {
    const pid = state.pids[name];
    kill(pid, 'SIGTERM');
    const deadline = performance.now() + 5000;
    while (alive(pid) && performance.now() < deadline) await sleep(50);
    if (alive(pid)) kill(pid, 'SIGKILL');
  }
  // Closes the watchdogs' stdin (they exit, their child being gone) and forgets the PIDs, so
  // that the exit hook never signals a PID the system may have handed to someone else since.
  owned.get(state.stateDir)?.();
  await rm(state.stateDir, { recursive: true, force: true });
}

// A run killed outright (SIGKILL) leaves its processes to the watchdogs but its state folder
// behind: the next start removes those whose etcd and kube-apiserver are both gone.
async function removeAbandonedStateDirs() {
  const names = await readdir(tmpdir()).catch(() => []);
  for (const name of names.filter((entry) => entry.startsWith(STATE_PREFIX))) {
    const dir = join(tmpdir(), name);
    const pids = await Promise.all(['etcd', 'apiserver'].map((process) => readFile(join(dir, `${process}.pid`), 'utf8').then(Number, () => 0)));
    const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
    // A folder without PID files may be a start in progress: left alone for a minute.
    if (pids.every((pid) => !(pid > 0 && alive(pid))) && (pids.some((pid) => pid > 0) || age > 60_000)) {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** Reads a state file written by startCluster. @param {string} path @returns {ClusterState} */
export function readClusterState(path) {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/**
 * Runs `command` under a bash watchdog that stops it when our end of its stdin closes.
 * @param {string} stateDir @param {string} name @param {string} command @param {string[]} args
 */
async function supervise(stateDir, name, command, args) {
  const pidFile = join(stateDir, `${name}.pid`);
  const script =
    'pidfile=$1; log=$2; shift 2; "$@" </dev/null >>"$log" 2>&1 & child=$!; echo $child >"$pidfile"; ' +
    'cat >/dev/null; kill -TERM $child 2>/dev/null; ' +
    'for i in $(seq 100); do kill -0 $child 2>/dev/null || exit 0; sleep 0.05; done; kill -KILL $child 2>/dev/null';
  const watchdog = spawn('bash', ['-c', script, 'watchdog', pidFile, join(stateDir, `${name}.log`), command, ...args], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.unref();
  /** @type {any} */ (watchdog.stdin)?.unref?.();
  for (let i = 0; i < 200 && !existsSync(pidFile); i++) await sleep(10);
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (!(pid > 0)) throw new Error(`${name} did not start`);
  return { pid, watchdog, name, stateDir };
}

/**
 * @param {string} what
 * @param {{ pid: number, name: string, stateDir: string }} proc
 * @param {() => Promise<boolean>} ready
 */
async function waitUntil(what, proc, ready, timeout = 90_000) {
  const deadline = performance.now() + timeout;
  while (performance.now() < deadline) {
    if (!alive(proc.pid)) throw new Error(`${proc.name} exited before it was ready (log: ${join(proc.stateDir, `${proc.name}.log`)})`);
    if (await ready()) return;
    await sleep(100);
  }
  throw new Error(`gave up waiting (${timeout} ms): ${what}`);
}

/** @param {number} count @returns {Promise<number[]>} distinct free loopback ports */
async function freePorts(count) {
  /** @type {import('node:net').Server[]} */
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      await new Promise((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', () => resolve(undefined)));
      servers.push(server);
    }
    return servers.map((server) => /** @type {import('node:net').AddressInfo} */ (server.address()).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(() => resolve(undefined)))));
  }
}

/**
 * A GET with our CA and a bearer token, through node:https (global fetch takes no CA on Node 20).
 * @param {string} url @param {Buffer | string} ca @param {string} token
 * @returns {Promise<{ status: number, body: string }>}
 */
function httpsGet(url, ca, token) {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject).end();
  });
}

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** @param {number} pid @param {NodeJS.Signals} signal */
function kill(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
