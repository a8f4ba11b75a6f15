/** The API server audience the simulated pod's token is for. */
export const AUDIENCE = 'https://kubernetes.default.svc';

/** The response fields the tests read; every client's Response has them. */
export interface AnyResponse {
  readonly status: number;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: { get(name: string): string | null };
  json(): Promise<any>;
  text(): Promise<string>;
  arrayBuffer(): Promise<unknown>;
}

/** One calling convention for the three clients under test. */
export type AnyFetch = (input: string, init?: Record<string, unknown>) => Promise<AnyResponse>;

export interface Client {
  readonly name: string;
  readonly fetch: AnyFetch;
  /** A one-shot body this client accepts, plus the init fields it needs for it. */
  stream(text: string): Record<string, unknown>;
}
