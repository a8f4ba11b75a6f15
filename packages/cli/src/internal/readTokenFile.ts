import { lstat, open, readlink, stat } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { TokenSourceError } from '@podtoken/core';
import type { VolumeInfo } from '../inspectReport.js';

/** The most `inspect` reads, as `FileTokenSource`'s default `maxTokenBytes`. */
export const MAX_TOKEN_BYTES = 65_536;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a token file once, at most `maxBytes` (+1 to tell that it is larger), with the
 * same error codes and messages a `FileTokenSource` reports.
 */
export async function readTokenFile(path: string, maxBytes = MAX_TOKEN_BYTES): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw fileError(error, path);
  }
  try {
    const buffer = new Uint8Array(maxBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) {
      throw new TokenSourceError(
        'TOKEN_TOO_LARGE',
        `Token file ${path} is larger than ${maxBytes} bytes; a ServiceAccount token is a few KiB. Check the path points at a token.`,
        { path },
      );
    }
    try {
      return utf8.decode(buffer.subarray(0, length));
    } catch {
      throw new TokenSourceError('TOKEN_MALFORMED', `Token file ${path} is not valid UTF-8.`, { path });
    }
  } catch (error) {
    throw error instanceof TokenSourceError ? error : fileError(error, path);
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * How the file sits on disk: in a kubelet projected volume (`token -> ..data/token`,
 * `..data -> ..<timestamp>`), behind another symlink, or as a plain file. Never throws.
 */
export async function describeVolume(path: string): Promise<VolumeInfo | undefined> {
  try {
    const link = await lstat(path);
    const file = await stat(path);
    if (!file.isFile()) return undefined;
    const mode = `0${(file.mode & 0o777).toString(8)}`;
    if (!link.isSymbolicLink()) return { layout: 'file', mode };
    const target = await readlink(path);
    if (target === posix.join('..data', basename(path))) {
      const dataFolder = basename(await readlink(join(dirname(path), '..data')));
      return { layout: 'projected', mode, dataFolder };
    }
    return { layout: 'symlink', mode, target };
  } catch {
    return undefined;
  }
}

function fileError(error: unknown, path: string): TokenSourceError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new TokenSourceError(
      'TOKEN_FILE_MISSING',
      `Token file ${path} does not exist (or is a dangling symlink). In a pod, check the volume mount and automountServiceAccountToken.`,
      { path, cause: error },
    );
  }
  const why =
    code === 'EISDIR'
      ? `it is a folder; pass the token file in it, e.g. ${join(path, 'token')}`
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied; check the volume defaultMode and the pod securityContext (fsGroup)'
        : `${typeof code === 'string' ? code : 'an I/O error'}`;
  return new TokenSourceError('TOKEN_FILE_UNREADABLE', `Token file ${path} cannot be read: ${why}.`, { path, cause: error });
}
