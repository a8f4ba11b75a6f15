import { inspect } from 'node:util';
import fc from 'fast-check';
import { memfs } from 'memfs';
import {
  decodeToken,
  FileTokenSource,
  isTokenSourceError,
  TOKEN_ERROR_CODES,
  TokenSourceError,
  type Token,
  type TokenFileSystem,
} from '@podtoken/core';
import { createIssuer, type Issuer } from '@podtoken/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorTexts, leaks } from './helpers.js';

// Reliability 3 — bad input at scale. fast-check feeds random bytes, random JSON, random
// JWT-shaped strings and random claim sets through decodeToken and through a FileTokenSource
// reading a memfs file. Whatever comes in: nothing crashes, no promise rejection goes
// unhandled, every error is a TokenSourceError with a known code, and no error, event or
// printed form of a token holds the token's text. Counts are bounded (numRuns) and the
// seed is printed by fast-check on failure, so a failure replays.

const RUNS = Number(process.env.PODTOKEN_FUZZ_RUNS ?? 400);
const FILE_RUNS = Math.ceil(RUNS / 2);

let issuer: Issuer;
let goodToken: string;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);
beforeAll(async () => {
  issuer = await createIssuer();
  goodToken = await issuer.mint({ audience: 'fuzz', expirationSeconds: 3600 });
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

// ---- generators -------------------------------------------------------------------------

const b64 = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');
const BASE64URL_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('');

const randomBytes = fc.uint8Array({ maxLength: 1024 });
const randomJson = fc.json({ maxDepth: 3 });
const base64urlText = fc.string({ unit: fc.constantFrom(...BASE64URL_CHARS), maxLength: 200 });

/** Inside the range a JS Date holds (±8.64e12 s): see the out-of-range test below. */
const inRangeSeconds = fc.oneof(
  fc.integer({ min: 0, max: 4_102_444_800 }),
  fc.double({ min: -8.64e12, max: 8.64e12, noNaN: true }),
  fc.constantFrom(0, -1, 1, 1.5, Math.floor(Date.now() / 1000), Math.floor(Date.now() / 1000) + 3600),
);
const claimValue = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }));
const ref = fc.oneof(fc.record({ name: fc.string({ maxLength: 20 }), uid: fc.string({ maxLength: 36 }) }, { requiredKeys: [] }), claimValue);

const claimSet = (seconds: fc.Arbitrary<number>) =>
  fc.record(
    {
      aud: fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.oneof(fc.string({ maxLength: 30 }), claimValue), { maxLength: 4 }), claimValue),
      exp: fc.oneof(seconds, claimValue),
      iat: fc.oneof(seconds, claimValue),
      nbf: fc.oneof(seconds, claimValue),
      iss: fc.oneof(fc.constantFrom('kubernetes/serviceaccount', 'https://kubernetes.default.svc.cluster.local'), claimValue),
      sub: fc.oneof(fc.constant('system:serviceaccount:default:default'), claimValue),
      'kubernetes.io': fc.oneof(
        fc.record(
          {
            namespace: claimValue,
            serviceaccount: ref,
            pod: ref,
            node: ref,
            secret: ref,
            warnafter: fc.oneof(seconds, claimValue),
          },
          { requiredKeys: [] },
        ),
        claimValue,
      ),
      'kubernetes.io/serviceaccount/namespace': claimValue,
      'kubernetes.io/serviceaccount/secret.name': claimValue,
    },
    { requiredKeys: [] },
  );

const header = fc.oneof(
  fc.record({ alg: fc.constantFrom('RS256', 'ES256', 'none', 'HS256'), kid: fc.string({ maxLength: 36 }), typ: fc.constant('JWT') }, { requiredKeys: ['alg'] }),
  fc.jsonValue({ maxDepth: 2 }),
);

/** A JWT whose header and payload are JSON objects of random claims, with a random signature. */
const claimSetJwt = (seconds: fc.Arbitrary<number>) =>
  fc
    .tuple(header, claimSet(seconds), base64urlText)
    .map(([h, claims, signature]) => `${b64(JSON.stringify(h))}.${b64(JSON.stringify(claims))}.${signature}`);

/** Strings shaped like a JWT: three (or so) dot-separated segments of encoded anything. */
const segment = fc.oneof(
  base64urlText,
  randomJson.map((json) => b64(json)),
  randomBytes.map((bytes) => b64(bytes)),
  fc.string({ maxLength: 40 }),
  fc.constant(''),
  fc.constant('eyJ'),
);
const jwtShaped = fc.oneof(
  fc.tuple(segment, segment, segment).map((parts) => parts.join('.')),
  fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => parts.join('.')),
  fc.tuple(segment, segment, segment, fc.constantFrom(' ', '\n', '\t', '\r\n', '  \n')).map(([a, b, c, ws]) => `${ws}${a}.${b}.${c}${ws}`),
);

