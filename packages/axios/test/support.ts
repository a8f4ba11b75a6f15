import type { LookupAddress } from 'axios';

/** The API server audience the simulated pod's token is for. */
export const AUDIENCE = 'https://kubernetes.default.svc';

/**
 * An axios `lookup` that maps every host name to 127.0.0.1, so tests can use `api.test`
 * and `sub.api.test` without DNS (axios adapts an async lookup to Node's `all` option).
 */
export async function loopbackLookup(): Promise<LookupAddress> {
  return { address: '127.0.0.1', family: 4 };
}
