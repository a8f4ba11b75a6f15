import { decodeToken, isTokenSourceError, type Token } from '@podtoken/core';
import { TokenVerificationError } from '../errors.js';
import { printable } from './printable.js';

/** The legacy Secret-based tokens' `iss`. */
export const LEGACY_ISSUER = 'kubernetes/serviceaccount';

/** What {@link inspectToken} checks against. */
export interface InspectConfig {
  readonly maxTokenLength: number;
  readonly algorithms: ReadonlySet<string>;
  readonly audiences: ReadonlySet<string>;
  readonly allowLegacyTokens: boolean;
  /** Seconds. */
  readonly clockTolerance: number;
}

/** A token that passed {@link inspectToken}: decoded, not yet authenticated. */
export interface InspectedToken {
  readonly decoded: Token;
  readonly legacy: boolean;
  /** The token's audiences that the verifier accepts (empty for a legacy token). */
  readonly audiences: readonly string[];
  /** `exp` in ms, or Infinity for a legacy token. */
  readonly expiresAtMs: number;
}

const SERVICE_ACCOUNT_PREFIX = 'system:serviceaccount:';

const refuse = (code: ConstructorParameters<typeof TokenVerificationError>[0], message: string) => new TokenVerificationError(code, message);

/**
 * Everything that can be refused without a key or a round trip, cheapest first: the length
 * (before anything reads the string), the header's `alg`, the JWT's form, the kind of token,
 * `iss` (when `issuer` is known), `exp`/`nbf`, `aud`, and the ServiceAccount claims. The
 * claims are not authenticated yet: this only ever refuses; acceptance needs the signature
 * (OIDC) or the API server (TokenReview). Refusing early also spares the key set a refetch and
 * the API server a TokenReview for tokens that could never pass.
 */
export function inspectToken(token: unknown, config: InspectConfig, issuer: string | undefined, now = Date.now()): InspectedToken {
  if (typeof token !== 'string') throw new TypeError('verify: token must be a string');
  if (token.length === 0) throw refuse('TOKEN_MISSING', 'No token was given.');
  if (token.length > config.maxTokenLength) {
    throw refuse('TOKEN_TOO_LARGE', `The token is ${token.length} characters long, more than maxTokenLength (${config.maxTokenLength}); it was not read.`);
  }

  // The header first: `alg: none` has an empty signature, which the JWT parser below would
  // call malformed; it deserves its own code.
  const dot = token.indexOf('.');
  let alg: unknown;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot < 0 ? token.length : dot), 'base64url').toString('utf8'));
    alg = typeof header === 'object' && header !== null ? (header as { alg?: unknown }).alg : undefined;
  } catch {
    alg = undefined;
  }
  if (dot <= 0 || typeof alg !== 'string') {
    throw refuse('TOKEN_MALFORMED', 'The token is not a JWT: its header does not decode to a JSON object with an "alg".');
  }
  if (!config.algorithms.has(alg)) {
    throw refuse(
      'TOKEN_ALGORITHM_NOT_ALLOWED',
      `The token is signed with ${printable(alg)}, which is not one of the allowed algorithms (${[...config.algorithms].join(', ')}).`,
    );
  }

  let decoded: Token;
  try {
    decoded = decodeToken(token);
  } catch (error) {
    // core's messages name the defect, never the token.
    if (isTokenSourceError(error)) throw refuse('TOKEN_MALFORMED', error.message);
    throw error;
  }
  if (decoded.kind === 'opaque') throw refuse('TOKEN_MALFORMED', 'The token is not a JWT.');
  if (decoded.value.length !== token.length) throw refuse('TOKEN_MALFORMED', 'The token has white space around it.');

  const legacy = decoded.kind === 'legacy';
  if (legacy && !config.allowLegacyTokens) {
    throw refuse(
      'TOKEN_LEGACY_REFUSED',
      'The token is a legacy Secret-based ServiceAccount token (no audience, no expiry); it is refused unless allowLegacyTokens is set. The caller should send a projected (bound) token.',
    );
  }
  if (!legacy && decoded.kind !== 'bound') {
    throw refuse('TOKEN_CLAIMS_INVALID', 'The token is not a bound ServiceAccount token: it has no "kubernetes.io" claim or no "exp".');
  }

  const expectedIssuer = legacy ? LEGACY_ISSUER : issuer;
  if (expectedIssuer !== undefined && decoded.issuer !== expectedIssuer) {
    throw refuse('TOKEN_ISSUER_MISMATCH', `The token's issuer is ${printable(decoded.issuer)}, not ${printable(expectedIssuer)}.`);
  }

  // The same comparisons as jose's jwtVerify (exp <= now - tolerance is expired).
  const seconds = now / 1000;
  const exp = decoded.expiresAt === undefined ? undefined : decoded.expiresAt.getTime() / 1000;
  if (exp !== undefined && exp <= seconds - config.clockTolerance) {
    throw refuse('TOKEN_EXPIRED', `The token expired at ${decoded.expiresAt!.toISOString()}.`);
  }
  const nbf = decoded.notBefore === undefined ? undefined : decoded.notBefore.getTime() / 1000;
  if (nbf !== undefined && nbf > seconds + config.clockTolerance) {
    throw refuse('TOKEN_NOT_YET_VALID', `The token is not valid before ${decoded.notBefore!.toISOString()}.`);
  }

  const audiences = legacy ? [] : decoded.audience.filter((audience) => config.audiences.has(audience));
  if (!legacy && audiences.length === 0) {
    const held = decoded.audience.length === 0 ? 'no audience' : `the audiences ${decoded.audience.slice(0, 5).map(printable).join(', ')}`;
    throw refuse('TOKEN_AUDIENCE_MISMATCH', `The token has ${held}, none of which this service accepts (${[...config.audiences].join(', ')}).`);
  }

  const k8s = decoded.kubernetes;
  const namespace = k8s?.namespace ?? '';
  const account = k8s?.serviceAccount.name ?? '';
  if (
    namespace === '' ||
    account === '' ||
    namespace.includes(':') ||
    account.includes(':') ||
    decoded.subject !== `${SERVICE_ACCOUNT_PREFIX}${namespace}:${account}`
  ) {
    throw refuse(
      'TOKEN_CLAIMS_INVALID',
      `The token's subject ${printable(decoded.subject)} is not system:serviceaccount:<namespace>:<name> matching its "kubernetes.io" claims.`,
    );
  }
  return { decoded, legacy, audiences, expiresAtMs: exp === undefined ? Number.POSITIVE_INFINITY : exp * 1000 };
}
