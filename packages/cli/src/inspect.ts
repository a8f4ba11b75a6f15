import { parseArgs } from 'node:util';
import { DEFAULT_TOKEN_PATH, decodeToken, readTokenFile } from '@podtoken/core';
import type { CliIO } from './cliIO.js';
import { buildInspectReport, exitCodeOf, type InspectReport, type InspectReportOptions } from './inspectReport.js';
import { HELP_OPTION, usageFailure } from './internal/args.js';
import { describeVolume } from './internal/describeVolume.js';
import { createStyle } from './style.js';
import { renderInspectJson, renderInspectReport } from './renderInspectReport.js';

/** The help text of `podtoken inspect`. */
export const INSPECT_USAGE = `Usage: podtoken inspect [options] [path...]

Summarises token files: kind, subject, audiences, issuer, times, when podtoken will
refresh, the pod, node and ServiceAccount the token is bound to, and what a security
reviewer should know. Never prints the token unless --show-token.

Arguments:
  path               token files (default: ${DEFAULT_TOKEN_PATH})

Options:
  --json             one JSON document: { exitCode, files: [report...] }
  --audience <aud>   expect this audience (repeatable); a token for none of them is an error
  --show-token       also print the token itself (a live credential: a warning goes to stderr)
  -h, --help         show this help

Exit codes: 0 healthy, 1 a problem found, 2 usage error or a file unreadable.
`;

/**
 * Reads one token file and builds its {@link InspectReport}. Never throws for file or
 * token problems: they are in the report.
 */
export async function inspectFile(path: string, options: InspectReportOptions = {}): Promise<InspectReport> {
  return (await readAndReport(path, options)).report;
}

// The value travels beside the report, never in it, and only as far as --show-token needs.
async function readAndReport(path: string, options: InspectReportOptions): Promise<{ report: InspectReport; value?: string }> {
  const volume = await describeVolume(path);
  let content: string;
  try {
    content = await readTokenFile(path);
  } catch (error) {
    return { report: buildInspectReport({ path, error, volume }, options) };
  }
  const report = buildInspectReport({ path, content, volume }, options);
  return report.token === undefined ? { report } : { report, value: decodeToken(content).value };
}

/**
 * `podtoken inspect [path...]`: prints a report per file and returns the exit code.
 *
 * @example
 * ```ts
 * const code = await runInspect(['--json', '/var/run/secrets/tokens/vault-token'], { stdout: process.stdout, stderr: process.stderr });
 * ```
 */
export async function runInspect(args: readonly string[], io: CliIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        ...HELP_OPTION,
        json: { type: 'boolean' },
        audience: { type: 'string', multiple: true },
        'show-token': { type: 'boolean' },
      },
    }));
  } catch (error) {
    return usageFailure(error, 'inspect', io);
  }
  if (values.help) {
    io.stdout.write(INSPECT_USAGE);
    return 0;
  }
  const paths = positionals.length > 0 ? positionals : [DEFAULT_TOKEN_PATH];
  const now = new Date((io.now ?? Date.now)());
  const options: InspectReportOptions = { now, ...(values.audience === undefined ? {} : { audience: values.audience }) };
  const results = await Promise.all(paths.map((path) => readAndReport(path, options)));
  const reports = results.map((r) => r.report);
  const exitCode = exitCodeOf(reports);

  const showToken = values['show-token'] === true;
  const tokens = showToken ? results.map((r) => r.value) : undefined;
  if (showToken && tokens?.some((t) => t !== undefined)) {
    io.stderr.write(
      'podtoken inspect: warning: --show-token prints live credentials. Anyone who sees this output can use them until they expire; do not paste it into tickets or logs.\n',
    );
  }

  if (values.json) {
    io.stdout.write(renderInspectJson(reports, exitCode, tokens));
  } else {
    const style = createStyle(io.stdout, io.env);
    io.stdout.write(
      reports.map((report, i) => renderInspectReport(report, { style, ...(tokens?.[i] === undefined ? {} : { token: tokens[i] }) })).join('\n'),
    );
  }
  return exitCode;
}
