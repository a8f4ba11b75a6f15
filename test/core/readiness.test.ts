// status() and readiness() as a pod uses them: a readinessProbe calling a node:http server
// over loopback, with sources over real files in the kubelet's layout.
import { createTokenSources, FileTokenSource, readiness, staticTokenSource, type ReadinessReport } from '@podtoken/core';
import { createIssuer, FakeKubelet, ProjectedVolume, type Issuer } from '@podtoken/testing';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { defer, tempDir, until } from '../helpers.js';

let issuer: Issuer;
beforeAll(async () => {
  issuer = await createIssuer();
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('readiness(...sources) behind a real HTTP server', () => {
  it('answers 503 naming the source without a token, then 200 once it has one; never a token in the body', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const kubelet = new FakeKubelet({ volume, issuer, audience: 'api', expirationSeconds: 600 });
    const api = await kubelet.start();
    kubelet.stop();
    const vaultDir = join(await tempDir(), 'vault');
    const apiSource = new FileTokenSource({ path: kubelet.path, name: 'kubernetes', audience: 'api', pollInterval: 0 });
    const vaultSource = new FileTokenSource({ path: join(vaultDir, 'token'), name: 'vault', pollInterval: 0 });
    defer(() => apiSource.close());
    defer(() => vaultSource.close());
    await apiSource.ready();
    const url = await serve(readiness(apiSource, vaultSource));

    let response = await fetch(url);
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    let report = (await response.json()) as ReadinessReport;
    expect(report.ready).toBe(false);
    expect(report.failing).toEqual(['vault']);
    expect(report.sources).toMatchObject([
      { name: 'kubernetes', state: 'ok', serving: true },
      { name: 'vault', state: 'loading', serving: false },
    ]);
    expect(report.sources[0]!.expiresIn).toBeGreaterThan(590_000);
    expect(report.sources[0]!.expiresAt).toBe(new Date(Date.parse(report.sources[0]!.expiresAt!)).toISOString());

    const vaultVolume = new ProjectedVolume({ dir: vaultDir });
    const vault = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
    await vaultVolume.write({ token: vault });
    await vaultSource.ready();
    response = await fetch(url);
    expect(response.status).toBe(200);
    const text = await response.text();
    report = JSON.parse(text) as ReadinessReport;
    expect(report).toMatchObject({ ready: true, failing: [] });
    for (const token of [api.token, vault]) {
      expect(text.includes(token)).toBe(false);
      expect(text.includes(token.split('.')[2]!)).toBe(false);
    }

    // HEAD answers with the status alone; other methods are refused.
    response = await fetch(url, { method: 'HEAD' });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('');
    response = await fetch(url, { method: 'POST', body: 'x' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');

    // A read failure with a good token in memory keeps the pod ready; close() does not.
    await vaultVolume.write({ token: vault.slice(0, 30) });
    await until('vault failing', () => vaultSource.status().state === 'failing');
    response = await fetch(url);
    expect(response.status).toBe(200);
    report = (await response.json()) as ReadinessReport;
    expect(report.sources[1]).toMatchObject({ name: 'vault', state: 'failing', serving: true, lastError: { code: 'TOKEN_MALFORMED' } });
    await vaultSource.close();
    response = await fetch(url);
    expect(response.status).toBe(503);
    expect(((await response.json()) as ReadinessReport).sources[1]).toMatchObject({ name: 'vault', state: 'closed', serving: false });
  });

  it('is unready for a file whose token waiting cannot fix (another audience)', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token: await issuer.mint({ audience: 'other', expirationSeconds: 600 }) });
    const source = new FileTokenSource({ path: volume.path('token'), audience: 'vault', pollInterval: 0 });
    defer(() => source.close());
    await expect(source.ready()).rejects.toMatchObject({ code: 'TOKEN_AUDIENCE_MISMATCH' });
    const check = readiness(source).check();
    expect(check).toMatchObject({ ready: false, failing: [volume.path('token')] });
    expect(check.sources[0]).toMatchObject({ state: 'failing', serving: false, lastError: { code: 'TOKEN_AUDIENCE_MISMATCH' } });
  });

  it('takes what createTokenSources() returns, each source named by its key', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    await volume.write({ token: await issuer.mint({ audience: 'vault', expirationSeconds: 600 }) });
    const tokens = createTokenSources({
      vault: { path: volume.path('token'), audience: 'vault', pollInterval: 0 },
      partner: { path: join(dir, 'partner-token'), pollInterval: 0 },
    });
    defer(() => tokens.close());
    await tokens.get('vault').ready();
    expect(readiness(tokens).check()).toMatchObject({
      ready: false,
      failing: ['partner'],
      sources: [
        { name: 'vault', state: 'ok' },
        { name: 'partner', state: 'loading' },
      ],
    });
  });

  it('with { isReady }, a stricter rule: a source failing to read is unready even with a good token', async () => {
    const dir = await tempDir();
    const volume = new ProjectedVolume({ dir });
    const token = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
    await volume.write({ token });
    const source = new FileTokenSource({ path: volume.path('token'), name: 'vault', pollInterval: 0 });
    defer(() => source.close());
    await source.ready();
    const strict = readiness(source, { isReady: (status) => status.state === 'ok' });
    const lenient = readiness(source);
    expect(strict.check().ready).toBe(true);
    await volume.write({ token: 'not a token' });
    await until('failing', () => source.status().state === 'failing');
    expect(lenient.check()).toMatchObject({ ready: true, failing: [] });
    expect(strict.check()).toMatchObject({ ready: false, failing: ['vault'], sources: [{ name: 'vault', state: 'failing', serving: true }] });
    const url = await serve(strict);
    expect((await fetch(url)).status).toBe(503);
    expect(() => readiness(source, { isReady: 42 as never })).toThrow(/isReady must be a function/);
  });

  it('refuses to be built without sources, or with something that has no status()', () => {
    expect(() => readiness()).toThrow(TypeError);
    expect(() => readiness({} as never)).toThrow(/source 0 has no status\(\)/);
    expect(() => readiness(null as never)).toThrow(TypeError);
  });

  it('reports a static source as always serving', async () => {
    const token = await issuer.mint({ expirationSeconds: 600 });
    const report = readiness(staticTokenSource(token)).check();
    expect(report).toEqual({ ready: true, failing: [], sources: [{ name: 'static', state: 'ok', serving: true }] });
  });
});

describe('FileTokenSource options for status', () => {
  it('refuses an empty or non-string name', () => {
    expect(() => new FileTokenSource({ name: '' })).toThrow(/name must be a non-empty string/);
    expect(() => new FileTokenSource({ name: 42 as never })).toThrow(TypeError);
  });
});
