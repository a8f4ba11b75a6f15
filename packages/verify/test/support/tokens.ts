import { createHmac, createPublicKey } from 'node:crypto';
import { inspect } from 'node:util';
import type { Issuer } from '@podtoken/testing';

// Tokens the issuer of the test kit would never mint, made at run time. Nothing here is
// printed: tests compare and search renderings, never show a token.

const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** The claims a real bound token carries, valid now, for `audience`. */
export function boundClaims(issuer: string, audience: string | string[], overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    aud: [audience].flat(),
    exp: now + 600,
    iat: now,
    nbf: now,
    iss: issuer,
    sub: 'system:serviceaccount:default:caller',
    'kubernetes.io': {
      namespace: 'default',
      serviceaccount: { name: 'caller', uid: 'c0ffee00-0000-4000-8000-000000000001' },
      pod: { name: 'caller-0', uid: 'c0ffee00-0000-4000-8000-000000000002' },
    },
    ...overrides,
  };
}

/** An unsecured JWT (`alg: none`, empty signature) with valid claims. */
export function unsignedToken(claims: Record<string, unknown>): string {
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode(claims)}.`;
}

/**
 * The classic algorithm-confusion forgery: HS256 with the issuer's *public* key (as PEM, which
 * a naive verifier would pass to an HMAC) as the secret, and the issuer's `kid`.
 */
export function hs256WithPublicKey(issuer: Issuer, claims: Record<string, unknown>): string {
  const jwk = issuer.jwks.keys[0]!;
  const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const input = `${encode({ alg: 'HS256', typ: 'JWT', kid: jwk.kid })}.${encode(claims)}`;
  return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
}

/** Every way the token could show up in a rendering: whole, or any of its three parts. */
function pieces(token: string): string[] {
  const parts = token.split('.').filter((part) => part.length >= 16);
  return [token.slice(0, 64), ...parts];
}

/**
 * Whether any rendering of `value` (String, message, stack, util.inspect deep with hidden
 * properties, JSON, the cause chain) holds the token or one of its parts.
 */
export function holdsToken(value: unknown, token: string): boolean {
  const renderings: string[] = [];
  const seen = new Set<unknown>();
  const visit = (item: unknown, depth: number) => {
    if (depth > 5 || seen.has(item)) return;
    seen.add(item);
    renderings.push(String(item), inspect(item, { depth: 10, showHidden: true }));
    try {
      renderings.push(JSON.stringify(item) ?? '');
    } catch {
      // circular: inspect has it
    }
    if (item instanceof Error) {
      renderings.push(item.message, item.stack ?? '');
      visit(item.cause, depth + 1);
    }
  };
  visit(value, 0);
  const text = renderings.join('\n');
  return pieces(token).some((piece) => text.includes(piece));
}
