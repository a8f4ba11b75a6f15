import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { basename, join, posix } from 'node:path';

/** The calls {@link ProjectedVolume} makes: node:fs and a memfs `fs` both fit. */
export interface VolumeFileSystem {
  promises: {
    mkdir(path: string, options?: { recursive?: boolean }): Promise<unknown>;
    readFile(path: string): Promise<string | Uint8Array>;
    writeFile(path: string, data: string | Uint8Array, options?: { mode?: number }): Promise<void>;
    symlink(target: string, path: string): Promise<void>;
    rename(from: string, to: string): Promise<void>;
    readlink(path: string): Promise<string | Uint8Array>;
    rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>;
    lstat(path: string): Promise<unknown>;
  };
  unlinkSync(path: string): void;
  symlinkSync(target: string, path: string): void;
}

/** Options of {@link ProjectedVolume}. */
export interface ProjectedVolumeOptions {
  /** The mount path, e.g. `/var/run/secrets/tokens` (created when missing). */
  dir: string;
  /** @default node:fs */
  fs?: VolumeFileSystem;
}

/** What one {@link ProjectedVolume.write} did. */
export interface VolumeWrite {
  /**
   * Whether `..data` was swapped. `false` when the payload was byte for byte what the volume
   * already held: the kubelet's writer then writes nothing (two tokens minted in the same
   * second with the same claims are identical, as on a real API server without `jti`).
   */
  readonly swapped: boolean;
  /** The timestamped folder `..data` points at afterwards, e.g. `..2026_11_22_10_00_00.2853127951`. */
  readonly folder: string;
  /**
   * `performance.now()` right after `..data` was swapped to `folder`: when readers could first
   * see these files. For a write that swapped nothing, the time of the swap that did (by this
   * `ProjectedVolume`), or `NaN` when another writer made it.
   */
  readonly swappedAt: number;
}

const DATA = '..data';
const DATA_TMP = '..data_tmp';

/**
 * A folder written exactly as the kubelet's atomic writer (`AtomicWriter.Write` in
 * `pkg/volume/util`, checked against Kubernetes 1.20's) writes a projected volume: nothing
 * when the payload equals what the current folder holds; otherwise the payload goes into a
 * new timestamped folder, each visible file is a symlink `name -> ..data/name` (made before
 * the swap, so on the first write it dangles for a moment), a `..data_tmp` symlink to the new
 * folder is renamed over `..data`, files no longer in the payload are unlinked, and the old
 * folder is removed. The visible symlinks themselves never change.
 *
 * @example
 * ```ts
 * const volume = new ProjectedVolume({ dir: await mkdtemp(join(tmpdir(), 'pv-')) });
 * await volume.write({ token: await issuer.mint() });
 * ```
 */
export class ProjectedVolume {
  readonly dir: string;
  readonly #fs: VolumeFileSystem;
  readonly #native: boolean;
  #files: Record<string, string | Uint8Array> = {};
  #swaps = new Map<string, number>();

  constructor(options: ProjectedVolumeOptions) {
    if (typeof options?.dir !== 'string' || options.dir === '') throw new TypeError('ProjectedVolume: dir must be a non-empty string');
    this.dir = options.dir;
    this.#fs = options.fs ?? (nodeFs as unknown as VolumeFileSystem);
    this.#native = this.#fs === (nodeFs as unknown);
  }

  /** The path of a visible file, e.g. `path('token')`. */
  path(name: string): string {
    return join(this.dir, name);
  }

