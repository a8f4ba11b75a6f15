// Why core decodes JWTs itself rather than with jose: it needs two small functions
// (base64url, JSON, "is it an object"), and importing jose loads its whole module graph:
// ~50 ms of start-up that every short-lived process paid, for code core never ran.

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Whether `segment` is non-empty, uses only the base64url alphabet and has a possible length. */
export function isBase64url(segment: string): boolean {
  // A length of 4n + 1 characters cannot come from any byte string.
  return BASE64URL.test(segment) && segment.length % 4 !== 1;
}

/**
 * Decodes one base64url segment of a JWT (header or payload) to a plain JSON object.
 * Undefined when it is not base64url, not UTF-8, not JSON or not an object; never throws,
 * and nothing of the input is kept in what it returns on failure.
 */
export function decodeJsonSegment(segment: string): Record<string, unknown> | undefined {
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
export interface SignatureShape {
  readonly alg: string;
  readonly kid: string | undefined;
  /** Length of the signature segment, in base64url characters. */
  readonly length: number;
}

/** The shape of `value`'s signature, or undefined when `value` is not a decodable JWT. */
export function signatureShape(value: string): SignatureShape | undefined {
  const parts = value.split('.');
  if (parts.length !== 3) return undefined;
  const header = decodeJsonSegment(parts[0]!);
  if (header === undefined || typeof header['alg'] !== 'string') return undefined;
  return { alg: header['alg'], kid: typeof header['kid'] === 'string' ? header['kid'] : undefined, length: parts[2]!.length };
}

/**
 * Whether `next` cannot be a whole token signed with the key that signed `previous`: both
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
