import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import type { Issuer } from '@podtoken/testing';

/** `/grpc.health.v1.Health/Check` with raw protobuf bytes in and out. */
export const HEALTH_CHECK: MethodDefinition<Buffer, Buffer>;

/** A CA and a serving certificate for `localhost` and `127.0.0.1` signed by it, as PEM. Made at run time. */
export function createTls(): { ca: string; cert: string; key: string };

/** One call as the server saw it: never a token, only its id. */
export interface SeenCall {
  readonly method: string;
  readonly outcome: 'ok' | 'unauthorized' | 'missing';
  readonly reason: string | undefined;
  readonly tokenId: string | undefined;
}

/** A running verifying gRPC server; see {@link startVerifyingServer}. */
export interface VerifyingServer {
  /** `localhost:<port>` */
  readonly address: string;
  readonly log: readonly SeenCall[];
  readonly counts: { ok: number; unauthorized: number; missing: number };
  /** Runs `hook` (awaited) before the next refusal is answered. */
  beforeNextRefusal(hook: () => unknown): void;
  /** Refuses `token` from now on, as the API server does once its pod is deleted. */
  revoke(token: string): void;
  reset(): void;
  close(): Promise<void>;
}

/**
 * A gRPC server over TLS that verifies each call's bearer token with the issuer's JWKS (`iss`,
 * `aud`, `exp` with no tolerance) and revocations, serving `service` through `implementation`
 * (each handler gets the request and the verified `sub`) and `grpc.health.v1.Health/Check`.
 */
export function startVerifyingServer(options: {
  issuer: Pick<Issuer, 'issuer' | 'jwks'>;
  audience: string;
  service: ServiceDefinition;
  implementation: Record<string, (request: any, caller: string | undefined) => unknown>;
  tls: { cert: string; key: string };
}): Promise<VerifyingServer>;
