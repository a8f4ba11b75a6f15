import { FileTokenSource, isTokenSourceError, type TokenErrorCode, type TokenSourceError } from '@podtoken/core';
import { createIssuer, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { defer, tempDir, until } from '../helpers.js';

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

type Corrupt = (dir: string, volume: ProjectedVolume) => Promise<string | undefined>;

const viaVolume = (content: () => Promise<string> | string): Corrupt => async (_dir, volume) => {
  const bad = await content();
  await volume.write({ token: bad });
  return bad;
};

const halfJwt = async () => {
  const token = await issuer.mint({ audience: 'api' });
  return token.slice(0, Math.floor(token.length / 2));
};
const withPayload = async (payload: string) => {
  const [header, , signature] = (await issuer.mint({ audience: 'api' })).split('.');
  return `${header}.${payload}.${signature}`;
};

// Each bad file, the code it must be reported with, and how it gets there.
const corpus: Array<[string, TokenErrorCode, Corrupt]> = [
  ['an empty file', 'TOKEN_MALFORMED', viaVolume(() => '')],
  ['only white space', 'TOKEN_MALFORMED', viaVolume(() => ' \n\t\n')],
  ['half a JWT (a torn write)', 'TOKEN_MALFORMED', viaVolume(halfJwt)],
  ['a payload that is not base64url', 'TOKEN_MALFORMED', viaVolume(() => withPayload('%%%not-base64%%%'))],
  ['a payload that is JSON but not an object', 'TOKEN_MALFORMED', viaVolume(() => withPayload(Buffer.from('[1,2,3]').toString('base64url')))],
  ['a 10 MiB file', 'TOKEN_TOO_LARGE', viaVolume(() => 'x'.repeat(10 * 1024 * 1024))],
  ['a token for another audience', 'TOKEN_AUDIENCE_MISMATCH', viaVolume(() => issuer.mint({ audience: 'someone-else' }))],
  ['an expired token', 'TOKEN_EXPIRED', viaVolume(() => issuer.mint({ audience: 'api', issuedAt: new Date(Date.now() - 7_200_000), expirationSeconds: 3600 }))],
  ['an opaque string where a JWT was', 'TOKEN_MALFORMED', viaVolume(() => 'not-a-jwt-but-printable')],
  [
    'a folder where the file should be',
    'TOKEN_FILE_UNREADABLE',
    async (dir) => {
      await rm(join(dir, 'token'));
      await mkdir(join(dir, 'token'));
      return undefined;
    },
  ],
  [
    'a dangling symlink',
    'TOKEN_FILE_MISSING',
    async (dir) => {
      await rm(join(dir, 'token'));
      await symlink('..data/no-such-file', join(dir, 'token'));
      return undefined;
    },
  ],
];

describe('a corpus of bad token files', () => {
  it.each(corpus)('%s gives %s while the last good token keeps being served', async (_name, code, corrupt) => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const good = await issuer.mint({ audience: 'api' });
    await volume.write({ token: good });
    // A short poll as well as the watcher: replacing the `token` symlink itself is not a
    // kubelet event, and the poll is what catches it in production too.
    const source = new FileTokenSource({ path: volume.path('token'), audience: 'api', pollInterval: 50 });
    defer(() => source.close());
    await source.ready();

    const errors: TokenSourceError[] = [];
    source.onError((error) => errors.push(error));
    const bad = await corrupt(dir, volume);
    await until(`an error with ${code}`, () => errors.some((e) => e.code === code), 5_000, 1);

    // Replacing the symlink by a folder takes two steps; a read between them sees no file.
    const transient = code === 'TOKEN_FILE_UNREADABLE' ? ['TOKEN_FILE_MISSING'] : [];
    expect(errors.every((e) => isTokenSourceError(e) && (e.code === code || transient.includes(e.code)))).toBe(true);
    const error = errors.find((e) => e.code === code)!;
    expect(error.path).toBe(volume.path('token'));
    expect((await source.getToken()) === good).toBe(true);
    expect(source.current!.value === good).toBe(true);
    for (const text of [error.message, String(error.stack), inspect(error, { depth: 5 }), JSON.stringify(error)]) {
      expect(text.includes(good)).toBe(false);
      if (bad !== undefined && bad.trim().length >= 8) expect(text.includes(bad.trim().slice(0, 64))).toBe(false);
    }
  });

  it('recovers as soon as a good token is written again', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token: await issuer.mint({ audience: 'api' }) });
    const source = new FileTokenSource({ path: volume.path('token'), audience: 'api', pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    const codes: string[] = [];
    source.onError((error) => codes.push(error.code));
    await volume.write({ token: await halfJwt() });
    await until('the torn write reported', () => codes.length > 0, 5_000, 1);
    const fresh = await issuer.mint({ audience: 'api' });
    await volume.write({ token: fresh });
    await until('the fresh token loaded', () => source.current?.value === fresh, 5_000, 1);
    expect(codes).toEqual(['TOKEN_MALFORMED']);
  });

  it('does not throw or reject anywhere when nobody listens for errors', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'token'), '');
    const source = new FileTokenSource({ path: join(dir, 'token'), readyTimeout: 200, pollInterval: 20 });
    defer(() => source.close());
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(source.getToken()).rejects.toMatchObject({ code: 'TOKEN_NOT_READY', cause: { code: 'TOKEN_MALFORMED' } });
  });
});
