import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { summaryRow, until } from './helpers.js';

// The real bin, as `npx @podtoken/demo` runs it: built JavaScript, its shebang, and its
// signal handling. CI builds before testing; locally the build runs here once when dist/ is missing.
const packageDir = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = join(packageDir, 'dist', 'bin.js');

let dir: string;

beforeAll(async () => {
  if (!existsSync(bin)) {
    execFileSync(process.execPath, [join(packageDir, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc'), '-b', packageDir], {
      stdio: 'ignore',
      timeout: 170_000,
    });
  }
  dir = await mkdtemp(join(tmpdir(), 'podtoken-demo-bin-'));
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the podtoken-demo bin', () => {
  it('stops on SIGINT, prints its summary, and removes its temporary folder', async () => {
    const temp = await mkdtemp(join(dir, 'tmp-'));
    const child = spawn(process.execPath, [bin, '--duration', '60', '--token-ttl', '4', '--rotate-after', '0.2', '--concurrency', '1'], {
      env: { ...process.env, NO_COLOR: '1', TMPDIR: temp },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Never leave a child behind when an assertion fails.
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    try {
      await until(() => /^\[ *\d+\.\ds\] rotations/m.test(out), 'a progress line', 15_000);
      expect(await readdir(temp)).toHaveLength(1); // podtoken-demo-XXXXXX
    } finally {
      child.kill('SIGINT');
    }
    const code = await exit;
    clearTimeout(timer);
    if (code !== 0) console.log('demo output (holds no token):', out, err);
    expect(code).toBe(0);
    expect(out).toMatch(/^podtoken-demo: 60 s of requests/);
    expect(out).toContain('(interrupted)');
    const total = summaryRow(out, 'total')!;
    expect(total[0]).toBeGreaterThan(0);
    expect(summaryRow(out, 'server')).toEqual(total.slice(0, 4));
    // Interrupted, the source is still open when the readiness endpoint is asked.
    expect(out).toMatch(/^ {2}readiness +GET \/ready answered 200 /m);
    expect(out).toContain('no event message holds a token ✓');
    expect(await readdir(temp)).toEqual([]);
  });
});
