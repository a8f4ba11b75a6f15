import { printable, TokenSourceError } from './errors.js';

/** A named Kubernetes object a bound token is tied to. */
export interface Ref {
  readonly name: string;
  /** Empty when the token does not carry one (legacy tokens have no pod or node). */
  readonly uid: string;
}

/** The `kubernetes.io` claims of a ServiceAccount token (bound or legacy), flattened. */
export interface KubernetesClaims {
  readonly namespace: string;
  readonly serviceAccount: Ref;
  readonly pod?: Ref;
  readonly node?: Ref;
  /** Legacy tokens come from a Secret; bound tokens may be bound to one instead of a pod. */
  readonly secret?: Ref;
}

/**
 * What kind of token a file held.
 *
 * - `bound`: a projected ServiceAccount token (has `exp` and a `kubernetes.io` claim).
 * - `legacy`: a Secret-based ServiceAccount token (`iss: kubernetes/serviceaccount`, no `exp`).
 * - `jwt`: any other JWT (an OIDC token from another issuer, say).
 * - `opaque`: not a JWT at all; never expires from the client's point of view.
 */
export type TokenKind = 'bound' | 'legacy' | 'jwt' | 'opaque';

/**
 * A decoded token. The signature is not checked: the pod holds no key to check it with,
 * and the API server checks it anyway.
 *
 * `value` is the token itself. It is not enumerable, and `toJSON`, `toString` and
 * `util.inspect` redact it, so logging a `Token` never leaks it.
 */
export interface Token {
  /** The raw token, trimmed of surrounding white space. Never print it. */
  readonly value: string;
  readonly kind: TokenKind;
  /** `aud`, always as an array (empty when absent). */
  readonly audience: readonly string[];
  readonly subject?: string;
  readonly issuer?: string;
  readonly issuedAt?: Date;
  readonly notBefore?: Date;
  readonly expiresAt?: Date;
  /** `kubernetes.io.warnafter`: set on tokens whose expiry the API server extended. */
  readonly warnAfter?: Date;
  /**
   * When a reader should look for a fresh token: `warnAfter` when present (and before
   * `expiresAt`), else `issuedAt + refreshRatio × (expiresAt − issuedAt)`.
   * Undefined for tokens that never expire.
   */
  readonly refreshAt?: Date;
  readonly kubernetes?: KubernetesClaims;
}

/** Options of {@link decodeToken}. */
export interface DecodeTokenOptions {
  /**
   * Fraction of the lifetime (`exp − iat`) after which `refreshAt` falls, for tokens without `warnafter`.
   * @default 0.8
   */
  refreshRatio?: number;
}

const INSPECT = Symbol.for('nodejs.util.inspect.custom');
const LEGACY_ISSUER = 'kubernetes/serviceaccount';
// A header value cannot hold control characters or spaces; a file that does is not a token.
const OPAQUE_TOKEN = /^[\x21-\x7e]+$/;
// Every JWT starts with these three characters (the base64url of `{"`).
const JWT_START = 'eyJ';
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
// Signature sizes by algorithm: RSA signatures are as long as the modulus (1024 to 8192 bits).
const RSA_BYTES = [128, 256, 384, 512, 1024];
const SIGNATURE_BYTES: Readonly<Record<string, readonly number[]>> = {
  RS256: RSA_BYTES,
  RS384: RSA_BYTES,
  RS512: RSA_BYTES,
  PS256: RSA_BYTES,
  PS384: RSA_BYTES,
  PS512: RSA_BYTES,
  ES256: [64],
  ES384: [96],
  ES512: [132],
  EdDSA: [64],
  Ed25519: [64],
  HS256: [32],
  HS384: [48],
  HS512: [64],
};

/**
 * Decodes a token without checking its signature, and works out when to refresh it.
 *
 * Accepts bound, legacy and other JWTs and opaque (non-JWT) tokens. Throws a
 * {@link TokenSourceError} with code `TOKEN_MALFORMED` for empty input, a broken JWT
 * (anything with two dots or starting with `eyJ` must decode as one, and `e` or `ey` alone
 * is the start of one, cut short), or characters that cannot go in an `Authorization`
 * header. Does not check expiry or audience.
 *
 * @example
 * ```ts
 * const token = decodeToken(await readFile(DEFAULT_TOKEN_PATH, 'utf8'));
 * console.log(token.kind, token.subject, token.expiresAt, token.refreshAt);
 * ```
 */
export function decodeToken(raw: string, options: DecodeTokenOptions = {}): Token {
  if (typeof raw !== 'string') {
    throw new TypeError('decodeToken: raw must be a string');
  }
  const refreshRatio = options.refreshRatio ?? 0.8;
  validateRefreshRatio(refreshRatio, 'decodeToken');
  const value = raw.trim();
  if (value === '') {
    throw new TokenSourceError('TOKEN_MALFORMED', 'The token is empty.');
  }
  const parts = value.split('.');
  // `e` and `ey` are what a file that is being given a JWT holds for a moment: not tokens.
  const looksLikeJwt = parts.length === 3 || value.startsWith(JWT_START) || JWT_START.startsWith(value);
  if (!looksLikeJwt) {
    if (!OPAQUE_TOKEN.test(value)) {
      throw new TokenSourceError(
        'TOKEN_MALFORMED',
        'The token holds characters that cannot be sent in an Authorization header (spaces, control characters or non-ASCII).',
      );
    }
    return createToken(value, { kind: 'opaque', audience: [] });
  }
  return fromClaims(value, decodeJwtParts(parts), refreshRatio);
}

