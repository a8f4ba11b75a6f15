import type { TokenErrorCode } from './errors.js';
import type { Token, TokenKind } from './token.js';

// node:diagnostics_channel without its ES module facade (see fileTokenSource.ts on node:fs).
const dc = process.getBuiltinModule('node:diagnostics_channel');

/**
 * The names of the `node:diagnostics_channel` channels podtoken publishes on, one per
 * event, named `podtoken:<noun>:<verb>` (the convention of undici and Node itself). Every
 * copy of `@podtoken/core` in a process (ESM and CommonJS, two versions) publishes on the
 * same channels. Nothing is built or published while a channel has no subscriber.
 *
 * No message ever holds a token's value: only its facts ({@link TokenFacts}).
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { DIAGNOSTICS_CHANNELS, type TokenRefreshedMessage } from '@podtoken/core';
 *
 * subscribe(DIAGNOSTICS_CHANNELS.tokenRefreshed, (message) => {
 *   const { source, token } = message as TokenRefreshedMessage;
 *   console.log(`${source.name}: new token, expires ${token.expiresAt?.toISOString()}`);
 * });
 * ```
 */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  /** A source loaded its first token. Message: {@link TokenLoadedMessage}. */
  tokenLoaded: 'podtoken:token:loaded',
  /** A source replaced its token with a new one. Message: {@link TokenRefreshedMessage}. */
  tokenRefreshed: 'podtoken:token:refreshed',
  /** The only token a source holds passed its `exp`. Message: {@link TokenExpiredMessage}. */
  tokenExpired: 'podtoken:token:expired',
  /** A server refused a token and the source re-read its file. Message: {@link TokenInvalidatedMessage}. */
  tokenInvalidated: 'podtoken:token:invalidated',
  /** Every read of a source's file, whatever came of it. Message: {@link ReadFinishedMessage}. */
  readFinished: 'podtoken:read:finished',
  /** A read failed or the file held content that was refused. Message: {@link ReadFailedMessage}. */
  readFailed: 'podtoken:read:failed',
  /** A folder watch could not start or died. Message: {@link WatchFailedMessage}. */
  watchFailed: 'podtoken:watch:failed',
  /** A folder watch that had failed is up again. Message: {@link WatchRearmedMessage}. */
  watchRearmed: 'podtoken:watch:rearmed',
  /** A source was closed: it will publish nothing more. Message: {@link SourceClosedMessage}. */
  sourceClosed: 'podtoken:source:closed',
  /** An adapter got a 401 (gRPC: UNAUTHENTICATED) for a token it sent. Message: {@link UnauthorizedMessage}. */
  requestUnauthorized: 'podtoken:request:unauthorized',
} as const);

/** One of {@link DIAGNOSTICS_CHANNELS}' names. */
export type DiagnosticsChannelName = (typeof DIAGNOSTICS_CHANNELS)[keyof typeof DIAGNOSTICS_CHANNELS];

/** Which source an event is about: its `name` (default: its path) and its file. */
export interface SourceRef {
  /** The source's `name` option; its path when none was given. */
  readonly name: string;
  /** The token file (for a source that has none, such as a static one: its name). */
  readonly path: string;
}

/** What started a read: the first read, a folder event, the poll, a 401, `refreshAt`, or a retry after a failure or a stale file. */
export type ReadTrigger = 'start' | 'event' | 'poll' | 'invalidate' | 'refresh' | 'retry';

/** A token's facts, safe to log: everything but its value. */
export interface TokenFacts {
  readonly kind: TokenKind;
  readonly audience: readonly string[];
  readonly subject?: string;
  readonly issuer?: string;
  readonly issuedAt?: Date;
  readonly expiresAt?: Date;
  readonly refreshAt?: Date;
}

/** Message of `podtoken:token:loaded`. */
export interface TokenLoadedMessage {
  readonly source: SourceRef;
  readonly token: TokenFacts;
  readonly trigger: ReadTrigger;
  /** When it was loaded. */
  readonly at: Date;
  /** Milliseconds since the token was issued (`iat`), when it has one. */
  readonly age?: number;
  /** Milliseconds until `exp`, when it has one. */
  readonly expiresIn?: number;
}

/** Message of `podtoken:token:refreshed`: a loaded message, with the token replaced. */
export interface TokenRefreshedMessage extends TokenLoadedMessage {
  readonly previous: TokenFacts;
}

/** Message of `podtoken:token:expired`. */
export interface TokenExpiredMessage {
  readonly source: SourceRef;
  readonly token: TokenFacts;
  readonly at: Date;
}

/** Message of `podtoken:token:invalidated`. */
export interface TokenInvalidatedMessage {
  readonly source: SourceRef;
  /**
   * `replaced`: the re-read found another token; `unchanged`: the file still holds the
   * refused token (the server refuses what the kubelet wrote: a deleted pod, a revoked
   * ServiceAccount); `cooldown`: answered by a re-read of the last second, no read made.
   */
  readonly outcome: 'replaced' | 'unchanged' | 'cooldown';
  /** Whether the refused token was the one the source held (not an older one). */
  readonly current: boolean;
  readonly at: Date;
}

