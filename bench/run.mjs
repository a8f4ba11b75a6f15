// Entry point of `pnpm bench` (the root script builds the workspace first: the benchmarks
// import the built packages, dist/). Each benchmark runs in a fresh Node process of its
// own (with --expose-gc), so one benchmark's garbage, JIT state or open handles never
// colour the next one's figures; inside a benchmark the contenders run side by side,
// interleaved. Figures a reader looks for are on lines of their own, starting with "=>".
//
//   node bench/run.mjs                 # all of them
//   node bench/run.mjs hot staleness   # a subset (hot, adapters, grpc, staleness, fanout, scale, verify, coldstart, diagnostics, otel)
//   node bench/run.mjs cluster         # on a real kube-apiserver (only when named)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = {
  hot: () => import('./hotPath.mjs').then((m) => m.hotPath()),
  adapters: () => import('./adapters.mjs').then((m) => m.adapters()),
  grpc: () => import('./grpc.mjs').then((m) => m.grpc()),
  staleness: () => import('./staleness.mjs').then((m) => m.staleness()),
  fanout: () => import('./fanOut.mjs').then((m) => m.fanOut()),
  scale: () => import('./scale.mjs').then((m) => m.scale()),
  verify: () => import('./verify.mjs').then((m) => m.verify()),
  coldstart: () => import('./coldStart.mjs').then((m) => m.coldStart()),
  diagnostics: () => import('./diagnostics.mjs').then((m) => m.diagnostics()),
  otel: () => import('./otel.mjs').then((m) => m.otel()),
  cluster: () => import('./cluster.mjs').then((m) => m.cluster()),
};
// Run only when named: it needs the real binaries (the first run on a machine builds them).
const optIn = new Set(['cluster']);

const args = process.argv.slice(2);
if (args[0] === '--child') {
  await benches[args[1]]();
  process.exit(0); // a benchmark's leftovers (keep-alive sockets, say) must not hold the run
}

const unknown = args.filter((name) => !(name in benches));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
const started = performance.now();
const os = await import('node:os');
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
console.log(
  `podtoken benchmarks — Node ${process.version}, ${process.platform}/${process.arch}, ${os.availableParallelism()} cores, load average ${load()}; ` +
    'medians and ratios measured side by side in one run (shared machines are noisy: compare ratios, not absolute figures)',
);
let failed = false;
for (const name of Object.keys(benches)) {
  if (args.length > 0 ? !args.includes(name) : optIn.has(name)) continue;
  const child = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', name], { stdio: 'inherit' });
  if (child.status !== 0) {
    console.error(`benchmark ${name} failed (exit ${child.status ?? child.signal})`);
    failed = true;
  }
}
console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s (load average now ${load()})`);
process.exit(failed ? 1 : 0);
