import { createHash } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { TestServerCert } from './pki.js';

/** Where a redirect sends the client next. */
export type HopKind = 'port' | 'host' | 'subdomain' | 'scheme' | 'back-to-origin';
export const HOP_KINDS: readonly HopKind[] = ['port', 'host', 'subdomain', 'scheme', 'back-to-origin'];

/**
 * DNS names the lab serves through its CONNECT proxy (no resolver knows them): the API server
 * as a name, and a subdomain of it (node-fetch 2 keeps `Authorization` on a redirect to a
 * subdomain). The lab's certificate must hold both.
 */
export const LAB_NAMES = { api: 'api.lab.test', subdomain: 'evil.api.lab.test' } as const;
export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const;

/** One request as a lab server saw it. Says whether it carried the token, never the token. */
export interface Hop {
  /** `A` the API server (the kubeconfig's server), `B` another port of the same host, `H` another host name (localhost), `D` a subdomain of the API server's name, `S` plain http. */
  readonly at: 'A' | 'B' | 'H' | 'D' | 'S';
  readonly hop: number;
  /** `token`: the bearer under test; `other`: some other Authorization; `none`. */
  readonly authorization: 'token' | 'other' | 'none';
}

/** What a case's first request gets from A. */
export interface Plan {
  readonly status: number;
  readonly kind: HopKind;
}

/**
 * Three servers on 127.0.0.1 (ephemeral ports) for redirect cases: A (https, the API server),
 * B (https, another port; also reached as `https://localhost:<port>`, another host, and as
 * `https://evil.api.lab.test:<port>`, a subdomain of A's name, through the lab's proxy) and S
 * (plain http). A case is a namespace name: `/api/v1/namespaces/<case>/…` on A answers the
 * case's redirect status towards the case's kind of target; the target answers like the API
 * server would (a PodList, a watch stream of one event, a log line). `back-to-origin` goes
 * A → B → A. Namespace `unauthorized` gets a 401. A also answers WebSocket upgrades (Exec,
 * Attach…): namespace `refuse` gets a 403, any other a 101.
 */
export interface RedirectLab {
  /** A's URL: the kubeconfig's server. */
  readonly origin: string;
  /** A's URL by name (`https://api.lab.test:<port>`): reach it through {@link proxy}. */
  readonly namedOrigin: string;
  /** An HTTP CONNECT proxy (cluster `proxyUrl`) that resolves the {@link LAB_NAMES} to 127.0.0.1. */
  readonly proxy: string;
  /** Every lab origin (A, B, localhost:B, S, and both names). */
  readonly origins: readonly string[];
  plan(name: string, plan: Plan): void;
  hops(name: string): readonly Hop[];
  close(): Promise<void>;
}

