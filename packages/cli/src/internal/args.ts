import type { CliIO } from '../cliIO.js';
import { escapeControlCharacters } from '../escapeControlCharacters.js';

/** A command-line mistake: the command prints it with a hint and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Prints a {@link UsageError} or a `util.parseArgs` error and returns 2; rethrows anything else. */
export function usageFailure(error: unknown, command: string, io: CliIO): 2 {
  const code = (error as { code?: unknown } | null)?.code;
  const fromParseArgs = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
  if (!(error instanceof UsageError) && !fromParseArgs) throw error;
  // parseArgs' messages are clear ("Unknown option '--jsn'") but end with advice about "--".
  const message = (error as Error).message.replace(/\. To specify a positional.*$/s, '.');
  io.stderr.write(`podtoken ${command}: ${escapeControlCharacters(message)}\nRun "podtoken ${command} --help" for usage.\n`);
  return 2;
}

/** The options every command takes. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

/** A number of seconds > 0 given as `option` on the command line, in milliseconds; a {@link UsageError} otherwise. */
export function seconds(text: string, option: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value <= 0 || value * 1000 > 2 ** 31 - 1) {
    throw new UsageError(`${option} takes a number of seconds > 0, got "${text}"`);
  }
  return value * 1000;
}

/** Checks `--audience` values: each a non-empty string (FileTokenSource would throw a TypeError). */
export function audiences(values: readonly string[] | undefined): void {
  if (values?.some((value) => value === '')) throw new UsageError('--audience takes a non-empty audience');
}
