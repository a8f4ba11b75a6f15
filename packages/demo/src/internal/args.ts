import type { DemoIO } from '../demoIO.js';
import { printable } from './style.js';

/** A command-line mistake: the command prints it with a hint and exits 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A positive number of seconds from an option (`--duration 2.5`), or a {@link UsageError}. */
export function seconds(value: string | undefined, name: string, fallback: number, { min = 0.1, max = 86_400 } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number of seconds from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A fraction in (0, 1] from an option (`--rotate-after 0.5`), or a {@link UsageError}. */
export function fraction(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1)) throw new UsageError(`--${name} must be a number in (0, 1], got ${JSON.stringify(value)}`);
  return n;
}

/** A whole number from an option (`--concurrency 4`), or a {@link UsageError}. */
export function integer(value: string | undefined, name: string, fallback: number, { min = 1, max = 64 } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Prints a {@link UsageError} or a `util.parseArgs` error and returns 2; rethrows anything else. */
export function usageFailure(error: unknown, io: DemoIO): 2 {
  const code = (error as { code?: unknown } | null)?.code;
  const fromParseArgs = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
  if (!(error instanceof UsageError) && !fromParseArgs) throw error;
  // parseArgs' messages are clear ("Unknown option '--jsn'") but end with advice about "--".
  const message = (error as Error).message.replace(/\. To specify a positional.*$/s, '.');
  io.stderr.write(`podtoken-demo: ${printable(message)}\nRun "podtoken-demo --help" for usage.\n`);
  return 2;
}

/** The options every command takes. */
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;
