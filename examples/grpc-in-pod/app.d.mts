import type { ServiceDefinition } from '@grpc/grpc-js';

/** A gRPC call's end as the caller saw it: `'OK'` or the status code's name (`'UNAUTHENTICATED'`…). */
export type CallStatus = string;

/** What {@link main} measured. Holds no token text. */
export interface Summary {
  /** Unary calls made during the rotation phase. */
  calls: number;
  /** How many ended OK with the expected reply. */
  ok: number;
  /** Status names of the failed ones. */
  failures: string[];
  /** The server's own counts for the rotation phase (`unauthorized`: refused with UNAUTHENTICATED). */
  server: { ok: number; unauthorized: number; missing: number };
  /** Rotations by the kubelet during the rotation phase. */
  rotations: number;
  /** Distinct tokens the server saw (by id). */
  distinctTokens: number;
  /** A call whose token the server revoked as the kubelet wrote a new one: how it ended, the refusals the server answered for it, and the adapter's retries. */
  revoked: { status: CallStatus; refused: number; retries: number };
  /** A call whose token was revoked with no new one on disk: how it ended, the refusals and retries. */
  stale: { status: CallStatus; refused: number; retries: number };
  /** The next call once the kubelet wrote a new token after `stale`. */
  recovered: CallStatus;
  /** `'refused'` when `withTokenSource(credentials.createInsecure(), source)` throws. */
  insecure: string;
  /** How many of the tokens the kubelet wrote appear in the printed lines (0). */
  printedTokens: number;
}

/** The example's service without codegen: `/shop.Orders/Get` with JSON messages. */
export const ORDERS_SERVICE: ServiceDefinition;

/** Runs the demo in a temp folder and returns what it measured. */
export function main(options?: { calls?: number; concurrency?: number; minRotations?: number; log?: (line: string) => void }): Promise<Summary>;

/**
 * In a real pod: calls `method` (default `/grpc.health.v1.Health/Check`, with an empty
 * protobuf message) on `target` (`host:port`) over TLS, with `ca` (a PEM file; default the
 * system roots) and the projected token at `token` (default: the ServiceAccount token),
 * `rounds` times, `interval` ms apart; `serverName` overrides the name checked in the
 * server's certificate. Prints each status. Resolves with the exit code: 0 when every call
 * ended OK.
 */
export function inCluster(options: {
  target: string;
  ca?: string;
  serverName?: string;
  token?: string;
  audience?: string;
  method?: string;
  rounds?: number;
  interval?: number;
  log?: (line: string) => void;
}): Promise<number>;
