import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Forge from 'node-forge';

// node-forge is CommonJS with `export =` typings: require() it.
const forge = createRequire(import.meta.url)('node-forge') as typeof Forge;

// A throw-away PKI made at test time: a CA like a cluster's and a serving certificate like
// the API server's. Keys come from node:crypto (fast, native); node-forge only builds and
// signs the X.509 structures, which node:crypto cannot. Nothing here is ever written to the
// repository.

/** A certificate authority: its PEM and what it needs to sign. */
export interface TestCa {
  readonly certPem: string;
  readonly cert: Forge.pki.Certificate;
  readonly key: Forge.pki.rsa.PrivateKey;
}

/** A serving certificate with its key, as `https.createServer` / `setSecureContext` take them. */
export interface TestServerCert {
  readonly cert: string;
  readonly key: string;
}

function keyPair(): { publicKey: Forge.pki.rsa.PublicKey; privateKey: Forge.pki.rsa.PrivateKey; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey) as Forge.pki.rsa.PublicKey,
    privateKey: forge.pki.privateKeyFromPem(privateKey) as Forge.pki.rsa.PrivateKey,
    privateKeyPem: privateKey,
  };
}

function serial(): string {
  // Positive, unique and minimally encoded: 16 bytes whose first is 0x40-0x7f. A serial
  // written as "0" + 30 hex digits became 0x00 + 15 bytes, a padded DER INTEGER whenever the
  // next byte was below 0x80, which OpenSSL 3 (Node 24) refuses: "asn1 … illegal padding".
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return bytes.toString('hex');
}

function validity(cert: Forge.pki.Certificate): void {
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + 24 * 60 * 60 * 1000);
}

/** A self-signed CA named `commonName`. */
export function createCa(commonName: string): TestCa {
  const { publicKey, privateKey } = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  validity(cert);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(privateKey, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), cert, key: privateKey };
}

/** A serving certificate for 127.0.0.1 (and `localhost`, `kubernetes.default.svc`, and `extraNames`) signed by `ca`. */
export function issueServerCert(ca: TestCa, extraNames: readonly string[] = []): TestServerCert {
  const { publicKey, privateKeyPem } = keyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serial();
  validity(cert);
  cert.setSubject([{ name: 'commonName', value: 'kube-apiserver' }]);
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [
        { type: 7, ip: '127.0.0.1' },
        { type: 2, value: 'localhost' },
        { type: 2, value: 'kubernetes.default.svc' },
        ...extraNames.map((value) => ({ type: 2, value })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKeyPem };
}
