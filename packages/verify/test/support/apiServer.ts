import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import type { Issuer } from '@podtoken/testing';
import { createCa, issueServerCert, type TestCa } from '../../../kubernetes/test/support/pki.js';

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** The cluster's ServiceAccount signer: its keys check both the callers' and the reviewer's tokens. */
  readonly issuer: Issuer;
  /** The API server's own audiences (`--api-audiences`). @default [issuer.issuer] */
  readonly apiAudiences?: readonly string[];
}

/** One TokenReview as the server saw it: no token, only what it decided. */
export interface ReviewRecord {
  readonly authenticated: boolean;
  readonly audiences: readonly string[] | undefined;
  readonly status: number;
}

/** A stand-in for the Kubernetes API server on 127.0.0.1 over HTTPS; see {@link startApiServer}. */
export interface ApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** The CA that signed its certificate (what a pod's `ca.crt` holds). */
  readonly ca: TestCa;
  /** Every TokenReview request, in order (also those answered with a forced status). */
  readonly reviews: readonly ReviewRecord[];
  /** Discovery and key-set requests, in order, with the status answered. */
  readonly discovery: ReadonlyArray<{ readonly path: string; readonly status: number }>;
  /** Deletes a Pod: tokens bound to it fail TokenReview from now on, as on a real API server. */
  deletePod(name: string): void;
  /** Answers every TokenReview with this status (401, 403, 500, 503…) until called with undefined. */
  failWith(status: number | undefined): void;
  /** Holds every TokenReview this long (ms) before answering. */
  delay(ms: number): void;
  /** Refuses this reviewer token (by `jti`) from now on, as for a rotated-away token. */
  revokeCaller(jti: string): void;
  close(): Promise<void>;
}

// RSA key generation is the slow part of a set-up: one CA and serving certificate per test file.
let pki: { ca: TestCa; tls: ReturnType<typeof issueServerCert> } | undefined;
function makePki() {
  const ca = createCa('test-cluster-ca');
  return { ca, tls: issueServerCert(ca) };
}

const TOKEN_REVIEWS = '/apis/authentication.k8s.io/v1/tokenreviews';
const UNAUTHORIZED = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };
const LEGACY_ISSUER = 'kubernetes/serviceaccount';