  /** The payload last written. */
  get files(): Readonly<Record<string, string | Uint8Array>> {
    return { ...this.#files };
  }

  /**
   * Replaces the whole payload (the kubelet always writes every file of the volume).
   * Resolves after the old timestamped folder is removed; writes nothing, and resolves with
   * `swapped: false`, when the volume already holds exactly this payload.
   */
  async write(files: Record<string, string | Uint8Array>): Promise<VolumeWrite> {
    const names = Object.keys(files);
    for (const name of names) {
      if (name === '' || name.startsWith('..') || name.includes('/')) {
        throw new TypeError(`ProjectedVolume: file name ${JSON.stringify(name)} is not allowed (no "/", no leading "..")`);
      }
    }
    const fs = this.#fs.promises;
    await fs.mkdir(this.dir, { recursive: true });
    const previous = await this.#readData();
    const removed = Object.keys(this.#files).filter((name) => !(name in files));
    if (previous !== undefined && removed.length === 0 && (await this.#holds(previous, files))) {
      this.#files = { ...files };
      return { swapped: false, folder: previous, swappedAt: this.#swaps.get(previous) ?? Number.NaN };
    }
    const folder = await this.#makeFolder();
    for (const name of names) await fs.writeFile(join(this.dir, folder, name), files[name]!, { mode: 0o644 });
    for (const name of names) {
      try {
        await fs.symlink(posix.join(DATA, name), join(this.dir, name));
      } catch (error) {
        if ((error as { code?: string }).code !== 'EEXIST') throw error;
      }
    }

    const swappedAt = await this.#swap(folder);
    this.#swaps.clear();
    this.#swaps.set(folder, swappedAt);

    for (const name of removed) await fs.rm(join(this.dir, name), { force: true });
    if (previous !== undefined && previous !== folder) await fs.rm(join(this.dir, previous), { recursive: true, force: true });
    this.#files = { ...files };
    return { swapped: true, folder, swappedAt };
  }

  /** Writes the payload with one file changed (or added). */
  update(name: string, content: string | Uint8Array): Promise<VolumeWrite> {
    return this.write({ ...this.#files, [name]: content });
  }

  /** Removes the whole mount folder, as when a volume is torn down. */
  async remove(): Promise<void> {
    await this.#fs.promises.rm(this.dir, { recursive: true, force: true });
    this.#files = {};
  }

  // Whether `folder` holds every file of the payload with the same bytes (the writer's
  // shouldWritePayload: a file missing or different means write).
  async #holds(folder: string, files: Record<string, string | Uint8Array>): Promise<boolean> {
    for (const [name, content] of Object.entries(files)) {
      let current: string | Uint8Array;
      try {
        current = await this.#fs.promises.readFile(join(this.dir, folder, name));
      } catch {
        return false;
      }
      if (!Buffer.from(current).equals(Buffer.from(content))) return false;
    }
    return true;
  }

  async #readData(): Promise<string | undefined> {
    try {
      return basename(String(await this.#fs.promises.readlink(join(this.dir, DATA))));
    } catch {
      return undefined;
    }
  }

  async #swap(folder: string): Promise<number> {
    const data = join(this.dir, DATA);
    if (this.#native) {
      const tmp = join(this.dir, DATA_TMP);
      await this.#fs.promises.rm(tmp, { force: true });
      await this.#fs.promises.symlink(folder, tmp);
      await this.#fs.promises.rename(tmp, data);
    } else {
      // memfs 4.80 resolves a symlink given to rename() and moves its target folder
      // instead of the link, so the atomic rename cannot be replayed there. Unlinking and
      // re-linking synchronously is just as atomic to code on the same event loop.
      try {
        this.#fs.unlinkSync(data);
      } catch {
        // first write: no ..data yet
      }
      this.#fs.symlinkSync(folder, data);
    }
    return performance.now();
  }

  // The kubelet's name: os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05.")),
  // whose suffix is a random uint32 in decimal; a name taken already is drawn again.
  async #makeFolder(): Promise<string> {
    const d = new Date();
    const pad = (n: number) => String(n).padStart(2, '0');
    const stamp = `${d.getUTCFullYear()}_${pad(d.getUTCMonth() + 1)}_${pad(d.getUTCDate())}_${pad(d.getUTCHours())}_${pad(d.getUTCMinutes())}_${pad(d.getUTCSeconds())}`;
    for (let attempt = 0; ; attempt++) {
      const folder = `..${stamp}.${randomBytes(4).readUInt32BE()}`;
      try {
        await this.#fs.promises.mkdir(join(this.dir, folder));
        return folder;
      } catch (error) {
        if ((error as { code?: string }).code !== 'EEXIST' || attempt >= 100) throw error;
      }
    }
  }
}
