import * as nodeFs from 'node:fs';
import type { TokenFileSystem } from './fileSystem.js';
import { readTokenFile as readBounded } from './internal/readTokenFile.js';

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
