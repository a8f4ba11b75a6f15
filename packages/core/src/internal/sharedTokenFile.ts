import { basename, dirname, join, resolve } from 'node:path';
import { TokenSourceError } from '../errors.js';
import type { TokenFileSystem } from '../fileSystem.js';
import { decodeToken, type Token } from '../token.js';
import { readTokenFileTimed, type FileContent } from '../readTokenFile.js';

const nodeFs = process.getBuiltinModule('node:fs');

/**
 * How long a plain file (not the kubelet's `..data` layout) must have stayed the same
 * before a changed token read from it is served: its mtime must be at least this old, or
 * two reads this far apart must agree.
 */
export const SETTLE_MS = 200;
/** A file that changed on every one of this many reads is reported, and tried again later. */
const MAX_CONFIRM_READS = 10;
const DATA_LINK = '..data';

/** One read of a token file, shared by every source on that file. */
export type FileRead = ContentRead | FailedRead;

export interface ContentRead {
  readonly ok: true;
  /** The file's text, trimmed of surrounding white space. */
  readonly value: string;
  /** The decoded token (memoized per ratio: a thousand sources decode it once); throws a TokenSourceError. */
  decode(refreshRatio: number): Token;
}

export interface FailedRead {
  readonly ok: false;
  readonly error: TokenSourceError;
}

interface Flight {
  /** 1 for the first read of this file, 2 for the next… */
  readonly index: number;
  /** Date.now() when its first I/O was issued. */
  readonly startedAt: number;
  readonly promise: Promise<FileRead>;
}

/**
 * The reads of one token file (per file system, path and size limit), shared by every
 * source on it: however many sources and audiences, a change is read once.
 *
 * Each source keeps its own single flight and checks; this only decides whether a read
 * it asks for can be one that another source already asked for. A source passes the
 * `stamp` it saw when its trigger happened (how many reads had been issued then): any
 * read issued after that saw everything its trigger could be about, so it may join it.
 * A read that is asked for but not issued yet starts on the next microtask, so every
 * source a folder event reaches in one turn joins the same read.
 *
 * A changed text read from a plain file is confirmed before it is handed out: a writer
 * other than the kubelet writes in place and may be caught half way, and a JWT cut inside
 * its signature can still look whole. The kubelet's files (a symlink into `..data/`) are
 * replaced all at once and are read once.
 */
export class SharedTokenFile {
  readonly #fs: TokenFileSystem;
  readonly #path: string;
  readonly #maxBytes: number;
  #users = 0;
  #issued = 0;
  #inFlight: Flight | undefined;
  #pending: Promise<FileRead> | undefined;
  #last: { readonly flight: Flight; readonly result: FileRead } | undefined;
  // The last text known to be whole: read through `..data`, or confirmed.
  #confirmed: string | undefined;
  #pause: { timer: ReturnType<typeof setTimeout>; done: () => void } | undefined;
  // The last invalidate() re-read that left the rejected token in place, for the cooldown.
  #invalidated: { readonly rejected: string; readonly doneAt: number } | undefined;

  constructor(fs: TokenFileSystem, path: string, maxBytes: number) {
    this.#fs = fs;
    this.#path = path;
    this.#maxBytes = maxBytes;
  }

  /** How many reads have been issued so far. */
  get stamp(): number {
    return this.#issued;
  }

  /**
   * A read issued after `stamp` (see the class comment). With `maxAgeMs` (the poll, a
   * safety net that wants no particular change), a read issued within that many ms will do.
   */
  read(stamp: number, maxAgeMs?: number): Promise<FileRead> {
    const flight = this.#inFlight;
    if (flight !== undefined && (flight.index > stamp || maxAgeMs !== undefined)) return flight.promise;
    const last = this.#last;
    if (
      flight === undefined &&
      last !== undefined &&
      (last.flight.index > stamp || (maxAgeMs !== undefined && Date.now() - last.flight.startedAt <= maxAgeMs))
    ) {
      return Promise.resolve(last.result);
    }
    this.#pending ??= (flight?.promise ?? Promise.resolve()).then(() => this.#start());
    return this.#pending;
  }

  /**
   * Notes that a re-read for a 401 of `rejected` found it still the token in use: for
   * `withinMs`, further 401s for it, from any source on this file, need not read again.
   */
  noteUnchanged(rejected: string): void {
    this.#invalidated = { rejected, doneAt: Date.now() };
  }

  /** Whether a re-read for `rejected` found it unchanged less than `withinMs` ago. */
  unchangedSince(rejected: string, withinMs: number): boolean {
    const last = this.#invalidated;
    return last !== undefined && last.rejected === rejected && Date.now() - last.doneAt < withinMs;
  }

  /** @internal Registry bookkeeping. */
  acquire(): void {
    this.#users += 1;
  }