// ---- checks -----------------------------------------------------------------------------

/** The token's printed forms (what logs and JSON output show) never hold its text. */
function expectRedacted(token: Token): void {
  const value = token.value;
  for (const printed of [String(token), JSON.stringify(token), inspect(token, { depth: 5 }), JSON.stringify({ ...token })]) {
    expect(leaks(printed, value), 'a printed token holds its value').toBe(false);
  }
}

/** A typed error with a known code that quotes none of `secrets`. */
function expectTypedError(error: unknown, secrets: readonly string[]): void {
  expect(isTokenSourceError(error), `not a TokenSourceError: ${error instanceof Error ? error.name : typeof error}`).toBe(true);
  expect(error).toBeInstanceOf(TokenSourceError);
  expect(TOKEN_ERROR_CODES).toContain((error as TokenSourceError).code);
  for (const text of errorTexts(error)) {
    for (const secret of secrets) expect(leaks(text, secret), `error ${(error as TokenSourceError).code} quotes its input`).toBe(false);
  }
}

function checkDecode(raw: string): 'token' | 'error' {
  let token: Token;
  try {
    token = decodeToken(raw);
  } catch (error) {
    expectTypedError(error, [raw.trim()]);
    return 'error';
  }
  expect(token.value).toBe(raw.trim());
  expectRedacted(token);
  return 'token';
}

const outcomes = { token: 0, error: 0 };
const tally = (outcome: 'token' | 'error') => void (outcomes[outcome] += 1);

describe('decodeToken on bad input', () => {
  afterAll(() => {
    console.log(`bad input, decodeToken: ${outcomes.token + outcomes.error} inputs, ${outcomes.token} decoded, ${outcomes.error} typed errors`);
  });

  it('random bytes (as UTF-8 and as Latin-1 text)', () => {
    fc.assert(
      fc.property(randomBytes, (bytes) => {
        tally(checkDecode(Buffer.from(bytes).toString('utf8')));
        tally(checkDecode(Buffer.from(bytes).toString('latin1')));
      }),
      { numRuns: RUNS },
    );
  });

  it('random JSON', () => {
    fc.assert(fc.property(randomJson, (json) => tally(checkDecode(json))), { numRuns: RUNS });
  });

  it('random JWT-shaped strings', () => {
    fc.assert(fc.property(jwtShaped, (raw) => tally(checkDecode(raw))), { numRuns: RUNS });
  });

  it('random claim sets in a well-formed JWT', () => {
    fc.assert(
      fc.property(claimSetJwt(inRangeSeconds), (raw) => {
        tally(checkDecode(raw));
      }),
      { numRuns: RUNS },
    );
  });

  // A numeric date outside what a JS Date holds (|exp| > 8.64e12 s, e.g. exp: 1e20) would
  // decode to an Invalid Date: such an exp is TOKEN_MALFORMED, other such claims are absent.
  it('claim sets with numeric dates outside the range of a Date', () => {
    const outOfRange = fc.oneof(fc.constantFrom(1e20, -1e20, 8.64e12 + 1, Number.MAX_SAFE_INTEGER), fc.double({ min: 8.7e12, max: 1e300, noNaN: true }));
    fc.assert(
      fc.property(claimSetJwt(outOfRange), (raw) => {
        checkDecode(raw);
      }),
      { numRuns: 50 },
    );
  });
});

// ---- through a FileTokenSource ----------------------------------------------------------

// getToken() always returns a promise, also when the file holds a token whose exp is out of
// a Date's range (the signature is RS256-sized so that only the date is wrong).
it('a loaded token with exp: 1e20 never makes getToken() throw synchronously', async () => {
  const jwt = `${b64(JSON.stringify({ alg: 'RS256' }))}.${b64(JSON.stringify({ exp: 1e20, iat: 1 }))}.${Buffer.alloc(256, 7).toString('base64url')}`;
  const { source } = memfsSource(Buffer.from(jwt), { readyTimeout: 50 });
  try {
    // The file is read once: either it loads or it is reported (it is: TOKEN_MALFORMED).
    await Promise.race([source.ready(), new Promise((resolve) => source.onError(resolve))]).catch(() => undefined);
    let threw: unknown;
    let result: Promise<string> | undefined;
    try {
      result = source.getToken();
    } catch (error) {
      threw = error;
    }
    await result?.catch(() => undefined);
    expect(threw, 'getToken() threw synchronously').toBeUndefined();
  } finally {
    await source.close();
  }
});

