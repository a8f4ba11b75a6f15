import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileTokenSource, readiness, type ReadinessReport } from '@podtoken/core';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { main } from '../src/main.js';
import { renderReadinessReport } from '../src/renderReadinessReport.js';
import { capture, ensureBin, leaks, runBin, until } from './helpers.js';

// `podtoken status` as an exec readiness probe runs it: the built bin, a child process,
// real files in the kubelet's layout, and its exit code.

let issuer: Issuer;
let dir: string;
let volume: ProjectedVolume;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  ensureBin();
  issuer = await createIssuer();
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-status-'));
  volume = new ProjectedVolume({ dir: join(dir, 'tokens') });
  tokens['vault-token'] = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
  // Issued 20 minutes ago for 10: expired for 10 minutes, and the kubelet has not replaced it.
  tokens['expired-token'] = await issuer.mint({ audience: 'vault', expirationSeconds: 600, issuedAt: new Date(Date.now() - 1_200_000) });
  tokens['hostile\x1b]0;pwned\x07-token'] = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
  await volume.write(tokens);
}, 180_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const file = (name: string) => join(volume.dir, name);
const noToken = (text: string) => Object.values(tokens).every((token) => !leaks(text, token));

describe('podtoken status', () => {
  it('exits 0 when the file serves a token, and prints core readiness() report with --json', async () => {
    const human = runBin(['status', file('vault-token')]);
    expect(await human.exit).toBe(0);
    expect(human.out()).toMatch(
      /^✓ \S+\/tokens\/vault-token {2}ok {2}expires \S+Z \(in 9m \d+s\) {2}refresh \S+Z \(in 7m \d+s\)\nready: 1 of 1 file serves a token\n$/,
    );
    expect(human.err()).toBe('');

    const json = runBin(['status', '--json', '--audience', 'vault', file('vault-token')]);
    expect(await json.exit).toBe(0);
    const report = JSON.parse(json.out()) as ReadinessReport;
    // The very report core's readiness handler answers for the same file, read here.
    const source = new FileTokenSource({ path: file('vault-token') });
    await source.ready();
    const expected = readiness(source).check();
    await source.close();
    expect(Object.keys(report)).toEqual(Object.keys(expected));
    expect(Object.keys(report.sources[0]!).sort()).toEqual(Object.keys(expected.sources[0]!).sort());
    expect(report).toMatchObject({ ready: true, failing: [], sources: [{ name: file('vault-token'), state: 'ok', serving: true, expiresAt: expected.sources[0]!.expiresAt }] });
    expect(json.out().endsWith('}\n') && json.out().split('\n')).toHaveLength(2);
    expect(noToken(human.out() + human.err() + json.out() + json.err())).toBe(true);
  });

  it('exits 1 for a missing file, naming it and why', async () => {
    const run = runBin(['status', file('vault-token'), join(dir, 'not-mounted', 'token')]);
    expect(await run.exit).toBe(1);
    expect(run.out()).toMatch(/^✓ \S+\/vault-token {2}ok {2}/);
    expect(run.out()).toMatch(/\n✗ \S+\/not-mounted\/token {2}loading {2}TOKEN_FILE_MISSING: Token file \S+ does not exist/);
    expect(run.out()).toMatch(/\nnot ready: 1 of 2 files serve a token\n$/);

    const json = runBin(['status', '--json', join(dir, 'not-mounted', 'token')]);
    expect(await json.exit).toBe(1);
    expect(JSON.parse(json.out())).toEqual({
      ready: false,
      failing: [join(dir, 'not-mounted', 'token')],
      sources: [{ name: join(dir, 'not-mounted', 'token'), state: 'loading', serving: false, lastError: { code: 'TOKEN_FILE_MISSING', at: expect.any(String) } }],
    });
  });

  it('exits 1 for an expired token, and for a token for another audience', async () => {
    const expired = runBin(['status', file('expired-token')]);
    expect(await expired.exit).toBe(1);
    expect(expired.out()).toMatch(/^✗ \S+\/expired-token {2}failing {2}TOKEN_EXPIRED: Token file \S+ holds a token that expired at \S+Z\. /);

    const json = runBin(['status', '--json', file('expired-token')]);
    expect(await json.exit).toBe(1);
    expect((JSON.parse(json.out()) as ReadinessReport).sources[0]).toMatchObject({ state: 'failing', serving: false, lastError: { code: 'TOKEN_EXPIRED' } });

    const other = runBin(['status', '--audience', 'other', file('vault-token')]);
    expect(await other.exit).toBe(1);
    expect(other.out()).toContain('  failing  TOKEN_AUDIENCE_MISMATCH: ');
    expect(noToken(expired.out() + expired.err() + json.out() + other.out() + other.err())).toBe(true);
  });

  it('escapes a hostile file name in the human report and keeps it exact in JSON', async () => {
    const name = 'hostile\x1b]0;pwned\x07-token';
    const human = runBin(['status', file(name)]);
    expect(await human.exit).toBe(0);
    expect(human.out()).toContain('/hostile\\x1b]0;pwned\\x07-token  ok  ');
    expect(/[\p{Cc}\p{Cf}]/u.test(human.out().replaceAll('\n', ''))).toBe(false);
    const json = runBin(['status', '--json', file(name)]);
    expect(await json.exit).toBe(0);
    expect((JSON.parse(json.out()) as ReadinessReport).sources[0]!.name).toBe(file(name));
  });

  it('exits 2 on a usage error, 0 for --help; gives up on a read after --timeout', async () => {
    for (const args of [['--bogus'], ['--timeout', '-1'], ['--timeout', 'x'], ['--audience', '']]) {
      const io = capture();
      expect(await main(['status', ...args], io)).toBe(2);
      expect(io.err()).toContain('Run "podtoken status --help" for usage.');
    }
    const help = capture();
    expect(await main(['status', '--help'], help)).toBe(0);
    expect(help.out()).toContain('Exit codes: 0 every file serves a token');
    // A folder where the token should be: unreadable, at once.
    await mkdir(join(dir, 'a-folder'));
    const io = capture();
    expect(await main(['status', '--timeout', '0.5', join(dir, 'a-folder')], io)).toBe(1);
    expect(io.out()).toMatch(/failing {2}TOKEN_FILE_UNREADABLE/);
  });

  it('refuses a FIFO where the token should be at once, without waiting for a writer', async () => {
    const fifo = join(dir, 'fifo-token');
    execFileSync('mkfifo', [fifo]);
    const run = runBin(['status', '--timeout', '5', fifo]);
    // Core opens token files without blocking: no writer needed for the answer, nor for the exit.
    expect(await run.exit).toBe(1);
    expect(run.out()).toMatch(/^✗ \S+\/fifo-token {2}(loading|failing) {2}TOKEN_FILE_UNREADABLE/);
    expect(run.out()).toContain('not a regular file');
  });

  it('renders any report without acting on the terminal', () => {
    const text = renderReadinessReport(
      {
        ready: false,
        failing: ['n\x1b[2J'],
        sources: [{ name: 'n\x1b[2J', state: 'failing\x9b' as 'failing', serving: false, expiresAt: 'x\x07', lastError: { code: 'C\u202e', at: 'y' } }],
      },
      { reasons: new Map([['n\x1b[2J', 'why\nforged']]) },
    );
    expect(/[\p{Cc}\p{Cf}]/u.test(text.replaceAll('\n', ''))).toBe(false);
    expect(text.split('\n')).toHaveLength(3);
  });
});
