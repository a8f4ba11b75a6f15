// `pnpm test:cluster`: the cluster tier. Builds the real binaries once (test/cluster/build.sh,
// cached outside the repository), starts one etcd + kube-apiserver for the whole tier, runs
// the tests on this Node (20: client-node 1.x) and then the client-node tests on Node 24
// (client-node 2.x needs Node >= 22) with the undici/global fetch ones (Node 24's own undici
// is 7.x), and stops the cluster by PID however the runs end.
//
//   node test/cluster/run.mjs                    # the whole tier
//   node test/cluster/run.mjs rotation tokens    # vitest filters (clientNode, clients: also on Node 24)
//   PODTOKEN_CLUSTER_NODE24=0 node test/cluster/run.mjs   # skip the Node 24 run
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLUSTER_STATE_ENV, ensureBinaries, startCluster, stopCluster } from './support/cluster.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const config = 'test/cluster/vitest.config.ts';
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const filters = process.argv.slice(2);
// The files run again on Node 24 (vitest filters match a file when its path contains them).
const NODE24_FILES = ['test/cluster/clientNode.cluster.ts', 'test/cluster/clients.cluster.ts'];
const started = performance.now();
const seconds = (from) => `${((performance.now() - from) / 1000).toFixed(1)} s`;

const buildStarted = performance.now();
const binDir = ensureBinaries();
console.log(`› cluster tier: binaries ready in ${seconds(buildStarted)}`);
const state = await startCluster({ binDir, log: (line) => console.log(line) });

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
let stopping;
const stop = () => (stopping ??= stopCluster(state));
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.once(signal, async () => {
    for (const child of children) child.kill(signal);
    await stop();
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[signal] ?? 0));
  });
}

/** @param {string} command @param {string[]} args @param {Record<string, string>} env */
function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
    children.add(child);
    child.on('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}

const env = { [CLUSTER_STATE_ENV]: join(state.stateDir, 'state.json') };
const results = [];
try {
  let from = performance.now();
  results.push([`Node ${process.versions.node}`, await run(process.execPath, [vitest, 'run', '--config', config, ...filters], env), seconds(from)]);
  // Node 24: client-node 2.x, and the global fetch on Node 24's own undici (7.x, where Node 20 has 6.x).
  const node24Files = NODE24_FILES.filter((file) => filters.length === 0 || filters.some((f) => file.includes(f)));
  if (process.env.PODTOKEN_CLUSTER_NODE24 !== '0' && node24Files.length > 0) {
    from = performance.now();
    const code = await run('npx', ['--yes', 'node@24', vitest, 'run', '--config', config, ...node24Files], { ...env, PODTOKEN_CLIENT_NODE: '2' });
    results.push([`Node 24 (${node24Files.map((file) => (file.includes('clientNode') ? 'client-node 2.x' : 'global fetch on undici 7')).join(', ')})`, code, seconds(from)]);
  }
} finally {
  await stop();
}
console.log(`\n› cluster tier: ${results.map(([name, code, took]) => `${name} ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${took}`).join('; ')}; ${seconds(started)} in all`);
process.exit(results.every(([, code]) => code === 0) ? 0 : 1);
