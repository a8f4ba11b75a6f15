import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// Small consumer apps typecheck against what we publish: ESM and CommonJS, with
// `module`/`moduleResolution` nodenext and bundler (module preserve), each using every adapter
// (axios, got, fetch with global fetch, node-fetch 3 and 2, kubernetes with client-node 1.x,
// grpc with grpc-js, undici 7, otel with @opentelemetry/api; core's readiness and status types).
// They resolve @podtoken/* as an outside app does: through each package's `exports`
// (`types` → dist/index.d.ts), without the "@podtoken/source" condition the workspace's own
// tests use. The CommonJS apps are the case that broke: their axios types come from axios'
// index.d.cts, so an adapter that named axios' `AxiosInstance` in its signature did not accept
// their instance (TS2345).

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const consumers = join(root, 'test/packaging/consumers');
const projects = readdirSync(consumers, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
  .sort();
const tsc = join(root, 'node_modules/typescript/bin/tsc');

describe('consumer projects typecheck against the published types', () => {
  beforeAll(() => {
    // dist/ is what consumers get; tsc -b is incremental, so this is quick when built.
    const packages = ['core', 'testing', 'axios', 'got', 'fetch', 'kubernetes', 'grpc', 'undici', 'otel'].map((name) => join(root, 'packages', name));
    execFileSync(process.execPath, [tsc, '-b', ...packages], { stdio: 'inherit' });
  }, 180_000);

  it('has the four kinds of app', () => {
    expect(projects).toEqual(['cjs-bundler', 'cjs-nodenext', 'esm-bundler', 'esm-nodenext']);
  });

  it.each(projects)(`%s typechecks with TypeScript ${typescriptVersion()}, seeing @podtoken/* through dist/*.d.ts`, (project) => {
    const child = spawnSync(process.execPath, [tsc, '-p', join(consumers, project), '--traceResolution', '--pretty', 'false'], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
    const diagnostics = child.stdout.split('\n').filter((line) => /error TS\d+/.test(line));
    expect(diagnostics).toEqual([]);
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    const resolved = [...child.stdout.matchAll(/Module name '(@podtoken\/[a-z]+)' was successfully resolved to '([^']+)'/g)].map(
      ([, name, file]) => [name!, file!.slice(root.length + 1)] as const,
    );
    expect([...new Set(resolved.map(([name]) => name))].sort()).toEqual([
      '@podtoken/axios',
      '@podtoken/core',
      '@podtoken/fetch',
      '@podtoken/got',
      '@podtoken/grpc',
      '@podtoken/kubernetes',
      '@podtoken/otel',
      '@podtoken/undici',
    ]);
    for (const [name, file] of resolved) expect(file, name).toMatch(/^packages\/[a-z]+\/dist\/index\.d\.ts$/);
  }, 120_000);
});

function typescriptVersion(): string {
  return (JSON.parse(readFileSync(join(root, 'node_modules/typescript/package.json'), 'utf8')) as { version: string }).version;
}
