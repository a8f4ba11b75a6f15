import type { TokenErrorCode } from './errors.js';
import { decodeToken } from './token.js';

/** Options of {@link TokenSource.getToken}. */
export interface GetTokenOptions {
  /** Stops waiting for the first load; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Anything that can hand out the current bearer token. Adapters take this interface,
 * so a source of your own (a token from Vault, say) plugs in as easily as a file.
 */
export interface TokenSource {
  /** The current token. Served from memory; waits only until the first load. */
  getToken(options?: GetTokenOptions): Promise<string>;
  /**
   * A server rejected `rejected` (e.g. HTTP 401): re-read now. Resolves when done.
   * Adapters retry a request once when the token changed after this.
   */
  invalidate?(rejected: string): Promise<void>;
  /** A name for logs, events and probes (a `FileTokenSource`'s `name` option, or its path). */
  readonly name?: string;
  /** How the source is doing now, for probes and dashboards: see {@link TokenSourceStatus}. */
  status?(): TokenSourceStatus;
}

/**
 * What state a source is in:
 * - `loading`: no token yet, still trying within `readyTimeout`;
 * - `ok`: serving a token that is not due for replacement (or is, and the kubelet has a
 *   little while left to write the next one);
 * - `refresh-overdue`: serving a token, but the file still holds it well after its
 *   `refreshAt` (two minutes, or half the time left to `exp` when that is shorter): the
 *   kubelet is late, or cannot reach the API server;
 * - `failing`: the last read failed or the file held content that was refused; a source
 *   with a good token keeps serving it meanwhile (see `serving`);
 * - `expired`: the only token the source has is past its `exp`;
 * - `closed`: `close()` was called.
 */
export type TokenSourceState = 'loading' | 'ok' | 'refresh-overdue' | 'expired' | 'failing' | 'closed';

/** What {@link TokenSource.status} returns. Never holds the token. Durations are in milliseconds. */
export interface TokenSourceStatus {
  /** The source's name (default: its path). */
  readonly name: string;
  readonly state: TokenSourceState;
  /** Whether `getToken()` answers with a token now (true for `ok`, `refresh-overdue`, and `failing` with a good token in memory). */
  readonly serving: boolean;
  /** Milliseconds until the token's `exp` (negative once past it); undefined without a token or an `exp`. */
  readonly expiresIn?: number;
  /** Milliseconds since the token's `iat`; undefined without a token or an `iat`. */
  readonly age?: number;
  /** When the source looks for the next token (`warnafter`, or 80 % of the lifetime). */
  readonly refreshAt?: Date;
  /** The token's `exp`. */
  readonly expiresAt?: Date;
  /** The last failure, while reads are failing (cleared by a good read). */
  readonly lastError?: { readonly code: TokenErrorCode; readonly at: Date };
}

/**
 * A source that always returns the same token: for tests, local development, or a token
 * handed over by another system. Validates the token once (a `TokenSourceError` with code
 * `TOKEN_MALFORMED` for an empty or broken one) but never reports it as expired.
 *
 * @example
 * ```ts
 * const api = withTokenSource(axios.create(), staticTokenSource(process.env.API_TOKEN!));
 * ```
 */
export function staticTokenSource(token: string): TokenSource & Required<Pick<TokenSource, 'name' | 'status'>> {
  const value = decodeToken(token).value;
  const promise = Promise.resolve(value);
  const status: TokenSourceStatus = Object.freeze({ name: 'static', state: 'ok', serving: true });
  return {
    name: 'static',
    getToken: () => promise,
    status: () => status,
  };
}
