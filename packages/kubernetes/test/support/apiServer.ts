import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Issuer } from '@podtoken/testing';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import type { TestServerCert } from './pki.js';

/** Options of {@link startApiServer}. */
export interface ApiServerOptions {
  /** Whose tokens it accepts (signature checked with the issuer's JWKS, like the API server does). */
  issuer: Pick<Issuer, 'issuer' | 'jwks'>;
  /** The audience a token must hold. */
  audience: string;
  /** The serving certificate. */
  tls: TestServerCert;
  /**
   * Once a token is presented, refuse every token presented before it (as revoked): a
   * client that ever goes back to an older token gets a 401.
   * @default false
   */
  revokeSuperseded?: boolean;
}

/** One request as the server saw it. Holds the token's `jti`, never the token. */
export interface RequestRecord {
  /** 1, 2, 3… in order of arrival. */
  readonly seq: number;
  readonly method: string;
  readonly path: string;
  /** A `?watch=true` request. */
  readonly watch: boolean;
  /** `performance.now()` when the request arrived: the same clock as `VolumeWrite.swappedAt`. */
  readonly at: number;
  /** The `jti` of the token sent, when one was sent and decodes. */
  readonly jti: string | undefined;
  readonly status: number;
  /** Why it was refused: `'missing'`, `'revoked'`, or jose's error code. */
  readonly reason: string | undefined;
}

/** A stand-in for the Kubernetes API server on 127.0.0.1, over HTTPS. */
export interface ApiServer {
  /** `https://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Every request so far, in order of arrival. */
  readonly requests: readonly RequestRecord[];
  /** Refuses the token with this `jti` from now on. */
  revoke(jti: string): void;
  /** Serves another certificate to new connections (a CA rotation). */
  setTls(tls: TestServerCert): void;
  /** Closes every open connection (as an API server that restarts with a new certificate does). */
  dropConnections(): void;
  /** TCP connections accepted so far, and how many are open now. */
  connections(): { accepted: number; open: number };
  /** Ends every open watch stream normally (as the API server does when a watch times out). */
  endWatches(): void;
  /** Closes every connection, open watches included. */
  close(): Promise<void>;
}

const UNAUTHORIZED = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

function pod(namespace: string, name: string) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: '1' },
    spec: { containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Running' },
  };
}

/**
 * Serves the few API paths the tests call:
 * `GET /api/v1/namespaces/{ns}/pods` (a PodList of two pods) and the same with
 * `?watch=true` (one `ADDED` event, then the stream stays open). Every request must carry a
 * bearer token that verifies against the issuer's JWKS (issuer, audience, `exp`/`nbf` with
 * no clock tolerance) and is not revoked; others get a 401 `Status`.
 */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const jwks = createLocalJWKSet(options.issuer.jwks);
  const requests: RequestRecord[] = [];
  const revoked = new Set<string>();
  const presented: string[] = [];
  const watches = new Set<ServerResponse>();
  let seq = 0;
  let accepted = 0;
  const sockets = new Set<Socket>();

  const server = createServer({ cert: options.tls.cert, key: options.tls.key }, (request, response) => {
    const at = performance.now();
    const number = ++seq;
    void handle(request, response, at, number).catch(() => {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse, at: number, number: number): Promise<void> {
    const url = new URL(request.url ?? '/', 'https://127.0.0.1');
    const watch = url.searchParams.get('watch') === 'true';
    const record = (status: number, jti: string | undefined, reason: string | undefined) =>
      requests.push({ seq: number, method: request.method ?? 'GET', path: `${url.pathname}${url.search}`, watch, at, jti, status, reason });

    const header = request.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    let jti: string | undefined;
    try {
      jti = token === undefined ? undefined : (decodeJwt(token).jti as string | undefined);
    } catch {
      jti = undefined;
    }
    let reason: string | undefined;
    if (token === undefined) reason = 'missing';
    else {
      try {
        await jwtVerify(token, jwks, { issuer: options.issuer.issuer, audience: options.audience, clockTolerance: 0 });
        if (jti === undefined || revoked.has(jti)) reason = 'revoked';
      } catch (error) {
        reason = (error as { code?: string }).code ?? 'invalid';
      }
    }
    if (reason === undefined && options.revokeSuperseded && jti !== undefined && !presented.includes(jti)) {
      for (const older of presented) revoked.add(older);
      presented.push(jti);
    }
    if (reason !== undefined) {
      record(401, jti, reason);
      send(response, 401, UNAUTHORIZED);
      return;
    }

    const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    if (request.method !== 'GET' || match === null) {
      record(404, jti, undefined);
      send(response, 404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 });
      return;
    }
    const namespace = decodeURIComponent(match[1]!);
    record(200, jti, undefined);
    if (watch) {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`${JSON.stringify({ type: 'ADDED', object: pod(namespace, 'app-0') })}\n`);
      watches.add(response);
      response.on('close', () => watches.delete(response));
      return;
    }
    send(response, 200, {
      apiVersion: 'v1',
      kind: 'PodList',
      metadata: { resourceVersion: '1' },
      items: [pod(namespace, 'app-0'), pod(namespace, 'app-1')],
    });
  }

  server.on('secureConnection', (socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `https://127.0.0.1:${port}`,
    port,
    requests,
    revoke: (jti) => void revoked.add(jti),
    setTls: (tls) => server.setSecureContext({ cert: tls.cert, key: tls.key }),
    dropConnections: () => {
      for (const socket of sockets) socket.destroy();
    },
    connections: () => ({ accepted, open: sockets.size }),
    endWatches: () => {
      for (const response of watches) response.end();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of watches) response.end();
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
