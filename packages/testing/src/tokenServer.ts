import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import type { Issuer } from './issuer.js';

/** Options of {@link startTokenServer}. */
export interface TokenServerOptions {
  /** Whose tokens it accepts: the `iss` to require and the key set to verify signatures with. */
  issuer: Pick<Issuer, 'issuer' | 'jwks'>;
  /** The audience (or audiences) this server is; a token's `aud` must hold one of them. */
  audience: string | string[];
  /**
   * TCP port on 127.0.0.1.
   * @default 0 (a free port chosen by the OS)
   */
  port?: number;
  /**
   * Runs for every request after the token check and after the body was read, before the
   * built-in routes. Return `true` when it answered (the built-in routes are skipped).
   * The request still counts as `ok`, `unauthorized` or `missing` by its token.
   */
  handler?: TokenServerHandler;
}

/**
 * A custom route of a {@link TokenServer}: answer through `response` and return `true`, or
 * return `false` to fall through to the built-in routes.
 */
export type TokenServerHandler = (
  request: IncomingMessage,
  response: ServerResponse,
  context: TokenServerContext,
) => boolean | Promise<boolean>;

/** What a {@link TokenServerHandler} learns about a request. Holds no token text. */
export interface TokenServerContext {
  /** The request's URL, resolved against the server's origin. */
  readonly url: URL;
  /** The token check's outcome. */
  readonly outcome: TokenServerOutcome;
  /** Why the token was refused (`outcome` other than `'ok'`). */
  readonly reason: string | undefined;
  /** The verified claims (`outcome === 'ok'`). */
  readonly claims: JWTPayload | undefined;
  /** {@link tokenId} of the token sent, when one was. */
  readonly tokenId: string | undefined;
  /** The request body (read in full before the handler runs). */
  readonly body: Buffer;
}

/**
 * How a request's token was judged:
 * - `ok`: a valid, unrevoked token for this server's issuer and audience;
 * - `unauthorized`: an `Authorization` header was sent but refused (bad scheme, bad
 *   signature, wrong `iss` or `aud`, expired, not yet valid, revoked);
 * - `missing`: no `Authorization` header at all.
 */
export type TokenServerOutcome = 'ok' | 'unauthorized' | 'missing';

/** Requests seen, by {@link TokenServerOutcome}. `unauthorized` and `missing` never overlap; both were answered 401. */
export interface TokenServerCounts {
  /** Requests with a valid token (whatever status they were answered). */
  ok: number;
  /** Requests with an `Authorization` header that was refused. */
  unauthorized: number;
  /** Requests without an `Authorization` header. */
  missing: number;
}

/** One request as the server saw it. Never holds token text: only {@link tokenId}. */
export interface TokenServerLogEntry {
  /** 1 for the first request since start (or {@link TokenServer.reset}), then 2, 3… */
  readonly seq: number;
  /** The request's method, e.g. `GET`. */
  readonly method: string;
  /** Path and query, as sent. */
  readonly path: string;
  /** How the token was judged. */
  readonly outcome: TokenServerOutcome;
  /** Why the token was refused: `'revoked'`, `'not a Bearer token'`, or jose's error code (e.g. `ERR_JWT_EXPIRED`). */
  readonly reason: string | undefined;
  /** The status code answered. */
  readonly status: number;
  /** {@link tokenId} of the token sent, when one was. */
  readonly tokenId: string | undefined;
  /** The token's `jti` claim, when it was verified and has one. */
  readonly jti: string | undefined;
  /** Bytes of request body received. */
  readonly bodyLength: number;
}

