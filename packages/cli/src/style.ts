import type { CliIO, OutputStream } from './cliIO.js';

/** ANSI styles, or identity functions when colours are off. */
export interface Style {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
  cyan(text: string): string;
}

const wrap = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
const plain = (text: string) => text;

/**
 * Colours only on a terminal, and never when `NO_COLOR` is set (https://no-color.org) or
 * `TERM=dumb`; `FORCE_COLOR` (other than `0`) turns them on anywhere. Plain ANSI codes:
 * `util.styleText` on Node 20 does not look at the stream or at `NO_COLOR`.
 *
 * @example
 * ```ts
 * const style = createStyle(process.stdout);
 * process.stdout.write(renderInspectReport(report, { style }));
 * ```
 */
export function createStyle(stream: Pick<OutputStream, 'isTTY'>, env: CliIO['env'] = process.env): Style {
  const force = env['FORCE_COLOR'];
  const noColor = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '';
  const enabled =
    force !== undefined && force !== '' ? force !== '0' && force !== 'false' : !noColor && stream.isTTY === true && env['TERM'] !== 'dumb';
  if (!enabled) return { enabled, bold: plain, dim: plain, red: plain, yellow: plain, green: plain, cyan: plain };
  return {
    enabled,
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    yellow: wrap(33, 39),
    green: wrap(32, 39),
    cyan: wrap(36, 39),
  };
}
