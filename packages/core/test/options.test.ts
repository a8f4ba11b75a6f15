import { memfs } from 'memfs';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createOriginFilter, createTokenSources, FileTokenSource, isTokenSourceError, TokenSourceError } from '../src/index.js';

describe('FileTokenSource options', () => {
  it.each([
    [{ path: '' }, /path/],
    [{ refreshRatio: 0 }, /refreshRatio/],
    [{ refreshRatio: 1.5 }, /refreshRatio/],
    [{ pollInterval: -1 }, /pollInterval/],
    [{ readyTimeout: Number.NaN }, /readyTimeout/],
    [{ maxTokenBytes: 0 }, /maxTokenBytes/],
    [{ audience: [] }, /audience/],
    [{ audience: [''] }, /audience/],
    [{ fs: {} as never }, /fs/],
  ])('rejects %o with a TypeError naming the option', (options, name) => {
    expect(() => new FileTokenSource(options as never)).toThrow(TypeError);
    expect(() => new FileTokenSource(options as never)).toThrow(name);
  });

  it('prints its path and state, never the token', async () => {
    const { fs } = memfs({ '/t/token': 'opaque-secret-value' });
    const source = new FileTokenSource({ path: '/t/token', fs });
    await source.ready();
    for (const text of [inspect(source), JSON.stringify(source), inspect(source.current), JSON.stringify(source.current)]) {
      expect(text).not.toContain('opaque-secret-value');
      expect(text).toContain('opaque');
    }
    await source.close();
  });

  it('createTokenSources closes what it made when a spec is bad', () => {
    expect(() => createTokenSources({ good: { path: '/a/token', fs: memfs().fs }, bad: { refreshRatio: 7 } })).toThrow(/refreshRatio/);
  });

  it('createTokenSources names each source by its key, unless its spec names it', async () => {
    const { fs } = memfs();
    const sources = createTokenSources({
      vault: { path: '/tokens/vault', fs, watch: false, pollInterval: 0 },
      partner: { path: '/tokens/partner', fs, watch: false, pollInterval: 0, name: 'partner-api' },
    });
    expect(sources.get('vault').name).toBe('vault');
    expect(sources.get('vault').status().name).toBe('vault');
    expect(sources.get('partner').name).toBe('partner-api');
    await sources.close();
  });
});

describe('errors', () => {
  it('recognises errors by brand, not by class identity', () => {
    const error = new TokenSourceError('TOKEN_EXPIRED', 'expired', { path: '/t' });
    expect(isTokenSourceError(error)).toBe(true);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TokenSourceError');
    // What another copy of core would make: a different class with the same registry symbol.
    const foreign = Object.assign(new Error('x'), { code: 'TOKEN_EXPIRED', [Symbol.for('podtoken.error')]: true });
    expect(isTokenSourceError(foreign)).toBe(true);
    expect(isTokenSourceError(new Error('x'))).toBe(false);
    expect(isTokenSourceError({ code: 'TOKEN_EXPIRED' })).toBe(false);
    expect(isTokenSourceError(null)).toBe(false);
  });
});

describe('createOriginFilter', () => {
  it('matches exact origins and patterns, and names a bad entry', () => {
    const allowed = createOriginFilter(['https://vault.example:8200', /^https:\/\/.*\.svc$/]);
    expect(allowed('https://vault.example:8200/v1/auth')).toBe(true);
    expect(allowed('https://vault.example/v1')).toBe(false);
    expect(allowed('http://vault.example:8200/v1')).toBe(false);
    expect(allowed('https://kubernetes.default.svc/api')).toBe(true);
    expect(allowed('not a url')).toBe(false);
    expect(createOriginFilter(undefined)('https://anything')).toBe(true);
    expect(() => createOriginFilter(['vault'])).toThrow(/"vault"/);
  });

  it('rejects an empty origins array: it would never send the token', () => {
    expect(() => createOriginFilter([])).toThrow(TypeError);
    expect(() => createOriginFilter([], 'tokenSourceHooks')).toThrow(/^tokenSourceHooks: origins is empty/);
  });

  it.each([
    [/api\.example\.com/, 'no anchor at all'],
    [/^https:\/\/api\.example\.com/, 'no $'],
    [/api\.example\.com$/, 'no ^'],
    [/^https:\/\/api\.example\.com\$/, 'an escaped $ is a literal'],
    [/^https:\/\/a\.example|https:\/\/b\.example$/, 'a top-level | leaves each branch half anchored'],
    [/^https:\/\/a\.example$|https:\/\/b\.example/, 'the second branch has no anchor'],
    [/^https:\/\/a\.example[$]/, 'a $ in a character class is a literal'],
    [new RegExp(''), 'an empty pattern'],
  ])('rejects %s (%s) with a TypeError naming the entry', (pattern) => {
    expect(() => createOriginFilter(['https://vault:8200', pattern])).toThrow(TypeError);
    expect(() => createOriginFilter([pattern])).toThrow(`origins holds ${String(pattern)}`);
    expect(() => createOriginFilter([pattern])).toThrow(/not anchored with \^ and \$/);
  });

  it('accepts anchored patterns, alternatives included, and they cannot match a longer host', () => {
    const allowed = createOriginFilter([/^https:\/\/api\.example\.com$/, /^https:\/\/(a|b)\.example$/, /^http:\/\/x\.test$|^http:\/\/y\.test$/, new RegExp('^https://[[a-z]--[q]]+\\.svc$', 'v')]);
    expect(allowed('https://api.example.com/v1')).toBe(true);
    expect(allowed('https://api.example.com.evil.io/v1')).toBe(false);
    expect(allowed('https://b.example/')).toBe(true);
    expect(allowed('https://b.example.evil.io/')).toBe(false);
    expect(allowed('http://y.test/')).toBe(true);
    expect(allowed('http://y.test.evil.io/')).toBe(false);
    expect(allowed('https://kubernetes.svc/')).toBe(true);
  });

  it('what the anchoring rule prevents: an unanchored pattern matches a look-alike host', () => {
    expect(/api\.example\.com/.test(new URL('https://api.example.com.evil.io/').origin)).toBe(true);
  });
});
