/** What podtoken needs of an undici `Dispatcher`: to close it. */
export interface ClosableDispatcher {
  close(): Promise<unknown>;
}

// A request that was handed the previous dispatcher just before a CA change may not have
// dispatched yet; a closed undici Agent would refuse it. Closing waits this long (and then
// lets in-flight requests, watches included, finish).
const RETIRE_AFTER = 10_000;

/**
 * client-node 2.x builds a new undici `Agent` for every request (each with its own pool of
 * kept-alive sockets) and never closes one. For an in-cluster config podtoken owns the CA,
 * so every request can share one Agent, made by client-node itself the first time and kept
 * while the CA stays the same; a new CA retires it (closed once idle) and the next request
 * makes a new one.
 */
export class SharedDispatcher {
  #ca: unknown;
  #dispatcher: ClosableDispatcher | undefined;
  #closed = false;

  /** The dispatcher for `ca`: the cached one, or a new one from `make` (after retiring the old). */
  get<D extends ClosableDispatcher | undefined>(ca: unknown, make: () => D): D {
    if (this.#closed) return make();
    if (this.#dispatcher !== undefined && this.#ca === ca) return this.#dispatcher as D;
    this.retire();
    const made = make();
    if (made !== undefined && typeof made.close === 'function') {
      this.#ca = ca;
      this.#dispatcher = made;
    }
    return made;
  }

  /** Drops the cached dispatcher; it is closed after a grace period (requests already handed it still run). */
  retire(): void {
    const old = this.#dispatcher;
    this.#dispatcher = undefined;
    this.#ca = undefined;
    if (old === undefined) return;
    const timer = setTimeout(() => void old.close().catch(() => {}), RETIRE_AFTER);
    timer.unref();
  }

  /** Closes the cached dispatcher now (it finishes what it has in flight) and caches nothing more. */
  close(): void {
    this.#closed = true;
    const old = this.#dispatcher;
    this.#dispatcher = undefined;
    this.#ca = undefined;
    void old?.close().catch(() => {});
  }
}
