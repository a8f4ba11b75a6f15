import { inspect } from 'node:util';

// How an app's logs render what an adapter hands back: console.log/console.error
// (util.inspect at its default depth), util.inspect at any depth, JSON.stringify, and a logger's
// error serializer (pino's: type, message, stack, every enumerable own property, `cause`,
// recursively). A test looks for the token text in each; none is ever printed.

/** Each rendering of `value`, by name. */
export function renderings(value: unknown): Record<string, string> {
  return {
    'console (inspect, depth 2)': inspect(value),
    'inspect depth 4': inspect(value, { depth: 4 }),
    'inspect depth ∞': inspect(value, { depth: Infinity }),
    'inspect depth ∞, hidden': safely(() => inspect(value, { depth: Infinity, showHidden: true })),
    JSON: safely(() => JSON.stringify(value, cycleSafe()) ?? ''),
    'logger serializer': safely(() => JSON.stringify(serializeError(value), cycleSafe()) ?? ''),
  };
}

/** The names of the renderings of `value` that contain `secret` (an empty list when none does). */
export function renderingsHolding(value: unknown, secret: string): string[] {
  return Object.entries(renderings(value))
    .filter(([, text]) => text.includes(secret))
    .map(([name]) => name);
}

function safely(render: () => string): string {
  try {
    return render();
  } catch (error) {
    return `<render failed: ${(error as Error).message}>`;
  }
}

function cycleSafe(): (key: string, value: unknown) => unknown {
  const seen = new WeakSet<object>();
  return (_key, value) => {
    if (typeof value === 'bigint') return String(value);
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return '[Circular]';
      seen.add(value);
    }
    return value;
  };
}

/** What pino's standard `err` serializer keeps of an error. */
function serializeError(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  const out: Record<string, unknown> = {};
  if (value instanceof Error) {
    out['type'] = value.constructor?.name;
    out['message'] = value.message;
    out['stack'] = value.stack;
  }
  for (const [key, entry] of Object.entries(value)) {
    out[key] = typeof entry === 'object' && entry !== null && entry instanceof Error ? serializeError(entry, seen) : entry;
  }
  const cause = (value as { cause?: unknown }).cause;
  if (cause !== undefined) out['cause'] = serializeError(cause, seen);
  return out;
}
