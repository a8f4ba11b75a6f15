import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { inspectFile } from '../src/inspect.js';
import { buildInspectReport, type InspectReport } from '../src/inspectReport.js';
import { main } from '../src/main.js';
import { capture, leaks } from './helpers.js';

// Every token is minted here at run time. Assertions on output use booleans (leaks(), includes())
// so that a failing test never prints a token.

const DAY = 86_400_000;
// A whole second, so iat/exp (whole seconds) and the relative times below are exact.
const NOW = Math.floor(Date.now() / 1000) * 1000;
const MIN = 60_000;

let issuer: Issuer;
let dir: string;
const files: Record<string, string> = {};
const tokens: Record<string, string> = {};

async function put(name: string, token: string): Promise<void> {
  files[name] = join(dir, name);
  tokens[name] = token;
  await writeFile(files[name], `${token}\n`);
}

beforeAll(async () => {
  issuer = await createIssuer();
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-inspect-'));
  // A projected volume as the kubelet writes it, with an audience-specific token.
  const volume = new ProjectedVolume({ dir: join(dir, 'tokens') });
  tokens['short'] = await issuer.mint({ audience: 'vault', expirationSeconds: 3600, issuedAt: new Date(NOW - 10 * MIN) });
  await volume.write({ 'vault-token': tokens['short'] });
  files['short'] = volume.path('vault-token');

  // The default token as a cluster with --service-account-extend-token-expiration mints it.
  await mkdir(join(dir, 'serviceaccount'));
  files['extended'] = join(dir, 'serviceaccount', 'token');
  tokens['extended'] = await issuer.mint({ extendExpiration: true, issuedAt: new Date(NOW - 5 * MIN) });
  await writeFile(files['extended'], tokens['extended']);

  await put('legacy', await issuer.mintLegacy({ namespace: 'team-a', serviceAccount: 'builder' }));
  await put('opaque', 's.OpaqueVaultTokenXYZ0123456789');
  await put('expired', await issuer.mint({ audience: 'vault', expirationSeconds: 3600, issuedAt: new Date(NOW - 3 * 3_600_000) }));
  await put('apiAudience', await issuer.mint({ expirationSeconds: 3600, issuedAt: new Date(NOW - MIN) }));
  await put('future', await issuer.mint({ audience: 'vault', expirationSeconds: 3600, issuedAt: new Date(NOW + 10 * MIN) }));
  await put('long', await issuer.mint({ audience: 'vault', expirationSeconds: 2 * 86_400, issuedAt: new Date(NOW - MIN) }));
  await put('unbound', await issuer.mint({ audience: 'vault', expirationSeconds: 3600, pod: false, issuedAt: new Date(NOW - MIN) }));
  await put('stale', await issuer.mint({ audience: 'vault', expirationSeconds: 3600, issuedAt: new Date(NOW - 55 * MIN) }));
  files['garbage'] = join(dir, 'garbage');
  await writeFile(files['garbage'], 'eyJhbGciOiJub25lIn0.not base64!.x');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function inspect(...args: string[]) {
  const io = capture({ now: NOW });
  const code = await main(['inspect', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

async function inspectJson(...args: string[]): Promise<{ code: number; out: string; reports: InspectReport[]; exitCode: number }> {
  const { code, out } = await inspect('--json', ...args);
  const parsed = JSON.parse(out) as { exitCode: number; files: InspectReport[] };
  return { code, out, reports: parsed.files, exitCode: parsed.exitCode };
}

const codes = (report: InspectReport | undefined) => report?.findings.map((f) => `${f.level}:${f.code}`) ?? [];

describe('podtoken inspect', () => {
  it('summarises a short-lived bound token in a projected volume: healthy, exit 0', async () => {
    const { code, out, err } = await inspect(files['short']!);
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).toContain('bound (projected ServiceAccount token)');
    expect(out).toContain('system:serviceaccount:default:default');
    expect(out).toMatch(/audience +vault\n/);
    expect(out).toContain(`issued            ${iso(NOW - 10 * MIN)} (10m ago)`);
    expect(out).toContain(`expires           ${iso(NOW + 50 * MIN)} (in 50m; lifetime 1h)`);
    // 80 % of 3600 s after iat: 48 min after issue, 38 min from now.
    expect(out).toContain(`podtoken refresh  ${iso(NOW + 38 * MIN)} (in 38m; 80 % of lifetime)`);
    expect(out).toContain('warnafter         (none: expiry not extended)');
    expect(out).toMatch(/pod +app-0 \(uid [0-9a-f-]{36}\)/);
    expect(out).toMatch(/node +node-1 \(uid [0-9a-f-]{36}\)/);
    expect(out).toMatch(/serviceaccount +default \(uid [0-9a-f-]{36}\)/);
    expect(out).toMatch(/file +projected volume \(\.\.data -> \.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+\), mode 0644/);
    expect(out).toContain('✓ healthy');
    expect(leaks(out, tokens['short']!)).toBe(false);
  });

  it('explains an extended default token: refresh at warnafter, a note, exit 0 at the default path', async () => {
    const report = await inspectFile(files['extended']!, { now: new Date(NOW), defaultTokenPath: files['extended']! });
    expect(report.exitCode).toBe(0);
    expect(report.token?.kind).toBe('bound');
    expect(report.token?.refreshBasis).toBe('warnafter');
    // warnafter = iat + 3607 s; exp = iat + 1 year.
    expect(report.token?.warnAfter).toBe(new Date(NOW - 5 * MIN + 3607_000).toISOString());
    expect(report.token?.refreshAt).toBe(report.token?.warnAfter);
    expect(report.token?.lifetimeSeconds).toBe(365 * 86_400);
    expect(codes(report)).toEqual(['note:extended-expiry']);
    expect(report.findings[0]?.message).toContain('requested for 3607 s');
  });

  it('flags an extended token that holds the API server audience outside the default folder', async () => {
    const { code, out } = await inspect(files['extended']!);
    expect(code).toBe(1);
    expect(out).toContain(`warnafter         ${iso(NOW - 5 * MIN + 3607_000)} (in 55m 7s)`);
    expect(out).toContain('(in 55m 7s; at warnafter)');
    expect(out).toContain('(in 364d 23h; lifetime 365d)');
    expect(out).toContain('! api-server-audience-on-custom-path');
    expect(out).toContain('· extended-expiry');
    expect(leaks(out, tokens['extended']!)).toBe(false);
  });

  it('flags the API server audience on a custom path (the wrong-audience mount), exit 1', async () => {
    const { code, reports } = await inspectJson(files['apiAudience']!);
    expect(code).toBe(1);
    expect(reports[0]?.status).toBe('problem');
    expect(codes(reports[0])).toEqual(['warning:api-server-audience-on-custom-path']);
    expect(reports[0]?.findings[0]?.message).toContain('https://kubernetes.default.svc.cluster.local');
  });

  it('reports a legacy token: no expiry, the Secret, a warning, exit 1', async () => {
    const { code, out } = await inspect(files['legacy']!);
    expect(code).toBe(1);
    expect(out).toContain('legacy (Secret-based ServiceAccount token)');
    expect(out).toContain('system:serviceaccount:team-a:builder');
    expect(out).toMatch(/expires +never\n/);
    expect(out).toMatch(/podtoken refresh +never on a timer/);
    expect(out).toMatch(/secret +builder-token-abcde\n/);
    expect(out).toContain('! legacy-token');
    expect(leaks(out, tokens['legacy']!)).toBe(false);
  });

  it('reports an opaque token without printing it, exit 1', async () => {
    const { code, out, err } = await inspect(files['opaque']!);
    expect(code).toBe(1);
    expect(out).toContain('opaque (not a JWT)');
    expect(out).toMatch(/length +31 characters/);
    expect(out).toContain('! opaque-token');
    expect(leaks(out + err, tokens['opaque']!)).toBe(false);
  });

  it('reports an expired token as an error with how long ago, exit 1', async () => {
    const { code, out } = await inspect(files['expired']!);
    expect(code).toBe(1);
    expect(out).toContain(`expires           ${iso(NOW - 2 * 3_600_000)} (2h ago; lifetime 1h)`);
    expect(out).toContain('✗ 1 error');
    expect(out).toContain('✗ expired: Expired 2h ago');
  });

  it('finds not-yet-valid, future, long-lived, unbound and stale tokens', async () => {
    const { code, reports } = await inspectJson(files['future']!, files['long']!, files['unbound']!, files['stale']!);
    expect(code).toBe(1);
    const [future, long, unbound, stale] = reports;
    expect(codes(future)).toEqual(['error:not-yet-valid', 'warning:issued-in-future']);
    expect(codes(long)).toEqual(['warning:long-lifetime']);
    expect(codes(unbound)).toEqual(['warning:not-bound-to-pod']);
    expect(unbound?.token?.kubernetes?.pod).toBeUndefined();
    // Issued 55 min ago for 1 h: past 80 % (48 min) and not replaced.
    expect(codes(stale)).toEqual(['warning:past-refresh']);
  });

  it('warns about times no API server mints together instead of showing a lifetime for them', async () => {
    const iat = (NOW - MIN) / 1000;
    const k8s = (extra: object) => ({
      namespace: 'default',
      serviceaccount: { name: 'default', uid: '2c7a4f0e-0000-4000-8000-000000000001' },
      pod: { name: 'app-0', uid: '2c7a4f0e-0000-4000-8000-000000000002' },
      ...extra,
    });
    const nonsense = {
      expBeforeIat: { exp: iat - 60 },
      expEqualsIat: { exp: iat },
      nbfAfterExp: { nbf: iat + 7200, exp: iat + 3600 },
      warnafterAfterExp: { exp: iat + 3600, 'kubernetes.io': k8s({ warnafter: iat + 7200 }) },
      warnafterBeforeIat: { exp: iat + 3600, 'kubernetes.io': k8s({ warnafter: iat - 60 }) },
    };
    for (const [name, claims] of Object.entries(nonsense)) {
      await put(name, await issuer.mint({ audience: 'vault', issuedAt: new Date(NOW - MIN), claims }));
    }
    const { out, code } = await inspect(...Object.keys(nonsense).map((name) => files[name]!));
    expect(code).toBe(1);
    // exp a minute before iat used to print "lifetime 1m".
    expect(out).not.toMatch(/lifetime 1m\)/);
    expect(out).toContain(`expires           ${iso(NOW - 2 * MIN)} (2m ago; no lifetime: exp is not after iat)`);
    expect(out).toContain(`expires           ${iso(NOW - MIN)} (1m ago; no lifetime: exp is not after iat)`);
    for (const name of Object.keys(nonsense)) expect(leaks(out, tokens[name]!)).toBe(false);

    const { reports } = await inspectJson(...Object.keys(nonsense).map((name) => files[name]!));
    const [expBeforeIat, expEqualsIat, nbfAfterExp, warnafterAfterExp, warnafterBeforeIat] = reports;
    // Said once, even though nbf = iat is also not before exp.
    expect(codes(expBeforeIat)).toEqual(['error:expired', 'warning:expires-before-issued']);
    expect(expBeforeIat?.token?.lifetimeSeconds).toBeUndefined();
    expect(expBeforeIat?.findings[1]?.message).toContain(`is not after its issue time (iat ${iso(NOW - MIN)})`);
    expect(codes(expEqualsIat)).toEqual(['error:expired', 'warning:expires-before-issued']);
    expect(codes(nbfAfterExp)).toEqual(['error:not-yet-valid', 'warning:not-before-after-expiry']);
    // Not an extended token: podtoken ignores a warnafter at or past exp and refreshes at 80 %.
    expect(codes(warnafterAfterExp)).toEqual(['warning:warnafter-after-expiry']);
    expect(warnafterAfterExp?.token?.refreshBasis).toBe('ratio');
    expect(codes(warnafterBeforeIat)).toEqual(['warning:past-refresh', 'warning:warnafter-before-issued']);
  });

  it('checks the audience asked for with --audience', async () => {
    const ok = await inspect('--audience', 'vault', files['short']!);
    expect(ok.code).toBe(0);
    const wrong = await inspectJson('--audience', 'https://vault.example', '--audience', 'other', files['short']!);
    expect(wrong.code).toBe(1);
    expect(codes(wrong.reports[0])).toEqual(['error:audience-mismatch']);
  });

  it('gives --json a stable shape with every time as ISO 8601 and no token', async () => {
    const { code, out, reports, exitCode } = await inspectJson(files['short']!, files['legacy']!);
    expect(code).toBe(1);
    expect(exitCode).toBe(1);
    const [short, legacy] = reports;
    expect(short).toMatchObject({
      path: files['short'],
      checkedAt: new Date(NOW).toISOString(),
      status: 'healthy',
      exitCode: 0,
      findings: [],
      volume: { layout: 'projected', mode: '0644' },
      token: {
        kind: 'bound',
        subject: 'system:serviceaccount:default:default',
        audience: ['vault'],
        issuer: issuer.issuer,
        issuedAt: new Date(NOW - 10 * MIN).toISOString(),
        expiresAt: new Date(NOW + 50 * MIN).toISOString(),
        refreshAt: new Date(NOW + 38 * MIN).toISOString(),
        refreshBasis: 'ratio',
        lifetimeSeconds: 3600,
        expiresInSeconds: 3000,
        kubernetes: { namespace: 'default', serviceAccount: { name: 'default' }, pod: { name: 'app-0' }, node: { name: 'node-1' } },
      },
    });
    expect(legacy?.token?.kind).toBe('legacy');
    expect(legacy?.token?.expiresAt).toBeUndefined();
    expect('value' in (short?.token ?? {})).toBe(false);
    for (const name of ['short', 'legacy']) expect(leaks(out, tokens[name]!)).toBe(false);
  });

  it('never prints any token, in text or JSON, whatever the file holds', async () => {
    const all = Object.keys(tokens).map((name) => files[name]!);
    for (const args of [all, ['--json', ...all]]) {
      const { out, err } = await inspect(...args);
      for (const token of Object.values(tokens)) expect(leaks(out + err, token)).toBe(false);
    }
  });

  it('prints the token with --show-token only, with a warning on stderr', async () => {
    const text = await inspect('--show-token', files['short']!);
    expect(text.out.includes(tokens['short']!)).toBe(true);
    expect(text.err).toContain('warning: --show-token prints live credentials');
    const json = await inspectJson('--show-token', files['short']!);
    expect((json.reports[0]?.token as { value?: string } | undefined)?.value === tokens['short']).toBe(true);
  });

  it('reports a malformed file as a problem (exit 1) and a missing or folder path as unreadable (exit 2)', async () => {
    const garbage = await inspectJson(files['garbage']!);
    expect(garbage.code).toBe(1);
    expect(codes(garbage.reports[0])).toEqual(['error:malformed']);
    expect(garbage.reports[0]?.token).toBeUndefined();

    const missing = await inspect(join(dir, 'nope'));
    expect(missing.code).toBe(2);
    expect(missing.out).toContain('✗ unreadable');
    expect(missing.out).toContain('does not exist');

    const folder = await inspectJson(join(dir, 'tokens'));
    expect(folder.code).toBe(2);
    expect(folder.reports[0]?.findings[0]?.message).toContain('it is a folder');

    // The worst file decides: 2 beats 1 beats 0.
    expect((await inspect(files['short']!, files['expired']!, join(dir, 'nope'))).code).toBe(2);
  });

  it('exits 2 on a usage error, and reads the default token path with no argument', async () => {
    const bad = await inspect('--jsn');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Unknown option '--jsn'");
    expect(bad.err).toContain('podtoken inspect --help');

    const help = await inspect('--help');
    expect(help.code).toBe(0);
    expect(help.out).toContain('Usage: podtoken inspect');

    // This machine is no pod: the default path is missing.
    const none = await inspectJson();
    expect(none.code).toBe(2);
    expect(none.reports[0]?.path).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
  });
});

describe('buildInspectReport', () => {
  it('is pure: the same input and time give the same report, with no token in it', () => {
    const input = { path: '/var/run/secrets/tokens/vault-token', content: tokens['short']! };
    const a = buildInspectReport(input, { now: new Date(NOW) });
    const b = buildInspectReport(input, { now: new Date(NOW) });
    expect(a).toEqual(b);
    expect(leaks(JSON.stringify(a), tokens['short']!)).toBe(false);
  });

  it('judges a token at the time it is given: healthy now, expired later', () => {
    const input = { path: '/x/token', content: tokens['short']! };
    expect(buildInspectReport(input, { now: new Date(NOW) }).status).toBe('healthy');
    const later = buildInspectReport(input, { now: new Date(NOW + DAY) });
    expect(later.status).toBe('problem');
    expect(codes(later)).toEqual(['error:expired']);
  });
});

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.000Z$/, 'Z');
}