/**
 * Serves what `@podtoken/verify` asks of an API server, the way kube-apiserver answers it:
 *
 * - `POST /apis/authentication.k8s.io/v1/tokenreviews`: the caller must present a valid token
 *   for an API audience (else 401); the reviewed token is checked with the signer's keys,
 *   `iss`, `aud` against `spec.audiences` (or the API audiences), `exp`/`nbf` with the API
 *   server's 60 s leeway, and its Pod must not be deleted. Legacy tokens are
 *   audience-agnostic: valid only when the audiences asked for include an API audience. The
 *   answer is a 201 with the TokenReview, `spec.token` echoed as kube-apiserver does.
 * - `GET /.well-known/openid-configuration` and `/openid/v1/jwks`, for an authenticated
 *   caller (the `system:service-account-issuer-discovery` role). The document's `jwks_uri`
 *   names an outside address that does not resolve here, as on most clusters.
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { issuer } = options;
  const apiAudiences = [...(options.apiAudiences ?? [issuer.issuer])];
  const keys = createLocalJWKSet(issuer.jwks);
  const { ca, tls } = (pki ??= makePki());
  const reviews: ReviewRecord[] = [];
  const discovery: Array<{ path: string; status: number }> = [];
  const deletedPods = new Set<string>();
  const revokedCallers = new Set<string>();
  let forced: number | undefined;
  let delayMs = 0;

  async function authenticate(header: string | undefined): Promise<boolean> {
    const token = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (token === undefined) return false;
    try {
      const { payload } = await jwtVerify(token, keys, { issuer: issuer.issuer, audience: apiAudiences, clockTolerance: 60 });
      return !revokedCallers.has(String(payload.jti));
    } catch {
      return false;
    }
  }

  async function review(token: string, asked: string[] | undefined): Promise<{ authenticated: boolean; error?: string; audiences?: string[]; payload?: JWTPayload }> {
    const audiences = asked !== undefined && asked.length > 0 ? asked : apiAudiences;
    let claims: JWTPayload;
    try {
      claims = decodeJwt(token);
    } catch {
      return { authenticated: false, error: 'invalid bearer token' };
    }
    try {
      if (claims.iss === LEGACY_ISSUER) {
        const { payload } = await jwtVerify(token, keys, { issuer: LEGACY_ISSUER });
        const granted = audiences.filter((audience) => apiAudiences.includes(audience));
        if (granted.length === 0) return { authenticated: false, error: 'token audiences is invalid for the current apiserver' };
        return { authenticated: true, audiences: granted, payload };
      }
      const { payload } = await jwtVerify(token, keys, { issuer: issuer.issuer, audience: audiences, clockTolerance: 60, requiredClaims: ['exp'] });
      const pod = (payload['kubernetes.io'] as { pod?: { name?: string } } | undefined)?.pod?.name;
      if (pod !== undefined && deletedPods.has(pod)) return { authenticated: false, error: `pods "${pod}" not found` };
      const tokenAudiences = [payload.aud ?? []].flat();
      return { authenticated: true, audiences: audiences.filter((audience) => tokenAudiences.includes(audience)), payload };
    } catch (error) {
      return { authenticated: false, error: (error as { code?: string }).code === 'ERR_JWT_EXPIRED' ? 'Token has expired.' : 'invalid bearer token' };
    }
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://127.0.0.1');
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const authenticated = await authenticate(request.headers.authorization);

    if (request.method === 'GET' && (url.pathname === '/.well-known/openid-configuration' || url.pathname === '/openid/v1/jwks')) {
      const status = authenticated ? 200 : 401;
      discovery.push({ path: url.pathname, status });
      if (!authenticated) return send(response, 401, UNAUTHORIZED);
      return url.pathname === '/openid/v1/jwks'
        ? send(response, 200, issuer.jwks)
        : send(response, 200, {
            issuer: issuer.issuer,
            jwks_uri: 'https://kubernetes.invalid/openid/v1/jwks',
            response_types_supported: ['id_token'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          });
    }

    if (request.method !== 'POST' || url.pathname !== TOKEN_REVIEWS) {
      return send(response, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
    }
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (forced !== undefined) {
      reviews.push({ authenticated: false, audiences: undefined, status: forced });
      return send(response, forced, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: `forced ${forced}`, code: forced });
    }
    if (!authenticated) {
      reviews.push({ authenticated: false, audiences: undefined, status: 401 });
      return send(response, 401, UNAUTHORIZED);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { spec?: { token?: string; audiences?: string[] } };
    const token = body.spec?.token;
    if (!token) {
      reviews.push({ authenticated: false, audiences: undefined, status: 400 });
      return send(response, 400, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'token is required for TokenReview in authentication', code: 400 });
    }
    const verdict = await review(token, body.spec?.audiences);
    reviews.push({ authenticated: verdict.authenticated, audiences: body.spec?.audiences, status: 201 });
    const status: Record<string, unknown> = { authenticated: verdict.authenticated };
    if (verdict.error !== undefined) status['error'] = verdict.error;
    if (verdict.authenticated && verdict.payload !== undefined) {
      const p = verdict.payload;
      const k8s = p['kubernetes.io'] as { namespace?: string; serviceaccount?: { uid?: string }; pod?: { name?: string; uid?: string } } | undefined;
      const namespace = k8s?.namespace ?? String(p['kubernetes.io/serviceaccount/namespace']);
      const extra: Record<string, string[]> = {};
      if (k8s?.pod?.name !== undefined) {
        extra['authentication.kubernetes.io/pod-name'] = [k8s.pod.name];
        extra['authentication.kubernetes.io/pod-uid'] = [k8s.pod.uid ?? ''];
      }
      status['user'] = {
        username: p.sub,
        uid: k8s?.serviceaccount?.uid ?? String(p['kubernetes.io/serviceaccount/service-account.uid']),
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        extra,
      };
      status['audiences'] = verdict.audiences;
    }
    // kube-apiserver echoes the whole object, spec.token included.
    send(response, 201, { kind: 'TokenReview', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec: body.spec, status });
  }

  const server = createServer({ cert: tls.cert, key: tls.key }, (request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    ca,
    reviews,
    discovery,
    deletePod: (name) => void deletedPods.add(name),
    failWith: (status) => {
      forced = status;
    },
    delay: (ms) => {
      delayMs = ms;
    },
    revokeCaller: (jti) => void revokedCallers.add(jti),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
