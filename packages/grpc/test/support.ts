import {
  Metadata,
  Server,
  ServerCredentials,
  makeGenericClientConstructor,
  status,
  type Client,
  type ServiceDefinition,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServerDuplexStream,
  type sendUnaryData,
  type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { Issuer } from '@podtoken/testing';
import { tokenId } from '@podtoken/testing';
import { createCa, issueServerCert, type TestCa } from '../../kubernetes/test/support/pki.js';

// A gRPC service without codegen: JSON messages through hand-written serializers, and a
// server on 127.0.0.1 that verifies bearer tokens as the token kit's HTTP server does (the
// issuer's JWKS, iss, aud, exp with no tolerance, revocations). Nothing here prints a token.

const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as unknown,
};
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/podtoken.test.Echo/${name}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

/** Echo (unary), Watch (server streaming: `count` messages), Chat (bidirectional: echoes each message). */
export const ECHO_SERVICE = {
  echo: method('Echo', false, false),
  watch: method('Watch', false, true),
  chat: method('Chat', true, true),
} satisfies ServiceDefinition;

export interface EchoRequest {
  text?: string;
  /** Watch: how many messages to send. */
  count?: number;
  /** Answer after this many ms. */
  delayMs?: number;
}
export interface EchoReply {
  text?: string;
  sub?: string;
  seq?: number;
}

type UnaryCallback = (error: ServiceError | null, reply?: EchoReply) => void;
/** The generic client for {@link ECHO_SERVICE}, typed loosely for the tests. */
export type EchoClient = Client & {
  echo(request: EchoRequest, metadata: Metadata, options: Record<string, unknown>, callback: UnaryCallback): import('@grpc/grpc-js').ClientUnaryCall;
  echo(request: EchoRequest, callback: UnaryCallback): import('@grpc/grpc-js').ClientUnaryCall;
  echo(request: EchoRequest, options: Record<string, unknown>, callback: UnaryCallback): import('@grpc/grpc-js').ClientUnaryCall;
  watch(request: EchoRequest, options?: Record<string, unknown>): import('@grpc/grpc-js').ClientReadableStream<EchoReply>;
  chat(options?: Record<string, unknown>): import('@grpc/grpc-js').ClientDuplexStream<EchoRequest, EchoReply>;
};
export const EchoClient = makeGenericClientConstructor(ECHO_SERVICE, 'Echo') as unknown as new (
  address: string,
  credentials: import('@grpc/grpc-js').ChannelCredentials,
  options?: import('@grpc/grpc-js').ClientOptions,
) => EchoClient;

/** A unary echo as a promise: resolves with the reply, rejects with grpc-js' ServiceError. */
export function echo(client: EchoClient, request: EchoRequest = {}, options: Record<string, unknown> = {}): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    client.echo(request, new Metadata(), options, (error, reply) => (error ? reject(error) : resolve(reply!)));
  });
}

/** One call as the server saw it: never token text, only tokenId. */
export interface SeenCall {
  readonly method: string;
  readonly outcome: 'ok' | 'unauthorized' | 'missing';
  readonly reason: string | undefined;
  readonly tokenId: string | undefined;
}

export interface GrpcTokenServer {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  readonly log: readonly SeenCall[];
  readonly counts: { ok: number; unauthorized: number; missing: number };
  /** The CA that signed the server's certificate (TLS servers). */
  readonly ca: string | undefined;
  revoke(token: string): void;
  /**
   * A hostile server: its refusals quote the token it was sent in the status details and
   * trailers, to prove the client's side cleans them.
   */
  echoTokenInRefusals: boolean;
  reset(): void;
  close(): Promise<void>;
}

let pki: { ca: TestCa; cert: { cert: string; key: string } } | undefined;

