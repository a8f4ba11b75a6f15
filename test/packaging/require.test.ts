import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const packages = ['core', 'testing', 'axios', 'got', 'fetch', 'kubernetes'] as const;

describe('packaging', () => {
  beforeAll(() => {
    // The test checks dist/, what users get; tsc -b is incremental, so this is quick when built.
    execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', ...packages.map((p) => join(root, 'packages', p))], {
      stdio: 'inherit',
    });
  }, 120_000);

  it('a CommonJS app can require() every package', () => {
    const names = packages.map((p) => `@podtoken/${p}`);
    const child = spawnSync(process.execPath, [join(root, 'test/packaging/require.cjs'), ...names], {
      cwd: join(root, 'test'),
      encoding: 'utf8',
    });
    expect(child.stderr.replace(/.*ExperimentalWarning.*\n|.*--trace-warnings.*\n/g, '')).toBe('');
    expect(child.status).toBe(0);
    const exports = JSON.parse(child.stdout) as Record<string, string[]> & { instanceOk: boolean };
    expect(exports.instanceOk).toBe(true);
    expect(exports['@podtoken/core']).toEqual(
      expect.arrayContaining(['FileTokenSource', 'createTokenSources', 'decodeToken', 'staticTokenSource', 'DEFAULT_TOKEN_PATH', 'TokenSourceError', 'isTokenSourceError']),
    );
    expect(exports['@podtoken/testing']).toEqual(expect.arrayContaining(['createIssuer', 'ProjectedVolume', 'FakeKubelet']));
    for (const adapter of ['axios', 'got', 'fetch', 'kubernetes']) {
      expect(exports[`@podtoken/${adapter}`]).toContain('withTokenSource');
    }
  });

  it.each(packages)('@podtoken/%s is ESM-only with types first in its exports', (name) => {
    const manifest = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
    expect(manifest.type).toBe('module');
    expect(manifest.sideEffects).toBe(false);
    expect(manifest.engines.node).toBe('>=20.19');
    expect(Object.keys(manifest.exports['.']).filter((k) => k !== '@podtoken/source')[0]).toBe('types');
    const require = createRequire(join(root, 'test', 'package.json'));
    expect(require.resolve(`@podtoken/${name}`)).toContain(join('packages', name, 'dist'));
  });
});
