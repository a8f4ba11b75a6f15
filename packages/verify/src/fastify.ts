import type { IncomingHttpHeaders } from 'node:http';
import type { TokenVerifier } from './createTokenVerifier.js';
import type { GuardOptions } from './guardOptions.js';
import type { Identity } from './identity.js';
import { createJudge } from './internal/judge.js';

/** The part of a Fastify request the hook reads and writes. Fastify itself is not needed to build. */
export interface FastifyRequestLike {
  headers: IncomingHttpHeaders;
  method: string;
  url: string;
  /** Set by the hook for the handler. */
  identity?: Identity | null;
}

/** The part of a Fastify reply the hook uses. */
export interface FastifyReplyLike {
  code(statusCode: number): FastifyReplyLike;
  header(key: string, value: string): FastifyReplyLike;
  send(payload?: unknown): FastifyReplyLike;
}

/** A Fastify `onRequest` (or `preHandler`) hook: `async (request, reply) => void`. */
export type FastifyHook = (request: FastifyRequestLike, reply: FastifyReplyLike) => Promise<unknown>;

/**
 * A Fastify hook (tested with Fastify 5; it uses only what Fastify 4 has too) that lets a request through only with a token the verifier
 * accepts, and puts the caller's identity on `request.identity`. A refused request is
 * answered 401 with an RFC 6750 challenge (or 503), and the route handler does not run.
 * Register it with `addHook('onRequest', …)` (for every route of the scope) or as a route's
 * `onRequest` option; `decorateRequest('identity', null)` first keeps requests one shape.
 *
 * TypeScript: `declare module 'fastify' { interface FastifyRequest { identity: import('@podtoken/verify').Identity | null } }`.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createTokenVerifier, fastifyHook } from '@podtoken/verify';
 *
 * const app = Fastify();
 * app.decorateRequest('identity', null);
 * app.addHook('onRequest', fastifyHook(createTokenVerifier({ audiences: 'https://orders.shop.svc' })));
 * app.get('/orders', async (request) => ({ caller: request.identity?.username }));
 * ```
 */
export function fastifyHook(verifier: TokenVerifier, options: GuardOptions = {}): FastifyHook {
  const judge = createJudge(verifier, options, 'fastifyHook');
  return async (request, reply) => {
    const verdict = await judge({ authorization: request.headers.authorization, method: request.method, url: request.url });
    if (verdict.refusal === undefined) {
      request.identity = verdict.identity;
      return undefined;
    }
    const { status, headers, body } = verdict.refusal;
    let answer = reply.code(status);
    for (const [name, value] of Object.entries(headers)) answer = answer.header(name, value);
    // An async hook that has sent a reply returns it, so that Fastify stops there.
    return answer.send(body);
  };
}
