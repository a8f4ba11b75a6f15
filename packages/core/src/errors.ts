/**
 * What went wrong, as a stable string a program can switch on.
 *
 * - `TOKEN_FILE_MISSING`: the token file (or its folder) does not exist, or is a dangling symlink.
 * - `TOKEN_FILE_UNREADABLE`: the path exists but cannot be read (permissions, a folder, an I/O error).
 * - `TOKEN_MALFORMED`: the content is empty, not UTF-8, a broken JWT, or not a JWT where a JWT was before.
 * - `TOKEN_TOO_LARGE`: the file is larger than `maxTokenBytes`.
 * - `TOKEN_EXPIRED`: the token is past its `exp` (no clock-skew allowance).
 * - `TOKEN_AUDIENCE_MISMATCH`: the token's `aud` holds none of the expected audiences.
 * - `TOKEN_NOT_READY`: no token could be loaded within `readyTimeout`.
 * - `TOKEN_SOURCE_CLOSED`: the source was closed.
 */
export type TokenErrorCode =
  | 'TOKEN_FILE_MISSING'
  | 'TOKEN_FILE_UNREADABLE'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_TOO_LARGE'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_AUDIENCE_MISMATCH'
  | 'TOKEN_NOT_READY'
  | 'TOKEN_SOURCE_CLOSED';

/** Every code, in the order of {@link TokenErrorCode}; handy for exhaustive tests and docs. */
export const TOKEN_ERROR_CODES: readonly TokenErrorCode[] = Object.freeze([
  'TOKEN_FILE_MISSING',
  'TOKEN_FILE_UNREADABLE',
  'TOKEN_MALFORMED',
  'TOKEN_TOO_LARGE',
  'TOKEN_EXPIRED',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_NOT_READY',
  'TOKEN_SOURCE_CLOSED',
]);

// A registry symbol, not a module-local one: two copies of @podtoken/core in one app
// (an adapter pinned to another minor version, say) must still recognise each other's errors.
const BRAND = Symbol.for('podtoken.error');

/** Options of {@link TokenSourceError}. */
export interface TokenSourceErrorOptions {
  /** The underlying error (an `fs` error, say). Never an error whose message could hold token text. */
  cause?: unknown;
  /** The token file the error is about, when there is one. */
  path?: string;
}

/**
 * The one error type podtoken throws, rejects with and reports through `onError`.
 *
 * Messages say what happened and what to do; they never contain a token value.
 *
 * @example
 * ```ts
 * try {
 *   await source.getToken();
 * } catch (error) {
 *   if (isTokenSourceError(error) && error.code === 'TOKEN_EXPIRED') {
 *     // the kubelet has not written a fresh token in time
 *   }
 * }
 * ```
 */
export class TokenSourceError extends Error {
  /** What went wrong; see {@link TokenErrorCode}. */
  readonly code: TokenErrorCode;
  /** The token file the error is about, when there is one. */
  readonly path: string | undefined;

  constructor(code: TokenErrorCode, message: string, options: TokenSourceErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenSourceError';
    this.code = code;
    this.path = options.path;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * Whether `value` is a {@link TokenSourceError}, also one made by another copy of `@podtoken/core`
 * loaded in the same process (where `instanceof` would say no).
 */
export function isTokenSourceError(value: unknown): value is TokenSourceError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true &&
    typeof (value as { code?: unknown }).code === 'string'
  );
}

const MAX_QUOTED = 64;

/**
 * @internal Text from a token file (a claim) made safe to put in a message: whoever writes the file
 * controls it, and messages reach terminals and logs. Control, non-ASCII, quote and
 * backslash characters are escaped as `\uXXXX`, and text is cut at 64 characters.
 */
export function printable(text: string): string {
  const cut = text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}...` : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[^\x20-\x7e]|["\\]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
