import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// @kubernetes/client-node is an optional peer: a service that verifies with OIDC must not
// need it. Proven with plain Node on the built package (dist/), in a child process whose
// module resolution refuses client-node, as if it were not installed.

const packageDir = fileURLToPath(new URL('..', import.meta.url));

const REFUSE_CLIENT_NODE = `data:text/javascript,${encodeURIComponent(`
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
  export async function resolve(specifier, context, next) {
    if (specifier === '@kubernetes/client-node' || specifier.startsWith('@kubernetes/client-node/')) {
      const error = new Error("Cannot find package '@kubernetes/client-node' (refused by the test)");
      error.code = 'ERR_MODULE_NOT_FOUND';
      throw error;
    }
    return next(specifier, context);
  }
\`));
`)}`;

const CHILD = `
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createTokenVerifier } from '@podtoken/verify';

const { publicKey, privateKey } = await generateKeyPair('RS256');
const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
const server = createServer((request, response) => response.end(JSON.stringify({ keys: [jwk] })));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const now = Math.floor(Date.now() / 1000);
const token = await new SignJWT({
  aud: ['svc'], 'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'checkout', uid: 'u1' }, pod: { name: 'checkout-0', uid: 'p1' } },
})
  .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
  .setIssuer('https://issuer.example').setSubject('system:serviceaccount:shop:checkout').setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 600)
  .sign(privateKey);

const oidc = createTokenVerifier({ method: 'oidc', audiences: 'svc', issuer: 'https://issuer.example', jwksUri: 'http://127.0.0.1:' + server.address().port + '/jwks' });
const identity = await oidc.verify(token);
const review = createTokenVerifier({ audiences: 'svc', kubeConfig: { makeApiClient() { throw new Error('not reached'); } } });
const refused = await review.verify(token).then(() => 'accepted', (error) => error.code + ': ' + error.message);
server.close();
console.log(JSON.stringify({ username: identity.username, pod: identity.pod.name, refused }));
`;

describe('@kubernetes/client-node is an optional peer', () => {
  beforeAll(() => {
    // tsc -b is incremental: a no-op when dist/ is current.
    const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-b'], { cwd: packageDir, stdio: 'inherit' });
  }, 120_000);

  it('the OIDC path runs without it; the TokenReview path says to install it', () => {
    // Plain Node: no test-runner conditions, so @podtoken/verify resolves to dist/.
    const child = spawnSync(process.execPath, ['--import', REFUSE_CLIENT_NODE, '--input-type=module', '-e', CHILD], {
      cwd: packageDir,
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      username: 'system:serviceaccount:shop:checkout',
      pod: 'checkout-0',
      refused:
        "REVIEW_UNAVAILABLE: method 'tokenreview' needs @kubernetes/client-node 1.x or 2.x: install it (npm install @kubernetes/client-node), or use method 'oidc'.",
    });
  });
});
