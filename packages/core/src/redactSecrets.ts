import { Agent as HttpAgent } from 'node:http';
import { Socket } from 'node:net';

/** What {@link redactSecrets} puts where a secret was: `Bearer <token>` becomes `Bearer [redacted]`. */
export const REDACTED = '[redacted]';

/** Options of {@link redactSecrets}. */
export interface RedactSecretsOptions {
  /**
   * How many objects the walk visits at most, nearest first. A bound, not a target: the
   * objects an HTTP client's error holds number in the hundreds.
   * @default 20_000
   */
  maxObjects?: number;
}

/** What {@link redactSecrets} did. */
export interface RedactSecretsResult {
  /** Strings in which a secret was replaced. */
  readonly replaced: number;
  /** Strings that hold a secret but could not be changed (a frozen object, a getter). */
  readonly unreachable: number;
  /** Objects visited. */
  readonly visited: number;
  /** Whether the walk stopped at `maxObjects` before it had seen everything. */
  readonly truncated: boolean;
}

const MIN_SECRET_LENGTH = 8;

/**
 * Removes secrets (token values) from everything reachable from `root`, in place: every
 * string property, array element, `Map`/`Set` entry or error message that contains one of
 * `secrets` gets each occurrence replaced by {@link REDACTED}. Adapters call it on what they
 * hand back (an error from axios or got: its config or options, its request, its response),
 * so that `util.inspect` at any depth, `JSON.stringify`, `error.toJSON()` and logger
 * serializers cannot print the token.
 *
 * The walk is breadth first over own properties (string and symbol keys, enumerable or not)
 * of objects, arrays, errors, `Map`s and `Set`s. It reads data properties only (no getter
 * runs, except a fetch `Request`'s `headers`; `Headers` are cleaned through `set()`, as
 * undici 7 keeps them in private fields) and does not enter functions, byte buffers, promises, timers, live sockets
 * (`net.Socket`) or connection pools (`http.Agent`, undici dispatchers): through those an
 * error reaches other requests that may still be in flight, whose headers must not change
 * under them. A destroyed socket is entered: one that never connected still holds the
 * request's header text in its pending write.
 *
 * @param root - what to clean, e.g. an `AxiosError`.
 * @param secrets - the token values to look for; values shorter than 8 characters are ignored.
 * @param options - {@link RedactSecretsOptions}.
 * @returns counts of what was replaced and what could not be.
 *
 * @example
 * ```ts
 * try {
 *   await client.get(url);
 * } catch (error) {
 *   redactSecrets(error, [sentToken]);
 *   throw error; // util.inspect(error, { depth: Infinity }) no longer holds the token
 * }
 * ```
 */
