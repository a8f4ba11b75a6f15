// Bench 6 — on a real cluster: kube-apiserver 1.20.2 on loopback, tokens from its TokenRequest
// API through the kubelet's own token manager, written by the kubelet's own AtomicWriter
// (podtoken-kubelet, see test/cluster/). Not run by default: `node bench/run.mjs cluster`
// (the first run on a machine builds the binaries: 10–15 minutes).
//
//   a. Pickup: from AtomicWriter.Write() beginning (the ..data swap is inside it) to the first
//      getToken() that returns the new token, a client asking every event-loop turn.
//   b. API call latency, @podtoken/kubernetes' loadInCluster({ root }) vs client-node 1.4.0's
//      own loadFromCluster(root): the same call, interleaved blocks, a ratio per round.
//   c. Stale window after a rotation, both configs under the same traffic: how long after the
//      writer began each one goes on sending an older token, bracketed by its last request
//      with an older token and its first with the new one.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { subscribe } from 'node:diagnostics_channel';
import { mkdir, readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setImmediate as tick } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { FileTokenSource } from '@podtoken/core';
import { closeInCluster, loadInCluster } from '@podtoken/kubernetes';
import { ensureBinaries, startCluster, stopCluster } from '../test/cluster/support/cluster.mjs';
import { detail, heading, median, ms, quantile, result, shuffle, sleep, tempDir } from './lib/stats.mjs';

const PICKUPS = 50;
const LATENCY_ROUNDS = 15;
const BLOCK = 40;
const STALE_ROTATIONS = 10;
const STALE_EVERY_MS = 6_500;
const SA_DIR = 'var/run/secrets/kubernetes.io/serviceaccount';

