import { generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeToken, isTokenSourceError, staticTokenSource } from '../src/index.js';

let key: CryptoKey;
beforeAll(async () => {
  ({ privateKey: key } = await generateKeyPair('ES256'));
});
const sign = (claims: JWTPayload) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).sign(key);
const now = Math.floor(Date.now() / 1000);

function expectMalformed(raw: string) {
  try {
    decodeToken(raw);
  } catch (error) {
    expect(isTokenSourceError(error) && error.code).toBe('TOKEN_MALFORMED');
    if (raw.trim().length > 8) expect(String((error as Error).message)).not.toContain(raw.trim());
    return;
  }
  throw new Error('expected TOKEN_MALFORMED');
}

describe('decodeToken', () => {
  it('prefers warnafter over 80 % of an extended lifetime', async () => {
    const raw = await sign({
      aud: ['https://kubernetes.default.svc'],
      iat: now,
      nbf: now,
      exp: now + 365 * 24 * 3600,
      iss: 'https://kubernetes.default.svc',
      sub: 'system:serviceaccount:default:app',
      'kubernetes.io': {
        namespace: 'default',
        serviceaccount: { name: 'app', uid: 'sa-uid' },
        pod: { name: 'app-0', uid: 'pod-uid' },
        node: { name: 'node-1', uid: 'node-uid' },
        warnafter: now + 3607,
      },
    });
    const token = decodeToken(`${raw}\n`);
    expect(token.kind).toBe('bound');
    expect(token.value).toBe(raw);
    expect(token.warnAfter?.getTime()).toBe((now + 3607) * 1000);
    expect(token.refreshAt?.getTime()).toBe((now + 3607) * 1000);
    expect(token.kubernetes).toEqual({
      namespace: 'default',
      serviceAccount: { name: 'app', uid: 'sa-uid' },
      pod: { name: 'app-0', uid: 'pod-uid' },
      node: { name: 'node-1', uid: 'node-uid' },
    });
  });

  it('falls back to refreshRatio of the lifetime', async () => {
    const raw = await sign({ aud: 'vault', iat: now, exp: now + 1000, 'kubernetes.io': { namespace: 'ns' } });
    expect(decodeToken(raw).refreshAt?.getTime()).toBe((now + 800) * 1000);
    expect(decodeToken(raw, { refreshRatio: 0.5 }).refreshAt?.getTime()).toBe((now + 500) * 1000);
    expect(decodeToken(raw).audience).toEqual(['vault']);
    expect(() => decodeToken(raw, { refreshRatio: 2 })).toThrow(/refreshRatio/);
  });

  it('recognises legacy, plain JWT and opaque tokens', async () => {
    const legacy = decodeToken(
      await sign({
        iss: 'kubernetes/serviceaccount',
        sub: 'system:serviceaccount:kube-system:builder',
        'kubernetes.io/serviceaccount/namespace': 'kube-system',
        'kubernetes.io/serviceaccount/secret.name': 'builder-token-x',
        'kubernetes.io/serviceaccount/service-account.name': 'builder',
        'kubernetes.io/serviceaccount/service-account.uid': 'u1',
      }),
    );
    expect(legacy.kind).toBe('legacy');
    expect(legacy.expiresAt).toBeUndefined();
    expect(legacy.refreshAt).toBeUndefined();
    expect(legacy.kubernetes).toEqual({
      namespace: 'kube-system',
      serviceAccount: { name: 'builder', uid: 'u1' },
      secret: { name: 'builder-token-x', uid: '' },
    });
    expect(decodeToken(await sign({ iss: 'https://idp', exp: now + 60 })).kind).toBe('jwt');
    const opaque = decodeToken('abcdef.0123456789abcdef');
    expect(opaque.kind).toBe('opaque');
    expect(opaque.audience).toEqual([]);
  });

  it('rejects bad input with TOKEN_MALFORMED and never quotes it', async () => {
    const good = await sign({ aud: 'x', exp: now + 60, secretClaim: 'hunter2' });
    const [h, p, s] = good.split('.') as [string, string, string];
    for (const raw of ['', '  \n', good.slice(0, good.length / 2), `${h}.${p}`, `${h}.${p}.`, `${h}.!!!.${s}`,
      `${h}.${Buffer.from('[1,2]').toString('base64url')}.${s}`, `${Buffer.from('{}').toString('base64url')}.${p}.${s}`,
      'two words', 'tab\there', 'caf\u00e9']) {
      expectMalformed(raw);
    }
  });

  it('rejects an exp no Date can hold, and a signature cut short', async () => {
    expectMalformed(await sign({ aud: 'x', exp: 1e20 }));
    const far = decodeToken(await sign({ aud: 'x', exp: now + 60, iat: now, nbf: -1e20 }));
    expect(far.notBefore).toBeUndefined();
    const good = await sign({ aud: 'x', exp: now + 60 });
    expectMalformed(good.slice(0, -10)); // ES256 signatures are 64 bytes
    expect(decodeToken(good).kind).toBe('jwt');
  });

  it('takes `e` and `ey`, the start of a JWT being written, for a torn write, not an opaque token', () => {
    expectMalformed('e');
    expectMalformed('ey');
    expectMalformed(' ey\n');
    expect(decodeToken('eyx').kind).toBe('opaque'); // not the start of a JWT: eyJ is
  });

  it('decodes the base64url JSON parts strictly, with no dependency, and never throws anything but TOKEN_MALFORMED', async () => {
    const good = await sign({ aud: 'x', exp: now + 60 });
    const [h, p, s] = good.split('.') as [string, string, string];
    const b64 = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');
    for (const raw of [
      `${h}.${p}x.${s}`, // 4n + 1 characters: no byte string encodes to that
      `${h}.${b64(Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))}.${s}`, // {"\xff":1}: not UTF-8
      `${h}.${b64('null')}.${s}`,
      `${h}.${b64('"text"')}.${s}`,
      `${b64('{"alg":"constructor"}')}.${p}.${s}`, // an alg named after an Object.prototype member
      `${b64('{"alg":"__proto__"}')}.${p}.${s}`,
      `${b64('{"alg":"toString"}')}.${p}.${s}`,
    ]) {
      let token;
      try {
        token = decodeToken(raw);
      } catch (error) {
        expect(isTokenSourceError(error) && error.code).toBe('TOKEN_MALFORMED');
        continue;
      }
      expect(token.kind).not.toBe('opaque'); // an unknown alg with a whole payload decodes
    }
    expectMalformed(`${h}.${p}x.${s}`);
    expect(decodeToken(`${b64('{"alg":"constructor"}')}.${p}.${s}`).audience).toEqual(['x']);
  });

  it('escapes the claims it prints: whoever writes the token file controls them', async () => {
    const token = decodeToken(await sign({ aud: ['\u001b[2Jx', 'y\nz'], sub: 'a\u001b]8;;https://evil.example\u0007b', exp: now + 60 }));
    for (const text of [String(token), inspect(token)]) {
      expect(text).not.toMatch(/[\u0000-\u001f\u007f]/);
      expect(text).toContain('\\u001b');
    }
    expect(token.subject).toBe('a\u001b]8;;https://evil.example\u0007b'); // the claim itself is kept as it is
  });

  it('redacts the value from JSON, inspect and toString', async () => {
    const raw = await sign({ aud: 'x', exp: now + 60 });
    const token = decodeToken(raw);
    expect(JSON.stringify(token)).not.toContain(raw);
    expect(JSON.stringify(token)).toContain('[redacted]');
    expect(inspect(token)).not.toContain(raw);
    expect(String(token)).not.toContain(raw);
    expect(Object.keys(token)).not.toContain('value');
    expect({ ...token }).not.toHaveProperty('value');
    expect(Object.isFrozen(token)).toBe(true);
  });
});

describe('staticTokenSource', () => {
  it('serves the same token and validates it once', async () => {
    const source = staticTokenSource(' opaque-token \n');
    await expect(source.getToken()).resolves.toBe('opaque-token');
    expect(() => staticTokenSource('')).toThrow(expect.objectContaining({ code: 'TOKEN_MALFORMED' }));
  });
});
