import { createHash, createPublicKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runInspect, inspectFile } from '@podtoken/cli';
import { decodeToken, FileTokenSource } from '@podtoken/core';
import { createIssuer } from '@podtoken/testing';
import { beforeEach, describe, expect, it } from 'vitest';
import { defer } from '../helpers.js';
import { claimsOf, cluster, fileToken, kubeOk, startPod, type Pod } from './support/kube.js';

// 2. What real tokens look like, and what podtoken makes of them: refresh times, `podtoken
// inspect`, and whether the test kit's issuer mints the same shape.

const YEAR = 365 * 24 * 60 * 60;
let pod: Pod;
let defaultToken: string;
let vaultToken: string;

// A pod per test: what a test starts (kubelets, temp folders) is stopped after it.
beforeEach(async () => {
  pod = await startPod({
    prefix: 'tokens',
    volumes: { vault: { mountPath: 'var/run/secrets/tokens', file: 'vault-token', audience: 'vault', expirationSeconds: 600 } },
  });
  defaultToken = await fileToken(pod.kubelet.path);
  vaultToken = await fileToken(pod.kubelets['vault']!.path);
});

describe('real tokens, decoded by podtoken', () => {
  it('the default token (expirationSeconds 3607) is extended: exp = iat + 1 year, warnafter = iat + 3607, refreshAt = warnAfter', async () => {
    const source = new FileTokenSource({ path: pod.kubelet.path });
    defer(() => source.close());
    const token = await source.ready();
    const iat = pod.kubelet.ready.claims!.iat;
    expect(token.kind).toBe('bound');
    expect(token.issuedAt?.getTime()).toBe(iat * 1000);
    expect(token.expiresAt?.getTime()).toBe((iat + YEAR) * 1000);
    expect(token.warnAfter?.getTime()).toBe((iat + 3607) * 1000);
    expect(token.refreshAt?.getTime()).toBe(token.warnAfter?.getTime());
    // The TokenRequest's status tells the kubelet 3607 s (it rotates at 80 % of that); only the JWT says a year.
    expect(pod.kubelet.ready.expirationTimestamp).toBe(iat + 3607);
    expect(token.audience).toEqual([cluster.issuer]);
    expect(token.issuer).toBe(cluster.issuer);
    expect(token.subject).toBe(`system:serviceaccount:${pod.namespace}:${pod.serviceAccount}`);
    expect(token.kubernetes).toEqual({
      namespace: pod.namespace,
      serviceAccount: { name: pod.serviceAccount, uid: pod.serviceAccountUid },
      pod: { name: pod.name, uid: pod.uid },
    });
  });

  it('a 600 s audience-scoped token is not extended: refreshAt at 80 % of its lifetime', async () => {
    const source = new FileTokenSource({ path: pod.kubelets['vault']!.path, audience: 'vault' });
    defer(() => source.close());
    const token = await source.ready();
    const iat = pod.kubelets['vault']!.ready.claims!.iat;
    expect(token.audience).toEqual(['vault']);
    expect(token.warnAfter).toBeUndefined();
    expect(token.expiresAt?.getTime()).toBe((iat + 600) * 1000);
    expect(token.refreshAt?.getTime()).toBe((iat + 480) * 1000);
    expect(token.kubernetes?.pod).toEqual({ name: pod.name, uid: pod.uid });
  });
});

