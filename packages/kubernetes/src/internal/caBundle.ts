import { X509Certificate } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const DATA_LINK = '..data';

/**
 * Whether `pem` holds at least one certificate and every certificate in it parses. A torn
 * or foreign write fails this and never replaces a good bundle.
 */
export function isCertificateBundle(pem: Buffer): boolean {
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE);
  if (blocks === null) return false;
  try {
    for (const block of blocks) new X509Certificate(block);
    return true;
  } catch {
    return false;
  }
}

/** Options of {@link CaBundle}. */
export interface CaBundleOptions {
  /** Milliseconds between safety-net re-reads, for when folder events are lost; 0 = off. */
  pollInterval: number;
}

/**
 * The cluster's CA bundle (`ca.crt`), kept in memory and re-read, asynchronously, when the
 * kubelet swaps the projected volume (the `kube-root-ca.crt` ConfigMap changed). Readers
 * get the bundle from memory: no disk access on the request path.
 */
export class CaBundle {
  readonly path: string;
  readonly #dir: string;
  readonly #fileName: string;
  readonly #listeners = new Set<(pem: Buffer) => void>();
  #pem: Buffer;
  #watcher: FSWatcher | undefined;
  #pollTimer: ReturnType<typeof setInterval> | undefined;
  #reading: Promise<void> | undefined;
  #queued: Promise<void> | undefined;
  #closed = false;

  constructor(path: string, initial: Buffer, options: CaBundleOptions) {
    this.path = path;
    this.#dir = dirname(path);
    this.#fileName = basename(path);
    this.#pem = initial;
    this.#startWatch();
    if (options.pollInterval > 0) {
      this.#pollTimer = setInterval(() => {
        if (this.#watcher === undefined) this.#startWatch();
        void this.reload();
      }, options.pollInterval);
      this.#pollTimer.unref();
    }
  }

  /** The bundle in memory now. */
  get current(): Buffer {
    return this.#pem;
  }

  /** Calls `listener` after a different, valid bundle was read. Returns an unsubscribe function. */
  onChange(listener: (pem: Buffer) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * Re-reads the file now. One read at a time; a trigger during a read queues exactly one
   * more (the write that caused it may have landed after the read began). Never rejects.
   */
  reload(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#reading === undefined) {
      this.#reading = this.#readOnce().finally(() => {
        this.#reading = undefined;
      });
      return this.#reading;
    }
    this.#queued ??= this.#reading.then(() => {
      this.#queued = undefined;
      return this.reload();
    });
    return this.#queued;
  }

  /** Stops the watcher and the poll. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#listeners.clear();
  }

  async #readOnce(): Promise<void> {
    let pem: Buffer;
    try {
      pem = await readFile(this.path);
    } catch {
      return; // missing for a moment, or unreadable: keep the bundle we have; the poll retries
    }
    if (this.#closed || pem.equals(this.#pem) || !isCertificateBundle(pem)) return;
    this.#pem = pem;
    for (const listener of this.#listeners) {
      try {
        listener(pem);
      } catch {
        // a listener's bug must not stop the others
      }
    }
  }

  // The kubelet's atomic writer renames a fresh `..data` symlink over the old one and never
  // touches `ca.crt -> ..data/ca.crt`, so the folder is watched, not the file. A plain file
  // rewritten in place (a hostPath, a test) shows up under its own name.
  #startWatch(): void {
    if (this.#closed) return;
    try {
      // Not persistent: a CA watcher alone must not keep the process alive.
      const watcher = watch(this.#dir, { persistent: false }, (_event, name) => {
        if (name === null || name === DATA_LINK || name === this.#fileName) void this.reload();
      });
      watcher.on('error', () => {
        watcher.close();
        if (this.#watcher === watcher) this.#watcher = undefined; // the poll starts a new one
      });
      this.#watcher = watcher;
    } catch {
      this.#watcher = undefined;
    }
  }
}
