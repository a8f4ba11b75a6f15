/**
 * The adversarial corpus' harness: servers that record where the token went, the contract
 * a client must meet to be run through the corpus, and the runner that judges each run.
 *
 * ## Adding a client: the {@link ClientDriver} interface
 *
 * A driver wraps one HTTP client with its podtoken adapter and makes one call per
 * {@link DriverCall}:
 *
 * ```ts
 * const driver: ClientDriver = {
 *   name: 'client-node 1.x',           // the table's column header
 *   version: '1.4.0',                   // printed above the table
 *   async call(call, env) {
 *     // Build a client that gets its token from call.source, with call.options
 *     // (origins, retryUnauthorized) passed to the adapter as they are.
 *     // Trust env.ca when call.trustTestCa (and nothing else), resolve host names through
 *     // env.lookup (it maps localhost and *.test to 127.0.0.1), and follow redirects as
 *     // the client does by default.
 *     // With call.retry === 'client', retry the way users of that client do (the
 *     // client's own retry, or the retry helper people add), at most twice, on 5xx and
 *     // network errors. Honour call.timeoutMs and call.signal.
 *     // Never throw: return what the call ended with.
 *     return { status: 200, error: undefined };
 *   },
 * };
 * ```
 *
 * - `status` is the final HTTP status the caller saw (from the response, or from the
 *   error's response), `undefined` when there was none.
 * - `error` is exactly what the call rejected with, untouched: the runner renders it in
 *   every way a log line could (see `renderings.ts`) and looks for the token.
 * - `close()`, if present, runs once after every case (free agents, dispatchers).
 *
 * Add the driver to `drivers.ts`' list (or pass your own list to {@link runCorpus}); every
 * case of `cases.ts` then runs against it and gets a column in the table.
 *
 * ## What the servers do
 *
 * One server answers HTTP and HTTPS on the same port (it looks at the first byte of each
 * connection), so a redirect can change the scheme alone. Server A listens on 127.0.0.1 and
 * on 127.0.0.2 with the same port (another host, same port), server B on another port of
 * 127.0.0.1. Paths say what to answer: `/<phase>/<run>/<command>…` (see {@link Route}).
 * Every request is recorded with its origin (scheme and Host header) and whether its
 * request line or any header held one of the corpus' tokens: the token itself is compared,
 * never printed.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type LookupFunction, type Server as NetServer, type Socket } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import type { AdapterOptions, TokenSource } from '@podtoken/core';

// ---------------------------------------------------------------------------------------
// The driver contract

/** What the harness gives every driver: trust and name resolution for its servers. */
export interface HarnessEnv {
  /** The test CA (PEM) that signed the servers' certificate. Trust it only when {@link DriverCall.trustTestCa}. */
  readonly ca: string;
  /** A `dns.lookup`-compatible function: `localhost`, `*.test` → 127.0.0.1; IP literals as they are. */
  readonly lookup: LookupFunction;
}

/** One call a driver makes. */
export interface DriverCall {
  /** The first URL. */
  readonly url: string;
  readonly method: 'GET' | 'POST';
  /** A string body (POST), sent with `content-type: text/plain`. */
  readonly body?: string | undefined;
  /** Where tokens come from; hand it to the adapter. */
  readonly source: TokenSource;
  /** The adapter's options, as they are (`origins` may be unset). */
  readonly options: AdapterOptions;
  /** `'client'`: retry as users of this client do (its own retry, or the helper people add), twice at most. */
  readonly retry: 'none' | 'client';
  /** Give up after this many ms (the client's timeout option, or an AbortSignal). */
  readonly timeoutMs?: number | undefined;
  /** Abort with this signal. */
  readonly signal?: AbortSignal | undefined;
  /** Whether to trust {@link HarnessEnv.ca}; false makes TLS fail after the token was set. */
  readonly trustTestCa: boolean;
}

/** What a call ended with. */
export interface DriverResult {
  /** The final status the caller saw, from the response or the error's response. */
  readonly status: number | undefined;
  /** What the call rejected with, untouched; undefined when it resolved. */
  readonly error: unknown;
}