describe('podtoken inspect on real tokens', () => {
  it('the default token: bound to the pod, warnafter as refresh basis, healthy with one note', async () => {
    // The token sits under the test's root, not at /var/run/secrets/…: tell inspect where the default token lives.
    const report = await inspectFile(pod.kubelet.path, { defaultTokenPath: pod.kubelet.path });
    expect(report.volume?.layout).toBe('projected');
    expect(report.volume?.mode).toBe('0644');
    expect(report.token?.kind).toBe('bound');
    expect(report.token?.kubernetes?.pod).toEqual({ name: pod.name, uid: pod.uid });
    expect(report.token?.kubernetes?.node).toBeUndefined();
    expect(report.token?.refreshBasis).toBe('warnafter');
    expect(report.token?.warnAfter).toBe(new Date((pod.kubelet.ready.claims!.iat + 3607) * 1000).toISOString());
    expect(report.findings.map((f) => `${f.level}:${f.code}`)).toEqual(['note:extended-expiry']);
    expect(report.status).toBe('healthy');
    expect(JSON.stringify(report).includes(defaultToken)).toBe(false);
  });

  it('the audience-scoped token, through the command (text and --json): healthy, no finding at all', async () => {
    const path = pod.kubelets['vault']!.path;
    const json = collector();
    expect(await runInspect(['--json', '--audience', 'vault', path], { stdout: json, stderr: json, env: {} })).toBe(0);
    const document = JSON.parse(json.text) as { exitCode: number; files: Array<Record<string, any>> };
    const report = document.files[0]!;
    expect(report['status']).toBe('healthy');
    expect(report['findings']).toEqual([]);
    expect(report['token'].kind).toBe('bound');
    expect(report['token'].refreshBasis).toBe('ratio');
    expect(report['token'].lifetimeSeconds).toBe(600);
    expect(report['token'].kubernetes.pod).toEqual({ name: pod.name, uid: pod.uid });

    const text = collector();
    expect(await runInspect([path], { stdout: text, stderr: text, env: { NO_COLOR: '1' } })).toBe(0);
    expect(text.text).toMatch(new RegExp(`pod\\s+${pod.name} \\(uid ${pod.uid}\\)`));
    expect(text.text).toMatch(/warnafter\s+\(none: expiry not extended\)/);
    expect(text.text).toMatch(/status\s+✓ healthy/);
    for (const rendering of [json.text, text.text]) expect(rendering.includes(vaultToken)).toBe(false);
  });
});

describe('the test kit imitates these tokens', () => {
  it("createIssuer() mints the header and claims the real API server mints (with 1.20's claim set)", async () => {
    const issuer = await createIssuer({ issuer: cluster.issuer });
    const imitations = {
      default: await issuer.mint({ extendExpiration: true, jti: false, node: false }),
      vault: await issuer.mint({ audience: 'vault', expirationSeconds: 600, jti: false, node: false }),
    };
    const reals = { default: defaultToken, vault: vaultToken };
    for (const name of ['default', 'vault'] as const) {
      const [real, imitation] = [reals[name], imitations[name]];
      const header = (token: string) => JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString('utf8'));
      expect(Object.keys(header(imitation)).sort(), `${name}: header fields`).toEqual(Object.keys(header(real)).sort());
      expect(shape(claimsOf(imitation)), `${name}: claim names and types`).toEqual(shape(claimsOf(real)));
      const [r, i] = [decodeToken(real), decodeToken(imitation)];
      expect(i.expiresAt!.getTime() - i.issuedAt!.getTime()).toBe(r.expiresAt!.getTime() - r.issuedAt!.getTime());
      expect(i.warnAfter === undefined).toBe(r.warnAfter === undefined);
      if (r.warnAfter) expect(i.warnAfter!.getTime() - i.issuedAt!.getTime()).toBe(r.warnAfter.getTime() - r.issuedAt!.getTime());
    }
  });

  it("the key id is the API server's (base64url SHA-256 of the public key's DER), and the JWKS entries have the same fields", async () => {
    const issuer = await createIssuer({ issuer: cluster.issuer });
    const publicKey = createPublicKey(await readFile(join(cluster.stateDir, 'sa.pub')));
    const kidOf = (key: ReturnType<typeof createPublicKey>) => createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('base64url');
    const realKid = JSON.parse(Buffer.from(defaultToken.split('.')[0]!, 'base64url').toString('utf8')).kid;
    expect(realKid).toBe(kidOf(publicKey));
    const jwks = await kubeOk('GET', '/openid/v1/jwks', undefined, undefined, 'application/jwk-set+json');
    expect(jwks.keys.map((key: { kid: string }) => key.kid)).toEqual([realKid]);
    const ours = issuer.jwks.keys[0]!;
    expect(ours.kid).toBe(kidOf(createPublicKey({ key: ours as never, format: 'jwk' })));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(jwks.keys[0]).sort());
  });
});

/** Claim names with their JSON types, nested objects described the same way. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return ['array', ...new Set(value.map(shape))];
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, shape(v)]));
  }
  return typeof value;
}

function collector() {
  const out = { text: '', write: (chunk: string) => void (out.text += chunk) };
  return out;
}
