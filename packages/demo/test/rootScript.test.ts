import { spawn } from 'node:child_process';
import { readdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pnpmCommand, summaryRow } from './helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
// Everything `pnpm demo` has to build first: the demo and what it imports.
const BUILT = ['core', 'testing', 'axios', 'got', 'fetch', 'demo'];

let configHome: string;

beforeAll(async () => {
  // A config folder turbo has never seen: on its first run there it prints its telemetry
  // notice, unless the script turns telemetry off.
  configHome = await mkdtemp(join(tmpdir(), 'podtoken-demo-script-'));
});

afterAll(async () => {
  await rm(configHome, { recursive: true, force: true });
});

describe('the root `pnpm demo` script', () => {
  it('builds what the demo needs with progress on the way, shows no telemetry notice, then runs the demo', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: configHome, NO_COLOR: '1' };
    // .ci/run exports these: the script must set them itself, for a developer's shell.
    delete env['TURBO_TELEMETRY_DISABLED'];
    delete env['DO_NOT_TRACK'];
    const [command, ...args] = pnpmCommand();
    const child = spawn(command, [...args, 'run', 'demo', '--duration', '1', '--token-ttl', '4', '--concurrency', '1'], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // A fresh checkout builds seven packages; never leave the child behind.
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(timer);
    if (code !== 0) console.log('pnpm demo output (holds no token):', output);
    expect(code).toBe(0);

    // Progress: what is being built, one line per package, before the demo starts.
    const demoStart = output.indexOf('podtoken-demo: 1 s of requests');
    expect(demoStart).toBeGreaterThan(0);
    const build = output.slice(0, demoStart);
    expect(build).toContain('Building @podtoken/demo and the packages it uses');
    for (const name of BUILT) expect(build).toMatch(new RegExp(`^@podtoken/${name}:build: `, 'm'));

    // The notice: "Attention: Turborepo now collects completely anonymous telemetry…"
    expect(output).not.toMatch(/anonymous telemetry|Attention:/i);
    expect(await readdir(configHome, { recursive: true })).not.toContain(join('turborepo', 'telemetry.json'));

    const total = summaryRow(output.slice(demoStart), 'total')!;
    expect(total[0]).toBeGreaterThan(0);
    expect(output).toContain('✓ every request was authenticated');
  }, 180_000);
});