/** @internal Throws the TypeError that names the option, as every entry point does. */
export function validateRefreshRatio(ratio: number, where: string): void {
  if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1)) {
    throw new TypeError(`${where}: refreshRatio must be a number in (0, 1], got ${String(ratio)}`);
  }
}

type Claims = Record<string, unknown>;

function decodeJwtParts(parts: string[]): Claims {
  const malformed = (why: string) =>
    new TokenSourceError('TOKEN_MALFORMED', `The token is not a well-formed JWT: ${why}.`);
  if (parts.length !== 3) throw malformed(`it has ${parts.length} dot-separated parts, not 3`);
  if (!parts.every(isBase64url)) throw malformed('a part is empty or not base64url');
  const header = decodeJsonSegment(parts[0]!);
  if (header === undefined) throw malformed('the header does not decode to a JSON object');
  if (typeof header['alg'] !== 'string') throw malformed('the header has no "alg"');
  // A write cut inside the signature still decodes; its length gives it away.
  const lengths = Object.hasOwn(SIGNATURE_BYTES, header['alg']) ? SIGNATURE_BYTES[header['alg']] : undefined;
  const signatureBytes = Math.floor((parts[2]!.length * 3) / 4);
  if (lengths !== undefined && !lengths.includes(signatureBytes)) {
    throw malformed(`its ${printable(header['alg'])} signature is ${signatureBytes} bytes long (cut short?)`);
  }
  const claims = decodeJsonSegment(parts[1]!);
  if (claims === undefined) throw malformed('the payload does not decode to a JSON object');
  return claims;
}

function fromClaims(value: string, claims: Claims, refreshRatio: number): Token {
  if (claims.exp !== undefined && numericDate(claims.exp) === undefined) {
    // An exp we cannot read must not become "never expires".
    throw new TokenSourceError('TOKEN_MALFORMED', 'The token is not a well-formed JWT: its "exp" is not a usable NumericDate.');
  }
  const audience = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud.filter(isString) : [];
  const issuedAt = numericDate(claims.iat);
  const notBefore = numericDate(claims.nbf);
  const expiresAt = numericDate(claims.exp);
  const k8s = claims['kubernetes.io'];
  const bound = isRecord(k8s);
  const warnAfter = bound ? numericDate(k8s['warnafter']) : undefined;
  const isLegacy = claims.iss === LEGACY_ISSUER;
  const kind = isLegacy ? 'legacy' : bound && expiresAt !== undefined ? 'bound' : 'jwt';
  const kubernetes = bound ? boundClaims(k8s) : isLegacy ? legacyClaims(claims) : undefined;

  return createToken(value, {
    kind,
    audience,
    subject: typeof claims.sub === 'string' ? claims.sub : undefined,
    issuer: typeof claims.iss === 'string' ? claims.iss : undefined,
    issuedAt,
    notBefore,
    expiresAt,
    warnAfter,
    refreshAt: refreshTime({ issuedAt, notBefore, expiresAt, warnAfter }, refreshRatio),
    kubernetes,
  });
}

// Why warnafter wins: a default token is requested for 3607 s but the API server may
// extend its exp to a year; 80 % of that is ~292 days, long after the kubelet has moved on.
function refreshTime(
  t: { issuedAt: Date | undefined; notBefore: Date | undefined; expiresAt: Date | undefined; warnAfter: Date | undefined },
  ratio: number,
): Date | undefined {
  if (t.expiresAt === undefined) return undefined;
  const exp = t.expiresAt.getTime();
  if (t.warnAfter !== undefined && t.warnAfter.getTime() < exp) return t.warnAfter;
  const start = (t.issuedAt ?? t.notBefore)?.getTime();
  // Without iat or nbf the lifetime is unknown: look for a new token from expiry on.
  if (start === undefined || start >= exp) return t.expiresAt;
  return new Date(start + Math.floor(ratio * (exp - start)));
}

function boundClaims(k8s: Record<string, unknown>): KubernetesClaims | undefined {
  const namespace = typeof k8s['namespace'] === 'string' ? k8s['namespace'] : '';
  const serviceAccount = ref(k8s['serviceaccount']) ?? { name: '', uid: '' };
  return withoutUndefined({
    namespace,
    serviceAccount,
    pod: ref(k8s['pod']),
    node: ref(k8s['node']),
    secret: ref(k8s['secret']),
  });
}

