/**
 * A bounded map from key to value whose entries die at their own time: the least recently
 * used entry goes when it is full (a Map keeps insertion order; a hit moves the entry to the
 * end). Time is read by the caller, so tests can pass any clock.
 */
export class ExpiringCache<V> {
  readonly #max: number;
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();

  /** @param max - entries kept at most; 0 keeps none. */
  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The live value for `key` at `now` (ms), or undefined. */
  get(key: string, now: number): V | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    this.#entries.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.#entries.set(key, entry);
    return entry.value;
  }

  /** Keeps `value` until `expiresAt` (ms); nothing when that is not after `now`. */
  set(key: string, value: V, expiresAt: number, now: number): void {
    if (this.#max === 0 || !(expiresAt > now)) return;
    this.#entries.delete(key);
    this.#entries.set(key, { value, expiresAt });
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
