import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';

const run = promisify(execFile);
const exampleDir = fileURLToPath(new URL('..', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

// The app's lines name pods, namespaces and token numbers: never a token.
describe('examples/kubernetes-in-pod', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('lists the pods of its namespace across token rotations (--simulate, in process)', async () => {
    const { main } = (await import('../app.mjs')) as { main: (argv: string[], log: (line: string) => void) => Promise<number> };
    const portBefore = process.env['KUBERNETES_SERVICE_PORT'];
    const lines: string[] = [];
    const code = await main(['--simulate', '--rounds', '3', '--interval', '100'], (line) => lines.push(line));
    console.log(lines.join('\n'));
    expect(code).toBe(0);
    const rounds = lines.filter((line) => line.startsWith('round '));
    expect(rounds).toHaveLength(3);
    for (const line of rounds) expect(line).toContain('3 pod(s) in namespace demo: kubernetes-in-pod-0 (Running)');
    expect(lines.filter((line) => line.includes('rotated the token'))).toHaveLength(2);
    // The simulation put its variables back.
    expect(process.env['KUBERNETES_SERVICE_PORT']).toBe(portBefore);
  });

  it('outside a pod it says what is missing and exits with 1', async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('KUBERNETES_SERVICE_PORT', '');
    const { main } = (await import('../app.mjs')) as { main: (argv: string[], log: (line: string) => void) => Promise<number> };
    const lines: string[] = [];
    expect(await main([], (line) => lines.push(line))).toBe(1);
    expect(lines[0]).toMatch(/Not running in a Kubernetes pod.*KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT/);
    expect(lines[0]).toContain('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
  });

  // The app as a user runs it: plain Node on the workspace packages' dist/. CI builds them
  // before the tests (`pnpm run check`); a bare checkout builds them here, once.
  it('runs with plain Node: node app.mjs --simulate', { timeout: 240_000 }, async () => {
    const built = ['core', 'testing', 'kubernetes'].every((name) => existsSync(`${repoRoot}packages/${name}/dist/index.js`));
    if (!built) {
      await run(process.execPath, [`${repoRoot}node_modules/turbo/bin/turbo`, 'run', 'build', '--filter=kubernetes-in-pod^...'], {
        cwd: repoRoot,
        env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
        timeout: 200_000,
      });
    }
    const env = { ...process.env };
    delete env['KUBERNETES_SERVICE_HOST'];
    delete env['KUBERNETES_SERVICE_PORT'];
    const { stdout } = await run(process.execPath, ['app.mjs', '--simulate', '--rounds', '2', '--interval', '100'], {
      cwd: exampleDir,
      env,
      timeout: 60_000,
    });
    console.log(stdout.trimEnd());
    expect(stdout.split('\n').filter((line) => line.startsWith('round '))).toHaveLength(2);
  });
});