function legacyClaims(claims: Claims): KubernetesClaims {
  const str = (key: string) => (typeof claims[key] === 'string' ? (claims[key] as string) : '');
  const secretName = str('kubernetes.io/serviceaccount/secret.name');
  return withoutUndefined({
    namespace: str('kubernetes.io/serviceaccount/namespace'),
    serviceAccount: {
      name: str('kubernetes.io/serviceaccount/service-account.name'),
      uid: str('kubernetes.io/serviceaccount/service-account.uid'),
    },
    secret: secretName ? { name: secretName, uid: '' } : undefined,
  });
}

function ref(value: unknown): Ref | undefined {
  if (!isRecord(value) || typeof value['name'] !== 'string') return undefined;
  return { name: value['name'], uid: typeof value['uid'] === 'string' ? value['uid'] : '' };
}

// The largest NumericDate a JS Date can hold (±8.64e15 ms); beyond it a Date is invalid.
const MAX_NUMERIC_DATE = 8.64e12;

function numericDate(value: unknown): Date | undefined {
  return typeof value === 'number' && Number.isFinite(value) && Math.abs(value) <= MAX_NUMERIC_DATE
    ? new Date(value * 1000)
    : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isString(value: unknown): value is string {
  return typeof value === 'string';
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
type Fields = { [K in keyof Omit<Token, 'value'>]-?: Token[K] | undefined };

function withoutUndefined<T extends object>(object: { [K in keyof T]: T[K] | undefined }): T {
  for (const key of Object.keys(object) as Array<keyof T>) {
    if (object[key] === undefined) delete object[key];
  }
  return object as T;
}

function createToken(value: string, fields: Partial<Fields> & Pick<Fields, 'kind' | 'audience'>): Token {
  const token = withoutUndefined<Mutable<Omit<Token, 'value'>>>({ ...fields, audience: Object.freeze([...(fields.audience ?? [])]) });
  // Non-enumerable: spreading, Object.entries and structured logging never see it.
  Object.defineProperty(token, 'value', { value, enumerable: false });
  Object.defineProperties(token, {
    toJSON: { value: redacted, enumerable: false },
    toString: { value: describe, enumerable: false },
    [INSPECT]: { value: describe, enumerable: false },
  });
  return Object.freeze(token) as Token;
}

function redacted(this: Token): Record<string, unknown> {
  return { ...this, value: '[redacted]' };
}

function describe(this: Token): string {
  // Claims are whatever the file's writer put there: escaped, as they reach terminals and logs.
  const parts = [`kind=${this.kind}`];
  if (this.subject) parts.push(`subject=${printable(this.subject)}`);
  if (this.audience.length) parts.push(`audience=${this.audience.map(printable).join(',')}`);
  if (this.expiresAt) parts.push(`expiresAt=${this.expiresAt.toISOString()}`);
  if (this.refreshAt) parts.push(`refreshAt=${this.refreshAt.toISOString()}`);
  return `Token { ${parts.join(' ')} value=[redacted] }`;
}

// Why core decodes JWTs itself rather than with jose: it needs two small functions
// (base64url, JSON, "is it an object"), and importing jose loads its whole module graph:
// ~50 ms of start-up that every short-lived process paid, for code core never ran.

/** Whether `segment` is non-empty, uses only the base64url alphabet and has a possible length. */
function isBase64url(segment: string): boolean {
  // A length of 4n + 1 characters cannot come from any byte string.
  return BASE64URL.test(segment) && segment.length % 4 !== 1;
}

/**
 * Decodes one base64url segment of a JWT (header or payload) to a plain JSON object.
 * Undefined when it is not base64url, not UTF-8, not JSON or not an object; never throws,
 * and nothing of the input is kept in what it returns on failure.
 */
function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!isBase64url(segment)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
  } catch {
    return undefined;
  }
  return isPlainObject(value) ? value : undefined;
}

/** What identifies the key a compact JWS was signed with, and its signature's length. */
interface SignatureShape {
  readonly alg: string;
  readonly kid: string | undefined;
  /** Length of the signature segment, in base64url characters. */
  readonly length: number;
}

/** The shape of `value`'s signature, or undefined when `value` is not a decodable JWT. */
function signatureShape(value: string): SignatureShape | undefined {
  const parts = value.split('.');
  if (parts.length !== 3) return undefined;
  const header = decodeJsonSegment(parts[0]!);
  if (header === undefined || typeof header['alg'] !== 'string') return undefined;
  return { alg: header['alg'], kid: typeof header['kid'] === 'string' ? header['kid'] : undefined, length: parts[2]!.length };
}

/**
 * @internal Whether `next` cannot be a whole token signed with the key that signed `previous`: both
 * name the same `alg` and `kid`, yet their signatures differ in length. A key's signatures
 * all have one length (an RSA signature is as long as the modulus; ECDSA and EdDSA ones
 * are fixed), so such a `next` was cut short, at a length that happens to be plausible.
 */
export function signatureCutShort(previous: string, next: string): boolean {
  const before = signatureShape(previous);
  const after = signatureShape(next);
  if (before === undefined || after === undefined || before.kid === undefined) return false;
  return before.alg === after.alg && before.kid === after.kid && before.length !== after.length;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
