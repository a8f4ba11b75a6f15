import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuer, type Issuer } from '@podtoken/testing';
import { escapeControlCharacters } from '../src/escapeControlCharacters.js';
import type { InspectReport } from '../src/inspectReport.js';
import { main } from '../src/main.js';
import { renderInspectReport } from '../src/renderInspectReport.js';
import { renderWatchEvent } from '../src/renderWatchEvent.js';
import type { WatchEvent } from '../src/watchEvent.js';
import { capture, leaks, until } from './helpers.js';

// Claims come from whoever can write the token file. Each of these, printed raw, makes a
// terminal do something instead of showing it, or shows something that is not there.
const CORPUS: Record<string, string> = {
  'CSI clear screen': 'ns\x1b[2J\x1b[Hx',
  'CSI recolour': '\x1b[31mred\x1b[0m',
  'OSC title with BEL': 'a\x1b]0;pwned\x07b',
  'OSC 8 hyperlink': '\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\',
  'C1 CSI (8-bit)': 'a\u009b2Jb',
  'C1 OSC (8-bit) with ST': 'a\u009d0;pwned\u009cb',
  'backspace overwrite': 'admin\b\b\b\b\bguest',
  'carriage return overwrite': 'evil\rgood',
  'forged report line': 'x\n  status            ✓ healthy',
  'tab and DEL': 'a\tb\u007fc',
  NUL: 'a\u0000b',
  'right-to-left override': 'kube-system\u202eniamda',
  'bidi isolate': 'a\u2066b\u2069c',
  'right-to-left mark': 'a\u200fb',
  'zero-width space': 'kube\u200bsystem',
  'byte order mark': '\ufeffdefault',
  'line separator': 'a\u2028b\u2029c',
  'Unicode tag characters (hidden text)': 'ok\u{E0041}\u{E0042}',
};

// What a terminal may act on; '\n' ends our own lines.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const unsafeIn = (text: string) =>
  [...text].filter((char) => char !== '\n' && UNSAFE.test(char)).map((char) => `U+${char.codePointAt(0)!.toString(16).padStart(4, '0')}`);

let issuer: Issuer;
let dir: string;
const files: Record<string, string> = {};
const tokens: Record<string, string> = {};

