import { bearer, isReplayableBody, tokenAfterUnauthorized } from '@podtoken/core';
import type { HttpLibraryLike, ObservableLike, RequestContextLike, ResponseContextLike } from './clientNode.js';
import type { Binding } from './binding.js';

/** What the wrapper needs to know about the tokens podtoken handed out. */
export interface SentTokens {
  /** The binding that handed out `token`, if one of ours did. */
  lookup(token: string): Binding | undefined;
  /** Records that `binding` handed out `token`. */
  remember(token: string, binding: Binding): void;
  /** The binding whose token `headers` carries, and the header's name. */
  bindingOfHeaders(headers: Record<string, unknown>): { binding: Binding; name: string } | undefined;
}

/**
 * Wraps an API client's `HttpLibrary` so that a 401 for a token one of our authenticators
 * sent invalidates that token's source, and, when the source then holds a different token
 * and the body can be sent again, re-sends the request once with it.
 *
 * This is the one place in client-node where a request and its response meet: middleware
 * `pre` sees the request and `post` only the response, with nothing linking the two, so a
 * middleware cannot re-send.
 */
export function invalidatingHttpApi(inner: HttpLibraryLike, sent: SentTokens): HttpLibraryLike {
  return {
    send(request) {
      // The URL as it leaves, after every middleware: the token goes only where its binding allows.
      const headers = request.getHeaders();
      const ours = sent.bindingOfHeaders(headers);
      if (ours !== undefined && request.getUrl !== undefined && !ours.binding.allows(request.getUrl())) delete headers[ours.name];
      const first = inner.send(request);
      const settled = first.toPromise().then((response) => afterResponse(inner, request, response, sent));
      return observableLike(first, settled);
    },
  };
}

async function afterResponse(
  inner: HttpLibraryLike,
  request: RequestContextLike,
  response: ResponseContextLike,
  sent: SentTokens,
): Promise<ResponseContextLike> {
  if (response.httpStatusCode !== 401) return response;
  const headers = request.getHeaders();
  const headerName = Object.keys(headers).find((name) => name.toLowerCase() === 'authorization');
  const token = headerName === undefined ? undefined : /^Bearer\s+(.+)$/i.exec(headers[headerName] ?? '')?.[1];
  const binding = token === undefined ? undefined : sent.lookup(token);
  if (token === undefined || binding === undefined || headerName === undefined) return response;

  // client-node's bodies are a string, URLSearchParams or a `form-data` FormData, which is a
  // one-shot stream (it has pipe()): isReplayableBody refuses it, as it must. With
  // retryUnauthorized false the source is still invalidated, as in every podtoken adapter (no
  // second attempt, but the next call must not send the rejected token again).
  const replayable = binding.retryUnauthorized && isReplayableBody(request.getBody());
  let next: string | undefined;
  try {
    next = await tokenAfterUnauthorized(binding.source, token, {
      replayable,
      signal: request.getSignal?.(),
      adapter: 'kubernetes',
      retryUnauthorized: binding.retryUnauthorized,
    });
  } catch {
    // Anything else the source or the signal throws (a TokenSourceError is already swallowed
    // by core): the server's 401 tells the caller more than an error from the 401 handling.
    return response;
  }
  if (next === undefined) return response;
  // Free the first response's connection before the second attempt.
  await response.body.text().catch(() => {});
  request.setHeaderParam(headerName, bearer(next));
  sent.remember(next, binding);
  return inner.send(request).toPromise();
}

// Hands the generated code the same kind of Observable its own HttpLibrary returns (the
// `rxjsStub` class of whichever client-node copy made the request).
function observableLike<T>(template: ObservableLike<unknown>, promise: Promise<T>): ObservableLike<T> {
  const Kind = (template as { constructor?: unknown }).constructor;
  if (typeof Kind === 'function' && Kind !== Object) {
    try {
      const made = new (Kind as new (promise: Promise<T>) => ObservableLike<T>)(promise);
      if (typeof made.toPromise === 'function') return made;
    } catch {
      // fall through to the plain shape
    }
  }
  return {
    toPromise: () => promise,
    pipe<U>(callback: (value: T) => U | Promise<U>) {
      return observableLike(this, promise.then(callback));
    },
  } as ObservableLike<T>;
}
