// Lists the pods of this pod's own namespace with @podtoken/kubernetes.
//
//   node app.mjs                          in a pod: one listing
//   node app.mjs --rounds 10 --interval 60000
//                                         in a pod: a listing a minute, across token rotations
//   node app.mjs --simulate               anywhere: against a local stand-in of a pod and its
//                                         API server (see simulate.mjs); the token is rotated
//                                         before every round after the first
//
// The ServiceAccount needs `list` on `pods` in its namespace (see README.md).
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CoreV1Api } from '@kubernetes/client-node';
import { closeInCluster, currentNamespace, loadInCluster, NotInClusterError } from '@podtoken/kubernetes';

/**
 * Runs the app. Resolves with the process exit code.
 * @param {string[]} argv
 * @param {(line: string) => void} log
 */
export async function main(argv = process.argv.slice(2), log = (line) => console.log(line)) {
  const simulate = argv.includes('--simulate');
  const rounds = positive(option(argv, '--rounds'), simulate ? 3 : 1, '--rounds');
  const interval = positive(option(argv, '--interval'), simulate ? 200 : 60_000, '--interval');

  let simulation;
  if (simulate) {
    const { startSimulation } = await import('./simulate.mjs');
    simulation = await startSimulation();
    log(`simulated pod: service-account volume under ${simulation.root}, API server stand-in at ${simulation.url}`);
  }

  let config;
  try {
    config = loadInCluster(simulation ? { root: simulation.root } : {});
  } catch (error) {
    await simulation?.close();
    if (!(error instanceof NotInClusterError)) throw error;
    log(error.message);
    log('(to try it outside a cluster: node app.mjs --simulate)');
    return 1;
  }

  try {
    const api = config.makeApiClient(CoreV1Api);
    const namespace = currentNamespace(config) ?? 'default';
    for (let round = 1; round <= rounds; round += 1) {
      if (round > 1) {
        if (simulation) {
          await simulation.rotate();
          log(`  (the kubelet rotated the token: #${simulation.rotations} is on disk now)`);
        }
        await sleep(interval);
      }
      const list = await api.listNamespacedPod({ namespace });
      const names = list.items.map((pod) => `${pod.metadata?.name} (${pod.status?.phase ?? 'unknown'})`).join(', ');
      const seen = simulation ? ` [the API server saw token #${simulation.lastTokenSeen()}]` : '';
      log(`round ${round}: ${list.items.length} pod(s) in namespace ${namespace}: ${names}${seen}`);
    }
    return 0;
  } finally {
    await closeInCluster(config);
    await simulation?.close();
  }
}

function option(argv, name) {
  const index = argv.indexOf(name);
  return index === -1 ? undefined : argv[index + 1];
}

function positive(value, fallback, name) {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new TypeError(`${name} must be a positive integer, got ${value}`);
  return number;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await main();
}
