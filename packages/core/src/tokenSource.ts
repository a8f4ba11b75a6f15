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
export function staticTokenSource(token: string): TokenSource {
  const value = decodeToken(token).value;
  const promise = Promise.resolve(value);
  return {
    getToken: () => promise,
  };
}
