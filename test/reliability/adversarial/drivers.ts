import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import axios, { type AxiosInstance } from 'axios';
import axiosRetry from 'axios-retry';
import got from 'got';
import nodeFetch3 from 'node-fetch';
import nodeFetch2 from 'node-fetch-v2';
import { withTokenSource as axiosWithTokenSource } from '@podtoken/axios';
import { withTokenSource as fetchWithTokenSource } from '@podtoken/fetch';
import { withTokenSource as gotWithTokenSource } from '@podtoken/got';
import { tokenInterceptor } from '@podtoken/undici';
import { Agent as NpmUndiciAgent, fetch as npmUndiciFetch, getGlobalDispatcher, interceptors, request as undiciRequest, setGlobalDispatcher } from 'undici';
import type { ClientDriver, DriverCall, DriverResult, HarnessEnv } from './harness.js';

// The HTTP clients the corpus runs, each through its podtoken adapter. See the driver
// contract at the top of harness.ts.

const MAX_TRIES = 3; // 'client' retry: the first try and two more

/** Node agents for one trust setting: what axios' http adapter and node-fetch use. */
function nodeAgents(env: HarnessEnv, trust: boolean): { http: HttpAgent; https: HttpsAgent } {
  return {
    http: new HttpAgent({ lookup: env.lookup }),
    https: new HttpsAgent({ lookup: env.lookup, ...(trust ? { ca: env.ca } : {}) }),
  };
}

/**
 * The undici `Agent` class that Node's own global fetch uses, whatever its version: the
 * global dispatcher is one (set on the first fetch). A dispatcher of that class trusts the
 * test CA for global fetch without another copy of undici.
 */
type Dispatcher = { close(): Promise<void> };
let UndiciAgent: (new (options: object) => Dispatcher) | undefined;
async function undiciAgent(env: HarnessEnv, trust: boolean): Promise<Dispatcher> {
  if (UndiciAgent === undefined) {
    await fetch('data:,').catch(() => {});
    const key = Symbol.for('undici.globalDispatcher.1');
    let global = (globalThis as Record<symbol, unknown>)[key] as { constructor: new (options: object) => Dispatcher } | undefined;
    if (global === undefined) {
      // data: URLs never reach a dispatcher: ask one a real (refused) connection.
      await fetch('http://127.0.0.1:1/').catch(() => {});
      global = (globalThis as Record<symbol, unknown>)[key] as typeof global;
    }
    if (global === undefined) throw new Error("cannot find the global fetch's undici Agent");
    UndiciAgent = global.constructor;
  }
  return new UndiciAgent({ connect: { lookup: env.lookup, ...(trust ? { ca: env.ca } : {}) } });
}

/** Closes what a driver opened for one call. */
type Cleanup = () => unknown;

function axiosDriver(adapter: 'http' | 'fetch'): ClientDriver {
  return {
    name: adapter === 'http' ? 'axios http' : 'axios fetch',
    version: axios.VERSION,
    async call(call, env) {
      const cleanups: Cleanup[] = [];
      try {
        let instance: AxiosInstance;
        if (adapter === 'http') {
          const agents = nodeAgents(env, call.trustTestCa);
          cleanups.push(() => agents.http.destroy(), () => agents.https.destroy());
          instance = axios.create({ adapter, httpAgent: agents.http, httpsAgent: agents.https });
        } else {
          const dispatcher = await undiciAgent(env, call.trustTestCa);
          cleanups.push(() => dispatcher.close());
          instance = axios.create({ adapter, fetchOptions: { dispatcher } as RequestInit });
        }
        const api = axiosWithTokenSource(instance, call.source, call.options);
        if (call.retry === 'client') axiosRetry(api, { retries: MAX_TRIES - 1 });
        try {
          const response = await api.request({
            url: call.url,
            method: call.method,
            ...(call.body === undefined ? {} : { data: call.body, headers: { 'content-type': 'text/plain' } }),
            ...(call.timeoutMs === undefined ? {} : { timeout: call.timeoutMs }),
            ...(call.signal === undefined ? {} : { signal: call.signal }),
          });
          return { status: response.status, error: undefined };
        } catch (error) {
          return { status: (error as { response?: { status?: number } }).response?.status, error };
        }
      } finally {
        for (const cleanup of cleanups) await cleanup();
      }
    },
  };
}

