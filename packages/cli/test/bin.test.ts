import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { createIssuer, ProjectedVolume } from '@podtoken/testing';
import { ensureBin, leaks, runBin, until } from './helpers.js';

let dir: string;

beforeAll(async () => {
  ensureBin();
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-bin-'));
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const run = runBin;

describe('the podtoken bin', () => {
  it('starts with a shebang and runs inspect --json without printing the token', async () => {
    const issuer = await createIssuer();
    const token = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
    const file = join(dir, 'vault-token');
    await writeFile(file, token);

    const inspect = run(['inspect', '--json', file]);
    expect(await inspect.exit).toBe(0);
    const report = JSON.parse(inspect.out()) as { exitCode: number; files: Array<{ status: string; token: { kind: string } }> };
    expect(report.exitCode).toBe(0);
    expect(report.files[0]).toMatchObject({ status: 'healthy', token: { kind: 'bound' } });
    expect(leaks(inspect.out() + inspect.err(), token)).toBe(false);

    const version = run(['--version']);
    expect(await version.exit).toBe(0);
    expect(version.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
    const unknown = run(['frobnicate']);
    expect(await unknown.exit).toBe(2);
  });

  it('watch stops on SIGTERM with exit 0', async () => {
    const issuer = await createIssuer();
    const file = join(dir, 'watched-token');
    await writeFile(file, await issuer.mint({ audience: 'vault', expirationSeconds: 600 }));
    const watch = run(['watch', file]);
    try {
      await until(() => watch.out().includes(' token:loaded '), 'the load line', 15_000);
    } finally {
      watch.kill('SIGTERM');
    }
    expect(await watch.exit).toBe(0);
    expect(watch.out()).toMatch(/ {2}token:loaded {7}\S+watched-token {2}bound {2}expires \S+ {2}ttl \d+m( \d+s)? {2}refresh \S+ {2}via start\n/);
    expect(watch.err()).toContain('stopped');
  });

  it('watch on a folder that is not there yet says it is waiting, keeps running, and loads the token once it appears', async () => {
    const issuer = await createIssuer();
    const folder = join(dir, 'mounted-later');
    const watch = run(['watch', join(folder, 'vault-token')]);
    try {
      await until(() => /waiting/i.test(watch.out()), 'a line saying it waits', 15_000);
      // Nothing else keeps the process alive: no folder to watch, no file, only retries.
      await sleep(1500);
      expect(watch.running()).toBe(true);
      const token = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
      await new ProjectedVolume({ dir: folder }).write({ 'vault-token': token });
      await until(() => watch.out().includes(' token:loaded '), 'the load line', 20_000);
      expect(leaks(watch.out() + watch.err(), token)).toBe(false);
    } finally {
      watch.kill('SIGTERM');
    }
    expect(await watch.exit).toBe(0);
    expect(watch.out()).toMatch(/ {2}read:failed {8}\S+mounted-later\/vault-token {2}TOKEN_FILE_MISSING {2}Token file .* Waiting for it to appear\. {2}\(failure 1; no token to serve; via start\)\n/);
    expect(watch.out()).toMatch(/ {2}watch:failed {7}\S+mounted-later {2}start {2}ENOENT {2}/);
    expect(watch.out()).toMatch(/ {2}token:loaded {7}\S+mounted-later\/vault-token {2}bound {2}expires /);
  });
});
