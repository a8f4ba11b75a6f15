import { isTokenProblem, isTokenVerificationError, TokenVerificationError } from '../errors.js';
import type { GuardOptions, RefusalEvent } from '../guardOptions.js';
import type { Identity } from '../identity.js';
import type { TokenVerifier } from '../createTokenVerifier.js';

/** An answer to send instead of handling the request. */
export interface Refusal {
  readonly status: 401 | 503;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** The glue's verdict on one request. */
export type Verdict = { readonly identity: Identity; readonly refusal?: undefined } | { readonly identity?: undefined; readonly refusal: Refusal };

/** The request as the glue sees it. */
export interface RequestFacts {
  readonly authorization: string | null | undefined;
  readonly method: string | undefined;
  /** Path and query as received; the query is dropped before anyone sees it. */
  readonly url: string | undefined;
}

/** Validated glue options, shared by every request. */
export interface Judge {
  (request: RequestFacts): Promise<Verdict>;
}

// RFC 6750 section 2.1: "Bearer" 1*SP b64token. Tested only on a header within maxHeaderLength.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const SCHEME = /^bearer(?: |$)/i;

/** Builds the one function every glue calls: header → token → verifier → identity or refusal. */
export function createJudge(verifier: TokenVerifier, options: GuardOptions, where: string): Judge {
  if (typeof verifier !== 'object' || verifier === null || typeof verifier.verify !== 'function') {
    throw new TypeError(`${where}: verifier must be a TokenVerifier (from createTokenVerifier)`);
  }
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  const { onRefused, realm } = options;
  if (onRefused !== undefined && typeof onRefused !== 'function') throw new TypeError(`${where}: onRefused must be a function`);
  if (realm !== undefined && (typeof realm !== 'string' || !/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/.test(realm))) {
    throw new TypeError(`${where}: realm must be printable ASCII without " and \\`);
  }
  const maxHeaderLength = options.maxHeaderLength ?? 16_384;
  if (!Number.isSafeInteger(maxHeaderLength) || maxHeaderLength < 16) throw new TypeError(`${where}: maxHeaderLength must be an integer >= 16`);

  const prefix = realm === undefined ? 'Bearer' : `Bearer realm="${realm}",`;
  const missing: Refusal = refusal(401, realm === undefined ? 'Bearer' : `Bearer realm="${realm}"`, 'unauthorized');
  const invalid: Refusal = refusal(401, `${prefix} error="invalid_token"`, 'invalid_token');
  const unavailable: Refusal = { status: 503, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: '{"error":"temporarily_unavailable"}' };

  function refuse(request: RequestFacts, answer: Refusal, code: RefusalEvent['code'], message: string, error: TokenVerificationError | undefined): Verdict {
    if (onRefused !== undefined) {
      const url = request.url ?? '/';
      const query = url.indexOf('?');
      try {
        onRefused({ status: answer.status, code, message, error, method: request.method ?? 'GET', path: query < 0 ? url : url.slice(0, query) });
      } catch {
        // A logging hook must not decide the answer.
      }
    }
    return { refusal: answer };
  }

  return async (request) => {
    const header = request.authorization;
    if (header === undefined || header === null || header === '') {
      return refuse(request, missing, 'TOKEN_MISSING', 'The request has no Authorization header.', undefined);
    }
    if (header.length > maxHeaderLength) {
      return refuse(request, invalid, 'TOKEN_TOO_LARGE', `The Authorization header is ${header.length} characters long, more than maxHeaderLength (${maxHeaderLength}); it was not read.`, undefined);
    }
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) {
      // Another scheme (Basic…) is no Bearer credential at all; a broken Bearer one is an invalid token.
      return SCHEME.test(header)
        ? refuse(request, invalid, 'TOKEN_MALFORMED', 'The Authorization header holds a malformed Bearer token.', undefined)
        : refuse(request, missing, 'TOKEN_MISSING', 'The Authorization header holds no Bearer token.', undefined);
    }
    try {
      return { identity: await verifier.verify(token) };
    } catch (error) {
      if (!isTokenVerificationError(error)) throw error;
      return refuse(request, isTokenProblem(error) ? invalid : unavailable, error.code, error.message, error);
    }
  };
}

function refusal(status: 401, challenge: string, error: string): Refusal {
  return {
    status,
    headers: { 'www-authenticate': challenge, 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: JSON.stringify({ error }),
  };
}
