import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const packages = ['core', 'testing', 'axios', 'got', 'fetch', 'kubernetes', 'verify', 'otel', 'undici', 'grpc'] as const;

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
    const result = JSON.parse(child.stdout) as Record<string, { exports: string[]; resolved: string }> & { instanceOk: boolean };
    expect(result.instanceOk).toBe(true);
    const exports = Object.fromEntries(names.map((name) => [name, result[name]!.exports]));
    for (const [index, name] of names.entries()) {
      // What a plain CommonJS app loads: the built ESM in dist/, not the TypeScript sources.
      expect(result[name]!.resolved).toContain(join('packages', packages[index]!, 'dist'));
    }
    expect(exports['@podtoken/core']).toEqual(
      expect.arrayContaining(['FileTokenSource', 'createTokenSources', 'decodeToken', 'staticTokenSource', 'DEFAULT_TOKEN_PATH', 'TokenSourceError', 'isTokenSourceError']),
    );
    expect(exports['@podtoken/testing']).toEqual(expect.arrayContaining(['createIssuer', 'ProjectedVolume', 'FakeKubelet']));
    for (const adapter of ['axios', 'got', 'fetch', 'kubernetes', 'undici', 'grpc']) {
      expect(exports[`@podtoken/${adapter}`]).toContain('withTokenSource');
    }
    expect(exports['@podtoken/verify']).toEqual(
      expect.arrayContaining(['createTokenVerifier', 'createRequestGuard', 'expressMiddleware', 'fastifyHook', 'createFetchGuard', 'TokenVerificationError']),
    );
    expect(exports['@podtoken/otel']).toEqual(expect.arrayContaining(['instrumentPodtoken', 'PODTOKEN_METRICS']));
  });

  it.each(packages)('@podtoken/%s is ESM-only with types first in its exports', (name) => {
    const manifest = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
    expect(manifest.type).toBe('module');
    expect(manifest.sideEffects).toBe(false);
    expect(manifest.engines.node).toBe('>=20.19');
    expect(Object.keys(manifest.exports['.']).filter((k) => k !== '@podtoken/source')[0]).toBe('types');
    expect(manifest.exports['.'].default).toBe('./dist/index.js');
    expect(manifest.files).toContain('dist');
  });
});