const gotDriver: ClientDriver = {
  name: 'got',
  version: gotVersion(),
  async call(call, env) {
    const client = gotWithTokenSource(got, call.source, call.options);
    // 'client': got's own retry as it comes (limit 2, GET, 5xx and network errors), its
    // backoff (1 s, 2 s) cut to 1 ms: the same decisions, sooner. 'none': no retry at all.
    const retry = call.retry === 'client' ? { limit: MAX_TRIES - 1, backoffLimit: 1, noise: 0 } : { limit: 0 };
    try {
      const response = await client(call.url, {
        method: call.method,
        retry,
        dnsLookup: env.lookup,
        ...(call.trustTestCa ? { https: { certificateAuthority: env.ca } } : {}),
        ...(call.body === undefined ? {} : { body: call.body, headers: { 'content-type': 'text/plain' } }),
        ...(call.timeoutMs === undefined ? {} : { timeout: { request: call.timeoutMs } }),
        ...(call.signal === undefined ? {} : { signal: call.signal }),
      });
      return { status: response.statusCode, error: undefined };
    } catch (error) {
      return { status: (error as { response?: { statusCode?: number } }).response?.statusCode, error };
    }
  },
};

/** The least of a fetch function the corpus calls. */
type AnyFetch = (
  input: string,
  init?: Record<string, unknown>,
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string>; arrayBuffer(): Promise<unknown> }>;

function fetchDriver(name: string, version: string, raw: AnyFetch, transport: 'dispatcher' | 'agent'): ClientDriver {
  return {
    name,
    version,
    async call(call, env): Promise<DriverResult> {
      const cleanups: Cleanup[] = [];
      try {
        const init: Record<string, unknown> = { method: call.method };
        if (transport === 'dispatcher') {
          const dispatcher = await undiciAgent(env, call.trustTestCa);
          cleanups.push(() => dispatcher.close());
          init['dispatcher'] = dispatcher;
        } else {
          const agents = nodeAgents(env, call.trustTestCa);
          cleanups.push(() => agents.http.destroy(), () => agents.https.destroy());
          init['agent'] = (url: URL) => (url.protocol === 'https:' ? agents.https : agents.http);
        }
        if (call.body !== undefined) Object.assign(init, { body: call.body, headers: { 'content-type': 'text/plain' } });
        const signals = [call.signal, call.timeoutMs === undefined ? undefined : AbortSignal.timeout(call.timeoutMs)].filter((s) => s !== undefined);
        if (signals.length > 0) init['signal'] = AbortSignal.any(signals);
        const wrapped = fetchWithTokenSource(raw, call.source, call.options);
        // 'client': what a retry helper (fetch-retry, p-retry around fetch) does: call again, same input.
        let result: DriverResult = { status: undefined, error: undefined };
        for (let attempt = 1; attempt <= (call.retry === 'client' ? MAX_TRIES : 1); attempt++) {
          try {
            const response = await wrapped(call.url, init);
            await response.text();
            result = { status: response.status, error: undefined };
            if (response.status < 500) break;
          } catch (error) {
            result = { status: undefined, error };
          }
        }
        return result;
      } finally {
        for (const cleanup of cleanups) await cleanup();
      }
    },
  };
}

