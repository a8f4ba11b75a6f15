/**
 * Where {@link runDemo} writes, and what it reads from its process: `process.stdout`,
 * `process.stderr` and `process.env` fit, and so does a test's collector. (The same shape
 * as `CliIO` in `@podtoken/cli`.)
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * await runDemo([], { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal });
 * ```
 */
export interface DemoIO {
  /** The live display and the summary. On a terminal (`isTTY`) the display is redrawn in place and coloured. */
  readonly stdout: { write(chunk: string): unknown; readonly isTTY?: boolean };
  /** Usage errors and failures. */
  readonly stderr: { write(chunk: string): unknown };
  /**
   * The environment; read for `NO_COLOR`, `FORCE_COLOR` and `TERM`.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Aborting it stops the demo early; it still cleans up and prints its summary. */
  readonly signal?: AbortSignal;
}