export async function cluster() {
  heading('8. On a real cluster (kube-apiserver 1.20.2, the kubelet’s token manager and AtomicWriter)');
  const state = await startCluster({ binDir: ensureBinaries(), log: detail });
  const { dir: root, cleanup } = await tempDir('cluster');
  const ca = await readFile(state.caFile, 'utf8');
  const admin = (method, path, body) => call(state, ca, method, path, body);
  const namespace = `bench-${randomBytes(3).toString('hex')}`;
  let kubelet;
  try {
    await admin('POST', '/api/v1/namespaces', { metadata: { name: namespace } });
    await admin('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: 'app' } });
    await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
      metadata: { name: 'read' },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    });
    await admin('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
      metadata: { name: 'read' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace }],
    });
    for (const name of ['ours', 'theirs']) await admin('POST', `/api/v1/namespaces/${namespace}/configmaps`, { metadata: { name }, data: { a: 'b' } });
    await admin('POST', `/api/v1/namespaces/${namespace}/pods`, {
      metadata: { name: 'app-0' },
      spec: { serviceAccountName: 'app', automountServiceAccountToken: false, containers: [{ name: 'app', image: 'registry.invalid/app' }] },
    });
    const dir = join(root, SA_DIR);
    await mkdir(dir, { recursive: true });
    kubelet = await startKubelet(state, [`-namespace=${namespace}`, '-service-account=app', '-pod=app-0', `-dir=${dir}`, `-ca-crt=${state.caFile}`, '-write-namespace']);
    const tokenPath = join(dir, 'token');

    // a. Pickup.
    const source = new FileTokenSource({ path: tokenPath });
    await source.ready();
    const seenAt = new Map();
    let running = true;
    const client = (async () => {
      let last;
      while (running) {
        const token = await source.getToken();
        if (token !== last && !seenAt.has(token)) seenAt.set(token, wallNow());
        last = token;
        await tick();
      }
    })();
    const pickups = [];
    const writes = [];
    for (let i = 0; i < PICKUPS; i++) {
      const event = await kubelet.command('rotate');
      const token = (await readFile(tokenPath, 'utf8')).trim();
      const deadline = performance.now() + 2000;
      while (!seenAt.has(token) && performance.now() < deadline) await sleep(1);
      if (seenAt.has(token)) pickups.push(seenAt.get(token) - event.writeStart);
      writes.push(event.writeEnd - event.writeStart);
    }
    running = false;
    await client;
    await source.close();
    detail(`a. ${PICKUPS} real rotations; Write() itself p50 ${ms(median(writes))}, max ${ms(quantile(writes, 1))}; picked up ${pickups.length}`);
    result(`pickup after Write() began: p50 ${ms(median(pickups))}, p99 ${ms(quantile(pickups, 0.99))}, max ${ms(quantile(pickups, 1))} (target p99 < 50 ms)`);

    // b. Latency, ours vs theirs.
    process.env.KUBERNETES_SERVICE_HOST = state.host;
    process.env.KUBERNETES_SERVICE_PORT = String(state.port);
    const oursConfig = loadInCluster({ root });
    const theirsConfig = new KubeConfig();
    theirsConfig.loadFromCluster(root);
    const apis = { ours: oursConfig.makeApiClient(CoreV1Api), theirs: theirsConfig.makeApiClient(CoreV1Api) };
    const latency = { ours: [], theirs: [] };
    let failures = 0;
    const once = async (name) => {
      const start = performance.now();
      try {
        await apis[name].readNamespacedConfigMap({ name, namespace });
        latency[name].push(performance.now() - start);
      } catch {
        failures += 1;
      }
    };
    for (let i = 0; i < 20; i++) for (const name of ['ours', 'theirs']) await once(name);
    latency.ours.length = latency.theirs.length = 0;
    const ratios = [];
    for (let round = 0; round < LATENCY_ROUNDS; round++) {
      const medians = {};
      for (const name of shuffle(['ours', 'theirs'])) {
        const from = latency[name].length;
        for (let i = 0; i < BLOCK; i++) await once(name);
        medians[name] = median(latency[name].slice(from));
      }
      ratios.push(medians.ours / medians.theirs);
    }
    detail(`b. ${LATENCY_ROUNDS} rounds × ${BLOCK} calls each, readNamespacedConfigMap; ${failures} failures`);
    detail(`ours   p50 ${ms(median(latency.ours))}  p99 ${ms(quantile(latency.ours, 0.99))}`);
    detail(`theirs p50 ${ms(median(latency.theirs))}  p99 ${ms(quantile(latency.theirs, 0.99))}`);
    result(`API call latency ours/theirs: median ratio ${median(ratios).toFixed(3)} (rounds ${quantile(ratios, 0).toFixed(3)}–${quantile(ratios, 1).toFixed(3)}; target ≤ 1, no slower)`);

    // c. Stale windows under the same traffic.
    const ids = [tokenId((await readFile(tokenPath, 'utf8')).trim())];
    const sent = { ours: [], theirs: [] };
    subscribe('http.client.request.start', ({ request: req }) => {
      const name = req.path.endsWith('/configmaps/ours') ? 'ours' : req.path.endsWith('/configmaps/theirs') ? 'theirs' : undefined;
      const header = [req.getHeader('authorization')].flat()[0];
      if (name && typeof header === 'string') sent[name].push({ at: wallNow(), id: tokenId(header.replace(/^Bearer /, '')) });
    });
    let traffic = true;
    const loop = (async () => {
      while (traffic) for (const name of shuffle(['ours', 'theirs'])) await once(name);
    })();
    const rotations = [];
    for (let i = 0; i < STALE_ROTATIONS; i++) {
      await sleep(STALE_EVERY_MS);
      rotations.push(await kubelet.command('rotate'));
      ids.push(tokenId((await readFile(tokenPath, 'utf8')).trim()));
    }
    await sleep(STALE_EVERY_MS);
    traffic = false;
    await loop;
    await closeInCluster(oursConfig);
    for (const name of ['ours', 'theirs']) {
      const requests = sent[name].map((r) => ({ at: r.at, index: ids.indexOf(r.id) }));
      const lower = [];
      const upper = [];
      let open = 0;
      rotations.forEach((rotation, r) => {
        const after = requests.filter((q) => q.at >= rotation.writeStart);
        const lastOld = after.filter((q) => q.index <= r).at(-1);
        const firstNew = after.find((q) => q.index >= r + 1);
        lower.push(lastOld ? lastOld.at - rotation.writeStart : 0);
        if (firstNew) upper.push(firstNew.at - rotation.writeStart);
        else open += 1;
      });
      result(
        `stale window, ${name}: at least p50 ${ms(median(lower))} / p99 ${ms(quantile(lower, 0.99))}, at most p50 ${ms(median(upper))} / p99 ${ms(quantile(upper, 0.99))}` +
          (open ? ` (${open} of ${STALE_ROTATIONS} rotations not picked up before the run ended)` : '') +
          ` — ${requests.length} requests`,
      );
    }
  } finally {
    await kubelet?.stop();
    await stopCluster(state);
    await cleanup();
  }
}

function wallNow() {
  return performance.timeOrigin + performance.now();
}

function tokenId(token) {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

/** An admin call; throws on a status outside 2xx. */
function call(state, ca, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request(`${state.server}${path}`, { method, ca, headers: { authorization: `Bearer ${state.adminToken}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk) => (text += chunk));
      res.on('end', () => (res.statusCode >= 200 && res.statusCode < 300 ? resolve(JSON.parse(text)) : reject(new Error(`${method} ${path}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject).end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** podtoken-kubelet for one volume; `command('rotate' | 'sync')` resolves with its answer. */
async function startKubelet(state, args) {
  const child = spawn(join(state.binDir, 'podtoken-kubelet'), [`-server=${state.server}`, `-ca-file=${state.caFile}`, `-credential-file=${state.adminTokenFile}`, '-sync-period=0', ...args], {
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  const waiting = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line);
    if (event.error) console.error(`podtoken-kubelet: ${event.error}`);
    waiting.shift()?.(event);
  });
  const next = () => new Promise((resolve) => waiting.push(resolve));
  await next(); // ready
  return {
    command(name) {
      const answer = next();
      child.stdin.write(`${name}\n`);
      return answer;
    },
    stop: () => new Promise((resolve) => (child.exitCode !== null ? resolve() : (child.once('exit', resolve), child.stdin.end()))),
  };
}
