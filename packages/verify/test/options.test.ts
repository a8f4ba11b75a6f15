import { describe, expect, it } from 'vitest';
import {
  createTokenVerifier,
  isTokenProblem,
  isTokenVerificationError,
  TokenVerificationError,
  VERIFICATION_ERROR_CODES,
  type TokenVerifierOptions,
} from '../src/index.js';
import { isTokenSourceError, TokenSourceError } from '@podtoken/core';

const ok: TokenVerifierOptions = { audiences: 'svc', method: 'oidc', issuer: 'https://issuer.example' };

describe('createTokenVerifier: options are checked up front, with a TypeError naming the option', () => {
  it.each<[string, unknown, RegExp]>([
    ['no options', undefined, /options must be an object/],
    ['audiences missing', { method: 'oidc', issuer: 'https://i.example' }, /audiences must be a non-empty string/],
    ['audiences empty', { ...ok, audiences: [] }, /audiences must be a non-empty string/],
    ['audiences with an empty one', { ...ok, audiences: ['svc', ''] }, /audiences must be/],
    ['method unknown', { ...ok, method: 'jwt' }, /method must be one of 'tokenreview', 'oidc', 'oidc\+tokenreview', got "jwt"/],
    ['issuer empty', { ...ok, issuer: '' }, /issuer must be a non-empty string/],
    ['issuer not a URL for discovery', { ...ok, issuer: 'kubernetes' }, /issuer must be a URL for OIDC discovery/],
    ['issuer over http to another host', { ...ok, issuer: 'http://issuer.example' }, /issuer must be an https URL/],
    ['jwksUri without issuer', { audiences: 'svc', method: 'oidc', jwksUri: 'https://k/openid/v1/jwks' }, /jwksUri needs issuer/],
    ['jwksUri over http', { ...ok, jwksUri: 'http://k.example/jwks' }, /jwksUri must be an https URL/],
    ['jwksUri not a URL', { ...ok, jwksUri: 'jwks' }, /jwksUri must be an absolute URL/],
    ['discovery unknown', { ...ok, discovery: 'dns' }, /discovery must be 'issuer' or 'in-cluster'/],
    ['discovery issuer without issuer', { audiences: 'svc', method: 'oidc', discovery: 'issuer' }, /discovery 'issuer' needs issuer/],
    ['algorithms with none', { ...ok, algorithms: ['RS256', 'none'] }, /algorithms must be a non-empty array of .* \(never none or HS\*\)/],
    ['algorithms with HS256', { ...ok, algorithms: ['HS256'] }, /never none or HS\*/],
    ['algorithms empty', { ...ok, algorithms: [] }, /algorithms must be a non-empty array/],
    ['clockTolerance negative', { ...ok, clockTolerance: -1 }, /clockTolerance must be a number of seconds, >= 0/],
    ['clockTolerance a string', { ...ok, clockTolerance: '1m' }, /clockTolerance must be a number of seconds/],
    ['cacheTtl NaN', { ...ok, cacheTtl: Number.NaN }, /cacheTtl must be a number of milliseconds/],
    ['rejectionCacheTtl negative', { ...ok, rejectionCacheTtl: -5 }, /rejectionCacheTtl must be/],
    ['cacheSize fractional', { ...ok, cacheSize: 1.5 }, /cacheSize must be an integer >= 0/],
    ['maxTokenLength 0', { ...ok, maxTokenLength: 0 }, /maxTokenLength must be an integer >= 1/],
    ['timeout 0', { ...ok, timeout: 0 }, /timeout must be an integer >= 1/],
    ['jwksCooldown negative', { ...ok, jwksCooldown: -1 }, /jwksCooldown must be an integer >= 0/],
    ['jwksMaxAge fractional', { ...ok, jwksMaxAge: 0.5 }, /jwksMaxAge must be an integer >= 0/],
    ['allowLegacyTokens a string', { ...ok, allowLegacyTokens: 'yes' }, /allowLegacyTokens must be a boolean/],
    ['kubeConfig not one', { audiences: 'svc', kubeConfig: {} }, /kubeConfig must be a KubeConfig/],
    ['root empty', { ...ok, root: '' }, /root must be a non-empty string/],
    ['ca a number', { ...ok, ca: 42 }, /ca must be a PEM string or bytes/],
  ])('%s', (_name, options, message) => {
    expect(() => createTokenVerifier(options as TokenVerifierOptions)).toThrow(TypeError);
    expect(() => createTokenVerifier(options as TokenVerifierOptions)).toThrow(message);
  });

  it('accepts what a pod needs: nothing but the audiences (TokenReview; OIDC discovered in the cluster)', async () => {
    const review = createTokenVerifier({ audiences: 'svc' });
    const oidc = createTokenVerifier({ audiences: ['svc', 'old'], method: 'oidc' });
    expect([review.method, oidc.method, oidc.audiences]).toEqual(['tokenreview', 'oidc', ['svc', 'old']]);
    expect(Object.isFrozen(oidc.audiences)).toBe(true);
    await Promise.all([review.close(), oidc.close()]);
  });

  it('http is allowed to a loopback issuer only (tests, a local issuer)', () => {
    for (const issuer of ['http://127.0.0.1:8080', 'http://localhost:1', 'http://[::1]:2']) {
      expect(() => createTokenVerifier({ ...ok, issuer })).not.toThrow();
    }
  });

  it('verify() with a non-string throws a TypeError', async () => {
    const verifier = createTokenVerifier(ok);
    await expect(verifier.verify(undefined as unknown as string)).rejects.toThrow(/verify: token must be a string/);
    await expect(verifier.verify('')).rejects.toMatchObject({ code: 'TOKEN_MISSING' });
    await verifier.close();
  });
});

describe('TokenVerificationError', () => {
  it('carries a code and a brand that survives a second copy of the package, distinct from core\'s', () => {
    const error = new TokenVerificationError('TOKEN_EXPIRED', 'The token expired.');
    expect(error).toBeInstanceOf(Error);
    expect([error.name, error.code, error.status]).toEqual(['TokenVerificationError', 'TOKEN_EXPIRED', undefined]);
    expect(isTokenVerificationError(error)).toBe(true);
    // What another copy would make: same registry symbol, another class.
    const foreign = Object.assign(new Error('x'), { code: 'TOKEN_EXPIRED' });
    Object.defineProperty(foreign, Symbol.for('podtoken.verify.error'), { value: true });
    expect(isTokenVerificationError(foreign)).toBe(true);
    expect(isTokenVerificationError(Object.assign(new Error('x'), { code: 'TOKEN_EXPIRED' }))).toBe(false);
    expect(isTokenSourceError(error)).toBe(false);
    expect(isTokenVerificationError(new TokenSourceError('TOKEN_EXPIRED', 'x'))).toBe(false);
  });

  it('isTokenProblem: TOKEN_* codes are the token\'s (401), the rest the verifier\'s (503)', () => {
    const token = VERIFICATION_ERROR_CODES.filter((code) => isTokenProblem(new TokenVerificationError(code, '')));
    expect(token).toEqual(VERIFICATION_ERROR_CODES.filter((code) => code.startsWith('TOKEN_')));
    expect(VERIFICATION_ERROR_CODES.length - token.length).toBe(6);
  });
});
