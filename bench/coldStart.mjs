// Bench 7 — cold start: what a fresh process pays before it has a token. Short-lived
// processes (jobs, CLI tools, functions) pay it on every start.
//
// Each contender is a fresh `node` process, run ROUNDS times, interleaved with the others
// in a fresh random order each round; figures are medians over the rounds.
//  - whole process: wall time of the child from spawn to exit, minus that of a bare
//    `node -e 0` in the same round (the median of those paired differences);
//  - in process: performance.now() around the `import()` (or from before the import to the
//    first token), printed by the child.
// The files imported are the built packages (dist/), resolved as the bench's own imports
// are; the kubernetes adapter, which the bench does not depend on, from its package folder,
// with the client-node its package resolves.
import { spawnSync } from 'node:child_process';
import { utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { detail, fmt, heading, median, result, shuffle, tempDir } from './lib/stats.mjs';

const ROUNDS = Number(process.env.PODTOKEN_COLD_ROUNDS ?? 30);
const root = fileURLToPath(new URL('..', import.meta.url));

const url = (specifier) => import.meta.resolve(specifier);
const requireFrom = (dir) => createRequire(join(root, dir, 'package.json'));
const kubernetesAdapter = pathToFileURL(join(root, 'packages/kubernetes/dist/index.js')).href;
const kubernetesClient = pathToFileURL(requireFrom('packages/kubernetes').resolve('@kubernetes/client-node')).href;
const jose = pathToFileURL(requireFrom('packages/testing').resolve('jose')).href;
const clientNodeVersion = requireFrom('bench')('@kubernetes/client-node/package.json').version;

// Each child prints what it measured as JSON: `inside`, the wall ms of the measured part;
// `insideCpu`, the process' CPU ms (user + system) over that part; `cpu`, the process' CPU
// ms from its start to that point. CPU time is what a loaded machine distorts least: the
// neighbours' work delays a process (wall time) but does not add to its CPU time.
const cpuNow = 'const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };';
const report = (start, startCpu) =>
  `process.stdout.write(JSON.stringify({ inside: performance.now() - ${start}, insideCpu: cpu() - ${startCpu}, cpu: cpu() }));`;

/** A child that imports `before` (untimed), then times the import of `target`. */
const importTimer = (target, before = []) =>
  `${cpuNow}${before.map((u) => `await import(${JSON.stringify(u)});`).join('')}` +
  `const t = performance.now(), c = cpu(); await import(${JSON.stringify(target)}); ${report('t', 'c')}`;

/** A child that imports core and waits for ready() on `path`, timed from before the import; then exits. */
const firstToken = (path) =>
  `${cpuNow}const t = performance.now(), c = cpu(); const { FileTokenSource } = await import(${JSON.stringify(url('@podtoken/core'))});` +
  `const source = new FileTokenSource({ path: ${JSON.stringify(path)} }); await source.ready(); ${report('t', 'c')} process.exit(0);`;

function run(args) {
  const start = process.hrtime.bigint();
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  if (child.status !== 0) throw new Error(`child ${args.join(' ').slice(0, 80)}… exited with ${child.status}: ${child.stderr.slice(0, 500)}`);
  return { wall, ...(child.stdout === '' ? {} : JSON.parse(child.stdout)) };
}

export async function coldStart() {
  heading(`7. Cold start: fresh processes, ${ROUNDS} rounds, medians (whole process: wall time minus a bare \`node -e 0\` of the same round)`);
  const { dir, cleanup } = await tempDir('cold');
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir: join(dir, 'volume') });
  await volume.write({ token: await issuer.mint({ expirationSeconds: 3607, extendExpiration: true }) });
  // A plain file (local development, a hostPath) last written a minute ago: taken at its first read.
  const plain = join(dir, 'plain-token');
  writeFileSync(plain, await issuer.mint({ expirationSeconds: 3607, extendExpiration: true }));
  utimesSync(plain, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));

  const esm = (code) => ['--input-type=module', '-e', code];
  const contenders = [
    // `node -e 0`, that also prints its CPU time so far.
    { name: 'bare node -e 0', args: ['-e', `${cpuNow}process.stdout.write(JSON.stringify({ cpu: cpu() }))`] },
    // The first import() of a process starts the ES module loader, whatever it loads: this
    // is that share, which every ESM app pays anyway.
    { name: 'import an empty module', args: esm(importTimer('data:text/javascript,')) },
    { name: 'import @podtoken/core', args: esm(importTimer(url('@podtoken/core'))) },
    { name: 'first token, kubelet layout', args: esm(firstToken(volume.path('token'))) },
    { name: 'first token, plain file', args: esm(firstToken(plain)) },
    { name: `import @kubernetes/client-node ${clientNodeVersion}`, args: esm(importTimer(url('@kubernetes/client-node'))) },
    { name: 'import jose (whole)', args: esm(importTimer(jose)) },
    { name: '@podtoken/axios, axios loaded', args: esm(importTimer(url('@podtoken/axios'), [url('axios')])) },
    { name: '@podtoken/got, got loaded', args: esm(importTimer(url('@podtoken/got'), [url('got')])) },
    { name: '@podtoken/fetch', args: esm(importTimer(url('@podtoken/fetch'))) },
    { name: '@podtoken/kubernetes, client-node loaded', args: esm(importTimer(kubernetesAdapter, [kubernetesClient])) },
  ];
  for (const c of contenders) run(c.args); // warm the file cache
  const samples = new Map(contenders.map((c) => [c.name, { wall: [], over: [], cpuOver: [], inside: [], insideCpu: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    const runs = new Map();
    for (const c of shuffle([...contenders])) runs.set(c.name, run(c.args));
    const bare = runs.get(contenders[0].name);
    for (const c of contenders) {
      const r = runs.get(c.name);
      const s = samples.get(c.name);
      s.wall.push(r.wall);
      s.over.push(r.wall - bare.wall);
      s.cpuOver.push(r.cpu - bare.cpu);
      if (r.inside !== undefined) {
        s.inside.push(r.inside);
        s.insideCpu.push(r.insideCpu);
      }
    }
  }
  await cleanup();

  const figure = (name) => {
    const s = samples.get(name);
    const inside = s.inside.length > 0;
    return {
      wall: median(s.wall),
      over: median(s.over),
      cpuOver: median(s.cpuOver),
      inside: inside ? median(s.inside) : undefined,
      insideCpu: inside ? median(s.insideCpu) : undefined,
    };
  };
  const signed = (value) => `${value < 0 ? '-' : '+'}${fmt(Math.abs(value), 1)}`;
  for (const c of contenders) {
    const f = figure(c.name);
    detail(
      `${c.name.padEnd(42)} wall ${fmt(f.wall, 1).padStart(7)} ms` +
        (c === contenders[0] ? '' : ` (${signed(f.over)} over bare; CPU ${signed(f.cpuOver)})`) +
        (f.inside === undefined ? '' : `; in process ${fmt(f.inside, 1)} ms (CPU ${fmt(f.insideCpu, 1)} ms)`),
    );
  }
  const core = figure('import @podtoken/core');
  const empty = figure('import an empty module');
  const kubelet = figure('first token, kubelet layout');
  const plainFile = figure('first token, plain file');
  const client = figure(`import @kubernetes/client-node ${clientNodeVersion}`);
  const adapters = ['@podtoken/axios, axios loaded', '@podtoken/got, got loaded', '@podtoken/fetch', '@podtoken/kubernetes, client-node loaded'].map(figure);
  result(
    `import @podtoken/core: in process ${fmt(core.inside, 1)} ms, CPU ${fmt(core.insideCpu, 1)} ms (an empty module, the ES module loader's own start: ${fmt(empty.inside, 1)} ms, CPU ${fmt(empty.insideCpu, 1)} ms); ` +
      `whole process ${signed(core.over)} ms, CPU ${signed(core.cpuOver)} ms over bare node (target < 15 ms)`,
  );
  result(
    `import @kubernetes/client-node ${clientNodeVersion}: in process ${fmt(client.inside, 1)} ms, CPU ${fmt(client.insideCpu, 1)} ms ` +
      `(${fmt(client.inside / core.inside, 0)}x core's wall, ${fmt(client.insideCpu / core.insideCpu, 0)}x its CPU); jose, which core imported before: ${fmt(figure('import jose (whole)').inside, 1)} ms`,
  );
  result(
    `process start to first token (import + ready()) over bare node: kubelet layout ${signed(kubelet.over)} ms wall, ${signed(kubelet.cpuOver)} ms CPU; ` +
      `plain file ${signed(plainFile.over)} ms wall, ${signed(plainFile.cpuOver)} ms CPU (target < 25 ms)`,
  );
  const [axios, got, fetch, kubernetes] = adapters.map((a) => `${fmt(a.inside, 1)} ms (CPU ${fmt(a.insideCpu, 1)})`);
  result(`adapters' own import (core included), their client already loaded: axios ${axios}, got ${got}, fetch ${fetch}, kubernetes ${kubernetes} (target < 15 ms)`);
}
