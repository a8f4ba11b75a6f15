import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { TokenVerifier } from './createTokenVerifier.js';
import type { GuardOptions } from './guardOptions.js';
import type { Identity } from './identity.js';
import { createJudge } from './internal/judge.js';

/** The part of an Express request the middleware reads and writes. Express itself is not needed to build. */
export interface ExpressRequestLike {
  headers: IncomingHttpHeaders;
  method?: string | undefined;
  /** Express's path and query as received, before routers strip their mount path. */
  originalUrl?: string | undefined;
  url?: string | undefined;
  /** Set by the middleware for the handlers after it. */
  identity?: Identity;
}

/** Express middleware, as a plain function: `(request, response, next) => void`. */
export type ExpressMiddleware = (request: ExpressRequestLike, response: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * Express middleware (tested with Express 5; it uses only what Express 4 has too) that lets a request through only with a token the
 * verifier accepts, and puts the caller's identity on `request.identity`. A refused request is
 * answered as {@link createRequestGuard} answers it (401 with an RFC 6750 challenge, or 503);
 * an unexpected error goes to `next(error)`.
 *
 * TypeScript: declare the property once, e.g.
 * `declare global { namespace Express { interface Request { identity?: import('@podtoken/verify').Identity } } }`.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { createTokenVerifier, expressMiddleware } from '@podtoken/verify';
 *
 * const app = express();
 * app.use(expressMiddleware(createTokenVerifier({ audiences: 'https://orders.shop.svc' })));
 * app.get('/orders', (request, response) => response.json({ caller: request.identity?.username }));
 * ```
 */
export function expressMiddleware(verifier: TokenVerifier, options: GuardOptions = {}): ExpressMiddleware {
  const judge = createJudge(verifier, options, 'expressMiddleware');
  return (request, response, next) => {
    judge({ authorization: request.headers.authorization, method: request.method, url: request.originalUrl ?? request.url }).then(
      (verdict) => {
        if (verdict.refusal === undefined) {
          request.identity = verdict.identity;
          next();
          return;
        }
        const { status, headers, body } = verdict.refusal;
        if (response.headersSent) return;
        response.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) });
        response.end(body);
      },
      (error: unknown) => next(error),
    );
  };
}
