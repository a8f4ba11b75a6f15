/** ANSI styles, or identity functions when colours are off. */
export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  yellow(text: string): string;
  green(text: string): string;
}

const wrap = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;
const plain = (text: string) => text;

/**
 * Colours only on a terminal, and never when `NO_COLOR` is set or `TERM=dumb`;
 * `FORCE_COLOR` (other than `0`) turns them on anywhere. The same rule as `podtoken`'s.
 */
export function createStyle(stream: { readonly isTTY?: boolean }, env: Readonly<Record<string, string | undefined>> = process.env): Style {
  const force = env['FORCE_COLOR'];
  const noColor = env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '';
  const enabled =
    force !== undefined && force !== '' ? force !== '0' && force !== 'false' : !noColor && stream.isTTY === true && env['TERM'] !== 'dumb';
  if (!enabled) return { bold: plain, dim: plain, red: plain, yellow: plain, green: plain };
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), yellow: wrap(33, 39), green: wrap(32, 39) };
}

// What a terminal may act on (controls, bidi and other format characters, separators).
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** An error message or a typed argument, with control characters shown as `\u{…}` escapes. */
export function printable(text: string): string {
  return text.replace(UNSAFE, (char) => `\\u{${char.codePointAt(0)!.toString(16)}}`);
}
