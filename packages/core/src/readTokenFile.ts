import { TokenSourceError } from './errors.js';
import type { TokenFileHandle, TokenFileSystem } from './fileSystem.js';

const nodeFs = process.getBuiltinModule('node:fs');
// Opened without blocking: a FIFO (or a socket, a device) where the token should be would
// otherwise block open() in a thread of libuv's pool until a writer comes: a few such files
// and every fs and dns call of the process waits. For a regular file the flag changes nothing.
const OPEN_NONBLOCK = nodeFs.constants.O_RDONLY | nodeFs.constants.O_NONBLOCK;

/** Options of {@link readTokenFile}. */
export interface ReadTokenFileOptions {
  /** @default node:fs */
  fs?: TokenFileSystem;
  /**
   * Largest file accepted, in bytes (only this much + 1 is read).
   * @default 65_536
   */
  maxTokenBytes?: number;
}

/**
 * Reads a token file once, as a `FileTokenSource` does: at most `maxTokenBytes`, UTF-8,
 * failing with the same `TokenSourceError` codes and messages (`TOKEN_FILE_MISSING`,
 * `TOKEN_FILE_UNREADABLE`, `TOKEN_TOO_LARGE`, `TOKEN_MALFORMED`). For tools that look at
 * a token once (`podtoken inspect`); an app that sends requests wants a `FileTokenSource`.
 *
 * @example
 * ```ts
 * const token = decodeToken(await readTokenFile('/var/run/secrets/tokens/vault-token'));
 * ```
 */
export function readTokenFile(path: string, options: ReadTokenFileOptions = {}): Promise<string> {
  const maxTokenBytes = options.maxTokenBytes ?? 65_536;
  if (typeof path !== 'string' || path === '') throw new TypeError('readTokenFile: path must be a non-empty string');
  if (!Number.isInteger(maxTokenBytes) || maxTokenBytes < 1) {
    throw new TypeError(`readTokenFile: maxTokenBytes must be a whole number >= 1, got ${String(maxTokenBytes)}`);
  }
  return readBounded(options.fs ?? (nodeFs as unknown as TokenFileSystem), path, maxTokenBytes);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads at most `maxBytes` (+1 to detect overflow) from `path`, so a 10 MiB file costs
 * 64 KiB of memory, not 10 MiB. One open, one or more reads, one close.
 */
async function readBounded(fs: TokenFileSystem, path: string, maxBytes: number): Promise<string> {
  return (await readTokenFileTimed(fs, path, maxBytes, () => false)).text;
}

/** @internal What {@link readTokenFileTimed} read. */
export interface FileContent {
  readonly text: string;
  /** The file's mtime, in ms since the epoch, taken after the read; undefined when not asked for or unknown. */
  readonly modifiedAt: number | undefined;
}

/**
 * @internal {@link readTokenFile}, and when `withTime()` says so once the content is read,
 * the file's modification time, from the open handle (so a write during the read shows in it).
 */
export async function readTokenFileTimed(fs: TokenFileSystem, path: string, maxBytes: number, withTime: () => boolean): Promise<FileContent> {
  let handle: TokenFileHandle;
  try {
    handle = fs.promises === nodeFs.promises ? await nodeFs.promises.open(path, OPEN_NONBLOCK) : await fs.promises.open(path, 'r');
  } catch (error) {
    throw fileError(error, path);
  }
  try {
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const wanted = buffer.length - length;
      const { bytesRead } = await handle.read(buffer, length, wanted, length);
      length += bytesRead;
      // A short read of a regular file is its end: skip the extra round trip through the
      // thread pool that reading until 0 bytes would cost.
      if (bytesRead < wanted) break;
    }
    // Nothing, or more than a token: a FIFO without data, a device? Say what it is.
    if (length === 0 || length > maxBytes) await refuseIfNotRegular(handle, path);
    if (length > maxBytes) {
      throw new TokenSourceError(
        'TOKEN_TOO_LARGE',
        `Token file ${path} is larger than maxTokenBytes (${maxBytes} bytes); a ServiceAccount token is a few KiB. Check the path points at a token.`,
        { path },
      );
    }
    let text: string;
    try {
      text = utf8.decode(buffer.subarray(0, length));
    } catch {
      throw new TokenSourceError('TOKEN_MALFORMED', `Token file ${path} is not valid UTF-8.`, { path });
    }
    return { text, modifiedAt: withTime() ? await modifiedAt(handle) : undefined };
  } catch (error) {
    if (error instanceof TokenSourceError) throw error;
    // EAGAIN, ESPIPE: a FIFO or socket (a folder gives EISDIR, named as such).
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'ESPIPE') await refuseIfNotRegular(handle, path);
    throw fileError(error, path);
  } finally {
    await handle.close().catch(() => {});
  }
}

async function modifiedAt(handle: TokenFileHandle): Promise<number | undefined> {
  if (typeof handle.stat !== 'function') return undefined;
  try {
    const mtime = Number((await handle.stat()).mtimeMs);
    return Number.isFinite(mtime) ? mtime : undefined;
  } catch {
    return undefined;
  }
}

/** Throws `TOKEN_FILE_UNREADABLE` when the open file is not a regular file (a FIFO, a socket, a device). */
async function refuseIfNotRegular(handle: TokenFileHandle, path: string): Promise<void> {
  let regular = true;
  try {
    const stats = await handle.stat?.();
    if (typeof stats?.isFile === 'function') regular = stats.isFile();
  } catch {
    return; // cannot tell: the caller's own error stands
  }
  if (!regular) {
    throw new TokenSourceError(
      'TOKEN_FILE_UNREADABLE',
      `Token file ${path} cannot be read: it is not a regular file (a FIFO, socket or device); check the path points at a token.`,
      { path },
    );
  }
}

function fileError(error: unknown, path: string): TokenSourceError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new TokenSourceError(
      'TOKEN_FILE_MISSING',
      `Token file ${path} does not exist (or is a dangling symlink). In a pod, check the volume mount (and automountServiceAccountToken for the default token).`,
      { path, cause: error },
    );
  }
  const why =
    code === 'EISDIR'
      ? 'it is a folder; pass the token file in it'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied; check the volume defaultMode and the pod securityContext (fsGroup)'
        : `${typeof code === 'string' ? code : 'an I/O error'}`;
  return new TokenSourceError('TOKEN_FILE_UNREADABLE', `Token file ${path} cannot be read: ${why}.`, { path, cause: error });
}
