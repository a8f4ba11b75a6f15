/** Where a command writes: `process.stdout` and `process.stderr` fit, and so does a test's collector. */
export interface OutputStream {
  write(chunk: string): unknown;
  /** Set on a terminal: the demo redraws its live display and colours are on. */
  readonly isTTY?: boolean;
  /** The terminal's width, when known. */
  readonly columns?: number;
}

/**
 * What a command needs from its process, injected so the commands run in-process in tests.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * process.once('SIGINT', () => controller.abort());
 * const code = await main(['watch'], { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: controller.signal });
 * ```
 */
export interface CliIO {
  /** Reports and event lines. */
  readonly stdout: OutputStream;
  /** Warnings, progress notes and errors. */
  readonly stderr: OutputStream;
  /**
   * The environment; read for `NO_COLOR`, `FORCE_COLOR` and `TERM`.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Aborting it stops `watch` and `demo` cleanly (the bin aborts it on SIGINT and SIGTERM). */
  readonly signal?: AbortSignal;
  /**
   * The clock, in ms since the epoch, for the times a report is made at.
   * @default Date.now
   */
  readonly now?: () => number;
}