/** Message of `podtoken:read:finished`. */
export interface ReadFinishedMessage {
  readonly source: SourceRef;
  readonly trigger: ReadTrigger;
  /** `changed`: a new token was loaded; `same`: the token in memory again; `failed`: see `code`. */
  readonly outcome: 'changed' | 'same' | 'failed';
  /** The error's code when `outcome` is `failed`. */
  readonly code?: TokenErrorCode;
  /** Milliseconds the read took (a read shared with other sources on the file counts for each). */
  readonly duration: number;
  readonly at: Date;
}

/** Message of `podtoken:read:failed`. */
export interface ReadFailedMessage {
  readonly source: SourceRef;
  readonly trigger: ReadTrigger;
  readonly code: TokenErrorCode;
  /** The error's message (never holds the token; claims in it are escaped). */
  readonly message: string;
  /** Failed reads in a row, this one included. */
  readonly failures: number;
  /** Whether the source still serves a good token meanwhile. */
  readonly serving: boolean;
  readonly at: Date;
}

/** Message of `podtoken:watch:failed`. One folder watch serves every source in the folder. */
export interface WatchFailedMessage {
  /** The watched folder. */
  readonly folder: string;
  /** `start`: the watch could not start (no folder yet, watch limit); `error`: the watcher failed; `removed`: the folder went away. */
  readonly reason: 'start' | 'error' | 'removed';
  /** The system error's code (`ENOENT`, `ENOSPC`…), when there was one. */
  readonly code?: string;
  readonly at: Date;
}

/** Message of `podtoken:watch:rearmed`. */
export interface WatchRearmedMessage {
  readonly folder: string;
  readonly at: Date;
}

/** Message of `podtoken:source:closed`. */
export interface SourceClosedMessage {
  readonly source: SourceRef;
  readonly at: Date;
}

/** Message of `podtoken:request:unauthorized`. */
export interface UnauthorizedMessage {
  /** The adapter that got the 401: `axios`, `got`, `fetch`, `kubernetes`, `grpc`, `undici`, or another adapter's name. */
  readonly adapter: string;
  /** The source the refused token came from, when it has a name and path (a {@link FileTokenSource}). */
  readonly source?: SourceRef;
  /** Whether the request is sent once more with a newer token. */
  readonly retried: boolean;
  /**
   * Why: `retried`; `retry-disabled` (`retryUnauthorized: false`); `not-replayable` (a
   * body that cannot be sent again, or a streaming call); `token-unchanged` (the re-read
   * found the same token: the server refuses what the file holds).
   */
  readonly reason: 'retried' | 'retry-disabled' | 'not-replayable' | 'token-unchanged';
  readonly at: Date;
}

/**
 * The message each channel carries, by channel name: for typing a subscriber
 * (`(message: DiagnosticsMessages['podtoken:read:failed']) => …`) or a table of handlers.
 */
export interface DiagnosticsMessages {
  'podtoken:token:loaded': TokenLoadedMessage;
  'podtoken:token:refreshed': TokenRefreshedMessage;
  'podtoken:token:expired': TokenExpiredMessage;
  'podtoken:token:invalidated': TokenInvalidatedMessage;
  'podtoken:read:finished': ReadFinishedMessage;
  'podtoken:read:failed': ReadFailedMessage;
  'podtoken:watch:failed': WatchFailedMessage;
  'podtoken:watch:rearmed': WatchRearmedMessage;
  'podtoken:source:closed': SourceClosedMessage;
  'podtoken:request:unauthorized': UnauthorizedMessage;
}

type Channel = ReturnType<typeof dc.channel>;

/** @internal Each channel (held here, so its subscribers are never collected), for publishers. */
export const channels = Object.fromEntries(Object.entries(DIAGNOSTICS_CHANNELS).map(([key, name]) => [key, dc.channel(name)])) as {
  readonly [K in keyof typeof DIAGNOSTICS_CHANNELS]: Channel;
};

/** @internal A token's facts for a message: never its value. */
export function tokenFacts(token: Token): TokenFacts {
  const facts: { -readonly [K in keyof TokenFacts]: TokenFacts[K] } = { kind: token.kind, audience: token.audience };
  if (token.subject !== undefined) facts.subject = token.subject;
  if (token.issuer !== undefined) facts.issuer = token.issuer;
  if (token.issuedAt !== undefined) facts.issuedAt = token.issuedAt;
  if (token.expiresAt !== undefined) facts.expiresAt = token.expiresAt;
  if (token.refreshAt !== undefined) facts.refreshAt = token.refreshAt;
  return facts;
}