/** A running verifying server; see {@link startTokenServer}. */
export interface TokenServer {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  /** The TCP port it listens on. */
  readonly port: number;
  /** A snapshot of the counts since start (or the last {@link TokenServer.reset}). */
  readonly counts: Readonly<TokenServerCounts>;
  /** Every request since start (or the last {@link TokenServer.reset}), oldest first; at most the last 50,000. */
  readonly log: readonly TokenServerLogEntry[];
  /** Refuses `token` from now on, as the API server does once the token's pod is deleted. */
  revoke(token: string): void;
  /** Clears the counts and the log (revocations stay). */
  reset(): void;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

const MAX_LOG = 50_000;

/**
 * A short, stable, one-way id for a token (the first 16 hex digits of its SHA-256): safe to
 * print and to compare, unlike the token itself.
 */
export function tokenId(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

/**
 * Starts an HTTP server on 127.0.0.1 that checks bearer tokens the way the Kubernetes API
 * server checks OIDC tokens: the signature against the issuer's JWKS, `iss`, `aud`, and
 * `exp`/`nbf` with no clock tolerance (`exp` is required). Anything else gets a 401 with a
 * `Status` JSON body that never echoes the token. A {@link TokenServer.revoke revoked}
 * token gets 401 even while valid (its pod is gone).
 *
 * Routes, for requests with a valid token (every other request gets 401):
 * - `GET|POST|… /anything` → 200 `{ ok: true, sub, aud, jti, method, path, bodyLength, bodySha256 }`;
 * - `/redirect?to=<url>[&status=302]` → that redirect status with `Location: <url>`;
 * - `/status/<code>` → that status, with the same JSON body as the default route.
 *
 * @example
 * ```ts
 * const issuer = await createIssuer();
 * const server = await startTokenServer({ issuer, audience: issuer.issuer });
 * const response = await fetch(server.url, { headers: { authorization: `Bearer ${await issuer.mint()}` } });
 * // response.status === 200, server.counts.ok === 1
 * await server.close();
 * ```
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  if (typeof options?.issuer?.issuer !== 'string' || typeof options.issuer.jwks !== 'object') {
    throw new TypeError('startTokenServer: issuer must be an Issuer (from createIssuer)');
  }
  const audience = [options.audience].flat();
  if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
    throw new TypeError('startTokenServer: audience must be a non-empty string or array of strings');
  }
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new TypeError(`startTokenServer: port must be an integer in [0, 65535], got ${String(port)}`);
  }
  const handler = options.handler;
  const keys = createLocalJWKSet(options.issuer.jwks);
  const expectedIssuer = options.issuer.issuer;
  const revoked = new Set<string>();
  let counts: TokenServerCounts = { ok: 0, unauthorized: 0, missing: 0 };
  let log: TokenServerLogEntry[] = [];
  let seq = 0;
  let origin = '';

  interface Verdict {
    outcome: TokenServerOutcome;
    reason: string | undefined;
    claims: JWTPayload | undefined;
    tokenId: string | undefined;
  }

  async function judge(header: string | undefined): Promise<Verdict> {
    if (header === undefined) return { outcome: 'missing', reason: 'no Authorization header', claims: undefined, tokenId: undefined };
    const match = /^Bearer +(\S+) *$/i.exec(header);
    const token = match?.[1];
    if (token === undefined) return { outcome: 'unauthorized', reason: 'not a Bearer token', claims: undefined, tokenId: tokenId(header) };
    const id = tokenId(token);
    if (revoked.has(id)) return { outcome: 'unauthorized', reason: 'revoked', claims: undefined, tokenId: id };
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: expectedIssuer,
        audience,
        clockTolerance: 0,
        requiredClaims: ['exp'],
      });
      // Checked again after the await: a revoke() during verification wins.
      if (revoked.has(id)) return { outcome: 'unauthorized', reason: 'revoked', claims: undefined, tokenId: id };
      return { outcome: 'ok', reason: undefined, claims: payload, tokenId: id };
    } catch (error) {
      // jose's codes (ERR_JWT_EXPIRED, ERR_JWS_SIGNATURE_VERIFICATION_FAILED…) never hold token text.
      const code = (error as { code?: unknown }).code;
      return { outcome: 'unauthorized', reason: typeof code === 'string' ? code : 'invalid token', claims: undefined, tokenId: id };
    }
  }

  function readBody(request: IncomingMessage): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => resolve(Buffer.concat(chunks)));
      request.on('error', reject);
    });
  }

  function send(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    response.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    response.end(text);
  }

  function record(request: IncomingMessage, verdict: Verdict, status: number, bodyLength: number): void {
    seq += 1;
    const jti = verdict.claims?.jti;
    log.push({
      seq,
      method: request.method ?? 'GET',
      path: request.url ?? '/',
      outcome: verdict.outcome,
      reason: verdict.reason,
      status,
      tokenId: verdict.tokenId,
      jti: typeof jti === 'string' ? jti : undefined,
      bodyLength,
    });
    if (log.length > MAX_LOG) log.splice(0, log.length - MAX_LOG);
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const [verdict, body] = await Promise.all([judge(request.headers.authorization), readBody(request)]);
    counts[verdict.outcome] += 1;
    const url = new URL(request.url ?? '/', origin);

    if (handler !== undefined) {
      const context: TokenServerContext = { url, outcome: verdict.outcome, reason: verdict.reason, claims: verdict.claims, tokenId: verdict.tokenId, body };
      if (await handler(request, response, context)) {
        record(request, verdict, response.statusCode, body.length);
        return;
      }
    }

    if (verdict.outcome !== 'ok') {
      // The API server's answer to a bad token: a Status object, nothing about the token.
      record(request, verdict, 401, body.length);
      send(
        response,
        401,
        { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 },
        { 'www-authenticate': 'Bearer error="invalid_token"' },
      );
      return;
    }

    const claims = verdict.claims ?? {};
    const reply = {
      ok: true,
      sub: claims.sub,
      aud: claims.aud,
      jti: claims.jti,
      method: request.method,
      path: request.url,
      bodyLength: body.length,
      bodySha256: createHash('sha256').update(body).digest('hex'),
    };

    if (url.pathname === '/redirect') {
      const to = url.searchParams.get('to');
      const status = Number(url.searchParams.get('status') ?? 302);
      if (to === null || ![301, 302, 303, 307, 308].includes(status)) {
        record(request, verdict, 400, body.length);
        send(response, 400, { ok: false, message: '/redirect needs ?to=<url> and an optional status in 301, 302, 303, 307, 308' });
        return;
      }
      record(request, verdict, status, body.length);
      send(response, status, reply, { location: to });
      return;
    }

    const statusMatch = /^\/status\/(\d{3})$/.exec(url.pathname);
    const status = statusMatch?.[1] === undefined ? 200 : Number(statusMatch[1]);
    record(request, verdict, status, body.length);
    send(response, status, reply);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) send(response, 500, { ok: false, message: 'token server error' });
      else response.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  origin = `http://127.0.0.1:${address.port}`;

  let closing: Promise<void> | undefined;
  return {
    url: `${origin}/`,
    origin,
    port: address.port,
    get counts() {
      return { ...counts };
    },
    get log() {
      return log.slice();
    },
    revoke(token: string) {
      if (typeof token !== 'string' || token === '') throw new TypeError('revoke: token must be a non-empty string');
      revoked.add(tokenId(token));
    },
    reset() {
      counts = { ok: 0, unauthorized: 0, missing: 0 };
      log = [];
      seq = 0;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
