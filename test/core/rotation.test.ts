import { FileTokenSource } from '@podtoken/core';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { performance } from 'node:perf_hooks';
import { beforeAll, describe, expect, it } from 'vitest';
import { defer, percentile, tempDir, until } from '../helpers.js';

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

describe('FileTokenSource on the real filesystem with the atomic-writer layout', () => {
  it('picks up each of 200 consecutive rotations', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const kubelet = new FakeKubelet({ volume, issuer, audience: 'vault', expirationSeconds: 600 });
    await kubelet.start();
    kubelet.stop(); // rotations are driven by the test
    const source = new FileTokenSource({ path: kubelet.path, audience: 'vault', pollInterval: 0 });
    defer(() => source.close());
    await source.ready();

    const pickups: number[] = [];
    for (let i = 0; i < 200; i++) {
      const { token, swappedAt } = await kubelet.rotate();
      // The next getToken() after the swap returns the new token: poll it as an app would.
      let served = await source.getToken();
      while (served !== token) {
        if (performance.now() - swappedAt > 5_000) throw new Error(`rotation ${i} was not picked up within 5 s`);
        await new Promise((resolve) => setImmediate(resolve));
        served = await source.getToken();
      }
      pickups.push(performance.now() - swappedAt);
    }
    expect(pickups).toHaveLength(200);
    const sorted = [...pickups].sort((a, b) => a - b);
    console.log(
      `rotation pickup over 200 swaps: p50 ${percentile(sorted, 50).toFixed(2)} ms, p99 ${percentile(sorted, 99).toFixed(2)} ms, max ${sorted.at(-1)!.toFixed(2)} ms (target p99 < 50 ms)`,
    );
  });

  it('refreshes the default token at warnafter, not at 80 % of its extended year', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const kubelet = new FakeKubelet({ volume, issuer, expirationSeconds: 3607, extendExpiration: true });
    await kubelet.start();
    kubelet.stop();
    const source = new FileTokenSource({ path: kubelet.path, pollInterval: 0 });
    defer(() => source.close());
    const token = await source.ready();
    expect(token.kind).toBe('bound');
    const iat = token.issuedAt!.getTime();
    expect(token.expiresAt!.getTime() - iat).toBe(365 * 24 * 3600 * 1000);
    expect(token.warnAfter!.getTime()).toBe(iat + 3607_000);
    expect(token.refreshAt!.getTime()).toBe(iat + 3607_000);
    expect(token.refreshAt!.getTime()).toBeLessThan(iat + 0.8 * 365 * 24 * 3600 * 1000);
  });

  it('follows a plain file replaced by rename and one rewritten in place (no kubelet layout)', async () => {
    const dir = await tempDir();
    const { writeFile, rename } = await import('node:fs/promises');
    const path = `${dir}/token`;
    await writeFile(path, await issuer.mint({ audience: 'a' }));
    const source = new FileTokenSource({ path, pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    const next = await issuer.mint({ audience: 'a' });
    await writeFile(`${dir}/.token.tmp`, next);
    await rename(`${dir}/.token.tmp`, path);
    await until('the renamed file loaded', () => source.current?.value === next, 5_000, 1);
    const third = await issuer.mint({ audience: 'a' });
    await writeFile(path, third);
    await until('the rewritten file loaded', () => source.current?.value === third, 5_000, 1);
  });
});
