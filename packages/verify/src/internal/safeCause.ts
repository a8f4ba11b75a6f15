import { inspect } from 'node:util';

/**
 * `cause` when no rendering of it (message, stack, `util.inspect` with its properties) holds
 * `token`; otherwise undefined. Errors from HTTP clients can carry the request they failed
 * on, and a TokenReview request carries the token in its body.
 */
export function safeCause(cause: unknown, token: string | undefined): unknown {
  if (cause === undefined || token === undefined) return cause;
  let rendered: string;
  try {
    rendered = `${String((cause as { message?: unknown })?.message)}\n${String((cause as { stack?: unknown })?.stack)}\n${inspect(cause, { depth: 6 })}`;
  } catch {
    return undefined;
  }
  return rendered.includes(token) ? undefined : cause;
}