const fileContent = fc.oneof(
  randomBytes,
  randomJson.map((s) => Buffer.from(s)),
  jwtShaped.map((s) => Buffer.from(s)),
  claimSetJwt(inRangeSeconds).map((s) => Buffer.from(s)),
  fc.constant(Buffer.alloc(0)),
  fc.integer({ min: 60_000, max: 70_000 }).map((n) => Buffer.alloc(n, 'a')), // around maxTokenBytes
);

const fileOutcomes = { served: 0, replaced: 0, errors: 0 };

// The file is a plain one (not the kubelet's ..data layout), which a source confirms before
// serving a changed token unless it has not changed for a while: these files are given an
// old mtime, so each is taken at its first read and what is checked here is the content.
const LONG_AGO = new Date('2020-01-01T00:00:00Z');
const writeSettled = (fs: ReturnType<typeof memfs>['fs'], path: string, content: Uint8Array) => {
  fs.writeFileSync(path, content);
  fs.utimesSync(path, LONG_AGO, LONG_AGO);
};

function memfsSource(content: Uint8Array, options: { readyTimeout?: number } = {}) {
  const { fs } = memfs();
  fs.mkdirSync('/var/run/secrets/tokens', { recursive: true });
  writeSettled(fs, '/var/run/secrets/tokens/token', content);
  const source = new FileTokenSource({
    path: '/var/run/secrets/tokens/token',
    fs: fs as unknown as TokenFileSystem,
    watch: false,
    pollInterval: 0,
    readyTimeout: options.readyTimeout ?? 0,
  });
  const errors: TokenSourceError[] = [];
  const refreshed: Token[] = [];
  source.onError((error) => errors.push(error));
  source.onRefresh((token) => refreshed.push(token));
  return { fs, source, errors, refreshed };
}

/** Resolves after the source's first read has settled one way or the other. */
async function firstOutcome(source: FileTokenSource, errors: unknown[], refreshed: unknown[]): Promise<void> {
  for (let i = 0; i < 1000 && errors.length === 0 && refreshed.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  void source;
}

describe('FileTokenSource (memfs) on bad input', () => {
  afterAll(() => {
    console.log(
      `bad input, FileTokenSource: ${fileOutcomes.served + fileOutcomes.replaced} files after a good token: ` +
        `${fileOutcomes.served} kept the good token, ${fileOutcomes.replaced} were valid tokens that replaced it; ${fileOutcomes.errors} typed errors reported; ` +
        `${unhandled.length} unhandled rejections`,
    );
  });

  it('a bad file at start: typed errors, getToken() rejects typed, close() settles everything', async () => {
    await fc.assert(
      fc.asyncProperty(fileContent, async (content) => {
        const { source, errors, refreshed } = memfsSource(content);
        const pending = source.getToken().then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        await firstOutcome(source, errors, refreshed);
        const text = Buffer.from(content).toString('latin1').trim();
        for (const error of errors) expectTypedError(error, [text]);
        for (const token of refreshed) expectRedacted(token);
        await source.close();
        const result = await pending;
        if (!result.ok) expectTypedError(result.error, [text]);
        const after = await source.getToken().catch((error: unknown) => error);
        expectTypedError(after, [text]);
        expect((after as TokenSourceError).code).toBe('TOKEN_SOURCE_CLOSED');
        fileOutcomes.errors += errors.length;
      }),
      { numRuns: FILE_RUNS },
    );
    expect(unhandled).toEqual([]);
  });

  it('a bad file after a good token: the good token is kept unless the file holds another valid token', async () => {
    await fc.assert(
      fc.asyncProperty(fileContent, async (content) => {
        const { fs, source, errors, refreshed } = memfsSource(Buffer.from(goodToken));
        await source.ready();
        writeSettled(fs, '/var/run/secrets/tokens/token', Buffer.from(content));
        await source.invalidate(goodToken); // a 401 would do this: re-read now
        const text = Buffer.from(content).toString('latin1').trim();
        for (const error of errors) expectTypedError(error, [text, goodToken]);
        for (const token of refreshed) expectRedacted(token);
        const served = await source.getToken().then(
          (value) => value,
          (error: unknown) => {
            expectTypedError(error, [text, goodToken]);
            return undefined;
          },
        );
        if (refreshed.length > 1) {
          // The new content was a valid token: it is what is served now.
          expect(served === refreshed.at(-1)!.value, 'the newly loaded token is served').toBe(true);
          fileOutcomes.replaced += 1;
        } else {
          expect(served === goodToken, 'the last good token is still served').toBe(true);
          expect(errors.length, 'the bad file was reported').toBeGreaterThan(0);
          fileOutcomes.served += 1;
        }
        fileOutcomes.errors += errors.length;
        await source.close();
      }),
      { numRuns: FILE_RUNS },
    );
    expect(unhandled).toEqual([]);
  });
});