beforeAll(async () => {
  issuer = await createIssuer();
  dir = await mkdtemp(join(tmpdir(), 'podtoken-cli-hostile-'));
  let i = 0;
  for (const [name, hostile] of Object.entries(CORPUS)) {
    // The hostile text in every string claim that reaches a report or a watch line.
    const token = await issuer.mint({
      audience: [`aud-${hostile}`, 'https://kubernetes.default.svc'],
      namespace: `ns-${hostile}`,
      serviceAccount: `sa-${hostile}`,
      pod: `pod-${hostile}`,
      node: `node-${hostile}`,
      claims: {
        iss: `https://issuer.example/${hostile}`,
        sub: `system:serviceaccount:${hostile}`,
        'kubernetes.io': {
          namespace: `ns-${hostile}`,
          serviceaccount: { name: `sa-${hostile}`, uid: `uid-${hostile}` },
          pod: { name: `pod-${hostile}`, uid: `uid-${hostile}` },
          node: { name: `node-${hostile}`, uid: `uid-${hostile}` },
        },
      },
    });
    // And in the file's path (a file name holds anything but '/' and NUL).
    const folder = join(dir, `f${i++}`);
    await mkdir(folder);
    const file = join(folder, `token-${hostile.replace(/[/\0]/g, '_')}`);
    await writeFile(file, token);
    files[name] = file;
    tokens[name] = token;
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function noToken(text: string): boolean {
  return Object.values(tokens).every((token) => !leaks(text, token));
}

describe('hostile claims through podtoken inspect', () => {
  it.each(Object.keys(CORPUS))('%s: shown escaped in the human report, never raw', async (name) => {
    const hostile = CORPUS[name]!;
    const io = capture();
    // --audience makes core-style messages quote the token's audiences too.
    const code = await main(['inspect', '--audience', 'vault', files[name]!], io);
    expect(code).toBe(1);
    const out = io.out() + io.err();
    expect(unsafeIn(out)).toEqual([]);
    // Shown, escaped, wherever the claim goes: subject, audience, issuer, names, UIDs, path, findings.
    const shown = escapeControlCharacters(hostile);
    for (const label of ['subject', 'audiences', 'issuer', 'namespace', 'serviceaccount', 'pod', 'node']) {
      expect(out).toMatch(new RegExp(`^ {2}${label} +.*${escapeRegExp(shown)}`, 'm'));
    }
    expect(out.split('\n')[0]).toContain(escapeControlCharacters(files[name]!));
    expect(out).toMatch(new RegExp(`✗ audience-mismatch: The audience is \\[aud-${escapeRegExp(shown)}, `));
    // One report: no line forged by a newline in a claim.
    expect(out.match(/^ {2}status +/gm)).toHaveLength(1);
    expect(noToken(out)).toBe(true);
  });

  it('keeps --json valid JSON that parses to the exact claims, with nothing a terminal acts on in its text', async () => {
    const io = capture();
    await main(['inspect', '--json', ...Object.values(files)], io);
    const out = io.out();
    expect(unsafeIn(out)).toEqual([]);
    const reports = (JSON.parse(out) as { files: InspectReport[] }).files;
    for (const [index, [name, hostile]] of Object.entries(CORPUS).entries()) {
      const report = reports[index]!;
      expect(report.path).toBe(files[name]);
      expect(report.token?.subject).toBe(`system:serviceaccount:${hostile}`);
      expect(report.token?.issuer).toBe(`https://issuer.example/${hostile}`);
      expect(report.token?.audience[0]).toBe(`aud-${hostile}`);
      expect(report.token?.kubernetes?.pod).toEqual({ name: `pod-${hostile}`, uid: `uid-${hostile}` });
      // Messages are text for people: escaped in the data as well.
      for (const finding of report.findings) expect(unsafeIn(finding.message)).toEqual([]);
    }
    expect(noToken(out)).toBe(true);
  });

  it('escapes a hostile symlink target and a hostile path of a missing file', async () => {
    const link = join(dir, 'link-token');
    await symlink(files['CSI clear screen']!, link);
    const missing = join(dir, `missing-${CORPUS['OSC title with BEL']!}`);
    const io = capture();
    expect(await main(['inspect', link, missing], io)).toBe(2);
    expect(unsafeIn(io.out())).toEqual([]);
    expect(io.out()).toMatch(/file +symlink -> .*token-ns\\x1b\[2J\\x1b\[Hx, mode/);
    expect(io.out()).toContain('missing-a\\x1b]0;pwned\\x07b');
  });

  it('renders a hand-made report from any source without acting on the terminal', () => {
    const report = {
      path: '/p\x1b[2J',
      checkedAt: new Date(0).toISOString(),
      status: 'problem',
      exitCode: 1,
      token: { kind: 'evil\x1b]0;t\x07', length: 1, audience: ['\u202e'], subject: 's\x9b' },
      volume: { layout: 'projected', mode: '0644\x1b[5m', dataFolder: '..x\x07' },
      findings: [{ level: 'warning', code: 'c\x1b[31m', message: 'm\x1b]8;;x\x1b\\' }],
    } as unknown as InspectReport;
    const text = renderInspectReport(report, { token: 'opaque\x1b[2J' });
    expect(unsafeIn(text)).toEqual([]);
    expect(text).toContain('s\\x9b');
  });
});

describe('hostile claims through podtoken watch', () => {
  it('escapes claims, paths and messages in human lines; --json stays exact', async () => {
    const names = Object.keys(CORPUS);
    for (const json of [false, true]) {
      const controller = new AbortController();
      const io = capture({ signal: controller.signal });
      // Half the files with an audience they do not hold: TOKEN_AUDIENCE_MISMATCH quotes their aud claims.
      const plain = names.filter((_, i) => i % 2 === 0);
      const mismatched = names.filter((_, i) => i % 2 === 1);
      const missing = join(dir, `gone-${CORPUS['CSI recolour']!}`, 'token');
      const runs = [
        main(['watch', ...(json ? ['--json'] : []), ...plain.map((n) => files[n]!), missing], io),
        main(['watch', ...(json ? ['--json'] : []), '--audience', 'vault', ...mismatched.map((n) => files[n]!)], io),
      ];
      const lines = () => io.out().split('\n').filter((line) => line !== '');
      const has = (predicate: (line: string) => boolean, count: number) => lines().filter(predicate).length >= count;
      try {
        // A load per plain file, a failed read per mismatched one, and the missing file's.
        await until(() => has((l) => l.includes('token:loaded'), plain.length) && has((l) => l.includes('read:failed'), mismatched.length + 1), 'a line per file');
      } finally {
        controller.abort();
      }
      expect(await Promise.all(runs)).toEqual([0, 0]);
      const out = io.out() + io.err();
      expect(unsafeIn(out)).toEqual([]);
      expect(noToken(out)).toBe(true);
      if (json) {
        const events = lines().map((line) => JSON.parse(line) as WatchEvent);
        const about = (file: string) => events.filter((e) => 'source' in e && e.source?.path === file);
        for (const name of plain) {
          const loaded = about(files[name]!).find((e) => e.event === 'podtoken:token:loaded');
          expect(loaded?.event === 'podtoken:token:loaded' && loaded.token).toMatchObject({
            subject: `system:serviceaccount:${CORPUS[name]}`,
            issuer: `https://issuer.example/${CORPUS[name]}`,
            audience: [`aud-${CORPUS[name]}`, 'https://kubernetes.default.svc'],
          });
          expect(loaded?.event === 'podtoken:token:loaded' && loaded.source).toEqual({ name: files[name], path: files[name] });
        }
        for (const name of mismatched) {
          expect(about(files[name]!).find((e) => e.event === 'podtoken:read:failed')).toMatchObject({ code: 'TOKEN_AUDIENCE_MISMATCH', serving: false });
        }
        expect(events.some((e) => e.event === 'podtoken:read:failed' && e.source.path === missing && e.code === 'TOKEN_FILE_MISSING')).toBe(true);
      } else {
        for (const name of plain) expect(out).toContain(`  token:loaded       ${escapeControlCharacters(files[name]!)}  bound  `);
        for (const name of mismatched) {
          // The claim itself arrives already escaped by core's message (as \u001b…); unsafeIn() above checks nothing raw is left.
          expect(out).toContain(`  read:failed        ${escapeControlCharacters(files[name]!)}  TOKEN_AUDIENCE_MISMATCH  Token file ${escapeControlCharacters(files[name]!)} holds a token for audience [aud-`);
        }
        expect(out).toContain('gone-\\x1b[31mred\\x1b[0m');
        // One line per event, each starting with its time: no line forged by a newline in a claim or path.
        for (const line of lines()) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\S+Z {2}[a-z:]+ +/);
      }
    }
  });

  it('renders a hand-made event from any source without acting on the terminal', () => {
    const line = renderWatchEvent({
      event: 'podtoken:read:failed',
      at: 't\x1b[2J',
      source: { name: 'n\x9b', path: '/p\u202e' },
      trigger: 'event\x07' as 'event',
      code: 'C\x9b' as 'TOKEN_MALFORMED',
      message: 'm\x1b]0;x\x07',
      failures: 1,
      serving: false,
    });
    expect(unsafeIn(line)).toEqual([]);
    const hostileToken = { kind: 'k\x1b[5m' as 'bound', audience: [], expiresAt: 'soon\x1b[2J' };
    const load = renderWatchEvent({ event: 'podtoken:token:loaded', at: 't', source: { name: '/p', path: '/p' }, token: hostileToken, trigger: 'start' });
    expect(unsafeIn(load)).toEqual([]);
    expect(load).toContain('k\\x1b[5m');
    expect(load).toContain('expires soon\\x1b[2J');
    const status = renderWatchEvent({ event: 'podtoken:status', at: 't', name: 'x\u2028y', state: 'ok\x1b[0m' as 'ok', serving: true, lastError: { code: 'E\x07' as 'TOKEN_MALFORMED', at: 'z\x1b' } });
    expect(unsafeIn(status)).toEqual([]);
    const other = renderWatchEvent({ event: 'evil\x1b]0;x\x07', at: 't' } as unknown as WatchEvent);
    expect(unsafeIn(other)).toEqual([]);
  });
});

describe('escapeControlCharacters', () => {
  it('escapes controls and invisible formatting, keeps every other character, and is idempotent', () => {
    expect(escapeControlCharacters('a\x1b[2J\x07\n\r\t\x00\x7f\x9b\u202e\u200b\u2028\u{E0041}')).toBe(
      'a\\x1b[2J\\x07\\n\\r\\t\\x00\\x7f\\x9b\\u202e\\u200b\\u2028\\u{e0041}',
    );
    expect(escapeControlCharacters('\ud800')).toBe('\\ud800');
    const ordinary = 'system:serviceaccount:müller:日本-🙂 ✓ /var/run\\x';
    expect(escapeControlCharacters(ordinary)).toBe(ordinary);
    for (const hostile of Object.values(CORPUS)) {
      const once = escapeControlCharacters(hostile);
      expect(unsafeIn(once)).toEqual([]);
      expect(escapeControlCharacters(once)).toBe(once);
    }
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
