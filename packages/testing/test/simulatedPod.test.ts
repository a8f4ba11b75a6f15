import { existsSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeToken, isTokenSourceError } from '@podtoken/core';
import { createIssuer, startSimulatedPod, tokenId, type SimulatedPod } from '@podtoken/testing';

// Tokens are minted at run time; assertions compare ids or booleans so a failure never prints one.

let pod: SimulatedPod | undefined;
afterEach(async () => {
  await pod?.close();
  pod = undefined;
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('startSimulatedPod', () => {
  it('with no options: a temp folder, a volume holding one token, and a server that accepts it', async () => {
    pod = await startSimulatedPod();
    expect(dirname(pod.dir)).toBe(tmpdir());
    expect(basename(pod.dir)).toMatch(/^podtoken-pod-/);
    expect(pod.tokenPath).toBe(join(pod.dir, 'var/run/secrets/tokens/token'));
    expect(pod.tokenPath).toBe(pod.kubelet.path);
    expect(pod.volume.dir).toBe(dirname(pod.tokenPath));
    expect(pod.kubelet.rotations).toBe(1);
    expect(pod.source).toBeUndefined();
    // the kubelet's atomic-writer layout: token -> ..data/token
    expect(await readlink(pod.tokenPath)).toBe('..data/token');

    const token = await readFile(pod.tokenPath, 'utf8');
    expect(token === pod.kubelet.last?.token).toBe(true);
    expect(decodeToken(token).audience).toEqual([pod.issuer.issuer]);
    expect((await fetch(pod.server.url, bearer(token))).status).toBe(200);
    expect(pod.server.counts).toEqual({ ok: 1, unauthorized: 0, missing: 0 });
  });

  it('takes the audience, lifetime, file name, other files, mount path and folder name', async () => {
    pod = await startSimulatedPod({
      name: 'simulated-pod-test',
      mountPath: 'var/run/secrets/kubernetes.io/serviceaccount',
      audience: 'vault',
      expirationSeconds: 600,
      file: 'vault-token',
      files: { namespace: 'shop', 'ca.crt': 'not really a certificate' },
    });
    expect(basename(pod.dir)).toMatch(/^simulated-pod-test-/);
    expect(pod.tokenPath).toBe(join(pod.dir, 'var/run/secrets/kubernetes.io/serviceaccount/vault-token'));
    expect(await readFile(join(pod.volume.dir, 'namespace'), 'utf8')).toBe('shop');
    expect(await readFile(join(pod.volume.dir, 'ca.crt'), 'utf8')).toBe('not really a certificate');

    const decoded = decodeToken(await readFile(pod.tokenPath, 'utf8'));
    expect(decoded.audience).toEqual(['vault']);
    expect((decoded.expiresAt!.getTime() - decoded.issuedAt!.getTime()) / 1000).toBeGreaterThanOrEqual(600);
    expect((decoded.expiresAt!.getTime() - decoded.issuedAt!.getTime()) / 1000).toBeLessThanOrEqual(601);

    // the server is for that audience: a token for another one is refused
    expect((await fetch(pod.server.url, bearer(await pod.issuer.mint({ audience: 'vault' })))).status).toBe(200);
    expect((await fetch(pod.server.url, bearer(await pod.issuer.mint({ audience: 'someone-else' })))).status).toBe(401);
  });

  it('source: makes a FileTokenSource on the token file, ready, checking the pod audience', async () => {
    const withSource = await startSimulatedPod({ audience: 'api', source: { watch: false, pollInterval: 0 } });
    pod = withSource;
    expect(withSource.source.path).toBe(withSource.tokenPath);
    expect(withSource.source.current?.value === withSource.kubelet.last?.token).toBe(true);
    expect(withSource.source.current?.audience).toEqual(['api']);
    // watch: false and pollInterval: 0 were passed on: only invalidate() sees a new token
    const next = await withSource.kubelet.rotate();
    expect(withSource.source.current?.value === next.token).toBe(false);
    await withSource.source.invalidate(withSource.source.current!.value);
    expect(tokenId(await withSource.source.getToken()) === tokenId(next.token)).toBe(true);
  });

  it("kubelet 'start' keeps writing tokens; 'none' writes nothing until asked", async () => {
    const running = await startSimulatedPod({ kubelet: 'start', expirationSeconds: 0.5 });
    pod = running;
    expect(running.kubelet.rotations).toBeGreaterThanOrEqual(1);
    // waits for an event, not for a time: the test timeout bounds it
    await new Promise<void>((resolve) => {
      const off = running.kubelet.onRotate((rotation) => {
        if (rotation.count >= 2) {
          off();
          resolve();
        }
      });
    });
    await running.close();

    const idle = await startSimulatedPod({ kubelet: 'none' });
    pod = idle;
    expect(idle.kubelet.rotations).toBe(0);
    expect(existsSync(idle.tokenPath)).toBe(false);
    await idle.kubelet.rotate();
    expect(existsSync(idle.tokenPath)).toBe(true);
  });

  it('reuses an issuer passed in', async () => {
    const issuer = await createIssuer();
    pod = await startSimulatedPod({ issuer });
    expect(pod.issuer === issuer).toBe(true);
    expect((await fetch(pod.server.url, bearer(await issuer.mint()))).status).toBe(200);
  });

  it('passes a handler to the server', async () => {
    pod = await startSimulatedPod({
      server: {
        handler: (_request, response, context) => {
          response.writeHead(204, { 'x-outcome': context.outcome }).end();
          return true;
        },
      },
    });
    const response = await fetch(pod.server.url);
    expect(response.status).toBe(204);
    expect(response.headers.get('x-outcome')).toBe('missing');
  });

  it('close() stops the kubelet, closes source and server, removes the folder; twice is fine', async () => {
    const closing = await startSimulatedPod({ kubelet: 'start', source: true });
    pod = closing;
    await Promise.all([closing.close(), closing.close()]);
    expect(existsSync(closing.dir)).toBe(false);
    await expect(fetch(closing.server.url)).rejects.toThrow();
    const error: unknown = await closing.source.getToken().catch((e: unknown) => e);
    expect(isTokenSourceError(error) && error.code).toBe('TOKEN_SOURCE_CLOSED');
    await closing.close();
  });

  it('is AsyncDisposable: Symbol.asyncDispose closes it', async () => {
    const disposable = await startSimulatedPod();
    pod = disposable;
    await disposable[Symbol.asyncDispose]();
    expect(existsSync(disposable.dir)).toBe(false);
  });

  it('cleans up what it started when a step fails', async () => {
    const name = `simulated-pod-failing-${process.pid}`;
    // a source that only accepts another audience is refused at once (waiting cannot fix it)
    const error: unknown = await startSimulatedPod({ name, audience: 'api', source: { audience: 'someone-else', readyTimeout: 100 } }).catch(
      (e: unknown) => e,
    );
    expect(isTokenSourceError(error) && error.code).toBe('TOKEN_AUDIENCE_MISMATCH');
    expect((await readdir(tmpdir())).filter((entry) => entry.startsWith(`${name}-`))).toEqual([]);
  });

  it('validates its options', async () => {
    await expect(startSimulatedPod({ kubelet: 'none', source: true })).rejects.toThrow(/source needs a token on disk/);
    await expect(startSimulatedPod({ kubelet: 'sometimes' as never })).rejects.toThrow(/kubelet must be/);
    await expect(startSimulatedPod({ name: 'a/b' })).rejects.toThrow(/name/);
    await expect(startSimulatedPod({ expirationSeconds: 0 })).rejects.toThrow(/expirationSeconds/);
  });
});
