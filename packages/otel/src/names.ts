import type { TokenSourceState } from '@podtoken/core';

/**
 * The names of the instruments `instrumentPodtoken()` makes (OpenTelemetry's
 * conventions: dotted, lower case, the unit in the instrument). A Prometheus exporter turns
 * dots into underscores and adds `_total` to counters: `podtoken.read.failures` is scraped
 * as `podtoken_read_failures_total`.
 */
export const PODTOKEN_METRICS = Object.freeze({
  /** Gauge, `s`: seconds until the token's `exp`; negative once past it. */
  expiresIn: 'podtoken.token.expires_in',
  /** Gauge, `s`: seconds since the token's `iat`. */
  age: 'podtoken.token.age',
  /** Gauge, `{state}`: 1 for the state a source is in, 0 for each other state (sources given to `sources` only). */
  state: 'podtoken.source.state',
  /** Gauge, `{source}`: 1 while the source serves a token (sources given to `sources` only). */
  serving: 'podtoken.source.serving',
  /** Counter, `{refresh}`: tokens replaced by a newer one. */
  refreshes: 'podtoken.token.refreshes',
  /** Counter, `{expiration}`: the only token a source held passed its `exp`. */
  expirations: 'podtoken.token.expirations',
  /** Counter, `{invalidation}`: re-reads after a server refused a token. */
  invalidations: 'podtoken.token.invalidations',
  /** Counter, `{failure}`: failed reads or refused file content. */
  readFailures: 'podtoken.read.failures',
  /** Histogram, `s`: how long each read of a token file took. */
  readDuration: 'podtoken.read.duration',
  /** Counter, `{response}`: 401 answers to a token an adapter sent. */
  unauthorized: 'podtoken.request.unauthorized',
  /** Counter, `{failure}`: folder watches that failed. */
  watchFailures: 'podtoken.watch.failures',
  /** Counter, `{rearm}`: folder watches up again after a failure. */
  watchRearms: 'podtoken.watch.rearms',
} as const);

/** The attribute names on podtoken's instruments. Each holds a bounded set of values; none ever holds a token. */
export const PODTOKEN_ATTRIBUTES = Object.freeze({
  /** The source's `name` option (default: its path). */
  source: 'podtoken.source.name',
  /** A source state (`loading`, `ok`, `refresh-overdue`, `failing`, `expired`, `closed`), on `podtoken.source.state`. */
  state: 'podtoken.source.state',
  /** What started the read: `event`, `poll`, `refresh`, `retry`, `invalidate`, `start`. */
  trigger: 'podtoken.read.trigger',
  /** `changed`, `same` or `failed`, on `podtoken.read.duration`. */
  readOutcome: 'podtoken.read.outcome',
  /** A `TokenSourceError` code (`TOKEN_MALFORMED`…), or a system error code (`ENOSPC`…) for watches. */
  errorType: 'error.type',
  /** `replaced`, `unchanged` or `cooldown`, on `podtoken.token.invalidations`. */
  invalidationOutcome: 'podtoken.invalidation.outcome',
  /** The adapter that got the 401: `axios`, `got`, `fetch`, `kubernetes`, `grpc`, `undici`… */
  adapter: 'podtoken.adapter',
  /** `retried`, `retry-disabled`, `not-replayable` or `token-unchanged`, on `podtoken.request.unauthorized`. */
  unauthorizedReason: 'podtoken.unauthorized.reason',
  /** The watched folder, on the watch counters. */
  watchFolder: 'podtoken.watch.folder',
  /** `start`, `error` or `removed`, on `podtoken.watch.failures`. */
  watchReason: 'podtoken.watch.reason',
} as const);

/**
 * Bucket boundaries of `podtoken.read.duration`, in seconds: 50 µs to 1 s. A read of a
 * token on the kubelet's tmpfs takes tens to hundreds of microseconds; milliseconds mean a
 * busy event loop or a slow disk, and a second means something is wrong.
 */
export const READ_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
]);

// A Record so that a state added to core's union fails to compile here until it is listed.
const STATES: Record<TokenSourceState, true> = { loading: true, ok: true, 'refresh-overdue': true, failing: true, expired: true, closed: true };

/** @internal Every state `podtoken.source.state` reports, 0 or 1. */
export const SOURCE_STATES = Object.freeze(Object.keys(STATES) as TokenSourceState[]);