/**
 * undici (the npm package) with @podtoken/undici's interceptor on an Agent:
 * - `request`: undici's request API with its redirect interceptor (what users compose to
 *   follow redirects), the token interceptor inside it (it sees every hop);
 * - `fetch`: the npm package's fetch with the composed Agent as its dispatcher;
 * - `global fetch`: Node's own fetch, with the composed Agent installed by setGlobalDispatcher.
 * @podtoken/undici requires `origins` (a dispatcher carries every request of the process): a
 * case that leaves it unset runs with the start origin alone, what such a user would list.
 * 'client' retry: call again, as a retry helper does (undici's retry interceptor only retries
 * idempotent methods after network errors and 5xx, with its own backoff).
 */
function undiciDriver(kind: 'request' | 'fetch' | 'global fetch'): ClientDriver {
  const version = kind === 'global fetch' ? `${process.versions.undici ?? '?'} + npm ${npmUndiciVersion()}` : npmUndiciVersion();
  return {
    name: `undici ${kind}`,
    version,
    async call(call, env): Promise<DriverResult> {
      const origins = call.options.origins ?? [new URL(call.url).origin];
      const agent = new NpmUndiciAgent({ connect: { lookup: env.lookup, ...(call.trustTestCa ? { ca: env.ca } : {}) } });
      const token = tokenInterceptor(call.source, { ...call.options, origins });
      const dispatcher = kind === 'request' ? agent.compose(token, interceptors.redirect({ maxRedirections: 20 })) : agent.compose(token);
      const signals = [call.signal, call.timeoutMs === undefined ? undefined : AbortSignal.timeout(call.timeoutMs)].filter((s) => s !== undefined);
      const signal = signals.length > 0 ? AbortSignal.any(signals) : undefined;
      const once = async (): Promise<number> => {
        if (kind === 'request') {
          const response = await undiciRequest(call.url, {
            dispatcher,
            method: call.method,
            ...(call.body === undefined ? {} : { body: call.body, headers: { 'content-type': 'text/plain' } }),
            ...(signal === undefined ? {} : { signal }),
          });
          await response.body.text();
          return response.statusCode;
        }
        const init: Record<string, unknown> = { method: call.method };
        if (call.body !== undefined) Object.assign(init, { body: call.body, headers: { 'content-type': 'text/plain' } });
        if (signal !== undefined) init['signal'] = signal;
        if (kind === 'fetch') {
          const response = await (npmUndiciFetch as unknown as AnyFetch)(call.url, { ...init, dispatcher });
          await response.text();
          return response.status;
        }
        const previous = getGlobalDispatcher();
        setGlobalDispatcher(dispatcher);
        try {
          const response = await (globalThis.fetch as unknown as AnyFetch)(call.url, init);
          await response.text();
          return response.status;
        } finally {
          setGlobalDispatcher(previous);
        }
      };
      try {
        let result: DriverResult = { status: undefined, error: undefined };
        for (let attempt = 1; attempt <= (call.retry === 'client' ? MAX_TRIES : 1); attempt++) {
          try {
            result = { status: await once(), error: undefined };
            if (result.status! < 500) break;
          } catch (error) {
            result = { status: undefined, error };
          }
        }
        return result;
      } finally {
        await agent.close();
      }
    },
  };
}

function npmUndiciVersion(): string {
  // undici's package.json is not in its exports map; its User-Agent-free API has no version either.
  return '7';
}

function gotVersion(): string {
  // got exposes no version; its package.json is not in its exports map.
  return '14';
}

/** Every client the corpus runs. */
export const DRIVERS: readonly ClientDriver[] = [
  axiosDriver('http'),
  axiosDriver('fetch'),
  gotDriver,
  fetchDriver('fetch (undici)', process.versions.undici ?? '?', globalThis.fetch as unknown as AnyFetch, 'dispatcher'),
  fetchDriver('node-fetch 3', '3', nodeFetch3 as unknown as AnyFetch, 'agent'),
  fetchDriver('node-fetch 2', '2', nodeFetch2 as unknown as AnyFetch, 'agent'),
  undiciDriver('request'),
  undiciDriver('fetch'),
  undiciDriver('global fetch'),
];

export type { DriverCall };