export function redactSecrets(root: unknown, secrets: Iterable<string>, options: RedactSecretsOptions = {}): RedactSecretsResult {
  const maxObjects = options.maxObjects ?? 20_000;
  if (!Number.isInteger(maxObjects) || maxObjects < 1) throw new TypeError('redactSecrets: maxObjects must be a positive integer');
  const needles = [...new Set([...secrets].filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH))];
  let replaced = 0;
  let unreachable = 0;
  if (needles.length === 0 || !isWalkable(root)) return { replaced, unreachable, visited: 0, truncated: false };

  const clean = (text: string): string | undefined => {
    let out: string | undefined;
    for (const needle of needles) if ((out ?? text).includes(needle)) out = (out ?? text).split(needle).join(REDACTED);
    return out;
  };

  const seen = new Set<object>([root]);
  const queue: object[] = [root];
  let head = 0;
  const visit = (value: unknown): void => {
    if (isWalkable(value) && !seen.has(value)) {
      seen.add(value);
      queue.push(value);
    }
  };

  /** A fetch `Headers` keeps its list in private fields on some undici versions: clean it through its API. */
  const cleanHeaders = (headers: HeadersLike): void => {
    let entries: Array<[string, string]>;
    try {
      entries = [...headers];
    } catch {
      return;
    }
    for (const [name, value] of entries) {
      if (typeof value !== 'string') continue;
      const cleaned = clean(value);
      if (cleaned === undefined) continue;
      try {
        headers.set(name, cleaned);
        replaced += 1;
      } catch {
        unreachable += 1; // an immutable guard (a Response's headers)
      }
    }
  };

  while (head < queue.length && head < maxObjects) {
    const object = queue[head++]!;
    if (isHeadersLike(object)) cleanHeaders(object);
    else if (isRequestLike(object)) {
      // A fetch Request (axios' fetch adapter puts one in error.request): its headers live
      // behind a getter, and on undici 7 in private fields the walk cannot see.
      const headers = (object as { headers?: unknown }).headers;
      if (isHeadersLike(headers)) {
        cleanHeaders(headers);
        visit(headers);
      }
    }
    if (object instanceof Map) {
      for (const [key, value] of object) {
        if (typeof value === 'string') {
          const cleaned = clean(value);
          if (cleaned !== undefined) {
            object.set(key, cleaned);
            replaced += 1;
          }
        } else visit(value);
        visit(key);
      }
    } else if (object instanceof Set) {
      for (const value of [...object]) {
        if (typeof value === 'string') {
          const cleaned = clean(value);
          if (cleaned !== undefined) {
            object.delete(value);
            object.add(cleaned);
            replaced += 1;
          }
        } else visit(value);
      }
    }
    for (const key of Reflect.ownKeys(object)) {
      const descriptor = Reflect.getOwnPropertyDescriptor(object, key);
      if (descriptor === undefined || !('value' in descriptor)) continue;
      const value: unknown = descriptor.value;
      if (typeof value === 'string') {
        const cleaned = clean(value);
        if (cleaned === undefined) continue;
        if (descriptor.writable === true) {
          (object as Record<PropertyKey, unknown>)[key] = cleaned;
          replaced += 1;
        } else if (descriptor.configurable === true) {
          Reflect.defineProperty(object, key, { ...descriptor, value: cleaned });
          replaced += 1;
        } else unreachable += 1;
      } else visit(value);
    }
  }
  return { replaced, unreachable, visited: Math.min(head, queue.length), truncated: head < queue.length };
}

interface HeadersLike extends Iterable<[string, string]> {
  set(name: string, value: string): void;
}

/** A fetch `Headers` (global, undici's or node-fetch's): iterable pairs with `set`. */
function isHeadersLike(value: unknown): value is HeadersLike {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.prototype.toString.call(value) === '[object Headers]' &&
    typeof (value as Partial<HeadersLike>).set === 'function' &&
    typeof (value as Partial<HeadersLike>)[Symbol.iterator] === 'function'
  );
}

/** A fetch `Request` (global, undici's or node-fetch's). */
function isRequestLike(value: object): boolean {
  return Object.prototype.toString.call(value) === '[object Request]';
}

/** Objects the walk enters: not functions, bytes, promises, sockets or connection pools. */
function isWalkable(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  return !(
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    value instanceof Promise ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    (value instanceof Socket && !value.destroyed) ||
    value instanceof HttpAgent ||
    value === process ||
    value === globalThis ||
    isTimer(value) ||
    isDispatcher(value)
  );
}

/** A Node timer: timers are linked into lists shared with every other timer of the process. */
function isTimer(value: object): boolean {
  return Object.hasOwn(value, '_onTimeout') || Object.hasOwn(value, '_onImmediate');
}

/** An undici dispatcher (Agent, Pool, Client): like `http.Agent`, shared by other requests. */
function isDispatcher(value: object): boolean {
  const candidate = value as { dispatch?: unknown; close?: unknown; destroy?: unknown };
  return typeof candidate.dispatch === 'function' && typeof candidate.close === 'function' && typeof candidate.destroy === 'function';
}
