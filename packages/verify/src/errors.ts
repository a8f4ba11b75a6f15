/**
 * Why a token was refused, or why it could not be checked, as a stable string a program can
 * switch on. Codes starting with `TOKEN_` are about the token (a request carrying it gets
 * 401); the others say the verifier could not reach a verdict (503: it is never an "accept").
 *
 * - `TOKEN_MISSING`: no token (an empty string; in the request glue, no `Bearer` credentials).
 * - `TOKEN_TOO_LARGE`: longer than `maxTokenLength`; refused before it is parsed.
 * - `TOKEN_MALFORMED`: not a JWT, or a broken one (cut short, bad base64url, not JSON).
 * - `TOKEN_ALGORITHM_NOT_ALLOWED`: the header's `alg` is not in `algorithms` (`none`, `HS256`…).
 * - `TOKEN_LEGACY_REFUSED`: a legacy Secret-based token (`iss: kubernetes/serviceaccount`,
 *   no `exp`, no `aud`) while `allowLegacyTokens` is false.
 * - `TOKEN_CLAIMS_INVALID`: not a ServiceAccount token (no `kubernetes.io` claim, no `exp`,
 *   a `sub` that is not `system:serviceaccount:<namespace>:<name>` or disagrees with the claims).
 * - `TOKEN_ISSUER_MISMATCH`: `iss` is not the expected issuer.
 * - `TOKEN_AUDIENCE_MISMATCH`: `aud` holds none of `audiences`.
 * - `TOKEN_EXPIRED`: past `exp` (beyond `clockTolerance`).
 * - `TOKEN_NOT_YET_VALID`: before `nbf` (beyond `clockTolerance`).
 * - `TOKEN_KEY_NOT_FOUND`: OIDC: no key of the issuer's key set has the token's `kid`, even
 *   after fetching the set again (at most once per `jwksCooldown`).
 * - `TOKEN_SIGNATURE_INVALID`: OIDC: the signature does not verify.
 * - `TOKEN_REJECTED`: TokenReview: the API server says the token is not authenticated (its
 *   Pod or ServiceAccount is gone, it was revoked, or its signature is bad).
 * - `REVIEW_UNAUTHORIZED`: TokenReview: the API server answered 401 to the verifier's own
 *   credentials.
 * - `REVIEW_FORBIDDEN`: TokenReview: 403; the verifier's ServiceAccount may not create
 *   `tokenreviews` (bind it to the `system:auth-delegator` ClusterRole).
 * - `REVIEW_UNAVAILABLE`: TokenReview: the API server could not be reached, timed out,
 *   answered 429 or 5xx, or the TokenReview client could not be set up (not in a pod,
 *   `@kubernetes/client-node` not installed).
 * - `REVIEW_FAILED`: TokenReview: any other unexpected answer (a 4xx, a body that is not a
 *   TokenReview).
 * - `DISCOVERY_FAILED`: OIDC: the discovery document or the key set could not be fetched or
 *   is invalid (wrong `issuer`, no `jwks_uri`, not JSON, not in a pod).
 * - `VERIFIER_CLOSED`: `close()` was called.
 */
export type VerificationErrorCode =
  | 'TOKEN_MISSING'
  | 'TOKEN_TOO_LARGE'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_ALGORITHM_NOT_ALLOWED'
  | 'TOKEN_LEGACY_REFUSED'
  | 'TOKEN_CLAIMS_INVALID'
  | 'TOKEN_ISSUER_MISMATCH'
  | 'TOKEN_AUDIENCE_MISMATCH'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_KEY_NOT_FOUND'
  | 'TOKEN_SIGNATURE_INVALID'
  | 'TOKEN_REJECTED'
  | 'REVIEW_UNAUTHORIZED'
  | 'REVIEW_FORBIDDEN'
  | 'REVIEW_UNAVAILABLE'
  | 'REVIEW_FAILED'
  | 'DISCOVERY_FAILED'
  | 'VERIFIER_CLOSED';

/** Every code, in the order of {@link VerificationErrorCode}; handy for exhaustive tests and docs. */
export const VERIFICATION_ERROR_CODES: readonly VerificationErrorCode[] = Object.freeze([
  'TOKEN_MISSING',
  'TOKEN_TOO_LARGE',
  'TOKEN_MALFORMED',
  'TOKEN_ALGORITHM_NOT_ALLOWED',
  'TOKEN_LEGACY_REFUSED',
  'TOKEN_CLAIMS_INVALID',
  'TOKEN_ISSUER_MISMATCH',
  'TOKEN_AUDIENCE_MISMATCH',
  'TOKEN_EXPIRED',
  'TOKEN_NOT_YET_VALID',
  'TOKEN_KEY_NOT_FOUND',
  'TOKEN_SIGNATURE_INVALID',
  'TOKEN_REJECTED',
  'REVIEW_UNAUTHORIZED',
  'REVIEW_FORBIDDEN',
  'REVIEW_UNAVAILABLE',
  'REVIEW_FAILED',
  'DISCOVERY_FAILED',
  'VERIFIER_CLOSED',
]);

// A registry symbol, so that two copies of this package in one app recognise each other's
// errors. Not core's 'podtoken.error': isTokenSourceError() must not claim these.
const BRAND = Symbol.for('podtoken.verify.error');

/** Options of {@link TokenVerificationError}. */
export interface TokenVerificationErrorOptions {
  /** The underlying error (a network error, say). Never one whose rendering holds the token. */
  cause?: unknown;
  /** The HTTP status the API server or the issuer answered, when there was one. */
  status?: number;
}

/**
 * The one error type `@podtoken/verify` rejects with. Its message says what was wrong and, for
 * the verifier's own problems, what to do; it never holds the token, and claim values it
 * quotes are cut to printable ASCII.
 *
 * @example
 * ```ts
 * try {
 *   const identity = await verifier.verify(token);
 * } catch (error) {
 *   if (isTokenVerificationError(error) && error.code === 'TOKEN_EXPIRED') {
 *     // the caller should have sent a fresher token
 *   }
 * }
 * ```
 */
export class TokenVerificationError extends Error {
  /** What went wrong; see {@link VerificationErrorCode}. */
  readonly code: VerificationErrorCode;
  /** The HTTP status the API server (TokenReview) or the issuer (OIDC) answered, when one did. */
  readonly status: number | undefined;

  constructor(code: VerificationErrorCode, message: string, options: TokenVerificationErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TokenVerificationError';
    this.code = code;
    this.status = options.status;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * Whether `value` is a {@link TokenVerificationError}, also one made by another copy of
 * `@podtoken/verify` loaded in the same process (where `instanceof` would say no).
 *
 * @example
 * ```ts
 * if (isTokenVerificationError(error) && error.code.startsWith('TOKEN_')) reply401();
 * ```
 */
export function isTokenVerificationError(value: unknown): value is TokenVerificationError {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[BRAND] === true &&
    typeof (value as { code?: unknown }).code === 'string'
  );
}

/**
 * Whether the error says something about the token (`TOKEN_*`: answer 401) rather than about
 * the verifier (it could not reach a verdict: answer 503, and never accept).
 *
 * @example
 * ```ts
 * const status = isTokenProblem(error) ? 401 : 503;
 * ```
 */
export function isTokenProblem(error: TokenVerificationError): boolean {
  return error.code.startsWith('TOKEN_');
}
