import { isTokenSourceError } from './errors.js';
import type { TokenSource } from './tokenSource.js';

/** Options every HTTP adapter (`@podtoken/axios`, `/got`, `/fetch`) takes. */
export interface AdapterOptions {
  /**
   * Attach the token only to requests for these origins: `'https://vault:8200'` strings
   * (compared as URL origins) or regular expressions tested against the origin.
   * Default: every request.
   */
  origins?: Array<string | RegExp>;
  /**
   * On a 401, call `source.invalidate(sentToken)` and, when the source then holds a
   * different token, send the request once more with it.
   * @default true
   */
  retryUnauthorized?: boolean;
}

/**
 * Builds the test adapters use to decide whether a URL may receive the token. Validates
 * `origins` up front (a `TypeError` names the bad entry).
 */
export function createOriginFilter(origins: AdapterOptions['origins'], where = 'withTokenSource'): (url: string | URL) => boolean {
  if (origins === undefined) return () => true;
  if (!Array.isArray(origins)) throw new TypeError(`${where}: origins must be an array of strings or RegExps`);
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  for (const origin of origins) {
    if (origin instanceof RegExp) {
      patterns.push(origin);
      continue;
    }
    let parsed: string;
    try {
      parsed = new URL(origin).origin;
    } catch {
      parsed = 'null';
    }
    if (typeof origin !== 'string' || parsed === 'null') {
      throw new TypeError(`${where}: origins holds ${JSON.stringify(origin)}, which is not an origin like "https://api.example.com"`);
    }
    exact.add(parsed);
  }
  return (url) => {
    let origin: string;
    try {
      origin = (typeof url === 'string' ? new URL(url) : url).origin;
    } catch {
      return false;
    }
    if (exact.has(origin)) return true;
    return patterns.some((pattern) => {
      pattern.lastIndex = 0;
      return pattern.test(origin);
    });
  };
}

/** Whether two URLs have the same origin (scheme, host and port). */
export function isSameOrigin(a: string | URL, b: string | URL): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

/** The `Authorization` header value for `token`. */
export function bearer(token: string): string {
  return `Bearer ${token}`;
}

/**
 * After a 401 for `sentToken`: invalidates the source and returns the token to retry with,
 * or `undefined` when there is nothing better to send (the source still holds the rejected
 * token, or cannot give one now): then the 401 stands and goes back to the caller.
 */
export async function tokenForRetry(source: TokenSource, sentToken: string, signal?: AbortSignal): Promise<string | undefined> {
  if (source.invalidate === undefined) return undefined;
  let next: string;
  try {
    await source.invalidate(sentToken);
    next = await source.getToken(signal === undefined ? undefined : { signal });
  } catch (error) {
    // A source that fails now (expired, closed) has no better token: the caller gets the
    // server's 401, which says more than our error would. An abort still propagates.
    if (isTokenSourceError(error)) return undefined;
    throw error;
  }
  return next === sentToken ? undefined : next;
}
