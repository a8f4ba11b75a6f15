import { createIssuer, type Issuer } from '@podtoken/testing';
import type { VerificationErrorCode } from '../../src/index.js';
import { boundClaims, hs256WithPublicKey, unsignedToken } from './tokens.js';

/** One token of the item-1 matrix and what a verifier must say about it. */
export interface Case {
  readonly name: string;
  readonly token: string;
  /** The code it must be refused with, per method; `'ok'` when it must be accepted. */
  readonly oidc: VerificationErrorCode | 'ok';
  readonly tokenreview: VerificationErrorCode | 'ok';
}

const HOUR = 3_600_000;

/**
 * The tokens every method must judge alike (or differently, for a reason given by the name),
 * all minted now by `issuer` (whose keys the verifier trusts) for `audience`, except where the
 * case says otherwise.
 */
export async function matrix(issuer: Issuer, audience: string): Promise<Case[]> {
  const valid = await issuer.mint({ audience, namespace: 'shop', serviceAccount: 'checkout', pod: 'checkout-0', expirationSeconds: 600 });
  const [header, payload, signature] = valid.split('.') as [string, string, string];
  const otherIssuer = await createIssuer({ issuer: 'https://evil.example' });
  const sameNameOtherKey = await createIssuer({ issuer: issuer.issuer });
  const tampered = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  tampered['sub'] = 'system:serviceaccount:kube-system:admin';
  tampered['kubernetes.io'] = { ...(tampered['kubernetes.io'] as object), namespace: 'kube-system', serviceaccount: { name: 'admin', uid: 'x' } };
  const garbage = Buffer.alloc(10 * 1024 * 1024, 'A').toString('latin1');

  return [
    { name: 'valid', token: valid, oidc: 'ok', tokenreview: 'ok' },
    {
      name: 'expired',
      token: await issuer.mint({ audience, issuedAt: new Date(Date.now() - 2 * HOUR), expirationSeconds: 600 }),
      oidc: 'TOKEN_EXPIRED',
      tokenreview: 'TOKEN_EXPIRED',
    },
    {
      name: 'not yet valid',
      token: await issuer.mint({ audience, issuedAt: new Date(Date.now() + 2 * HOUR), expirationSeconds: 600 }),
      oidc: 'TOKEN_NOT_YET_VALID',
      tokenreview: 'TOKEN_NOT_YET_VALID',
    },
    { name: 'wrong audience', token: await issuer.mint({ audience: 'https://other.svc' }), oidc: 'TOKEN_AUDIENCE_MISMATCH', tokenreview: 'TOKEN_AUDIENCE_MISMATCH' },
    { name: 'no audience of ours among several', token: await issuer.mint({ audience: ['a', 'b', 'c'] }), oidc: 'TOKEN_AUDIENCE_MISMATCH', tokenreview: 'TOKEN_AUDIENCE_MISMATCH' },
    // Without an `issuer` option, TokenReview leaves the issuer to the API server.
    { name: 'wrong issuer', token: await otherIssuer.mint({ audience }), oidc: 'TOKEN_ISSUER_MISMATCH', tokenreview: 'TOKEN_REJECTED' },
    // The API server knows no key for it either: it says "not authenticated".
    { name: 'unknown kid (a key nobody published)', token: await sameNameOtherKey.mint({ audience }), oidc: 'TOKEN_KEY_NOT_FOUND', tokenreview: 'TOKEN_REJECTED' },
    { name: 'alg: none', token: unsignedToken(boundClaims(issuer.issuer, audience)), oidc: 'TOKEN_ALGORITHM_NOT_ALLOWED', tokenreview: 'TOKEN_ALGORITHM_NOT_ALLOWED' },
    {
      name: 'HS256 with the public key as secret',
      token: hs256WithPublicKey(issuer, boundClaims(issuer.issuer, audience)),
      oidc: 'TOKEN_ALGORITHM_NOT_ALLOWED',
      tokenreview: 'TOKEN_ALGORITHM_NOT_ALLOWED',
    },
    { name: 'legacy token', token: await issuer.mintLegacy({ namespace: 'shop', serviceAccount: 'checkout' }), oidc: 'TOKEN_LEGACY_REFUSED', tokenreview: 'TOKEN_LEGACY_REFUSED' },
    { name: 'cut short inside the signature', token: valid.slice(0, -20), oidc: 'TOKEN_MALFORMED', tokenreview: 'TOKEN_MALFORMED' },
    { name: 'cut short: no signature', token: `${header}.${payload}`, oidc: 'TOKEN_MALFORMED', tokenreview: 'TOKEN_MALFORMED' },
    { name: 'cut short inside the payload', token: `${header}.${payload.slice(0, 40)}`, oidc: 'TOKEN_MALFORMED', tokenreview: 'TOKEN_MALFORMED' },
    { name: 'cut short inside the header', token: header.slice(0, 10), oidc: 'TOKEN_MALFORMED', tokenreview: 'TOKEN_MALFORMED' },
    {
      name: 'claims changed after signing',
      token: `${header}.${Buffer.from(JSON.stringify(tampered)).toString('base64url')}.${signature}`,
      oidc: 'TOKEN_SIGNATURE_INVALID',
      tokenreview: 'TOKEN_REJECTED',
    },
    { name: 'a JWT that is no ServiceAccount token', token: await issuer.mint({ audience, claims: { 'kubernetes.io': undefined } }), oidc: 'TOKEN_CLAIMS_INVALID', tokenreview: 'TOKEN_CLAIMS_INVALID' },
    { name: 'not a JWT', token: 'opaque-static-token-0123456789', oidc: 'TOKEN_MALFORMED', tokenreview: 'TOKEN_MALFORMED' },
    { name: '10 MiB of garbage', token: garbage, oidc: 'TOKEN_TOO_LARGE', tokenreview: 'TOKEN_TOO_LARGE' },
  ];
}
