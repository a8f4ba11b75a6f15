import { status } from '@grpc/grpc-js';
import { isTokenSourceError } from '@podtoken/core';

/**
 * The status a call ends with when the source has no token to give it: `UNAVAILABLE`, whatever
 * the source's reason. The request never left the process and the server refused nothing, so
 * it is not `UNAUTHENTICATED` (which this package keeps for "the server refused the token"),
 * and most reasons pass by themselves (the kubelet writes the file, the next token replaces an
 * expired one): `UNAVAILABLE` is the code gRPC retry policies treat as worth retrying.
 */
export const NO_TOKEN_STATUS = status.UNAVAILABLE;

/**
 * The text a call's status carries when `getToken()` failed. A `TokenSourceError`'s message
 * never holds a token (core's rule) and is kept with its code; any other error (a custom
 * source's) is named by its class alone, since nothing says what its message holds.
 */
export function noTokenDetails(error: unknown): string {
  if (isTokenSourceError(error)) return `podtoken: no token to send (${error.code}): ${error.message}`;
  const name = error instanceof Error ? error.name : typeof error;
  return `podtoken: the token source failed (${name}); the call was not sent`;
}

/** `getToken()`'s failure as the error a grpc-js metadata generator hands back: grpc-js uses its numeric `code`. */
export function noTokenError(error: unknown): Error & { code: number } {
  return Object.assign(new Error(noTokenDetails(error)), { code: NO_TOKEN_STATUS });
}
