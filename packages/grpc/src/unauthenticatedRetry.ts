import { InterceptingCall, Metadata, status, type Interceptor, type InterceptingListener, type StatusObject } from '@grpc/grpc-js';
import { bearer, redactSecrets, tokenAfterUnauthorized, type TokenSource } from '@podtoken/core';
import { NO_TOKEN_STATUS, noTokenDetails } from './internal/noToken.js';

/** Options of {@link unauthenticatedRetry}. */
export interface UnauthenticatedRetryOptions {
  /**
   * On `UNAUTHENTICATED` (16) for the token a call carried, the source is always told
   * (`source.invalidate(token)`: the server says the token is stale, so it re-reads and the next
   * call carries a fresh one). With `retryUnauthorized`, a unary call whose source then holds a
   * different token is also sent once more with it; with `false` the status goes straight back
   * to the caller. Streaming calls are never sent again (their messages are gone).
   * @default true
   */
  retryUnauthorized?: boolean;
}

/** How the interceptor gets the token onto the wire. */
export interface TokenInterceptorMode {
  /**
   * `'credentials'`: the channel's call credentials (see `tokenCallCredentials`) attach the
   * token; the interceptor only reads the token the source holds as the call starts, to know
   * which one a refusal was for. `'metadata'`: the interceptor puts the token in the call's
   * metadata itself (the opt-in for channels without TLS).
   */
  attach: 'credentials' | 'metadata';
  retryUnauthorized: boolean;
}

/**
 * A grpc-js client interceptor that handles `UNAUTHENTICATED` (16), the gRPC form of a 401, for
 * calls whose token comes from `source` through `tokenCallCredentials(source)` on the channel:
 *
 * - every `UNAUTHENTICATED` makes the source re-read (`source.invalidate(sentToken)`), and
 *   publishes `podtoken:request:unauthorized` (adapter `'grpc'`) on `node:diagnostics_channel`;
 * - a unary call is then sent once more, with the same request message, metadata, call options
 *   and deadline, when the source holds a different token (and `retryUnauthorized` is not
 *   `false`); a second `UNAUTHENTICATED` goes back to the caller. Cancelling the call while it
 *   waits for the re-read ends it with `CANCELLED`;
 * - a streaming call (client, server or bidirectional) gets the status as it came: its messages
 *   were consumed and are not sent again.
 *
 * The status a call ends with is cleaned of the token's text (details and trailers) before the
 * caller sees it. {@link withTokenSource} gives the interceptor together with the credentials;
 * use this when you combine the credentials yourself.
 *
 * The interceptor reads `source.getToken()` as the call starts to know which token a refusal
 * was for; the credentials read it again when the call is sent, a moment later. If the kubelet
 * swapped the token in between, the refusal is taken as being for the older one: the source
 * still re-reads, and at most one retry follows, as always.
 *
 * @param source - the same source the channel's call credentials read.
 * @param options - {@link UnauthenticatedRetryOptions}.
 * @returns an interceptor for the client's `interceptors` option.
 *
 * @example
 * ```ts
 * const channel = credentials.combineChannelCredentials(credentials.createSsl(ca), tokenCallCredentials(source));
 * const client = new OrdersClient('orders.internal:443', channel, { interceptors: [unauthenticatedRetry(source)] });
 * ```
 */
export function unauthenticatedRetry(source: TokenSource, options: UnauthenticatedRetryOptions = {}): Interceptor {
  if (typeof source?.getToken !== 'function') throw new TypeError('unauthenticatedRetry: source must be a TokenSource (with getToken())');
  if (typeof options !== 'object' || options === null) throw new TypeError('unauthenticatedRetry: options must be an object');
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('unauthenticatedRetry: retryUnauthorized must be a boolean');
  return createTokenInterceptor(source, { attach: 'credentials', retryUnauthorized });
}

const NO_TOKEN: Promise<string | undefined> = Promise.resolve(undefined);
const CANCELLED: Omit<StatusObject, 'metadata'> = { code: status.CANCELLED, details: 'Cancelled on client' };

