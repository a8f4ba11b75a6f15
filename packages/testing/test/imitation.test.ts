import { createHash, createPublicKey } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createIssuer, FakeKubelet, ProjectedVolume, type VolumeFileSystem } from '@podtoken/testing';

// What the test kit's imitation was corrected on after running it beside the real thing
// (Kubernetes 1.20's API server and the kubelet's AtomicWriter, test/cluster/). Tokens are
// compared, never printed.

const dirs: string[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'podtoken-imitation-'));
  dirs.push(dir);
  return dir;
}
const decodePart = (token: string, index: 0 | 1) => JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8'));

describe('createIssuer, as the API server', () => {
  it('signs with a header of alg and kid only, the kid derived from the public key (base64url SHA-256 of its DER)', async () => {
    const issuer = await createIssuer();
    const token = await issuer.mint();
    const jwk = issuer.jwks.keys[0]!;
    expect(decodePart(token, 0)).toEqual({ alg: 'RS256', kid: jwk.kid });
    const der = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    expect(jwk.kid).toBe(createHash('sha256').update(der).digest('base64url'));
    expect(Object.keys(jwk).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });

  it('leaves out jti (and node) when asked, as API servers before 1.29/1.30 do', async () => {
    const issuer = await createIssuer();
    const claims = decodePart(await issuer.mint({ jti: false, node: false }), 1);
    expect(claims).not.toHaveProperty('jti');
    expect(claims['kubernetes.io']).not.toHaveProperty('node');
    expect(decodePart(await issuer.mint({ jti: 'given' }), 1).jti).toBe('given');
    expect(typeof decodePart(await issuer.mint(), 1).jti).toBe('string');
  });

  it('cuts exp and iat from the same instant (exp - iat = the lifetime exactly) from 600 s up; rounds shorter test lifetimes up', async () => {
    const issuer = await createIssuer();
    const issuedAt = new Date(1_800_000_000_500); // mid-second
    const real = decodePart(await issuer.mint({ expirationSeconds: 600, issuedAt }), 1);
    expect([real.iat, real.exp - real.iat]).toEqual([1_800_000_000, 600]);
    const short = decodePart(await issuer.mint({ expirationSeconds: 2, issuedAt }), 1);
    expect(short.exp).toBe(1_800_000_003); // lives at least 2 s from the mint
  });

  it('extends only what the API server extends: a pod-bound token requested for 3607 s', async () => {
    const issuer = await createIssuer();
    const claims = decodePart(await issuer.mint({ extendExpiration: true }), 1);
    expect(claims.exp - claims.iat).toBe(365 * 24 * 60 * 60);
    expect(claims['kubernetes.io'].warnafter - claims.iat).toBe(3607);
    await expect(issuer.mint({ extendExpiration: true, expirationSeconds: 600 })).rejects.toThrow(/extendExpiration applies only .* 3607 s/);
    await expect(issuer.mint({ extendExpiration: true, pod: false })).rejects.toThrow(TypeError);
    const volume = new ProjectedVolume({ dir: await tempDir() });
    expect(() => new FakeKubelet({ volume, issuer, extendExpiration: true, expirationSeconds: 600 })).toThrow(/extendExpiration needs expirationSeconds 3607/);
  });
});

describe('ProjectedVolume, as the kubelet’s AtomicWriter', () => {
  it('writes nothing when the payload is what the volume holds (same bytes): no new folder, no swap', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const first = await volume.write({ token: 'aaa', namespace: 'shop' });
    expect(first.swapped).toBe(true);
    const again = await volume.write({ token: 'aaa', namespace: 'shop' });
    expect(again).toEqual({ swapped: false, folder: first.folder, swappedAt: first.swappedAt });
    expect(await readlink(join(dir, '..data'))).toBe(first.folder);
    const changed = await volume.write({ token: 'bbb', namespace: 'shop' });
    expect(changed.swapped).toBe(true);
    expect(changed.folder).not.toBe(first.folder);
    // A file dropped from the payload is a change, even when the others are the same.
    expect((await volume.write({ token: 'bbb' })).swapped).toBe(true);
    const entries = await readdir(dir);
    expect(entries.filter((name) => !/^\.\.\d{4}_/.test(name)).sort()).toEqual(['..data', 'token']);
    expect(entries.length, 'one timestamped folder').toBe(3);
  });

  it('makes the visible symlinks before the ..data swap, and names folders ..YYYY_MM_DD_HH_MM_SS.<random uint32>', async () => {
    const dir = await tempDir();
    const calls: string[] = [];
    const fs = {
      ...nodeFs,
      promises: {
        ...nodeFs.promises,
        symlink: (target: string, path: string) => (calls.push(`symlink ${path.slice(dir.length + 1)}`), nodeFs.promises.symlink(target, path)),
        rename: (from: string, to: string) => (calls.push(`rename ${from.slice(dir.length + 1)}`), nodeFs.promises.rename(from, to)),
      },
      // A wrapped fs is not node:fs, so the volume swaps as it does on memfs: unlink and re-link ..data.
      symlinkSync: (target: string, path: string) => (calls.push(`swap ${path.slice(dir.length + 1)}`), nodeFs.symlinkSync(target, path)),
    } as unknown as VolumeFileSystem;
    const volume = new ProjectedVolume({ dir, fs });
    const { folder } = await volume.write({ token: 'aaa' });
    expect(folder).toMatch(/^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d{1,10}$/);
    expect(Number(folder.split('.').pop())).toBeLessThan(2 ** 32);
    const swap = calls.findIndex((call) => call === 'swap ..data' || call === 'rename ..data_tmp');
    expect(swap).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf('symlink token')).toBeGreaterThanOrEqual(0);
    expect(calls.indexOf('symlink token'), calls.join(', ')).toBeLessThan(swap);
  });
});

describe('FakeKubelet, as the kubelet’s token manager', () => {
  it('rotates a long-lived token after 24 h, not at 80 % of its lifetime', async () => {
    vi.useFakeTimers();
    const issuer = await createIssuer();
    const volume = new ProjectedVolume({ dir: await tempDir() });
    const kubelet = new FakeKubelet({ volume, issuer, expirationSeconds: 2 * 24 * 60 * 60 });
    const started = Date.now();
    await kubelet.start();
    // The next timer is the next rotation: see when it falls.
    vi.advanceTimersToNextTimer();
    expect((Date.now() - started) / 3_600_000).toBe(24);
    await kubelet.stop();
  });
});
