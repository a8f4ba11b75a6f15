import { resolve } from 'node:path';
import { channels, tokenFacts, type ReadTrigger, type SourceRef } from './diagnostics.js';
import { printable, TokenSourceError } from './errors.js';
import type { TokenFileSystem } from './fileSystem.js';
import { watchFolder, type FolderSubscription } from './internal/folderWatch.js';
import { acquireTokenFile, asTokenError, type ContentRead, type SharedTokenFile } from './internal/sharedTokenFile.js';
import { signatureCutShort, validateRefreshRatio, type Token } from './token.js';
import type { GetTokenOptions, TokenSource, TokenSourceState, TokenSourceStatus } from './tokenSource.js';

// node:fs without its ES module facade, whose creation reads every export, fs.promises
// included (loading fs/promises' modules: milliseconds of start-up for every process).
const nodeFs = process.getBuiltinModule('node:fs');

/** Where the kubelet mounts the default ServiceAccount token in every pod. */
export const DEFAULT_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Options of {@link FileTokenSource}. Every one is optional. */
export interface FileTokenSourceOptions {
  /**
   * The token file.
   * @default DEFAULT_TOKEN_PATH
   */
  path?: string;
  /**
   * A name for this source in events, metrics and readiness reports (`vault`,
   * `partner-api`). It is shown, so keep it free of secrets.
   * @default the path (its key, for a source made by `createTokenSources()`)
   */
  name?: string;
  /** The token's `aud` must hold one of these; otherwise `TOKEN_AUDIENCE_MISMATCH`. Default: any. */
  audience?: string | string[];
  /**
   * Fraction of the lifetime after which to look for a new token, for tokens without `warnafter`.
   * @default 0.8
   */
  refreshRatio?: number;
  /**
   * Milliseconds between safety-net re-reads, for when file events are lost; `0` turns it off.
   * @default 60_000
   */
  pollInterval?: number;
  /**
   * Milliseconds to wait for the first token while the file is missing (or unreadable, or
   * holds no whole token yet) before `ready()` and the `getToken()` calls waiting for it
   * reject with `TOKEN_NOT_READY`; `0` waits forever. While anyone waits, the process stays
   * alive to hear the answer. A file that holds a token that waiting cannot fix (another
   * audience, expired) rejects them at once with its own code instead. Either way the
   * source keeps trying, and serves the token once a good one appears.
   * @default 30_000
   */
  readyTimeout?: number;
  /**
   * Largest token file accepted, in bytes; larger ones give `TOKEN_TOO_LARGE`.
   * @default 65_536
   */
  maxTokenBytes?: number;
  /**
   * The file system to read from. A memfs `fs` works, for tests.
   * @default node:fs
   */
  fs?: TokenFileSystem;
  /**
   * Watch the token's folder for changes. With `false`, changes are seen at `refreshAt`,
   * by the poll and by `invalidate()` only, and the source keeps the process alive only
   * while someone waits for its first token (with `true`, until `close()`).
   * @default true
   */
  watch?: boolean;
}

/** What started a read: backoff grows only with reads its own timer made. */
type Trigger = ReadTrigger;

type RefreshListener = (token: Token, previous: Token | undefined) => void;
type ErrorListener = (error: TokenSourceError) => void;

/** A caller waiting for the first token: a `getToken()` or the `ready()` promise. */
interface Waiter {
  resolve(token: Token): void;
  reject(error: unknown): void;
}

/** An invalidate() re-read under way, which further calls for the same token join. */
interface Invalidation {
  readonly rejected: string;
  readonly promise: Promise<void>;
}

const SECOND = 1000;
const MAX_BACKOFF = 30 * SECOND;
// setTimeout fires at once for delays over 2^31 − 1 ms (~24.8 days): clamp and re-arm.
const MAX_TIMER = 2 ** 31 - 1;
/**
 * After a 401-triggered re-read found the same token, further invalidate() calls for that
 * token within this many ms are answered by that read (while the folder is watched): a
 * server that refuses every request costs one read a second, not one per request.
 */
