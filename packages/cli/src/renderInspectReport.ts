import { escapeControlCharacters } from './escapeControlCharacters.js';
import type { Finding, InspectReport } from './inspectReport.js';
import { formatLifetime, formatRelative, formatTime } from './internal/format.js';
import { toTerminalSafeJson } from './internal/terminalSafeJson.js';
import { createStyle, type Style } from './style.js';

/** Options of {@link renderInspectReport}. */
export interface RenderInspectOptions {
  /**
   * Colours (ANSI); make one with the stream in mind, or leave out for plain text.
   * @default no colours
   */
  style?: Style;
  /** The token itself, printed only when given (`--show-token`). */
  token?: string;
}

const KIND_TEXT = {
  bound: 'bound (projected ServiceAccount token)',
  legacy: 'legacy (Secret-based ServiceAccount token)',
  jwt: 'jwt (not a ServiceAccount token)',
  opaque: 'opaque (not a JWT)',
} as const;

const LABEL_WIDTH = 18;
const esc = escapeControlCharacters;

/**
 * The human summary of one {@link InspectReport}: one `label  value` line per fact, then
 * the findings. Relative times count from the report's `checkedAt`. Ends with a newline.
 *
 * Claims come from whoever can write the token file: every string from the report (claims,
 * path, messages) is printed with control characters escaped (see
 * {@link escapeControlCharacters}), so a token cannot clear the screen, retitle the
 * terminal, forge a hyperlink or fake a line of the report.
 *
 * @example
 * ```ts
 * process.stdout.write(renderInspectReport(buildInspectReport({ path, content })));
 * ```
 */
export function renderInspectReport(report: InspectReport, options: RenderInspectOptions = {}): string {
  const style = options.style ?? createStyle({ isTTY: false }, {});
  const now = new Date(report.checkedAt);
  const lines: string[] = [style.bold(esc(report.path))];
  const row = (label: string, value: string) => lines.push(`  ${style.dim(label.padEnd(LABEL_WIDTH))}${value}`);
  const when = (iso: string, extra?: string) => {
    const date = new Date(iso);
    return `${formatTime(date)} (${formatRelative(date, now)}${extra === undefined ? '' : `; ${extra}`})`;
  };

  const t = report.token;
  if (t !== undefined) {
    row('kind', (KIND_TEXT as Record<string, string | undefined>)[t.kind] ?? esc(String(t.kind)));
    if (t.subject !== undefined) row('subject', esc(t.subject));
    if (t.kind !== 'opaque') {
      row(t.audience.length === 1 ? 'audience' : 'audiences', t.audience.length > 0 ? t.audience.map(esc).join(', ') : '(none)');
    }
    if (t.issuer !== undefined) row('issuer', esc(t.issuer));
    if (t.issuedAt !== undefined) row('issued', when(t.issuedAt));
    if (t.notBefore !== undefined && t.notBefore !== t.issuedAt) row('not before', when(t.notBefore));
    if (t.expiresAt !== undefined) {
      const lifetime =
        t.lifetimeSeconds !== undefined
          ? `lifetime ${formatLifetime(t.lifetimeSeconds * 1000)}`
          : t.issuedAt !== undefined || t.notBefore !== undefined
            ? style.yellow(`no lifetime: exp is not after ${t.issuedAt !== undefined ? 'iat' : 'nbf'}`)
            : undefined;
      row('expires', when(t.expiresAt, lifetime));
    } else {
      row('expires', 'never');
    }
    if (t.kind === 'bound' || t.warnAfter !== undefined) row('warnafter', t.warnAfter === undefined ? '(none: expiry not extended)' : when(t.warnAfter));
    row(
      'podtoken refresh',
      t.refreshAt === undefined
        ? 'never on a timer (only on file changes and 401s)'
        : when(t.refreshAt, t.refreshBasis === 'warnafter' ? 'at warnafter' : t.refreshBasis === 'ratio' ? '80 % of lifetime' : 'at expiry'),
    );
    const k8s = t.kubernetes;
    if (k8s !== undefined) {
      const ref = (r: { name: string; uid: string }) => (r.uid === '' ? esc(r.name) : `${esc(r.name)} ${style.dim(`(uid ${esc(r.uid)})`)}`);
      if (k8s.namespace !== '') row('namespace', esc(k8s.namespace));
      row('serviceaccount', ref(k8s.serviceAccount));
      if (k8s.pod !== undefined) row('pod', ref(k8s.pod));
      if (k8s.node !== undefined) row('node', ref(k8s.node));
      if (k8s.secret !== undefined) row('secret', ref(k8s.secret));
    }
    row('length', `${t.length} characters`);
  }
  const v = report.volume;
  if (v !== undefined) {
    const layout =
      v.layout === 'projected'
        ? `projected volume (..data -> ${esc(v.dataFolder ?? '?')})`
        : v.layout === 'symlink'
          ? `symlink -> ${esc(v.target ?? '?')}`
          : 'plain file (not a kubelet projected volume)';
    row('file', `${layout}, mode ${esc(v.mode)}`);
  }
  if (options.token !== undefined) row('token', style.red(esc(options.token)));

  const status =
    report.status === 'healthy'
      ? style.green('✓ healthy')
      : report.status === 'unreadable'
        ? style.red('✗ unreadable')
        : style.red(`✗ ${countProblems(report.findings)}`);
  row('status', status);
  for (const finding of report.findings) lines.push(`  ${renderFinding(finding, style)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The `--json` output for several reports: `{ exitCode, files: [...] }`, with `tokens` (same
 * order) only for `--show-token`. Valid JSON that parses to the reports as they are; the
 * characters a terminal may act on (C1 controls, bidi overrides…) are written as `\uXXXX`
 * escapes, so printing it is safe too.
 */
export function renderInspectJson(reports: readonly InspectReport[], exitCode: number, tokens?: ReadonlyArray<string | undefined>): string {
  const files = reports.map((report, i) => {
    const value = tokens?.[i];
    return value === undefined || report.token === undefined ? report : { ...report, token: { ...report.token, value } };
  });
  return `${toTerminalSafeJson({ exitCode, files }, 2)}\n`;
}

function renderFinding(finding: Finding, style: Style): string {
  switch (finding.level) {
    case 'error':
      return `${style.red(`✗ ${esc(finding.code)}`)}: ${esc(finding.message)}`;
    case 'warning':
      return `${style.yellow(`! ${esc(finding.code)}`)}: ${esc(finding.message)}`;
    case 'note':
      return `${style.cyan(`· ${esc(finding.code)}`)}: ${esc(finding.message)}`;
    default:
      return `? ${esc(String((finding as Finding).code))}: ${esc(String((finding as Finding).message))}`;
  }
}

function countProblems(findings: readonly Finding[]): string {
  const errors = findings.filter((f) => f.level === 'error').length;
  const warnings = findings.filter((f) => f.level === 'warning').length;
  const parts = [];
  if (errors > 0) parts.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (warnings > 0) parts.push(`${warnings} warning${warnings === 1 ? '' : 's'}`);
  return parts.join(', ');
}