export async function startRedirectLab(tls: TestServerCert, bearer: string): Promise<RedirectLab> {
  const plans = new Map<string, Plan>();
  const seen = new Map<string, Hop[]>();
  const sockets = new Set<Socket>();
  let portA = 0;
  let portB = 0;
  let portS = 0;

  const record = (name: string, hop: Hop) => {
    let list = seen.get(name);
    if (list === undefined) seen.set(name, (list = []));
    list.push(hop);
  };
  const authorizationOf = (request: IncomingMessage): Hop['authorization'] => {
    const value = request.headers.authorization;
    if (value === undefined) return 'none';
    return value === bearer ? 'token' : 'other';
  };

  function handler(server: 'A' | 'B' | 'S') {
    return (request: IncomingMessage, response: ServerResponse) => {
      const url = new URL(request.url ?? '/', 'http://lab');
      const match = /^\/api\/v1\/namespaces\/([^/]+)\/pods(\/[^/]+\/log)?$/.exec(url.pathname);
      const name = match?.[1] ?? '';
      const plan = plans.get(name);
      const hop = Number(url.searchParams.get('hop') ?? '1');
      const host = request.headers.host ?? '';
      const at = server === 'B' && host.startsWith('localhost') ? 'H' : server === 'B' && host.startsWith(LAB_NAMES.subdomain) ? 'D' : server;
      record(name, { at, hop, authorization: authorizationOf(request) });
      if (name === 'unauthorized') {
        const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Unauthorized', code: 401 });
        response.writeHead(401, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
        return;
      }
      if (plan === undefined) {
        response.writeHead(404).end();
        return;
      }
      const next = (base: string, nextHop: number) => {
        const target = new URL(`${url.pathname}${url.search}`, base);
        target.searchParams.set('hop', String(nextHop));
        response.writeHead(plan.status, { location: target.toString(), 'content-length': '0' }).end();
      };
      if (server === 'A' && hop === 1) {
        const base = {
          port: `https://127.0.0.1:${portB}`,
          host: `https://localhost:${portB}`,
          subdomain: `https://${LAB_NAMES.subdomain}:${portB}`,
          scheme: `http://127.0.0.1:${portS}`,
          'back-to-origin': `https://127.0.0.1:${portB}`,
        }[plan.kind];
        next(base, 2);
        return;
      }
      if (server === 'B' && plan.kind === 'back-to-origin' && hop === 2) {
        next(`https://127.0.0.1:${portA}`, 3);
        return;
      }
      // The last hop answers as the API server would.
      if (match?.[2] !== undefined) {
        response.writeHead(200, { 'content-type': 'text/plain' }).end('a log line\n');
      } else if (url.searchParams.get('watch') === 'true') {
        const event = { type: 'ADDED', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: name, resourceVersion: '2' } } };
        response.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(event)}\n`);
      } else {
        const list = JSON.stringify({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: '1' }, items: [] });
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(list) }).end(list);
      }
    };
  }

  const a = createHttpsServer({ cert: tls.cert, key: tls.key }, handler('A'));
  const b = createHttpsServer({ cert: tls.cert, key: tls.key }, handler('B'));
  const s = createHttpServer(handler('S'));
  a.on('upgrade', (request: IncomingMessage, socket: Socket) => {
    const url = new URL(request.url ?? '/', 'http://lab');
    const name = /^\/api\/v1\/namespaces\/([^/]+)\//.exec(url.pathname)?.[1] ?? '';
    record(name, { at: 'A', hop: 1, authorization: authorizationOf(request) });
    if (name === 'refuse') {
      const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403 });
      socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    const accept = createHash('sha1').update(`${String(request.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    const protocol = String(request.headers['sec-websocket-protocol'] ?? '').split(',')[0]?.trim() ?? '';
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nsec-websocket-protocol: ${protocol}\r\n\r\n`);
  });
  for (const server of [a, b, s]) {
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
  }
  // The CONNECT proxy: the only resolver of the lab's names.
  const proxy = createHttpServer((_request, response) => response.writeHead(405).end());
  proxy.on('connect', (request: IncomingMessage, client: Socket, head: Buffer) => {
    const [name = '', port = ''] = (request.url ?? '').split(':');
    const known = name === '127.0.0.1' || name === 'localhost' || name === LAB_NAMES.api || name === LAB_NAMES.subdomain;
    if (!known) {
      client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
      return;
    }
    const upstream = connect(Number(port), '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
  });
  proxy.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const listen = (server: Server) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  portA = await listen(a);
  portB = await listen(b);
  portS = await listen(s);
  const portProxy = await listen(proxy);

  return {
    origin: `https://127.0.0.1:${portA}`,
    namedOrigin: `https://${LAB_NAMES.api}:${portA}`,
    proxy: `http://127.0.0.1:${portProxy}`,
    origins: [
      `https://127.0.0.1:${portA}`,
      `https://127.0.0.1:${portB}`,
      `https://localhost:${portB}`,
      `http://127.0.0.1:${portS}`,
      `https://${LAB_NAMES.api}:${portA}`,
      `https://${LAB_NAMES.subdomain}:${portB}`,
    ],
    plan: (name, plan) => void plans.set(name, plan),
    hops: (name) => seen.get(name) ?? [],
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await Promise.all([a, b, s, proxy].map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    },
  };
}
