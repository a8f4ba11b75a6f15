// The cluster side of grpc-in-pod, nothing a real pod needs:
// - a certificate authority and a serving certificate for localhost and 127.0.0.1, made now (node-forge
//   builds the X.509 structures, node:crypto the keys); never written to the repository;
// - a gRPC server over TLS on localhost that verifies each call's bearer token the way the
//   API server verifies a ServiceAccount token: the signer's JWKS, `iss`, `aud`, `exp` with no
//   tolerance (jose), plus revocations (a deleted pod's token). It serves the service given
//   to it and grpc.health.v1.Health/Check (protobuf encoded by hand: no codegen), both
//   behind the token check. It logs each call by tokenId, never by token.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { tokenId } from '@podtoken/testing';

const forge = createRequire(import.meta.url)('node-forge');

/** grpc.health.v1.Health/Check with raw protobuf bytes: HealthCheckResponse { status = 1 (SERVING) } is 0x08 0x01. */
export const HEALTH_CHECK = {
  path: '/grpc.health.v1.Health/Check',
  requestStream: false,
  responseStream: false,
  requestSerialize: (bytes) => bytes,
  requestDeserialize: (bytes) => bytes,
  responseSerialize: (bytes) => bytes,
  responseDeserialize: (bytes) => bytes,
};

/** A CA and a serving certificate for localhost and 127.0.0.1 signed by it, as PEM. */
export function createTls() {
  const ca = keys();
  const caSubject = [{ name: 'commonName', value: 'grpc-in-pod simulated cluster CA' }];
  const caCert = certificate(
    ca.publicKey,
    caSubject,
    caSubject,
    [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ],
    ca.privateKey,
  );
  const server = keys();
  const serverCert = certificate(
    server.publicKey,
    [{ name: 'commonName', value: 'orders.shop.svc' }],
    caSubject,
    [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
    ],
    ca.privateKey,
  );
  return { ca: forge.pki.certificateToPem(caCert), cert: forge.pki.certificateToPem(serverCert), key: server.privateKeyPem };
}

/**
 * Starts the verifying gRPC server on localhost (127.0.0.1, and ::1 where it resolves) over TLS.
 *
 * @param {{ issuer: { issuer: string, jwks: object }, audience: string, service: Record<string, object>, implementation: Record<string, (request: unknown, caller: string | undefined) => unknown>, tls: { cert: string, key: string } }} options
 */
export async function startVerifyingServer({ issuer, audience, service, implementation, tls }) {
  const keySet = createLocalJWKSet(issuer.jwks);
  const revoked = new Set();
  let log = [];

  async function judge(method, metadata) {
    const header = metadata.get('authorization')[0];
    const refuse = (outcome, reason, id) => {
      log.push({ method, outcome, reason, tokenId: id });
      const trailers = new Metadata();
      trailers.set('www-authenticate', 'Bearer error="invalid_token"');
      return { ok: false, error: { code: status.UNAUTHENTICATED, details: 'invalid token', metadata: trailers } };
    };
    if (typeof header !== 'string') return refuse('missing', 'no authorization metadata', undefined);
    const token = /^Bearer +(\S+)$/i.exec(header)?.[1];
    if (token === undefined) return refuse('unauthorized', 'not a Bearer token', tokenId(header));
    const id = tokenId(token);
    if (revoked.has(id)) return refuse('unauthorized', 'revoked', id);
    try {
      const { payload } = await jwtVerify(token, keySet, { issuer: issuer.issuer, audience, clockTolerance: 0, requiredClaims: ['exp'] });
      if (revoked.has(id)) return refuse('unauthorized', 'revoked', id);
      log.push({ method, outcome: 'ok', reason: undefined, tokenId: id });
      return { ok: true, caller: payload.sub };
    } catch (error) {
      return refuse('unauthorized', typeof error?.code === 'string' ? error.code : 'invalid token', id);
    }
  }

  let beforeNextRefusal;
  const guarded = (method, handle) => (call, callback) => {
    void judge(method, call.metadata)
      .then(async (verdict) => {
        if (verdict.ok) return callback(null, handle(call.request, verdict.caller));
        const hook = beforeNextRefusal;
        beforeNextRefusal = undefined;
        await hook?.();
        callback(verdict.error);
      })
      .catch(() => callback({ code: status.INTERNAL, details: 'server error' }));
  };
  const server = new Server();
  server.addService(
    service,
    Object.fromEntries(Object.entries(implementation).map(([name, handle]) => [name, guarded(name, handle)])),
  );
  server.addService({ check: HEALTH_CHECK }, { check: guarded('health', () => Buffer.from([0x08, 0x01])) });
  const credentials = ServerCredentials.createSsl(null, [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }], false);
  const port = await new Promise((resolve, reject) => server.bindAsync('localhost:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound))));

  return {
    address: `localhost:${port}`,
    /** Calls seen, oldest first: `{ method, outcome: 'ok' | 'unauthorized' | 'missing', reason, tokenId }`. */
    get log() {
      return log.slice();
    },
    get counts() {
      const counts = { ok: 0, unauthorized: 0, missing: 0 };
      for (const entry of log) counts[entry.outcome] += 1;
      return counts;
    },
    /** Runs `hook` (awaited) before the next refusal is answered: e.g. the kubelet writing a new token as the old one is refused. */
    beforeNextRefusal(hook) {
      beforeNextRefusal = hook;
    },
    /** Refuses `token` from now on, as the API server does once its pod is deleted. */
    revoke(token) {
      revoked.add(tokenId(token));
    },
    reset() {
      log = [];
    },
    close() {
      return new Promise((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 1_000);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
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
