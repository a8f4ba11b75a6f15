// client-node's Watch asks for its options *before* the `try` that hands errors to
// `done(err)`: an authenticator that rejects there makes `watch()` reject instead, and an
// informer, which re-watches from its `done` handler without a catch, turns that into an
// unhandled rejection that ends the process. So for those requests a TokenSourceError is
// not thrown where the options are built: it is carried to the transport, which fails with
// it inside the helper's `try`.

/**
 * client-node 1.x (`node-fetch` 2, `http(s).Agent`): an agent whose every request throws
 * `error` from `addRequest`, i.e. synchronously out of `https.request()`, which node-fetch
 * turns into the rejection of `fetch()` with `error` itself.
 */
export function failingAgent(error: Error): { addRequest(): never; protocol?: string } {
  return {
    addRequest(): never {
      throw error;
    },
  };
}

/**
 * client-node 2.x (undici `fetch`): a dispatcher that throws `error` when asked to dispatch;
 * undici's fetch rejects with `TypeError('fetch failed', { cause: error })`.
 */
export function failingDispatcher(error: Error): { dispatch(): never; close(): Promise<void>; destroy(): Promise<void> } {
  return {
    dispatch(): never {
      throw error;
    },
    close: async () => {},
    destroy: async () => {},
  };
}

/** Whether a URL is a watch request (`?watch=true`, or the old `/watch/` paths). */
export function isWatchUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    const watch = parsed.searchParams.get('watch');
    return watch === 'true' || watch === '1' || /\/watch\//.test(parsed.pathname);
  } catch {
    return false;
  }
}
