import type { Issuer, MintOptions } from './issuer.js';
import type { ProjectedVolume, VolumeWrite } from './projectedVolume.js';

// The kubelet refreshes a token older than 24 h whatever its lifetime (pkg/kubelet/token: maxTTL).
const MAX_TOKEN_AGE_SECONDS = 24 * 60 * 60;

/** Options of {@link FakeKubelet}. */
export interface FakeKubeletOptions {
  /** Where it writes. */
  volume: ProjectedVolume;
  /** Who signs the tokens. */
  issuer: Issuer;
  /** The token's file name in the volume (the projection's `path`). @default 'token' */
  file?: string;
  /** The projection's `audience`. @default the issuer's own (the API server audience) */
  audience?: string | string[];
  /** The projection's `expirationSeconds`; may be fractional in tests. @default 3607 */
  expirationSeconds?: number;
  /**
   * Mint tokens the way the API server mints the default token when it extends expiry; as
   * there, only for `expirationSeconds: 3607` and a pod-bound token (a `TypeError` otherwise).
   * @default false
   */
  extendExpiration?: boolean;
  /**
   * Fraction of the requested lifetime after which it writes a fresh token; never later
   * than 24 h after the last one, as the kubelet (which also subtracts a random 0–9 s
   * jitter, left out here so that tests are repeatable).
   * @default 0.8 (the kubelet's rule)
   */
  rotateAfter?: number;
  /** Other claims for every token (namespace, serviceAccount, pod…). */
  mint?: Omit<MintOptions, 'audience' | 'expirationSeconds' | 'extendExpiration'>;
  /** Other files of the volume, written with every token (e.g. `ca.crt`, `namespace`). */
  files?: Record<string, string | Uint8Array>;
}

/** What one rotation wrote. The token is for the test to compare against: never print it. */
export interface Rotation extends VolumeWrite {
  readonly token: string;
  /** 1 for the first token, then 2, 3… */
  readonly count: number;
}

/**
 * Plays the kubelet's part for one projected token: writes a fresh token through the
 * atomic writer at 80 % of its requested lifetime (at most 24 h). Runs on real timers or
 * vitest's fake ones (it calls `setTimeout` at use time).
 *
 * The real kubelet decides at each volume sync (about once a minute) whether the token
 * manager's cached token needs refreshing, so a real rotation lands up to a minute or so
 * after that point; this one rotates on the dot.
 *
 * @example
 * ```ts
 * const kubelet = new FakeKubelet({ volume, issuer, audience: 'vault', expirationSeconds: 600 });
 * await kubelet.start();       // first token on disk
 * await kubelet.rotate();      // force a rotation now
 * kubelet.stop();
 * ```
 */
export class FakeKubelet {
  readonly #options: FakeKubeletOptions;
  readonly #listeners = new Set<(rotation: Rotation) => void>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #count = 0;
  #last: Rotation | undefined;
  #writing: Promise<Rotation> | undefined;

  constructor(options: FakeKubeletOptions) {
    if (!options?.volume || !options.issuer) throw new TypeError('FakeKubelet: volume and issuer are required');
    const seconds = options.expirationSeconds ?? 3607;
    if (!(seconds > 0)) throw new TypeError(`FakeKubelet: expirationSeconds must be > 0, got ${String(seconds)}`);
    const ratio = options.rotateAfter ?? 0.8;
    if (!(ratio > 0 && ratio <= 1)) throw new TypeError(`FakeKubelet: rotateAfter must be in (0, 1], got ${String(ratio)}`);
    if (options.extendExpiration && (seconds !== 3607 || options.mint?.pod === false)) {
      throw new TypeError('FakeKubelet: extendExpiration needs expirationSeconds 3607 and a pod, as on the API server (it extends nothing else)');
    }
    this.#options = options;
  }

  /** The token file's path. */
  get path(): string {
    return this.#options.volume.path(this.#options.file ?? 'token');
  }

  /** How many tokens it has written. */
  get rotations(): number {
    return this.#count;
  }

  /** The last rotation, or undefined before the first. */
  get last(): Rotation | undefined {
    return this.#last;
  }

  /** Writes the first token and schedules the next. Resolves with what it wrote. */
  async start(): Promise<Rotation> {
    this.#running = true;
    return this.rotate();
  }

  /** Writes a fresh token now (and, when started, schedules the next from now). */
  rotate(): Promise<Rotation> {
    // Rotations never overlap: the kubelet writes a volume from one goroutine.
    const run = (this.#writing ?? Promise.resolve()).catch(() => {}).then(() => this.#write());
    this.#writing = run;
    return run;
  }

  /** Calls `listener` after each write. Returns an unsubscribe function. */
  onRotate(listener: (rotation: Rotation) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * Stops scheduling. Resolves once a write in progress has finished, so a test can
   * remove the volume right after `await kubelet.stop()` without it being written again.
   */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing?.catch(() => {});
  }

  async #write(): Promise<Rotation> {
    const o = this.#options;
    const expirationSeconds = o.expirationSeconds ?? 3607;
    // Scheduled from when this rotation began, not when its write finished: no drift.
    if (this.#running) {
      clearTimeout(this.#timer);
      const after = Math.min(expirationSeconds * (o.rotateAfter ?? 0.8), MAX_TOKEN_AGE_SECONDS);
      this.#timer = setTimeout(() => void this.rotate().catch(() => {}), after * 1000);
      this.#timer.unref?.();
    }
    const token = await o.issuer.mint({
      ...o.mint,
      ...(o.audience === undefined ? {} : { audience: o.audience }),
      expirationSeconds,
      extendExpiration: o.extendExpiration ?? false,
    });
    const written = await o.volume.write({ ...o.files, ...o.volume.files, [o.file ?? 'token']: token });
    this.#count += 1;
    const rotation: Rotation = { ...written, token, count: this.#count };
    this.#last = rotation;
    for (const listener of this.#listeners) listener(rotation);
    return rotation;
  }
}
