// Bench 6 — cold start: what a fresh process pays before it has a token. Short-lived
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

/** A child that imports `before` (untimed), then times the import of `target`, and prints the ms. */
const importTimer = (target, before = []) =>
  `${before.map((u) => `await import(${JSON.stringify(u)});`).join('')}` +
  `const t = performance.now(); await import(${JSON.stringify(target)}); process.stdout.write(String(performance.now() - t));`;

/** A child that imports core, waits for ready() on `path`, prints the ms from before the import, and exits. */
const firstToken = (path) =>
  `const t = performance.now(); const { FileTokenSource } = await import(${JSON.stringify(url('@podtoken/core'))});` +
  `const source = new FileTokenSource({ path: ${JSON.stringify(path)} }); await source.ready();` +
  `process.stdout.write(String(performance.now() - t)); process.exit(0);`;

function run(args) {
  const start = process.hrtime.bigint();
  const child = spawnSync(process.execPath, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const wall = Number(process.hrtime.bigint() - start) / 1e6;
  if (child.status !== 0) throw new Error(`child ${args.join(' ').slice(0, 80)}… exited with ${child.status}: ${child.stderr.slice(0, 500)}`);
  return { wall, inside: child.stdout === '' ? undefined : Number(child.stdout) };
}

export async function coldStart() {
  heading(`6. Cold start: fresh processes, ${ROUNDS} rounds, medians (whole process: wall time minus a bare \`node -e 0\` of the same round)`);
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
    { name: 'bare node -e 0', args: ['-e', '0'] },
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
  const samples = new Map(contenders.map((c) => [c.name, { wall: [], over: [], inside: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    const walls = new Map();
    for (const c of shuffle([...contenders])) {
      const { wall, inside } = run(c.args);
      walls.set(c.name, wall);
      if (inside !== undefined) samples.get(c.name).inside.push(inside);
    }
    const bare = walls.get(contenders[0].name);
    for (const c of contenders) {
      samples.get(c.name).wall.push(walls.get(c.name));
      samples.get(c.name).over.push(walls.get(c.name) - bare);
    }
  }
  await cleanup();

  const figure = (name) => {
    const s = samples.get(name);
    return { wall: median(s.wall), over: median(s.over), inside: s.inside.length > 0 ? median(s.inside) : undefined };
  };
  const signed = (value) => `${value < 0 ? '-' : '+'}${fmt(Math.abs(value), 1)}`;
  for (const c of contenders) {
    const f = figure(c.name);
    detail(
      `${c.name.padEnd(44)} wall ${fmt(f.wall, 1).padStart(6)} ms` +
        (c === contenders[0] ? '' : `  (${signed(f.over)} ms over bare)`) +
        (f.inside === undefined ? '' : `  in process ${fmt(f.inside, 1)} ms`),
    );
  }
  const core = figure('import @podtoken/core');
  const kubelet = figure('first token, kubelet layout');
  const plainFile = figure('first token, plain file');
  const client = figure(`import @kubernetes/client-node ${clientNodeVersion}`);
  const adapters = ['@podtoken/axios, axios loaded', '@podtoken/got, got loaded', '@podtoken/fetch', '@podtoken/kubernetes, client-node loaded'].map(figure);
  result(
    `import @podtoken/core: ${fmt(core.inside, 1)} ms in process, ${signed(core.over)} ms whole process (target < 15 ms); ` +
      `@kubernetes/client-node ${clientNodeVersion}: ${fmt(client.inside, 1)} ms in process, ${signed(client.over)} ms whole process (${fmt(client.inside / core.inside, 0)}x core)`,
  );
  result(
    `process start to first token (import + ready()) over a bare node -e 0: kubelet layout ${signed(kubelet.over)} ms, plain file ${signed(plainFile.over)} ms ` +
      `(in process ${fmt(kubelet.inside, 1)} / ${fmt(plainFile.inside, 1)} ms; target < 25 ms)`,
  );
  const [axios, got, fetch, kubernetes] = adapters.map((a) => `${fmt(a.inside, 1)} ms`);
  result(`adapters' own import (core included), their client already loaded: axios ${axios}, got ${got}, fetch ${fetch}, kubernetes ${kubernetes} (target < 15 ms)`);
}
