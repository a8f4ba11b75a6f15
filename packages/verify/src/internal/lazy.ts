/** After a failure, callers get the same rejection for this long (ms) before it is tried again. */
export const RETRY_AFTER_FAILURE = 1_000;

/**
 * A value made once, on first use, by one shared promise. When making it fails, the failure
 * is served for {@link RETRY_AFTER_FAILURE} ms (so an outage costs one attempt a second, not
 * one per request), then the next caller tries again.
 */
export class Lazy<T> {
  readonly #make: () => Promise<T>;
  #promise: Promise<T> | undefined;
  #failedAt: number | undefined;

  constructor(make: () => Promise<T>) {
    this.#make = make;
  }

  /** The value once made, or undefined. */
  settled: T | undefined;

  get(): Promise<T> {
    if (this.#promise === undefined || (this.#failedAt !== undefined && performance.now() - this.#failedAt >= RETRY_AFTER_FAILURE)) {
      this.#failedAt = undefined;
      const promise = this.#make();
      this.#promise = promise;
      promise.then(
        (value) => {
          if (this.#promise === promise) this.settled = value;
        },
        () => {
          if (this.#promise === promise) this.#failedAt = performance.now();
        },
      );
    }
    return this.#promise;
  }
}