const INVALIDATE_COOLDOWN_MS = SECOND;
/** A poll is a safety net: a read of the file (by any source on it) this recent will do. */
const POLL_FRESH_MS = SECOND;
/** How long after `refreshAt` a token still held counts as `ok` (capped at half the time left to `exp`). */
const OVERDUE_GRACE_MS = 2 * 60 * SECOND;

const noop = () => {};

/**
 * Keeps the token in a file in memory and reloads it the moment it changes.
 *
 * Reloads on folder events (the kubelet's `..data` swap), at `refreshAt` (`warnafter`, or
 * 80 % of the lifetime), on the poll, and on `invalidate()`; concurrent triggers share one
 * read, and sources on the same file share their reads. Bad content never replaces a good
 * token: the last good one is served until it expires, errors go to `onError`, and the
 * file is re-read with backoff (1 s doubling to 30 s). A changed token from a plain file
 * (not the kubelet's `..data` layout) is confirmed before it is served.
 *
 * @example
 * ```ts
 * import { FileTokenSource } from '@podtoken/core';
 *
 * await using source = new FileTokenSource({ audience: 'https://kubernetes.default.svc' });
 * const token = await source.getToken(); // from memory after the first load
 * ```
 */
export class FileTokenSource implements TokenSource, AsyncDisposable {
  /** The token file, as given (resolved against the working directory for node:fs). */
  readonly path: string;
  /** The `name` option, or the path: how events, metrics and readiness reports name this source. */
  readonly name: string;

  readonly #ref: SourceRef;
  readonly #file: SharedTokenFile;
  readonly #releaseFile: () => void;
  readonly #audience: readonly string[] | undefined;
  readonly #refreshRatio: number;
  readonly #refreshListeners = new Set<RefreshListener>();
  readonly #errorListeners = new Set<ErrorListener>();
  readonly #waiters = new Set<Waiter>();
  // What ready() hands out: the promise pending callers share, then the settled one.
  #readyPending: Promise<Token> | undefined;
  #readyLoaded: Promise<Token> | undefined;

  #token: Token | undefined;
  // The same settled promise for every getToken() call while the token is valid: no
  // allocation, no clock read. The expiry timer clears it at `exp`.
  #tokenPromise: Promise<string> | undefined;
  #expiresAtMs = Infinity;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #lastError: TokenSourceError | undefined;
  #lastErrorAt = 0;
  #failedReads = 0;
  // The token an expiry event was published for: once per token.
  #expiredReported: Token | undefined;
  // Before the first token: the file's problem when waiting cannot fix it (wrong audience…).
  #startError: TokenSourceError | undefined;
  #readyTimedOut = false;
  #closed = false;

  #reading: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #queuedStamp = 0;
  #queuedPollOnly = true;
  #invalidation: Invalidation | undefined;
  #failures = 0;
  #staleReads = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #readyTimer: ReturnType<typeof setTimeout> | undefined;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #watch: FolderSubscription | undefined;

  constructor(options: FileTokenSourceOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('FileTokenSource: options must be an object');
    }
    const path = options.path ?? DEFAULT_TOKEN_PATH;
    if (typeof path !== 'string' || path === '') throw new TypeError('FileTokenSource: path must be a non-empty string');
    const refreshRatio = options.refreshRatio ?? 0.8;
    validateRefreshRatio(refreshRatio, 'FileTokenSource');
    const pollInterval = nonNegative(options.pollInterval, 60_000, 'pollInterval');
    const readyTimeout = nonNegative(options.readyTimeout, 30_000, 'readyTimeout');
    const maxTokenBytes = nonNegative(options.maxTokenBytes, 65_536, 'maxTokenBytes');
    if (maxTokenBytes < 1) throw new TypeError('FileTokenSource: maxTokenBytes must be at least 1');
    const audience = options.audience === undefined ? undefined : [options.audience].flat();
    if (audience !== undefined && (audience.length === 0 || !audience.every((a) => typeof a === 'string' && a !== ''))) {
      throw new TypeError('FileTokenSource: audience must be a non-empty string or a non-empty array of them');
    }
    // node:fs passed as the option (its CommonJS object or its ES module namespace) is node:fs.
    const customFs = options.fs === undefined || isNodeFs(options.fs) ? undefined : options.fs;
    if (customFs !== undefined && typeof customFs.promises?.open !== 'function') {
      throw new TypeError('FileTokenSource: fs must look like node:fs (fs.promises.open is missing)');
    }

