import { execFileSync, spawnSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuer } from '@podtoken/testing';
import { leaks, pnpmCommand } from './helpers.js';

// What a pod image pays for `npm install @podtoken/cli`: the packed packages (as they would
// be published: `pnpm pack` turns `workspace:^` into a version range), installed with npm
// into an empty project, the rest (jose) from the registry.
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const LIMIT_BYTES = 2_000_000;

let dir: string;

beforeAll(async () => {
  // pack takes dist/ as it is: build it (tsc -b is incremental, quick when built).
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b', join(root, 'packages/cli')], { stdio: 'inherit' });
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-install-'));
}, 180_000);

afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

interface Usage {
  packages: string[];
  files: number;
  bytes: number;
  diskBytes: number;
}

// Sizes as `du --apparent-size` (bytes) and `du` (blocks) count them; symlinks are not followed.
async function measure(folder: string, usage: Usage = { packages: [], files: 0, bytes: 0, diskBytes: 0 }): Promise<Usage> {
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    const stats = await lstat(path);
    usage.files += 1;
    usage.bytes += stats.size;
    usage.diskBytes += stats.blocks * 512;
    if (entry.isDirectory()) {
      if (dirname(path).endsWith('node_modules') || dirname(dirname(path)).endsWith('node_modules')) {
        const manifest = await readFile(join(path, 'package.json'), 'utf8').catch(() => undefined);
        if (manifest !== undefined) usage.packages.push((JSON.parse(manifest) as { name: string }).name);
      }
      await measure(path, usage);
    }
  }
  return usage;
}

const mb = (bytes: number) => (bytes / 1_000_000).toFixed(2);

describe('npm install @podtoken/cli', () => {
  it('stays under 2 MB of node_modules, and the installed command runs', async () => {
    const [pnpm, ...pnpmArgs] = pnpmCommand();
    for (const name of ['core', 'cli']) {
      execFileSync(pnpm, [...pnpmArgs, 'pack', '--pack-destination', dir], { cwd: join(root, 'packages', name), stdio: 'ignore' });
    }
    const tarballs = (await readdir(dir)).filter((name) => name.endsWith('.tgz')).map((name) => join(dir, name));
    expect(tarballs).toHaveLength(2);

    const app = join(dir, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'size-probe', version: '0.0.0', private: true }));
    // Its own npm cache, inside the folder removed after the test, and no npm log files.
    const install = spawnSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--no-update-notifier', '--logs-max=0', '--cache', join(dir, 'npm-cache'), ...tarballs],
      { cwd: app, encoding: 'utf8', timeout: 150_000 },
    );
    if (install.status !== 0) console.log('npm install failed:', install.stdout, install.stderr);
    expect(install.status).toBe(0);

    const usage = await measure(join(app, 'node_modules'));
    console.log(
      `npm install @podtoken/cli: ${usage.packages.length} packages (${usage.packages.sort().join(', ')}), ` +
        `${mb(usage.bytes)} MB in ${usage.files} files and folders, ${mb(usage.diskBytes)} MB on disk`,
    );
    expect(usage.packages).toContain('@podtoken/core');
    expect(usage.bytes).toBeLessThan(LIMIT_BYTES);
    expect(usage.diskBytes).toBeLessThan(LIMIT_BYTES);

    // What was published needs nothing but core: the command runs from the installed tarballs.
    const manifest = JSON.parse(await readFile(join(app, 'node_modules/@podtoken/cli/package.json'), 'utf8')) as { dependencies: object };
    expect(Object.keys(manifest.dependencies)).toEqual(['@podtoken/core']);
    const bin = join(app, 'node_modules/.bin/podtoken');
    const token = await (await createIssuer()).mint({ audience: 'vault', expirationSeconds: 600 });
    await writeFile(join(dir, 'vault-token'), token);
    const inspect = spawnSync(bin, ['inspect', '--json', join(dir, 'vault-token')], { encoding: 'utf8' });
    expect(inspect.status).toBe(0);
    expect((JSON.parse(inspect.stdout) as { files: Array<{ status: string }> }).files[0]?.status).toBe('healthy');
    expect(leaks(inspect.stdout + inspect.stderr, token)).toBe(false);
    const demo = spawnSync(bin, ['demo'], { encoding: 'utf8' });
    expect(demo.status).toBe(2);
    expect(demo.stderr).toContain('npx @podtoken/demo');
  }, 180_000);
});
