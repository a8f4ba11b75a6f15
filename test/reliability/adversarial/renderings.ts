import { inspect } from 'node:util';
import { err as pinoErrorSerializer } from 'pino-std-serializers';
import safeStableStringify from 'safe-stable-stringify';

// Every way a log line could render an error an HTTP client rejected with, and a check that
// none of them holds a token. Nothing here prints a token: a leak is reported by the
// rendering's name only.

const safeStringify = safeStableStringify.configure({ circularValue: '[Circular]', bigint: true, deterministic: false });

/** One rendering: its name and how to make it (it may throw: then it renders nothing). */
interface Rendering {
  readonly name: string;
  render(value: unknown): string | undefined;
}

/** The parts of an error loggers are told to serialize: axios' config/request/response, got's options/request/response. */
const PARTS = ['config', 'options', 'request', 'response'] as const;

const cheap: Rendering[] = [
  { name: 'console.log (inspect, depth 2)', render: (value) => inspect(value) },
  { name: 'String(error)', render: (value) => String(value) },
  { name: 'JSON.stringify', render: (value) => JSON.stringify(value) },
  {
    name: 'error.toJSON()',
    render: (value) => {
      const toJSON = (value as { toJSON?: unknown } | null)?.toJSON;
      return typeof toJSON === 'function' ? safeStringify(toJSON.call(value)) : undefined;
    },
  },
  // pino: logger.error(err) runs the std `err` serializer (enumerable fields, cause chain) and
  // writes it with safe-stable-stringify.
  { name: 'pino err serializer', render: (value) => (value instanceof Error ? safeStringify(pinoErrorSerializer(value)) : undefined) },
  // winston: format.errors() + format.json(): the error's own enumerable fields, message and stack, in safe-stable-stringify.
  {
    name: 'winston errors+json',
    render: (value) => (value instanceof Error ? safeStringify({ level: 'error', ...value, message: value.message, stack: value.stack }) : undefined),
  },
  ...PARTS.flatMap((part): Rendering[] => [
    { name: `serializer of err.${part}`, render: (value) => renderPart(value, part, (v) => safeStringify(v)) },
    { name: `console.log(err.${part})`, render: (value) => renderPart(value, part, (v) => inspect(v)) },
  ]),
];

const deep: Rendering[] = [
  { name: 'inspect, depth Infinity', render: (value) => inspect(value, { depth: Infinity }) },
  { name: 'inspect, depth Infinity, showHidden', render: (value) => inspect(value, { depth: Infinity, showHidden: true }) },
];

function renderPart(value: unknown, part: (typeof PARTS)[number], render: (v: unknown) => string | undefined): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const inner = (value as Record<string, unknown>)[part];
  return inner === undefined ? undefined : render(inner);
}

/** How many renderings {@link leakingRenderings} makes (cheap, and with `deep`). */
export const RENDERING_COUNT = { cheap: cheap.length, deep: cheap.length + deep.length };

/**
 * The names of the renderings of `value` that hold any of `secrets` (or a 16-character
 * slice of one: a token cut short still leaks). `deep` adds `util.inspect` at depth
 * Infinity, with and without hidden fields (slow on errors that reach sockets).
 */
export function leakingRenderings(value: unknown, secrets: readonly string[], deepRenderings: boolean): string[] {
  const leaks: string[] = [];
  for (const rendering of deepRenderings ? [...cheap, ...deep] : cheap) {
    let text: string | undefined;
    try {
      text = rendering.render(value);
    } catch {
      text = undefined; // e.g. JSON.stringify on a circular object: that logger prints nothing
    }
    if (text !== undefined && secrets.some((secret) => holds(text, secret))) leaks.push(rendering.name);
  }
  return leaks;
}

function holds(text: string, secret: string): boolean {
  for (let i = 0; i + 16 <= secret.length; i += 8) if (text.includes(secret.slice(i, i + 16))) return true;
  return secret.length < 16 && text.includes(secret);
}
