import type { TokenVerifier } from './createTokenVerifier.js';
import type { GuardOptions } from './guardOptions.js';
import type { Identity } from './identity.js';
import { createJudge } from './internal/judge.js';

/** Checks a Fetch-API `Request`; see {@link createFetchGuard}. */
export type FetchGuard = (request: Request) => Promise<Identity | Response>;

/**
 * A check for frameworks built on web standards (`Request` in, `Response` out: Hono, Next.js
 * route handlers, Remix, `Bun.serve`-style handlers): resolves with the caller's identity, or
 * with the `Response` to send instead (401 with an RFC 6750 challenge, or 503).
 *
 * @example
 * ```ts
 * import { createFetchGuard, createTokenVerifier } from '@podtoken/verify';
 *
 * const guard = createFetchGuard(createTokenVerifier({ audiences: 'https://orders.shop.svc' }));
 * export async function GET(request: Request): Promise<Response> {
 *   const identity = await guard(request);
 *   if (identity instanceof Response) return identity;
 *   return Response.json({ caller: identity.username });
 * }
 * ```
 */
export function createFetchGuard(verifier: TokenVerifier, options: GuardOptions = {}): FetchGuard {
  const judge = createJudge(verifier, options, 'createFetchGuard');
  return async (request) => {
    let url: string;
    try {
      const parsed = new URL(request.url);
      url = parsed.pathname;
    } catch {
      url = '/';
    }
    const verdict = await judge({ authorization: request.headers.get('authorization'), method: request.method, url });
    if (verdict.refusal === undefined) return verdict.identity;
    const { status, headers, body } = verdict.refusal;
    return new Response(body, { status, headers });
  };
}
