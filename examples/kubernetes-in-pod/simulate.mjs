// A pod and its API server, simulated on this machine, for `node app.mjs --simulate`:
//
// - a certificate authority and an API-server certificate for 127.0.0.1, made now (node-forge);
// - the service-account volume (token, ca.crt, namespace) under a temporary root, written
//   the way the kubelet writes it (timestamped folder, `..data` symlink swap), with tokens
//   signed by a test issuer (@podtoken/testing);
// - an HTTPS API server stand-in on 127.0.0.1 that verifies each bearer token with the
//   issuer's keys (signature, issuer, audience, expiry) and serves GET /api/v1/namespaces/{ns}/pods;
// - KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT pointing at it.
//
// Nothing here is needed in a real pod. Keys and tokens live in memory and the temporary
// folder only, and are never printed.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_ACCOUNT_DIR } from '@podtoken/kubernetes';
import { createIssuer, FakeKubelet, ProjectedVolume } from '@podtoken/testing';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';

const forge = createRequire(import.meta.url)('node-forge');
const NAMESPACE = 'demo';

export async function startSimulation() {
  const root = await mkdtemp(join(tmpdir(), 'kubernetes-in-pod-'));
  const issuer = await createIssuer();
  const ca = createCa();
  const server = await startApiServer(issuer, serverCert(ca));

  const volume = new ProjectedVolume({ dir: join(root, SERVICE_ACCOUNT_DIR) });
  const kubelet = new FakeKubelet({
    volume,
    issuer,
    mint: { namespace: NAMESPACE, serviceAccount: 'pod-lister', pod: 'kubernetes-in-pod-0' },
    files: { 'ca.crt': ca.pem, namespace: NAMESPACE },
  });
  const rotate = async () => {
    const rotation = await kubelet.rotate();
    server.generations.set(decodeJwt(rotation.token).jti, rotation.count);
  };
  await rotate();

  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
  process.env.KUBERNETES_SERVICE_PORT = String(server.port);

  return {
    root,
    url: `https://127.0.0.1:${server.port}`,
    rotate,
    get rotations() {
      return kubelet.rotations;
    },
    lastTokenSeen: () => server.lastGeneration,
    async close() {
      kubelet.stop();
      restore('KUBERNETES_SERVICE_HOST', saved.host);
      restore('KUBERNETES_SERVICE_PORT', saved.port);
      await server.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

function restore(name, value) {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

async function startApiServer(issuer, tls) {
  const jwks = createLocalJWKSet(issuer.jwks);
  const generations = new Map();
  const state = { generations, lastGeneration: 0 };
  const server = createServer(tls, async (request, response) => {
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    let claims;
    try {
      ({ payload: claims } = await jwtVerify(token, jwks, { issuer: issuer.issuer, audience: issuer.issuer, clockTolerance: 0 }));
    } catch {
      return json(response, 401, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 });
    }
    state.lastGeneration = generations.get(claims.jti) ?? 0;
    const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(new URL(request.url, 'https://localhost').pathname);
    if (request.method !== 'GET' || !match) return json(response, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
    const namespace = decodeURIComponent(match[1]);
    const pod = (name, phase) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, status: { phase } });
    return json(response, 200, {
      apiVersion: 'v1',
      kind: 'PodList',
      metadata: { resourceVersion: '1' },
      items: [pod('kubernetes-in-pod-0', 'Running'), pod('web-7d4b9c-x2k8f', 'Running'), pod('migrate-28910', 'Succeeded')],
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(state, {
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

function json(response, status, body) {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

function keys() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKey: forge.pki.publicKeyFromPem(publicKey), privateKey: forge.pki.privateKeyFromPem(privateKey), privateKeyPem: privateKey };
}

function certificate(publicKey, subject, issuerAttributes, extensions, signingKey) {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // 16 bytes, the first 0x40-0x7f: positive and minimally encoded (OpenSSL 3 refuses a padded INTEGER).
  const serial = randomBytes(16);
  serial[0] = (serial[0] & 0x3f) | 0x40;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 60 * 60 * 1000);
  cert.setSubject(subject);
  cert.setIssuer(issuerAttributes);
  cert.setExtensions(extensions);
  cert.sign(signingKey, forge.md.sha256.create());
  return cert;
}

function createCa() {
  const { publicKey, privateKey } = keys();
  const subject = [{ name: 'commonName', value: 'kubernetes-in-pod simulated cluster CA' }];
  const cert = certificate(
    publicKey,
    subject,
    subject,
    [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ],
    privateKey,
  );
  return { cert, key: privateKey, pem: forge.pki.certificateToPem(cert) };
}

function serverCert(ca) {
  const { publicKey, privateKeyPem } = keys();
  const cert = certificate(
    publicKey,
    [{ name: 'commonName', value: 'kube-apiserver' }],
    ca.cert.subject.attributes,
    [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
    ca.key,
  );
  return { cert: forge.pki.certificateToPem(cert), key: privateKeyPem };
}