/** Starts a gRPC server for {@link ECHO_SERVICE} on 127.0.0.1, with TLS unless `tls: false`. */
export async function startGrpcTokenServer(options: { issuer: Pick<Issuer, 'issuer' | 'jwks'>; audience: string; tls?: boolean }): Promise<GrpcTokenServer> {
  const keys = createLocalJWKSet(options.issuer.jwks);
  const revoked = new Set<string>();
  let log: SeenCall[] = [];
  const tls = options.tls ?? true;

  const state = { echoTokenInRefusals: false };

  async function judge(name: string, metadata: Metadata): Promise<{ ok: true; sub: string | undefined } | { ok: false; details: string; trailers: Metadata }> {
    const values = metadata.get('authorization');
    const header = typeof values[0] === 'string' ? values[0] : undefined;
    const refuse = (outcome: SeenCall['outcome'], reason: string, id: string | undefined, token?: string) => {
      log.push({ method: name, outcome, reason, tokenId: id });
      const trailers = new Metadata();
      trailers.set('www-authenticate', 'Bearer error="invalid_token"');
      if (state.echoTokenInRefusals && token !== undefined) trailers.set('x-token-was', token);
      return { ok: false as const, details: state.echoTokenInRefusals && token !== undefined ? `refused ${token}` : 'invalid token', trailers };
    };
    if (header === undefined) return refuse('missing', 'no authorization metadata', undefined);
    const token = /^Bearer +(\S+)$/i.exec(header)?.[1];
    if (token === undefined) return refuse('unauthorized', 'not a Bearer token', tokenId(header));
    const id = tokenId(token);
    if (revoked.has(id)) return refuse('unauthorized', 'revoked', id, token);
    try {
      const { payload } = await jwtVerify(token, keys, { issuer: options.issuer.issuer, audience: options.audience, clockTolerance: 0, requiredClaims: ['exp'] });
      if (revoked.has(id)) return refuse('unauthorized', 'revoked', id, token);
      log.push({ method: name, outcome: 'ok', reason: undefined, tokenId: id });
      return { ok: true, sub: payload.sub };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return refuse('unauthorized', typeof code === 'string' ? code : 'invalid token', id, token);
    }
  }

  const delay = (ms: number | undefined) => new Promise((resolve) => setTimeout(resolve, ms ?? 0));
  const implementation: UntypedServiceImplementation = {
    echo: (call: ServerUnaryCall<EchoRequest, EchoReply>, callback: sendUnaryData<EchoReply>) => {
      void judge('echo', call.metadata).then(async (verdict) => {
        if (!verdict.ok) return callback({ code: status.UNAUTHENTICATED, details: verdict.details, metadata: verdict.trailers });
        await delay(call.request.delayMs);
        callback(null, { text: call.request.text ?? '', ...(verdict.sub === undefined ? {} : { sub: verdict.sub }) });
      });
    },
    watch: (call: ServerWritableStream<EchoRequest, EchoReply>) => {
      void judge('watch', call.metadata).then(async (verdict) => {
        if (!verdict.ok) return call.emit('error', { code: status.UNAUTHENTICATED, details: verdict.details, metadata: verdict.trailers });
        for (let seq = 0; seq < (call.request.count ?? 1); seq++) {
          await delay(call.request.delayMs);
          call.write({ seq });
        }
        call.end();
      });
    },
    chat: (call: ServerDuplexStream<EchoRequest, EchoReply>) => {
      void judge('chat', call.metadata).then((verdict) => {
        if (!verdict.ok) return call.emit('error', { code: status.UNAUTHENTICATED, details: verdict.details, metadata: verdict.trailers });
        call.on('data', (request: EchoRequest) => call.write({ text: request.text ?? '' }));
        call.on('end', () => call.end());
      });
    },
  };

  const server = new Server();
  server.addService(ECHO_SERVICE, implementation);
  let credentials = ServerCredentials.createInsecure();
  if (tls) {
    pki ??= (() => {
      const ca = createCa('podtoken grpc test CA');
      return { ca, cert: issueServerCert(ca) };
    })();
    credentials = ServerCredentials.createSsl(null, [{ private_key: Buffer.from(pki.cert.key), cert_chain: Buffer.from(pki.cert.cert) }], false);
  }
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
  });

  return {
    address: `127.0.0.1:${port}`,
    ca: tls ? pki!.ca.certPem : undefined,
    get log() {
      return log.slice();
    },
    get counts() {
      const counts = { ok: 0, unauthorized: 0, missing: 0 };
      for (const entry of log) counts[entry.outcome] += 1;
      return counts;
    },
    revoke(token) {
      revoked.add(tokenId(token));
    },
    get echoTokenInRefusals() {
      return state.echoTokenInRefusals;
    },
    set echoTokenInRefusals(value) {
      state.echoTokenInRefusals = value;
    },
    reset() {
      log = [];
    },
    close() {
      return new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 1_000).unref();
      });
    },
  };
}