    this.path = customFs === undefined ? resolve(path) : path;
    if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
      throw new TypeError('FileTokenSource: name must be a non-empty string');
    }
    this.name = options.name ?? this.path;
    this.#ref = Object.freeze({ name: this.name, path: this.path });
    this.#audience = audience;
    this.#refreshRatio = refreshRatio;
    const { file, release } = acquireTokenFile(customFs, this.path, maxTokenBytes);
    this.#file = file;
    this.#releaseFile = release;

    if (options.watch ?? true) {
      this.#watch = watchFolder(customFs, this.path, () => void this.#reload('event'));
    }
    if (pollInterval > 0) {
      this.#pollTimer = setInterval(() => {
        this.#checkExpiry();
        void this.#reload('poll');
      }, pollInterval);
      this.#pollTimer.unref?.();
    }
    if (readyTimeout > 0) {
      this.#readyTimer = setTimeout(() => this.#onReadyTimeout(), Math.min(readyTimeout, MAX_TIMER));
      this.#readyTimer.unref?.();
    }
    void this.#reload('start');
  }

  /** The token in memory now, decoded; undefined before the first load. */
  get current(): Token | undefined {
    return this.#token;
  }

  /**
   * How the source is doing now, for probes, dashboards and logs: its state (see
   * {@link TokenSourceState}), whether it serves a token, the token's remaining lifetime
   * and age, when it looks for the next one, and the last failure while reads fail. Never
   * the token. Cheap: reads the clock and a few fields.
   *
   * @example
   * ```ts
   * const { state, expiresIn, lastError } = source.status();
   * if (state !== 'ok') log.warn({ state, expiresIn, lastError }, 'token source unhealthy');
   * ```
   */
  status(): TokenSourceStatus {
    const now = Date.now();
    const token = this.#token;
    let state: TokenSourceState;
    let serving = false;
    if (this.#closed) {
      state = 'closed';
    } else if (token === undefined) {
      state = this.#startError !== undefined || this.#readyTimedOut ? 'failing' : 'loading';
    } else if (now >= this.#expiresAtMs) {
      state = 'expired';
    } else {
      serving = true;
      const refreshAt = token.refreshAt?.getTime();
      if (this.#lastError !== undefined) state = 'failing';
      else if (refreshAt !== undefined && now > refreshAt + Math.min(OVERDUE_GRACE_MS, (this.#expiresAtMs - refreshAt) / 2)) state = 'refresh-overdue';
      else state = 'ok';
    }
    const status: { -readonly [K in keyof TokenSourceStatus]: TokenSourceStatus[K] } = { name: this.name, state, serving };
    if (token?.expiresAt !== undefined) {
      status.expiresIn = this.#expiresAtMs - now;
      status.expiresAt = token.expiresAt;
    }
    if (token?.issuedAt !== undefined) status.age = now - token.issuedAt.getTime();
    if (token?.refreshAt !== undefined) status.refreshAt = token.refreshAt;
    if (this.#lastError !== undefined) status.lastError = { code: this.#lastError.code, at: new Date(this.#lastErrorAt) };
    return status;
  }

  /**
   * Resolves with the first token loaded. Before that, it waits while the file is missing
   * (or holds no whole token yet), keeping the process alive meanwhile, and rejects with
   * `TOKEN_NOT_READY` after `readyTimeout`; it rejects at once with `TOKEN_AUDIENCE_MISMATCH`,
   * `TOKEN_EXPIRED`, `TOKEN_TOO_LARGE` or `TOKEN_FILE_UNREADABLE` (a folder) while the
   * file holds what waiting cannot fix, and with `TOKEN_SOURCE_CLOSED` after `close()`.
   * Each call answers for the state at that moment: once a good token has loaded (even
   * after such a rejection), it resolves with it.
   */
  ready(): Promise<Token> {
    if (this.#readyLoaded !== undefined) return this.#readyLoaded;
    const failure = this.#failureNow();
    if (failure !== undefined) return handled(Promise.reject(failure));
    if (this.#readyPending === undefined) {
      const pending = handled(
        this.#wait(undefined).finally(() => {
          if (this.#readyPending === pending) this.#readyPending = undefined;
        }),
      );
      this.#readyPending = pending;
    }
    return this.#readyPending;
  }

  /**
   * The current token, from memory. Before the first load it waits as `ready()` does (or
   * until `signal` aborts). Rejects with `TOKEN_EXPIRED` when the only token it has is past
   * `exp`, and with `TOKEN_SOURCE_CLOSED` after `close()`.
   */
  getToken(options?: GetTokenOptions): Promise<string> {
    // The hot path: no disk, no parsing, no allocation, no clock read.
    if (this.#tokenPromise !== undefined) return this.#tokenPromise;
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#token !== undefined) {
      if (this.#checkExpiry()) return Promise.reject(this.#expiredError(this.#token));
      this.#tokenPromise = Promise.resolve(this.#token.value);
      return this.#tokenPromise;
    }
    const failure = this.#failureNow();
    if (failure !== undefined) return Promise.reject(failure);
    return this.#wait(options?.signal).then((token) => token.value);
  }

  /**
   * A server rejected `rejected` (e.g. answered 401): re-read the file now, even when the
   * token in memory is already another one (that one may have been replaced on disk too).
   * Concurrent calls share one read, plus at most one queued behind it; calls for a token
   * whose re-read is running join that read. While the folder is watched, for one second
   * after a re-read (by this source or another on the same file) that left the rejected
   * token in place, calls for that token are answered by it without reading again: a server
   * that refuses everything costs one read a second, not one per request, and a rotation
   * meanwhile is read at once through its folder event. Resolves when the read is done;
   * never rejects (read errors go to `onError`).
   */
  async invalidate(rejected: string): Promise<void> {
    if (typeof rejected !== 'string') throw new TypeError('invalidate: rejected must be the token string the server refused');
    if (this.#closed) return;
    if (this.#invalidation?.rejected === rejected) return this.#invalidation.promise;
    const before = this.#token;
    // Only while the folder is watched: then a write during the cooldown is reported by an
    // event and read at once. Without a watch, a 401 is the only news of a rotation.
    if (before?.value === rejected && this.#watch?.live === true && this.#file.unchangedSince(rejected, INVALIDATE_COOLDOWN_MS)) {
      this.#publishInvalidated('cooldown', true);
      return;
    }
    const invalidation: Invalidation = {
      rejected,
      promise: this.#reload('invalidate').then(() => {
        if (this.#invalidation === invalidation) this.#invalidation = undefined;
        // The re-read found no other token: the server refuses the one the file holds.
        const unchanged = this.#token?.value === rejected;
        if (before?.value === rejected && this.#token === before) this.#file.noteUnchanged(rejected);
        this.#publishInvalidated(unchanged ? 'unchanged' : 'replaced', before?.value === rejected);
      }),
    };
    this.#invalidation = invalidation;
    return invalidation.promise;
  }

  /** Calls `listener` after each new token is loaded (not for the same token read again). Returns an unsubscribe function. */
  onRefresh(listener: (token: Token, previous: Token | undefined) => void): () => void {
    this.#refreshListeners.add(listener);
    return () => void this.#refreshListeners.delete(listener);
  }

  /**
   * Calls `listener` for each failed read or rejected content. Errors are reported, never
   * thrown: with no listener they are only kept for `getToken()`'s rejections.
   * Returns an unsubscribe function.
   */
  onError(listener: (error: TokenSourceError) => void): () => void {
    this.#errorListeners.add(listener);
    return () => void this.#errorListeners.delete(listener);
  }

  /** Stops the watcher and timers. Pending and later `getToken()` calls reject with `TOKEN_SOURCE_CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#tokenPromise = undefined;
    clearTimeout(this.#timer);
    clearTimeout(this.#readyTimer);
    clearTimeout(this.#expiryTimer);
    clearInterval(this.#pollTimer);
    this.#readyTimer = undefined;
    this.#rejectWaiters(this.#closedError());
    this.#refreshListeners.clear();
    this.#errorListeners.clear();
    this.#releaseFile();
    if (channels.sourceClosed.hasSubscribers) channels.sourceClosed.publish({ source: this.#ref, at: new Date() });
    const watch = this.#watch;
    this.#watch = undefined;
    await Promise.all([watch?.close(), this.#reading?.catch(noop)]);
  }

  /** `await using source = new FileTokenSource()` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Redacted: a source printed in a log shows its path and state, never the token. */
  toJSON(): Record<string, unknown> {
    return { name: this.name, path: this.path, closed: this.#closed, current: this.#token };
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `FileTokenSource { path: ${this.path}, ${this.#closed ? 'closed' : this.#token ? String(this.#token) : 'loading'} }`;
  }

  // Single flight: one read at a time. A trigger that arrives during a read may have been
  // caused by a write that read did not see, so it queues exactly one more read after it;
  // every further trigger joins that queued read. `stamp` is how many reads of the file
  // (by any source on it) had been issued when the trigger happened: a read issued later
  // answers it (see SharedTokenFile).
  #reload(trigger: Trigger, stamp = this.#file.stamp, pollOnly = trigger === 'poll'): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#reading === undefined) {
      this.#reading = this.#readOnce(trigger, stamp, pollOnly).finally(() => {
        this.#reading = undefined;
      });
      return this.#reading;
    }
    // The queued read must answer every trigger that joins it: the latest stamp, and a
    // poll's "any recent read will do" only when every trigger was a poll.
    this.#queuedStamp = Math.max(this.#queuedStamp, stamp);
    this.#queuedPollOnly &&= pollOnly;
    this.#queued ??= this.#reading.then(() => {
      const queuedStamp = this.#queuedStamp;
      const queuedPollOnly = this.#queuedPollOnly;
      this.#queued = undefined;
      this.#queuedStamp = 0;
      this.#queuedPollOnly = true;
      return this.#reload(trigger === 'retry' ? 'event' : trigger, queuedStamp, queuedPollOnly);
    });
    return this.#queued;
  }

  async #readOnce(trigger: Trigger, stamp: number, pollOnly: boolean): Promise<void> {
    // Always timed: a subscriber may arrive while the read runs (a read that started before
    // would report 0), and a clock read costs nothing beside a file read. Never on getToken().
    const startedAt = performance.now();
    const read = await this.#file.read(stamp, pollOnly ? POLL_FRESH_MS : undefined);
    if (this.#closed) return;
    let outcome: 'changed' | 'same' | 'failed';
    let error: TokenSourceError | undefined;
    if (read.ok) {
      try {
        outcome = this.#accept(read, trigger);
      } catch (thrown) {
        outcome = 'failed';
        error = asTokenError(thrown, this.path);
      }
    } else {
      outcome = 'failed';
      error = read.error;
    }
    if (error !== undefined) this.#fail(error, trigger);
    if (this.#closed) return;
    if (channels.readFinished.hasSubscribers) {
      channels.readFinished.publish({
        source: this.#ref,
        trigger,
        outcome,
        ...(error === undefined ? {} : { code: error.code }),
        duration: performance.now() - startedAt,
        at: new Date(),
      });
    }
    this.#checkExpiry();
    if (outcome !== 'failed') {
      this.#failures = 0;
      this.#failedReads = 0;
      this.#lastError = undefined;
    }
    this.#watch?.rearm(outcome !== 'failed');
    this.#schedule(outcome, trigger);
  }

  #accept(read: ContentRead, trigger: Trigger): 'changed' | 'same' {
    const previous = this.#token;
    if (previous !== undefined && read.value === previous.value) return 'same';
    const token = read.decode(this.#refreshRatio);
    if (previous !== undefined && previous.kind !== 'opaque') {
      // A file that held a JWT and now holds something else, or a JWT from the same key
      // with a signature of another length, is a torn or foreign write.
      if (token.kind === 'opaque') {
        throw new TokenSourceError(
          'TOKEN_MALFORMED',
          `Token file ${this.path} no longer holds a JWT (it did before): probably a partial write. Keeping the last good token.`,
          { path: this.path },
        );
      }
      if (signatureCutShort(previous.value, token.value)) {
        throw new TokenSourceError(
          'TOKEN_MALFORMED',
          `Token file ${this.path} holds a JWT whose signature is not as long as every signature of its key (cut short by a partial write?). Keeping the last good token.`,
          { path: this.path },
        );
      }
    }
    if (this.#audience !== undefined && !token.audience.some((a) => this.#audience!.includes(a))) {
      throw new TokenSourceError(
        'TOKEN_AUDIENCE_MISMATCH',
        `Token file ${this.path} holds a token for audience [${token.audience.map(printable).join(', ')}], expected one of [${this.#audience.join(', ')}]. Check serviceAccountToken.audience in the pod spec.`,
        { path: this.path },
      );
    }
    if (token.expiresAt !== undefined && token.expiresAt.getTime() <= Date.now()) {
      throw new TokenSourceError(
        'TOKEN_EXPIRED',
        `Token file ${this.path} holds a token that expired at ${token.expiresAt.toISOString()}. The kubelet has not written a fresh one yet.`,
        { path: this.path },
      );
    }
    this.#token = token;
    this.#tokenPromise = Promise.resolve(token.value);
    this.#expiresAtMs = token.expiresAt?.getTime() ?? Infinity;
    this.#armExpiry();
    this.#staleReads = 0;
    if (previous === undefined) {
      clearTimeout(this.#readyTimer);
      this.#readyTimer = undefined;
      this.#startError = undefined;
      this.#readyLoaded = Promise.resolve(token);
      const waiters = [...this.#waiters];
      this.#waiters.clear();
      this.#holdLoop();
      for (const waiter of waiters) waiter.resolve(token);
    }
    for (const listener of this.#refreshListeners) safely(listener, token, previous);
    const channel = previous === undefined ? channels.tokenLoaded : channels.tokenRefreshed;
    if (channel.hasSubscribers) {
      const now = Date.now();
      channel.publish({
        source: this.#ref,
        token: tokenFacts(token),
        ...(previous === undefined ? {} : { previous: tokenFacts(previous) }),
        trigger,
        at: new Date(now),
        ...(token.issuedAt === undefined ? {} : { age: now - token.issuedAt.getTime() }),
        ...(token.expiresAt === undefined ? {} : { expiresIn: token.expiresAt.getTime() - now }),
      });
    }
    return 'changed';
  }

  #fail(error: TokenSourceError, trigger: Trigger): void {
    this.#lastError = error;
    this.#lastErrorAt = Date.now();
    this.#failedReads += 1;
    if (channels.readFailed.hasSubscribers) {
      channels.readFailed.publish({
        source: this.#ref,
        trigger,
        code: error.code,
        message: error.message,
        failures: this.#failedReads,
        serving: this.#token !== undefined && this.#lastErrorAt < this.#expiresAtMs,
        at: new Date(this.#lastErrorAt),
      });
    }
    if (this.#token === undefined) {
      // Before the first token: a file that waiting cannot fix answers the waiters now.
      this.#startError = waitingCannotFix(error) ? error : undefined;
      if (this.#startError !== undefined) this.#rejectWaiters(this.#startError);
    }
    for (const listener of this.#errorListeners) safely(listener, error);
  }

  // Backoff grows only with the reads its own timer makes: a burst of folder events (a
  // removed folder gives several) must not push the next retry out to 30 s.
  #schedule(outcome: 'changed' | 'same' | 'failed', trigger: Trigger): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const now = Date.now();
    let delay: number | undefined;
    let refreshAtPending = false;
    if (outcome === 'failed') {
      if (trigger === 'retry') this.#failures += 1;
      delay = backoff(this.#failures);
    } else {
      const refreshAt = this.#token?.refreshAt?.getTime();
      if (refreshAt === undefined || now >= this.#expiresAtMs) {
        delay = undefined; // never expires, or expired: events and the poll carry on
      } else if (now < refreshAt) {
        delay = refreshAt - now;
        refreshAtPending = true;
      } else {
        // Past refreshAt and still the same token: the kubelet may not have written yet.
        if (trigger === 'retry' && outcome === 'same') this.#staleReads += 1;
        delay = backoff(this.#staleReads);
      }
    }
    if (delay === undefined) return;
    const next: Trigger = refreshAtPending ? 'refresh' : 'retry';
    this.#timer = setTimeout(() => void this.#reload(next), Math.min(delay, MAX_TIMER));
    this.#timer.unref?.();
  }

  // Why a timer and not a clock read in getToken(): the hot path then costs a field read.
  // The timer may fire a little late (a busy event loop; a suspended process), so every
  // other path that runs anyway (the poll, a read, a slow-path getToken) checks the clock.
  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.#expiresAtMs === Infinity || this.#closed) return;
    const delay = this.#expiresAtMs - Date.now();
    if (delay <= 0) {
      this.#tokenPromise = undefined;
      this.#reportExpired();
      return;
    }
    this.#expiryTimer = setTimeout(() => this.#armExpiry(), Math.min(delay, MAX_TIMER));
    this.#expiryTimer.unref?.();
  }

  /** Drops the cached promise once the token is past `exp`; returns whether it is. */
  #checkExpiry(): boolean {
    if (this.#token === undefined || Date.now() < this.#expiresAtMs) return false;
    this.#tokenPromise = undefined;
    this.#reportExpired();
    return true;
  }

  #reportExpired(): void {
    const token = this.#token;
    if (token === undefined || this.#expiredReported === token) return;
    this.#expiredReported = token;
    if (channels.tokenExpired.hasSubscribers) {
      channels.tokenExpired.publish({ source: this.#ref, token: tokenFacts(token), at: new Date() });
    }
  }

  #publishInvalidated(outcome: 'replaced' | 'unchanged' | 'cooldown', current: boolean): void {
    if (this.#closed || !channels.tokenInvalidated.hasSubscribers) return;
    channels.tokenInvalidated.publish({ source: this.#ref, outcome, current, at: new Date() });
  }

  /** Why a caller cannot wait for the first token now, if it cannot. */
  #failureNow(): TokenSourceError | undefined {
    if (this.#closed) return this.#closedError();
    if (this.#startError !== undefined) return this.#startError;
    if (this.#readyTimedOut) return this.#notReadyError();
    return undefined;
  }

  #wait(signal: AbortSignal | undefined): Promise<Token> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<Token>((resolve, reject) => {
      const onAbort = () => {
        this.#waiters.delete(waiter);
        this.#holdLoop();
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: (token) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(token);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.#waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#holdLoop();
    });
  }

  #rejectWaiters(error: unknown): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    this.#holdLoop();
    for (const waiter of waiters) waiter.reject(error);
  }

  // While anyone waits for the first token, the process must live to hear the answer:
  // otherwise, with nothing else to do (no folder to watch yet, or `watch: false`), it
  // would exit with the answer pending (an ESM top-level await: exit code 13; CommonJS:
  // exit 0, the rejection handler never run). The ready timer is what will answer, so it
  // is the handle kept; with readyTimeout 0 (wait forever) a long interval stands in.
  #holdLoop(): void {
    const hold = !this.#closed && this.#waiters.size > 0;
    if (this.#readyTimer !== undefined) {
      if (hold) this.#readyTimer.ref?.();
      else this.#readyTimer.unref?.();
    }
    if (hold && this.#readyTimer === undefined) {
      this.#keepAlive ??= setInterval(noop, MAX_TIMER);
    } else if (this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  #onReadyTimeout(): void {
    this.#readyTimer = undefined;
    if (this.#token !== undefined || this.#closed) return;
    this.#readyTimedOut = true;
    this.#rejectWaiters(this.#notReadyError());
  }

  #notReadyError(): TokenSourceError {
    const last = this.#lastError;
    return new TokenSourceError(
      'TOKEN_NOT_READY',
      `No token could be loaded from ${this.path}${last ? ` (last error: ${last.code}: ${last.message})` : ''}.`,
      { path: this.path, cause: last },
    );
  }

  #expiredError(token: Token): TokenSourceError {
    return new TokenSourceError(
      'TOKEN_EXPIRED',
      `The token from ${this.path} expired at ${token.expiresAt?.toISOString()} and no fresh one has been read${
        this.#lastError ? ` (last error: ${this.#lastError.code})` : ''
      }. Check that the kubelet is rotating it.`,
      { path: this.path, cause: this.#lastError },
    );
  }

  #closedError(): TokenSourceError {
    return new TokenSourceError('TOKEN_SOURCE_CLOSED', `The token source for ${this.path} is closed.`, { path: this.path });
  }
}

/**
 * Whether a problem found before the first token is one that waiting cannot fix: the file
 * is there and whole, but holds a token for another audience, an expired one, far too much,
 * or is a folder. A missing file, one being written (empty, cut short) or one that cannot
 * be read yet is waited for.
 */
function waitingCannotFix(error: TokenSourceError): boolean {
  switch (error.code) {
    case 'TOKEN_AUDIENCE_MISMATCH':
    case 'TOKEN_EXPIRED':
    case 'TOKEN_TOO_LARGE':
      return true;
    case 'TOKEN_FILE_UNREADABLE':
      return (error.cause as { code?: unknown } | undefined)?.code === 'EISDIR';
    default:
      return false;
  }
}

function isNodeFs(fs: TokenFileSystem): boolean {
  return (fs as unknown) === nodeFs || (typeof fs === 'object' && fs !== null && fs.promises === nodeFs.promises && fs.watch === nodeFs.watch);
}

function backoff(attempt: number): number {
  return Math.min(SECOND * 2 ** Math.min(attempt, 16), MAX_BACKOFF);
}

function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`FileTokenSource: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

/** Marks a promise handed out as handled, so one nobody awaits is not an unhandled rejection. */
function handled<T>(promise: Promise<T>): Promise<T> {
  promise.catch(noop);
  return promise;
}

// A listener that throws must not stop the others or the source; it is a bug in the app,
// so it surfaces as a process warning rather than vanishing.
function safely<A extends unknown[]>(listener: (...args: A) => void, ...args: A): void {
  try {
    listener(...args);
  } catch (error) {
    process.emitWarning(`A podtoken listener threw: ${error instanceof Error ? error.message : String(error)}`, 'PodtokenWarning');
  }
}