  /** @internal Returns whether nobody uses the file any more; then a confirming pause ends at once. */
  release(): boolean {
    this.#users -= 1;
    if (this.#users > 0) return false;
    const pause = this.#pause;
    this.#pause = undefined;
    if (pause !== undefined) {
      clearTimeout(pause.timer);
      pause.done();
    }
    return true;
  }

  #start(): Promise<FileRead> {
    this.#pending = undefined;
    const index = ++this.#issued;
    const promise = this.#readWhole().then((result) => {
      if (this.#inFlight?.index === index) this.#inFlight = undefined;
      this.#last = { flight, result };
      return result;
    });
    const flight: Flight = { index, startedAt: Date.now(), promise };
    this.#inFlight = flight;
    return promise;
  }

  async #readWhole(): Promise<FileRead> {
    let previous: string | undefined;
    for (let reads = 1; ; reads++) {
      const startedAt = Date.now();
      let content: FileContent;
      let atomic: boolean | undefined;
      // The layout is asked alongside the read; the mtime is fetched after it only when the
      // file is not known to be the kubelet's by then (a plain file needs it).
      const layout = this.#behindDataSwap().then((answer) => (atomic = answer));
      try {
        content = await readTokenFileTimed(this.#fs, this.#path, this.#maxBytes, () => atomic !== true);
        await layout;
      } catch (error) {
        return { ok: false, error: asTokenError(error, this.#path) };
      }
      const text = content.text;
      if (atomic === true || text === this.#confirmed || text === previous || settled(content.modifiedAt, startedAt)) {
        this.#confirmed = text;
        return contentRead(this.#path, text);
      }
      if (this.#users === 0) {
        return { ok: false, error: new TokenSourceError('TOKEN_SOURCE_CLOSED', `Every token source for ${this.#path} is closed.`, { path: this.#path }) };
      }
      if (reads >= MAX_CONFIRM_READS) {
        return {
          ok: false,
          error: new TokenSourceError(
            'TOKEN_MALFORMED',
            `Token file ${this.#path} changed between each of ${reads} reads ${SETTLE_MS} ms apart: a writer is still at work. Keeping the last good token.`,
            { path: this.#path },
          ),
        };
      }
      previous = text;
      await new Promise<void>((done) => {
        const timer = setTimeout(() => {
          this.#pause = undefined;
          done();
        }, SETTLE_MS);
        timer.unref?.();
        this.#pause = { timer, done };
      });
    }
  }

  // The kubelet's visible file is a symlink `token -> ..data/token`, and `..data` is swapped
  // whole: what is read through it was written completely beforehand. Asked on every read
  // (alongside it, so it costs no time), since a file can be replaced by a plain one.
  async #behindDataSwap(): Promise<boolean> {
    const dir = dirname(this.#path);
    const name = basename(this.#path);
    if (basename(dir) === DATA_LINK) return true;
    const promises = this.#fs.promises;
    if (typeof promises.readlink !== 'function') return false;
    try {
      const target = await promises.readlink(this.#path);
      const text = typeof target === 'string' ? target : Buffer.from(target).toString('utf8');
      return resolve(dir, text) === join(dir, DATA_LINK, name);
    } catch {
      return false; // not a symlink (EINVAL), or gone
    }
  }
}

// Whether the file had not changed for SETTLE_MS when the read started. A whole-second
// mtime may come from a file system that keeps seconds only: count it a second later.
function settled(modifiedAt: number | undefined, readStartedAt: number): boolean {
  if (modifiedAt === undefined) return false;
  const latest = modifiedAt % 1000 === 0 ? modifiedAt + 1000 : modifiedAt;
  return readStartedAt - latest >= SETTLE_MS;
}

function contentRead(path: string, text: string): ContentRead {
  const decoded = new Map<number, Token | TokenSourceError>();
  return {
    ok: true,
    value: text.trim(),
    decode(refreshRatio) {
      let result = decoded.get(refreshRatio);
      if (result === undefined) {
        try {
          result = decodeToken(text, { refreshRatio });
        } catch (error) {
          result = asTokenError(error, path);
        }
        decoded.set(refreshRatio, result);
      }
      if (result instanceof TokenSourceError) throw result;
      return result;
    },
  };
}

/** Any error as a TokenSourceError about `path` (decodeToken's own errors name no path). */
export function asTokenError(error: unknown, path: string): TokenSourceError {
  if (error instanceof TokenSourceError) {
    return error.path === undefined ? new TokenSourceError(error.code, `Token file ${path}: ${error.message}`, { path }) : error;
  }
  return new TokenSourceError('TOKEN_FILE_UNREADABLE', `Reading token file ${path} failed unexpectedly.`, { path, cause: error });
}

// One SharedTokenFile per file system, path and size limit, while any source uses it.
const nodeFiles = new Map<string, SharedTokenFile>();
const customFiles = new WeakMap<TokenFileSystem, Map<string, SharedTokenFile>>();

/** The shared reads of `path`; call `release()` once, when the source closes. */
export function acquireTokenFile(
  fs: TokenFileSystem | undefined,
  path: string,
  maxBytes: number,
): { readonly file: SharedTokenFile; release(): void } {
  let files: Map<string, SharedTokenFile>;
  if (fs === undefined) {
    files = nodeFiles;
  } else {
    files = customFiles.get(fs) ?? new Map();
    customFiles.set(fs, files);
  }
  const key = `${maxBytes}:${path}`;
  let file = files.get(key);
  if (file === undefined) {
    file = new SharedTokenFile(fs ?? (nodeFs as unknown as TokenFileSystem), path, maxBytes);
    files.set(key, file);
  }
  file.acquire();
  const acquired = file;
  let released = false;
  return {
    file: acquired,
    release() {
      if (released) return;
      released = true;
      if (acquired.release() && files.get(key) === acquired) files.delete(key);
    },
  };
}

/** @internal How many token files (node:fs ones) sources share reads of now, for tests and benchmarks. */
export function openTokenFileCount(): number {
  return nodeFiles.size;
}