/** The interceptor behind {@link unauthenticatedRetry} and `withTokenSource`'s opt-in for channels without TLS. */
export function createTokenInterceptor(source: TokenSource, mode: TokenInterceptorMode): Interceptor {
  const attach = mode.attach === 'metadata';
  return (options, nextCall) => {
    const method = options.method_definition;
    const unary = method.requestStream !== true && method.responseStream !== true;
    const first = nextCall(options);
    /** Every token this call carried: what the status it ends with is cleaned of. */
    const sent: string[] = [];
    /** The token the current attempt carries (or, with call credentials, the one the source held as it started). */
    let token: Promise<string | undefined> = NO_TOKEN;
    let caller: InterceptingListener;
    let original: Metadata;
    let message: unknown;
    let hasMessage = false;
    let state: 'first' | 'deciding' | 'retry' | 'done' = 'first';
    let retryCall: ReturnType<typeof nextCall> | undefined;
    let deciding: AbortController | undefined;

    const finish = (final: StatusObject): StatusObject => {
      state = 'done';
      if (final.code !== status.OK && sent.length > 0) redactSecrets(final, sent);
      return final;
    };

    const retry = (next: string): void => {
      state = 'retry';
      token = Promise.resolve(next);
      sent.push(next);
      const metadata = original.clone();
      if (attach) metadata.set('authorization', bearer(next));
      retryCall = nextCall(options);
      retryCall.start(metadata, {
        onReceiveMetadata: (received) => caller.onReceiveMetadata(received),
        onReceiveMessage: (received) => caller.onReceiveMessage(received),
        onReceiveStatus: (received) => {
          if (received.code === status.UNAUTHENTICATED) {
            // The second refusal goes back to the caller; the source hears of it all the same.
            void tokenAfterUnauthorized(source, next, { replayable: false, adapter: 'grpc', retryUnauthorized: mode.retryUnauthorized }).catch(() => undefined);
          }
          caller.onReceiveStatus(finish(received));
        },
      });
      if (hasMessage) retryCall.sendMessage(message);
      retryCall.halfClose();
    };

    return new InterceptingCall(first, {
      start(metadata, listener, next) {
        caller = listener;
        // Cloned only for a retry: no layer below changes the metadata a call starts with.
        if (unary) original = metadata;
        // A unary call's first answer is held back until its status says whether it is the
        // answer (anything but UNAUTHENTICATED, or no retry) or a refusal that a retry replaces.
        let heldMetadata: { value: Metadata; next: (value: Metadata) => void } | undefined;
        let heldMessage: { value: unknown; next: (value: unknown) => void } | undefined;
        const release = () => {
          heldMetadata?.next(heldMetadata.value);
          heldMessage?.next(heldMessage.value);
          heldMetadata = heldMessage = undefined;
        };
        const ours = {
          onReceiveMetadata(received: Metadata, forward: (value: Metadata) => void) {
            if (unary) heldMetadata = { value: received, next: forward };
            else forward(received);
          },
          onReceiveMessage(received: unknown, forward: (value: unknown) => void) {
            if (unary) heldMessage = { value: received, next: forward };
            else forward(received);
          },
          onReceiveStatus(received: StatusObject, forward: (value: StatusObject) => void) {
            if (state !== 'first') return; // cancelled while the token was read: answered already
            if (received.code !== status.UNAUTHENTICATED) {
              release();
              forward(finish(received));
              return;
            }
            const replayable = mode.retryUnauthorized && unary;
            state = 'deciding';
            deciding = new AbortController();
            const { signal } = deciding;
            token
              .then((rejected) =>
                rejected === undefined
                  ? undefined // no token was sent: nothing to invalidate, nothing to retry with
                  : tokenAfterUnauthorized(source, rejected, { replayable, signal, adapter: 'grpc', retryUnauthorized: mode.retryUnauthorized }),
              )
              .catch(() => undefined) // an abort (the caller cancelled) or a broken source: the refusal stands
              .then((fresh) => {
                if (state !== 'deciding') return;
                if (fresh !== undefined) {
                  retry(fresh);
                  return;
                }
                release();
                forward(finish(received));
              });
          },
        };

        if (!attach) {
          // A FileTokenSource says which token it holds without a promise: the cheap path.
          const held = (source as { current?: { value?: unknown } }).current?.value;
          if (typeof held === 'string') {
            sent.push(held);
            token = Promise.resolve(held);
          } else {
            token = source.getToken().then(
              (value) => (sent.push(value), value),
              () => undefined,
            );
          }
          // The call credentials put the token on the call (and report a source's failure);
          // the read above only says which token a refusal is for. The call need not wait for it:
          // it resolves long before any answer can arrive.
          next(metadata, ours);
          return;
        }
        const read = source.getToken();
        token = read.then(
          (value) => (sent.push(value), value),
          () => undefined,
        );
        read.then(
          (value) => {
            metadata.set('authorization', bearer(value));
            next(metadata, ours);
          },
          (error: unknown) => {
            next(metadata, ours);
            // No token for the call: it ends here, before anything is sent.
            first.cancelWithStatus(NO_TOKEN_STATUS, noTokenDetails(error));
          },
        );
      },
      sendMessage(value, next) {
        if (unary) {
          message = value;
          hasMessage = true;
        }
        next(value);
      },
      cancel(next) {
        if (state === 'deciding') {
          deciding?.abort();
          caller.onReceiveStatus(finish({ ...CANCELLED, metadata: new Metadata() }));
        } else if (state === 'retry') {
          retryCall?.cancelWithStatus(CANCELLED.code, CANCELLED.details);
        } else {
          next();
        }
      },
    });
  };
}
