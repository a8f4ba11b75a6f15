import { credentials, Metadata, type CallCredentials } from '@grpc/grpc-js';
import { bearer, type TokenSource } from '@podtoken/core';
import { noTokenError } from './internal/noToken.js';

/**
 * gRPC call credentials that put `authorization: Bearer <token>` on every call, with the token
 * `source.getToken()` gives at the moment the call is sent (from memory once the source has
 * loaded; a reload by the kubelet is picked up by the next call).
 *
 * Combine them with the channel's TLS credentials
 * (`credentials.combineChannelCredentials(credentials.createSsl(ca), tokenCallCredentials(source))`);
 * grpc-js refuses to combine call credentials with `credentials.createInsecure()`, so the
 * token never goes over a plaintext channel that way. {@link withTokenSource} does the
 * combination and adds the retry on `UNAUTHENTICATED`; these credentials alone never retry.
 *
 * When the source has no token (`TokenSourceError`: not ready, expired, closed…) the call is
 * not sent and ends with status `UNAVAILABLE` (14), whose details name the error's code and
 * never hold token text.
 *
 * Do not pass them as per-call credentials (`client.method(request, { credentials })`) on a
 * channel made with `createInsecure()`: grpc-js 1.14 checks a channel's security only when
 * call credentials are combined with it, not per call, and would send the token in plaintext.
 *
 * @param source - where tokens come from, e.g. a `FileTokenSource`.
 * @returns call credentials for `credentials.combineChannelCredentials()`.
 *
 * @example
 * ```ts
 * import { credentials } from '@grpc/grpc-js';
 * import { FileTokenSource } from '@podtoken/core';
 * import { tokenCallCredentials } from '@podtoken/grpc';
 *
 * const source = new FileTokenSource({ path: '/var/run/secrets/tokens/api-token' });
 * const channelCredentials = credentials.combineChannelCredentials(credentials.createSsl(), tokenCallCredentials(source));
 * const client = new OrdersClient('orders.internal:443', channelCredentials);
 * ```
 */
export function tokenCallCredentials(source: TokenSource): CallCredentials {
  if (typeof source?.getToken !== 'function') throw new TypeError('tokenCallCredentials: source must be a TokenSource (with getToken())');
  // The metadata for the last token, reused while the token stays the same: grpc-js merges it
  // into each call's own metadata without changing it, and Metadata.set() validates the value
  // character by character, a cost worth paying once per token rather than once per call.
  let last: { token: string; metadata: Metadata } | undefined;
  return credentials.createFromMetadataGenerator((_options, callback) => {
    source.getToken().then(
      (token) => {
        if (last?.token !== token) {
          const metadata = new Metadata();
          metadata.set('authorization', bearer(token));
          last = { token, metadata };
        }
        callback(null, last.metadata);
      },
      (error: unknown) => callback(noTokenError(error)),
    );
  });
}
