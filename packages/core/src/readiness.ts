import type { TokenSource, TokenSourceState, TokenSourceStatus } from './tokenSource.js';

/** A source {@link readiness} can report on: anything with `status()`, such as a {@link FileTokenSource}. */
export type StatusSource = Pick<Required<TokenSource>, 'status'>;

/** Named sources, such as what `createTokenSources()` returns: {@link readiness} reports on each. */
export interface StatusSourceCollection {
  readonly names: readonly string[];
  get(name: string): StatusSource;
}

/** One source's line in a {@link ReadinessReport}: its status, with dates as ISO strings. */
export interface ReadinessEntry {
  readonly name: string;
  readonly state: TokenSourceState;
  readonly serving: boolean;
  readonly expiresIn?: number;
  readonly age?: number;
  readonly refreshAt?: string;
  readonly expiresAt?: string;
  readonly lastError?: { readonly code: string; readonly at: string };
}

/** The body of a readiness answer: never a token. */
export interface ReadinessReport {
  /** True when every source serves a token. */
  readonly ready: boolean;
  /** The names of the sources that do not. */
  readonly failing: readonly string[];
  readonly sources: readonly ReadinessEntry[];
}

/** The request and response {@link ReadinessHandler} uses: `node:http`'s, Express's, or anything shaped like them. */
export interface ReadinessRequest {
  readonly method?: string | undefined;
}
/** See {@link ReadinessRequest}. */
export interface ReadinessResponse {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body?: string): unknown;
}

/** Options of {@link readiness}, given as its last argument. */
export interface ReadinessOptions {
  /**
   * Whether a source counts as ready. The default, `status.serving`, keeps a source that
   * holds a good token ready while its reads fail; `(status) => status.state === 'ok'` takes
   * the pod out of service as soon as anything is wrong (a late kubelet included).
   * @default (status) => status.serving
   */
  isReady?: (status: TokenSourceStatus) => boolean;
}

/** A `node:http` request handler for a readiness probe, with {@link ReadinessHandler.check} for other frameworks. */
export interface ReadinessHandler {
  (request: ReadinessRequest, response: ReadinessResponse): void;
  /** The report the handler would answer with now. */
  check(): ReadinessReport;
}

/**
 * A handler for a pod's `readinessProbe`: answers `200` when every source serves a token
 * and `503` when one does not (still loading, expired, failing with no token, closed),
 * for the sources given one by one or as a collection (what `createTokenSources()` returns),
 * with a JSON {@link ReadinessReport} naming the failing sources. The body holds each
 * source's state, remaining lifetime, age and last error code: never a token.
 *
 * A source that fails to read its file while it still holds a good token stays ready (its
 * state says `failing`): taking every pod out of service because the kubelet is late would
 * turn a warning into an outage. Watch `state` in metrics for that (`@podtoken/otel`), or
 * pass `{ isReady }` as the last argument for a stricter rule (see {@link ReadinessOptions}).
 *
 * `GET` and `HEAD` are answered; other methods get `405`. Answers are never cached.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createTokenSources, readiness } from '@podtoken/core';
 *
 * const tokens = createTokenSources({ kubernetes: {}, vault: { path: '/var/run/secrets/tokens/vault', audience: 'vault' } });
 * createServer(readiness(tokens.get('kubernetes'), tokens.get('vault'))).listen(8081);
 * // readinessProbe: { httpGet: { path: /ready, port: 8081 } }
 * ```
 */
export function readiness(...given: Array<StatusSource | StatusSourceCollection | ReadinessOptions>): ReadinessHandler {
  const last = given.at(-1);
  const options: ReadinessOptions = isOptions(last) ? (given.pop() as ReadinessOptions) : {};
  const isReady = options.isReady ?? ((status: TokenSourceStatus) => status.serving === true);
  if (typeof isReady !== 'function') throw new TypeError('readiness: isReady must be a function of a status');
  const sources = (given as Array<StatusSource | StatusSourceCollection>).flatMap((item) => (isCollection(item) ? item.names.map((name) => item.get(name)) : [item]));
  if (sources.length === 0) throw new TypeError('readiness: give at least one source');
  for (const [index, source] of sources.entries()) {
    if (typeof source !== 'object' || source === null || typeof source.status !== 'function') {
      throw new TypeError(`readiness: source ${index} has no status() method (a FileTokenSource has one)`);
    }
  }
  const check = (): ReadinessReport => {
    const statuses = sources.map((source) => source.status());
    const entries = statuses.map(entry);
    const failing = entries.filter((_, index) => !isReady(statuses[index]!)).map((e) => e.name);
    return { ready: failing.length === 0, failing, sources: entries };
  };
  const handler = ((request: ReadinessRequest, response: ReadinessResponse) => {
    const method = request.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      response.end();
      return;
    }
    const report = check();
    const body = JSON.stringify(report);
    response.writeHead(report.ready ? 200 : 503, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(body),
    });
    response.end(method === 'HEAD' ? undefined : body);
  }) as ReadinessHandler;
  handler.check = check;
  return handler;
}

function isOptions(value: unknown): value is ReadinessOptions {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Record<string, unknown>;
  return typeof candidate['status'] !== 'function' && !Array.isArray(candidate['names']) && 'isReady' in candidate;
}

function isCollection(value: unknown): value is StatusSourceCollection {
  const candidate = value as Partial<StatusSourceCollection> | null;
  return typeof candidate === 'object' && candidate !== null && Array.isArray(candidate.names) && typeof candidate.get === 'function' && typeof (candidate as Partial<StatusSource>).status !== 'function';
}

function entry(status: TokenSourceStatus): ReadinessEntry {
  const out: { -readonly [K in keyof ReadinessEntry]: ReadinessEntry[K] } = { name: String(status.name), state: status.state, serving: status.serving === true };
  if (status.expiresIn !== undefined) out.expiresIn = status.expiresIn;
  if (status.age !== undefined) out.age = status.age;
  if (status.refreshAt !== undefined) out.refreshAt = status.refreshAt.toISOString();
  if (status.expiresAt !== undefined) out.expiresAt = status.expiresAt.toISOString();
  if (status.lastError !== undefined) out.lastError = { code: status.lastError.code, at: status.lastError.at.toISOString() };
  return out;
}
