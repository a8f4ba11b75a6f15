import { createRequire } from 'node:module';
import type { CliIO } from './cliIO.js';
import { escapeControlCharacters } from './escapeControlCharacters.js';

/** The help text of `podtoken`. */
export const USAGE = `Usage: podtoken <command> [options]

See a pod's ServiceAccount tokens, and watch the podtoken SDK keep them fresh.

Commands:
  inspect [path...]   summarise token files: who, for whom, until when, and what to worry about
  watch [path...]     follow token files live: one line per event podtoken publishes
  status [path...]    read token files once; exit 0 when each serves a token (a readiness probe)
  demo                how to run the demo (its own package: npx @podtoken/demo)

Options:
  -h, --help          show this help ("podtoken <command> --help" for a command's)
  -v, --version       show the version
`;

/** What `podtoken demo` prints: the demo needs axios, got and the test kit, which a pod image should not carry. */
export const DEMO_MOVED = `podtoken demo: the demo is its own package, @podtoken/demo, so that this command stays
small enough for a pod image (the demo needs axios, got and the test kit). Run it with:

  npx @podtoken/demo [options]   on any machine with Node >= 20.19
  pnpm demo [options]            in a clone of the podtoken repository, after pnpm install

Options: --duration <s>, --token-ttl <s>, --rotate-after <f>, --concurrency <n>, --json
("npx @podtoken/demo --help" says more).
`;

// Loaded on demand: each command loads only what it uses.
const COMMANDS: Record<string, (args: readonly string[], io: CliIO) => Promise<number>> = {
  inspect: async (args, io) => (await import('./inspect.js')).runInspect(args, io),
  watch: async (args, io) => (await import('./watch.js')).runWatch(args, io),
  status: async (args, io) => (await import('./status.js')).runStatus(args, io),
  demo: async (_args, io) => {
    io.stderr.write(DEMO_MOVED);
    return 2;
  },
};

/**
 * Runs the `podtoken` command line and resolves with the exit code; never calls
 * `process.exit`. The bin wires `io.signal` to SIGINT and SIGTERM.
 *
 * @param argv - the arguments after the program name, e.g. `['inspect', '--json']`.
 * @param io - where to write; defaults to the process's streams and environment.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: readonly string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    (command === undefined ? io.stderr : io.stdout).write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === '-v' || command === '--version') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    io.stderr.write(`podtoken: unknown command "${escapeControlCharacters(command)}"\n\n${USAGE}`);
    return 2;
  }
  return run(args, io);
}

function version(): string {
  // ../package.json from both src/ (tests) and dist/ (the bin).
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}
