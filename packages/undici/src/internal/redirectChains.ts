/**
 * One redirect chain as the interceptor knows it: the origin it started at, and whether a
 * hop has left that origin (then the token is off for the rest of the chain, as core's
 * `createRedirectGuard` says, even when the chain comes back).
 */
export interface Chain {
  readonly start: string;
  left: boolean;
}

/** How long a redirect answer waits for its hop: fetch follows at once; this only bounds memory. */
const PENDING_MS = 30_000;
const MAX_PENDING = 1_000;

interface Pending {
  readonly chain: Chain;
  readonly until: number;
}

/**
 * The hops of redirect chains that undici's fetch (the npm package's, or Node's own) follows:
 * fetch dispatches each hop as a new request with a new handler, so the dispatcher cannot
 * tell a hop from a new call. When a response the interceptor watched is a redirect, its
 * resolved `Location` is kept here with the chain; a dispatch for exactly that URL soon after
 * is taken as the hop, and the chain's rule applies to it. A hop that somehow escapes the
 * match is still bound by `origins`; an unrelated request for the same URL at the same moment
 * is taken as a hop and, at worst, sent without the token (it fails closed).
 */
export class PendingRedirects {
  readonly #pending = new Map<string, Pending>();

  /** Records a redirect answer: `location` resolved against the URL that answered it. */
  add(location: string, base: string, chain: Chain): void {
    let key: string;
    try {
      const url = new URL(location, base);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return;
      key = url.origin + url.pathname + url.search;
    } catch {
      return; // an invalid Location is never followed
    }
    const existing = this.#pending.get(key);
    // Two chains waiting for the same URL: the stricter one wins (fail closed).
    const merged: Chain = existing === undefined ? chain : { start: chain.start, left: chain.left || existing.chain.left || existing.chain.start !== chain.start };
    this.#pending.delete(key);
    this.#pending.set(key, { chain: merged, until: Date.now() + PENDING_MS });
    if (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value!);
  }

  /** The chain waiting for a dispatch to `origin` + `path`, removed from the waiting list; undefined for a new call. */
  take(origin: string, path: string): Chain | undefined {
    if (this.#pending.size === 0) return undefined;
    const key = origin + pathOnly(path);
    const pending = this.#pending.get(key);
    if (pending === undefined) return undefined;
    this.#pending.delete(key);
    return pending.until >= Date.now() ? pending.chain : undefined;
  }
}

/**
 * A dispatch path as `URL` spells pathname + search: without a fragment (fetch never sends
 * one; a Location may hold one), and without the lone trailing `?` fetch keeps from `x?`.
 */
function pathOnly(path: string): string {
  const hash = path.indexOf('#');
  const bare = hash === -1 ? path : path.slice(0, hash);
  return bare.endsWith('?') && bare.indexOf('?') === bare.length - 1 ? bare.slice(0, -1) : bare;
}
