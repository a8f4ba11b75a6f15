import { basename, dirname, resolve } from 'node:path';
import { channels } from '../diagnostics.js';
import type { TokenFileSystem } from '../fileSystem.js';

const nodeFs = process.getBuiltinModule('node:fs');

/** A source's subscription to its folder. */
export interface FolderSubscription {
  /**
   * Start the watcher again if it died or never started (folder removed or not there yet,
   * watch limit hit). Cheap when it is alive. After a failed read (`afterGoodRead` false)
   * it tries at most once a second, however many sources ask.
   */
  rearm(afterGoodRead: boolean): void;
  /** Whether the folder watch is up now: then every change of the file is reported. */
  readonly live: boolean;
  close(): Promise<void>;
}

interface Subscriber {
  readonly fileName: string;
  readonly onChange: () => void;
}

// Why fs.watch on the folder and not chokidar: chokidar 5 sees a symlink that changes target
// only by re-reading the folder (throttled to once a second) and comparing readlink()
// results, so it reports a `..data` swap late or not at all when rotations come quickly
// (measured: it missed the 2nd of 200 back-to-back swaps). inotify on the folder reports the
// rename of `..data_tmp` over `..data` the moment it happens.
//
// The kubelet's atomic writer swaps the `..data` symlink and never touches `token -> ..data/token`,
// so a watch on the file alone misses rotations: we watch the folder (depth 0) and react to
// `..data` (every file in the folder changed) or to a subscriber's own file name (a plain file
// replaced or rewritten). Timestamped folders and `..data_tmp` are noise.
const DATA_LINK = '..data';
const RETRY_START_MS = 1000;
// setInterval's longest delay: the keep-alive timer never fires in practice.
const MAX_TIMER = 2 ** 31 - 1;

class FolderWatch {
  readonly #subscribers = new Set<Subscriber>();
  #handle: { close(): Promise<void> | void } | undefined;
  #broken = false;
  #failedStartAt = -Infinity;
  // While node:fs cannot watch the folder (it is not there yet, or was removed), this
  // timer holds the process open in the watcher's place: a watching source keeps the
  // process alive until close(), whether or not its folder exists yet.
  #keepAlive: ReturnType<typeof setInterval> | undefined;

  constructor(
    readonly dir: string,
    readonly fs: TokenFileSystem | undefined,
    readonly onEmpty: () => void,
  ) {}

  get size(): number {
    return this.#subscribers.size;
  }

  get live(): boolean {
    return this.#handle !== undefined && !this.#broken;
  }

  add(subscriber: Subscriber): FolderSubscription {
    this.#subscribers.add(subscriber);
    if (this.#handle === undefined && !this.#broken) this.#start();
    const isLive = () => this.live;
    return {
      get live() {
        return isLive();
      },
      rearm: (afterGoodRead) => {
        if (!this.#broken || !this.#subscribers.has(subscriber)) return;
        if (!afterGoodRead && Date.now() - this.#failedStartAt < RETRY_START_MS) return;
        this.#restart();
      },
      close: async () => {
        if (!this.#subscribers.delete(subscriber) || this.#subscribers.size > 0) return;
        this.onEmpty();
        await this.#stop();
      },
    };
  }

  #start(rearming = false): void {
    this.#broken = false;
    try {
      this.#handle = this.#startFsWatch(this.fs ?? (nodeFs as unknown as TokenFileSystem));
      if (rearming && channels.watchRearmed.hasSubscribers) channels.watchRearmed.publish({ folder: this.dir, at: new Date() });
    } catch (error) {
      // No folder yet, no `watch` in a custom fs, or a watch limit: the poll and the
      // backoff re-reads carry on, and `rearm()` tries again after the next read.
      this.#handle = undefined;
      this.#broken = true;
      this.#failedStartAt = Date.now();
      // Reported once per failure, not for each retry that finds the same (a missing folder
      // is retried after every read).
      if (!rearming) this.#publishFailed('start', error);
    }
    this.#holdLoop();
  }

  #publishFailed(reason: 'start' | 'error' | 'removed', error?: unknown): void {
    if (!channels.watchFailed.hasSubscribers) return;
    const code = (error as { code?: unknown } | undefined)?.code;
    channels.watchFailed.publish({ folder: this.dir, reason, ...(typeof code === 'string' ? { code } : {}), at: new Date() });
  }

  #holdLoop(): void {
    const hold = this.#broken && this.fs === undefined && this.#subscribers.size > 0;
    if (hold && this.#keepAlive === undefined) {
      this.#keepAlive = setInterval(() => {}, MAX_TIMER);
    } else if (!hold && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  #restart(): void {
    const old = this.#handle;
    this.#handle = undefined;
    void Promise.resolve(old?.close()).catch(() => {});
    this.#start(true);
  }

  async #stop(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#broken = false;
    this.#holdLoop();
    await handle?.close();
  }

  #startFsWatch(fs: TokenFileSystem): { close(): void } {
    if (fs.watch === undefined) throw new Error('no watch');
    const watcher = fs.watch(this.dir, { persistent: true }, (_event, filename) => {
      if (filename === null || filename === undefined) {
        this.#notifyAll();
        return;
      }
      const name = String(filename);
      // fs.watch names the folder itself when it is removed.
      if (name === basename(this.dir)) this.#died('removed');
      this.#dispatch(name);
    });
    watcher.on('error', (error: unknown) => this.#died('error', error));
    return watcher;
  }

  #died(reason: 'error' | 'removed', error?: unknown): void {
    if (!this.#broken) this.#publishFailed(reason, error);
    this.#broken = true;
    this.#holdLoop();
    this.#notifyAll();
  }

  #dispatch(name: string): void {
    if (name === DATA_LINK) {
      this.#notifyAll();
      return;
    }
    // In the kubelet's layout an event naming the file itself is its symlink being made or
    // removed: the atomic writer makes `token -> ..data/token` just after the first swap
    // that holds it, so the read the swap caused found no file yet. Read again.
    for (const subscriber of this.#subscribers) {
      if (subscriber.fileName === name) subscriber.onChange();
    }
  }

  #notifyAll(): void {
    for (const subscriber of this.#subscribers) subscriber.onChange();
  }
}

// One watcher per folder per file system, shared by every source in the process,
// whether made through createTokenSources or one by one.
const nodeWatches = new Map<string, FolderWatch>();
const customWatches = new WeakMap<TokenFileSystem, Map<string, FolderWatch>>();

/**
 * Subscribes `onChange` to changes of `path` (a file), through one shared folder watcher.
 * `fs` undefined means node:fs.
 */
export function watchFolder(fs: TokenFileSystem | undefined, path: string, onChange: () => void): FolderSubscription {
  const file = resolve(path);
  const dir = dirname(file);
  let watches: Map<string, FolderWatch>;
  if (fs === undefined) {
    watches = nodeWatches;
  } else {
    watches = customWatches.get(fs) ?? new Map();
    customWatches.set(fs, watches);
  }
  let watch = watches.get(dir);
  if (watch === undefined) {
    const created: FolderWatch = new FolderWatch(dir, fs, () => {
      if (watches.get(dir) === created) watches.delete(dir);
    });
    watch = created;
    watches.set(dir, watch);
  }
  return watch.add({ fileName: basename(file), onChange });
}

/** @internal How many folder watchers are open now (node:fs ones), for tests and benchmarks. */
export function openFolderWatchCount(): number {
  return nodeWatches.size;
}
