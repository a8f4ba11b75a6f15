import type { ClientRequest } from 'node:http';
import { createRedirectGuard, type RedirectGuard } from '@podtoken/core';
import type { Binding } from './binding.js';

/** What an `http.Agent` / `https.Agent` (or a proxy agent built on one) is to this module. */
export interface AgentLike {
  addRequest(request: ClientRequest, options: Record<string, unknown>): void;
}

const guarded = new WeakSet<object>();
const REDACTED = '[redacted]';

/**
 * Makes `agent` the last check before a request carrying `binding`'s token leaves: every
 * request that goes through it (the first, each redirect hop node-fetch follows, a WebSocket
 * upgrade) passes `addRequest` with its real destination. There:
 *
 * - `Authorization` is removed when the destination's origin is not one the binding allows,
 *   and, when `followsRedirects` (an agent made for one request, as client-node 1.x makes
 *   them), from the first hop to another origin on, for the rest of the chain, back-to-origin
 *   hops included (node-fetch 2 keeps the header when only the port or a subdomain changes);
 * - the options handed to the agent lose their `headers` (a socket keeps its connect options:
 *   they would hold the token for as long as the socket lives);
 * - once the request is written, the copies Node keeps on it (`_header`, the stored headers)
 *   are redacted, so an error or a WebSocket that holds the request does not hold the token.
 *
 * Returns `agent`, changed in place (once).
 */
export function guardAgent<A>(agent: A, binding: Binding, followsRedirects: boolean): A {
  const target = agent as unknown as AgentLike | null | undefined;
  if (typeof target?.addRequest !== 'function' || guarded.has(target)) return agent;
  guarded.add(target);
  const addRequest = target.addRequest;
  let chain: RedirectGuard | undefined;
  target.addRequest = function guardedAddRequest(this: AgentLike, request: ClientRequest, options: Record<string, unknown>) {
    if (request.hasHeader('authorization')) {
      const url = destinationOf(request, options);
      let allowed = url !== undefined && binding.allows(url);
      if (followsRedirects) {
        chain ??= createRedirectGuard(url ?? 'invalid:');
        allowed = chain.allows(url ?? 'invalid:') && allowed;
      }
      if (allowed) redactOnceWritten(request);
      else if (request.headersSent) {
        // Stored already (an `Expect` header makes Node build it in the constructor): the
        // header can no longer be taken out, so the request must not leave at all.
        throw new TypeError(`@podtoken/kubernetes: refused to send the token to ${url?.origin ?? 'an unknown destination'}`);
      } else request.removeHeader('authorization');
      if (options.headers !== undefined) {
        const { headers: _headers, ...rest } = options;
        options = rest;
      }
    }
    addRequest.call(this, request, options);
  };
  return agent;
}

/** The origin a request made through an agent connects to, as a URL (undefined when unknown). */
function destinationOf(request: ClientRequest, options: Record<string, unknown>): URL | undefined {
  const protocol = typeof request.protocol === 'string' ? request.protocol : 'https:';
  const host = typeof request.host === 'string' && request.host !== '' ? request.host : undefined;
  const port = options.port;
  if (host === undefined) return undefined;
  const bracketed = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  try {
    return new URL(`${protocol}//${bracketed}${port === undefined || port === null || port === '' ? '' : `:${String(port)}`}`);
  } catch {
    return undefined;
  }
}

/** After the request has been written: redact the header copies Node keeps on it. */
function redactOnceWritten(request: ClientRequest): void {
  let done = false;
  const redact = () => {
    if (done) return;
    done = true;
    const internals = request as unknown as { _header?: unknown };
    if (typeof internals._header === 'string') {
      internals._header = internals._header.replace(/(\r\nauthorization:[ \t]*)[^\r\n]*/gi, `$1${REDACTED}`);
    }
    const stored = outHeaders(request);
    const entry = stored?.['authorization'];
    if (Array.isArray(entry)) stored!['authorization'] = [entry[0], REDACTED];
  };
  // 'finish': every byte was handed to the socket; 'close': it never will be (refused, aborted).
  request.once('finish', redact);
  request.once('close', redact);
}

let outHeadersKey: symbol | undefined;

function outHeaders(request: ClientRequest): Record<string, unknown[]> | undefined {
  outHeadersKey ??= Object.getOwnPropertySymbols(request).find((symbol) => symbol.description === 'kOutHeaders');
  if (outHeadersKey === undefined) return undefined;
  const stored = (request as unknown as Record<symbol, unknown>)[outHeadersKey];
  return typeof stored === 'object' && stored !== null ? (stored as Record<string, unknown[]>) : undefined;
}
