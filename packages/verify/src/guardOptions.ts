import type { TokenVerificationError, VerificationErrorCode } from './errors.js';

/** What the request glue tells {@link GuardOptions.onRefused} about a refused request. Holds no token. */
export interface RefusalEvent {
  /** The status answered: 401 (the token: missing or refused) or 503 (no verdict could be reached). */
  readonly status: 401 | 503;
  /** Why; see `VerificationErrorCode`. */
  readonly code: VerificationErrorCode;
  /** The reason, for logs: the error's message (never the token). */
  readonly message: string;
  /** The error itself (absent for `TOKEN_MISSING` and `TOKEN_TOO_LARGE` found by the glue). */
  readonly error: TokenVerificationError | undefined;
  /** The request's method. */
  readonly method: string;
  /** The request's path, without the query string (which may carry an `access_token`). */
  readonly path: string;
}

/** Options of the request glue: `createRequestGuard`, `expressMiddleware`, `fastifyHook`, `createFetchGuard`. */
export interface GuardOptions {
  /**
   * Called for every refused request, with the reason: the place to log it. The answer sent
   * says only `invalid_token` (RFC 6750) and nothing that helps an attacker. An exception
   * thrown here is swallowed.
   */
  onRefused?: (event: RefusalEvent) => void;
  /**
   * The `realm` of the `WWW-Authenticate` challenge; left out when not given. Printable ASCII
   * without `"` and `\`.
   */
  realm?: string;
  /**
   * Characters of `Authorization` header accepted; a longer header is refused
   * (`TOKEN_TOO_LARGE`) before it is parsed. Node's own limit on all headers together is
   * 16 KiB unless the server raised `maxHeaderSize`.
   * @default 16_384
   */
  maxHeaderLength?: number;
}
