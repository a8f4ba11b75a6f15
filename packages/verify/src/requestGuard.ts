import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenVerifier } from './createTokenVerifier.js';
import type { GuardOptions } from './guardOptions.js';
import type { Identity } from './identity.js';
import { createJudge } from './internal/judge.js';

/**
 * Checks a `node:http` request's bearer token; see {@link createRequestGuard}. Resolves with
 * the caller's identity, or with `undefined` once it has answered the request itself (401
 * with `WWW-Authenticate`, or 503 when no verdict could be reached).
 */
export type RequestGuard = (request: IncomingMessage, response: ServerResponse) => Promise<Identity | undefined>;

/**
 * A request guard for a `node:http` (or `node:https`, `http2` compatibility) server. A refused
 * request is answered 401 with an RFC 6750 challenge (`WWW-Authenticate: Bearer` when it has no
 * token, `Bearer error="invalid_token"` when the token is refused) and a body that says no
 * more; the reason goes to `onRefused`. An `Authorization` header longer than
 * `maxHeaderLength` is refused before it is parsed.
 *
 * @throws `TypeError` for a bad verifier or options.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createRequestGuard, createTokenVerifier } from '@podtoken/verify';
 *
 * const guard = createRequestGuard(createTokenVerifier({ audiences: 'https://orders.shop.svc' }), {
 *   onRefused: ({ code, message, path }) => console.warn(`refused ${path}: ${code} ${message}`),
 * });
 * createServer(async (request, response) => {
 *   const identity = await guard(request, response);
 *   if (identity === undefined) return; // answered 401 or 503
 *   response.end(`hello ${identity.username}`);
 * }).listen(8080);
 * ```
 */
export function createRequestGuard(verifier: TokenVerifier, options: GuardOptions = {}): RequestGuard {
  const judge = createJudge(verifier, options, 'createRequestGuard');
  return async (request, response) => {
    const verdict = await judge({ authorization: request.headers.authorization, method: request.method, url: request.url });
    if (verdict.refusal === undefined) return verdict.identity;
    const { status, headers, body } = verdict.refusal;
    if (!response.headersSent) {
      response.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
      response.end(body);
    }
    return undefined;
  };
}
