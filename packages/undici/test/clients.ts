import { Readable } from 'node:stream';
import { Agent, fetch as undiciFetch, getGlobalDispatcher, interceptors, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { tokenInterceptor, type TokenInterceptorOptions } from '@podtoken/undici';
import type { TokenSource } from '@podtoken/core';

/** The request fields the tests use. */
export interface Call {
  method?: string;
  headers?: unknown;
  /** A string, or `stream` for a one-shot body of that text. */
  body?: string | { stream: string };
}

/** What the tests read back. */
export interface Reply {
  status: number;
  text: string;
  /** The final URL, where the client says (fetch). */
  url?: string;
}

/** One way of calling through an undici dispatcher that has the token interceptor. */
export interface Client {
  readonly name: string;
  /** A dispatcher with the interceptor (and the redirect interceptor where the client needs one). */
  dispatcher(source: TokenSource, options: TokenInterceptorOptions, agent?: Agent.Options): Dispatcher;
  call(dispatcher: Dispatcher, url: string, call?: Call): Promise<Reply>;
}

const MAX_REDIRECTIONS = 5;

function requestClient(order: 'inside' | 'outside'): Client {
  return {
    name: `undici request, token interceptor ${order} the redirect interceptor`,
    dispatcher: (source, options, agent = {}) =>
      order === 'inside'
        ? new Agent(agent).compose(tokenInterceptor(source, options), interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }))
        : new Agent(agent).compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }), tokenInterceptor(source, options)),
    async call(dispatcher, url, call = {}) {
      const body = typeof call.body === 'object' ? Readable.from([Buffer.from(call.body.stream)]) : call.body;
      const response = await request(url, {
        dispatcher,
        method: (call.method ?? 'GET') as Dispatcher.HttpMethod,
        ...(call.headers === undefined ? {} : { headers: call.headers as NonNullable<Dispatcher.DispatchOptions['headers']> }),
        ...(body === undefined ? {} : { body }),
      });
      return { status: response.statusCode, text: await response.body.text() };
    },
  };
}

type AnyFetch = (url: string, init: Record<string, unknown>) => Promise<{ status: number; url: string; text(): Promise<string> }>;

function fetchInit(call: Call): Record<string, unknown> {
  const init: Record<string, unknown> = { method: call.method ?? 'GET' };
  if (call.headers !== undefined) init['headers'] = call.headers;
  if (typeof call.body === 'string') init['body'] = call.body;
  else if (call.body !== undefined) {
    const bytes = new TextEncoder().encode(call.body.stream);
    init['body'] = new ReadableStream({
      start(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
    init['duplex'] = 'half';
  }
  return init;
}

const fetchDispatcher: Client['dispatcher'] = (source, options, agent = {}) => new Agent(agent).compose(tokenInterceptor(source, options));

/** fetch from the undici package, with the dispatcher passed per call; fetch follows redirects itself. */
const undiciFetchClient: Client = {
  name: 'undici fetch',
  dispatcher: fetchDispatcher,
  async call(dispatcher, url, call = {}) {
    const response = await (undiciFetch as unknown as AnyFetch)(url, { ...fetchInit(call), dispatcher });
    return { status: response.status, url: response.url, text: await response.text() };
  },
};

/**
 * Node's own global fetch (its bundled undici), with the composed dispatcher installed by the
 * npm undici's setGlobalDispatcher for the call, as an app installs it at start-up.
 */
const globalFetchClient: Client = {
  name: `global fetch (Node ${process.versions.node}, bundled undici ${process.versions.undici}) through setGlobalDispatcher`,
  dispatcher: fetchDispatcher,
  async call(dispatcher, url, call = {}) {
    const previous = getGlobalDispatcher();
    setGlobalDispatcher(dispatcher);
    try {
      const response = await (globalThis.fetch as unknown as AnyFetch)(url, fetchInit(call));
      return { status: response.status, url: response.url, text: await response.text() };
    } finally {
      setGlobalDispatcher(previous);
    }
  },
};

/** Every way the adapter is used. */
export const clients: readonly Client[] = [requestClient('inside'), requestClient('outside'), undiciFetchClient, globalFetchClient];
export { globalFetchClient, undiciFetchClient };
