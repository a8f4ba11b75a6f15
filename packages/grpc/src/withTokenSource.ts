import { credentials as grpcCredentials, ChannelCredentials, type Interceptor } from '@grpc/grpc-js';
import type { TokenSource } from '@podtoken/core';
import { tokenCallCredentials } from './tokenCallCredentials.js';
import { createTokenInterceptor } from './unauthenticatedRetry.js';

/** Options of {@link withTokenSource}. */
export interface GrpcTokenOptions {
  /**
   * On `UNAUTHENTICATED` (16) the source always re-reads; with `retryUnauthorized` a unary call
   * is also sent once more when the source then holds a different token. Streaming calls are
   * never sent again. See `unauthenticatedRetry`.
   * @default true
   */
  retryUnauthorized?: boolean;
  /**
   * Send the token over a channel without TLS (`credentials.createInsecure()`). grpc-js refuses
   * call credentials on such a channel, and so does {@link withTokenSource} unless this is
   * `true`: anyone on the path reads a plaintext token and can replay it until it expires.
   * Turn it on only where the plaintext hop cannot be read by anyone else: a sidecar proxy on
   * the pod's loopback (Envoy, Linkerd, Istio in plaintext-to-sidecar mode) that carries the
   * call over mTLS, or a Unix socket. The token then travels in the call's metadata, put there
   * by the interceptor. Has no effect on a TLS channel.
   * @default false
   */
  allowInsecure?: boolean;
}

/** What {@link withTokenSource} returns: the two halves of a client's construction. */
export interface GrpcTokenSetup {
  /** The channel credentials for the client's constructor (the TLS ones, with the token's call credentials combined in). */
  readonly credentials: ChannelCredentials;
  /** For the client options' `interceptors`: the `UNAUTHENTICATED` handling (and, with `allowInsecure`, the token itself). */
  readonly interceptors: Interceptor[];
}

/**
 * Everything a `@grpc/grpc-js` client needs to call with the current token from `source`:
 * channel credentials that put `authorization: Bearer <token>` on every call (the TLS
 * credentials you pass, combined with `tokenCallCredentials(source)`), and an interceptor
 * that handles `UNAUTHENTICATED` (16), gRPC's 401:
 *
 * - unary calls: the source re-reads (`invalidate`), and the call is sent once more with the
 *   same message, metadata and deadline when the token changed; a second refusal is returned;
 * - streaming calls: the source re-reads, the status goes back to the caller as it came.
 *
 * A channel talks to one target, fixed when the client is made, so the token goes to that
 * target only: make these credentials only for clients of the service the token is meant for
 * (the token's audience), and other credentials for other clients.
 *
 * A channel without TLS (`credentials.createInsecure()`) throws a `TypeError` unless
 * `allowInsecure: true` says the plaintext hop is safe (see {@link GrpcTokenOptions.allowInsecure}).
 *
 * When the source has no token, a call ends with `UNAVAILABLE` (14) before it is sent; no
 * status or error a call ends with holds the token's text.
 *
 * @param channel - the channel's own credentials: `credentials.createSsl(rootCerts?, key?, cert?)`
 *   or `credentials.createFromSecureContext(...)`; `credentials.createInsecure()` only with
 *   `allowInsecure`.
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @param options - {@link GrpcTokenOptions}.
 * @returns `{ credentials, interceptors }` for `new Client(address, credentials, { interceptors })`.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { credentials } from '@grpc/grpc-js';
 * import { FileTokenSource } from '@podtoken/core';
 * import { withTokenSource } from '@podtoken/grpc';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/orders-token', audience: 'orders' });
 * const tls = credentials.createSsl(readFileSync('/etc/orders/ca.crt'));
 * const { credentials: channel, interceptors } = withTokenSource(tls, source);
 * const orders = new OrdersClient('orders.internal:8443', channel, { interceptors });
 * ```
 */
export function withTokenSource(channel: ChannelCredentials, source: TokenSource, options: GrpcTokenOptions = {}): GrpcTokenSetup {
  if (!(channel instanceof ChannelCredentials)) {
    throw new TypeError('withTokenSource: channel must be grpc-js ChannelCredentials, e.g. credentials.createSsl(rootCerts)');
  }
  if (typeof source?.getToken !== 'function') throw new TypeError('withTokenSource: source must be a TokenSource (with getToken())');
  if (typeof options !== 'object' || options === null) throw new TypeError('withTokenSource: options must be an object');
  const retryUnauthorized = options.retryUnauthorized ?? true;
  if (typeof retryUnauthorized !== 'boolean') throw new TypeError('withTokenSource: retryUnauthorized must be a boolean');
  const allowInsecure = options.allowInsecure ?? false;
  if (typeof allowInsecure !== 'boolean') throw new TypeError('withTokenSource: allowInsecure must be a boolean');

  let combined: ChannelCredentials;
  try {
    combined = grpcCredentials.combineChannelCredentials(channel, tokenCallCredentials(source));
  } catch (error) {
    // grpc-js' own refusal ("Cannot compose insecure credentials"): the channel has no TLS.
    if (!allowInsecure) {
      throw new TypeError(
        'withTokenSource: the channel credentials have no TLS (credentials.createInsecure()), and a token sent over them can be read and replayed by anyone on the path; ' +
          'use credentials.createSsl(rootCerts) with the server’s CA, or, when the plaintext hop stays inside the pod (a service-mesh sidecar on loopback that carries the call over mTLS, a Unix socket), pass { allowInsecure: true }',
        { cause: error },
      );
    }
    return { credentials: channel, interceptors: [createTokenInterceptor(source, { attach: 'metadata', retryUnauthorized })] };
  }
  return { credentials: combined, interceptors: [createTokenInterceptor(source, { attach: 'credentials', retryUnauthorized })] };
}