/** One HTTP client with its podtoken adapter: see the top of this file. */
export interface ClientDriver {
  /** Column header, e.g. `got`. */
  readonly name: string;
  /** The client's version, printed above the table. */
  readonly version: string;
  call(call: DriverCall, env: HarnessEnv): Promise<DriverResult>;
  close?(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Servers and routes

/** Where a request sits in a redirect chain, as the case built its URL. */
export type Phase =
  /** The start origin, before any hop left it: the token belongs here (and must be there). */
  | 'start'
  /** Reached after the chain left the start origin: the token must not be here. */
  | 'after'
  /** Reached through same-origin hops only: the token must still be here. */
  | 'same';

/** One request as a server saw it. Holds no token text. */
export interface SeenRequest {
  readonly run: string;
  readonly phase: Phase | 'unknown';
  /** scheme://Host header */
  readonly origin: string;
  readonly method: string;
  readonly path: string;
  /** Whether the request line or any header held one of the corpus' tokens. */
  readonly carried: boolean;
}

/** The running servers and what they saw. */
export interface Servers {
  /** http://127.0.0.1:P — the usual start origin (A). */
  readonly a: string;
  /** https://127.0.0.1:P — A's port, the other scheme. */
  readonly aTls: string;
  /** http://127.0.0.1:Q — another port (B). */
  readonly b: string;
  /** http://127.0.0.2:P — another host, A's port. */
  readonly host2: string;
  /** http://localhost:P — another host name for A's address and port. */
  readonly localhost: string;
  /** http://api.test:P and http://sub.api.test:P — a host and its subdomain (through env.lookup). */
  readonly api: string;
  readonly sub: string;
  /** A port on 127.0.0.1 where nothing listens. */
  readonly closedPort: number;
  /** A's port. */
  readonly port: number;
  /** Every request since start, oldest first. */
  readonly log: readonly SeenRequest[];
  /** A short name for an origin in the table (`A`, `A/s`, `B`, `H2`, `LH`, `API`, `SUB`). */
  label(origin: string): string;
  close(): Promise<void>;
}

/**
 * URL paths the servers understand, for one run. A path is `/<phase>/<run>/` and then
 * commands, read left to right:
 * - `ok` → 200; `s/<n>` → status n; `hang` → never answers;
 * - `once/<n>/…` → status n the first time this exact URL is asked for, then the rest;
 * - `r/<status>/<base64url Location>` → a redirect with that Location, byte for byte;
 * - `loop/<status>` → a redirect to this same URL, forever.
 */
export interface Route {
  readonly run: string;
  /** `${origin}/<phase>/<run>/<commands…>` */
  url(origin: string, phase: Phase, ...commands: string[]): string;
  redirect(status: number, location: string): string;
  once(status: number): string;
}

export function route(run: string): Route {
  return {
    run,
    url: (origin, phase, ...commands) => `${origin}/${phase}/${run}/${commands.join('/')}`,
    redirect: (status, location) => `r/${status}/${Buffer.from(location).toString('base64url')}`,
    once: (status) => `once/${status}`,
  };
}

const FIXTURES = new URL('../fixtures/', import.meta.url);

/** The harness' environment: the test CA and the lookup. */
export function harnessEnv(): HarnessEnv {
  return { ca: readFileSync(new URL('test-ca.pem', FIXTURES), 'utf8'), lookup: loopbackLookup };
}

const LOOPBACK_NAMES = /^(localhost|(?:[a-z0-9-]+\.)*test)\.?$/i;

/** `localhost` and `*.test` → 127.0.0.1; anything else through the system resolver. */
export const loopbackLookup = ((hostname: string, options: unknown, callback?: unknown) => {
  const cb = (typeof options === 'function' ? options : callback) as (error: Error | null, address: unknown, family?: number) => void;
  const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean };
  if (LOOPBACK_NAMES.test(hostname)) {
    if (opts.all === true) cb(null, [{ address: '127.0.0.1', family: 4 }]);
    else cb(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, opts as never, cb as never);
}) as LookupFunction;

/** Starts A (127.0.0.1:P and 127.0.0.2:P, HTTP and HTTPS) and B (127.0.0.1:Q). `secrets` are the tokens to look for. */
export async function startServers(secrets: readonly string[]): Promise<Servers> {
  const log: SeenRequest[] = [];
  const onceSeen = new Set<string>();
  const hanging = new Set<ServerResponse>();
  const key = readFileSync(new URL('server-key.pem', FIXTURES));
  const cert = readFileSync(new URL('server-cert.pem', FIXTURES));

  const handler = (tls: boolean) => (request: IncomingMessage, response: ServerResponse) => {
    const path = request.url ?? '/';
    const [, phase = 'unknown', run = '', ...commands] = path.split('?')[0]!.split('/');
    const head = `${request.method} ${path}\n${request.rawHeaders.join('\n')}`;
    log.push({
      run,
      phase: phase === 'start' || phase === 'after' || phase === 'same' ? phase : 'unknown',
      origin: `${tls ? 'https' : 'http'}://${request.headers.host ?? ''}`,
      method: request.method ?? '',
      path,
      carried: secrets.some((secret) => head.includes(secret)),
    });
    request.resume();
    request.on('end', () => answer(response, path, commands));
  };

  function answer(response: ServerResponse, path: string, commands: string[]): void {
    for (let i = 0; i < commands.length; i++) {
      const command = commands[i];
      if (command === 'once') {
        const status = Number(commands[++i]);
        const seenKey = `${path}`;
        if (!onceSeen.has(seenKey)) {
          onceSeen.add(seenKey);
          response.writeHead(status, { 'content-type': 'text/plain' }).end(`once ${status}`);
          return;
        }
        continue;
      }
      if (command === 'r') {
        const status = Number(commands[++i]);
        const location = Buffer.from(commands[++i] ?? '', 'base64url').toString();
        response.setHeader('location', location);
        response.writeHead(status).end();
        return;
      }
      if (command === 'loop') {
        response.writeHead(Number(commands[++i]), { location: path }).end();
        return;
      }
      if (command === 's') {
        response.writeHead(Number(commands[++i]), { 'content-type': 'text/plain' }).end('status');
        return;
      }
      if (command === 'hang') {
        hanging.add(response);
        response.on('close', () => hanging.delete(response));
        return;
      }
      if (command === 'ok') break;
    }
    response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  }

  const listeners: NetServer[] = [];
  const sockets = new Set<Socket>();
  const webServers: HttpServer[] = [];

  async function dualServer(host: string, port: number): Promise<number> {
    const http = createHttpServer(handler(false));
    const https = createHttpsServer({ key, cert }, handler(true));
    webServers.push(http, https);
    const server = createNetServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.once('readable', () => {
        const first = socket.read(1) as Buffer | null;
        if (first === null) return void socket.destroy();
        socket.unshift(first);
        // 0x16: a TLS handshake record. Anything else is plain HTTP.
        (first[0] === 0x16 ? https : http).emit('connection', socket);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    listeners.push(server);
    return (server.address() as { port: number }).port;
  }

  // A on 127.0.0.1 with a free port, then the same port on 127.0.0.2; retried when that port is taken there.
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await dualServer('127.0.0.1', 0);
    try {
      await dualServer('127.0.0.2', port);
      break;
    } catch (error) {
      await closeNet(listeners.pop()!);
      if (attempt >= 5) throw error;
    }
  }
  const portB = await dualServer('127.0.0.1', 0);
  const closed = createNetServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', () => resolve()));
  const closedPort = (closed.address() as { port: number }).port;
  await closeNet(closed);

  const servers: Servers = {
    a: `http://127.0.0.1:${port}`,
    aTls: `https://127.0.0.1:${port}`,
    b: `http://127.0.0.1:${portB}`,
    host2: `http://127.0.0.2:${port}`,
    localhost: `http://localhost:${port}`,
    api: `http://api.test:${port}`,
    sub: `http://sub.api.test:${port}`,
    closedPort,
    port,
    log,
    label(origin) {
      const labels: Record<string, string> = {
        [servers.a]: 'A',
        [servers.aTls]: 'A/s',
        [servers.b]: 'B',
        [`https://127.0.0.1:${portB}`]: 'B/s',
        [servers.host2]: 'H2',
        [`https://127.0.0.2:${port}`]: 'H2/s',
        [servers.localhost]: 'LH',
        [servers.api]: 'API',
        [servers.sub]: 'SUB',
      };
      return labels[origin] ?? '?';
    },
    async close() {
      for (const response of hanging) response.destroy();
      for (const socket of sockets) socket.destroy();
      await Promise.all(listeners.map(closeNet));
      for (const server of webServers) server.close();
    },
  };
  return servers;
}

function closeNet(server: NetServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
