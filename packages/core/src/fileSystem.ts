/** The part of an open file that podtoken uses. */
export interface TokenFileHandle {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
  /**
   * Optional. The file's modification time lets a source take a plain file that has not
   * changed for a while at its first read, instead of reading it twice (see `readlink`).
   */
  stat?(): Promise<{ mtimeMs: number | bigint; isFile?(): boolean }>;
}

/** What a folder watcher looks like: node's `fs.FSWatcher` and memfs' both fit. */
export interface TokenFileWatcher {
  close(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * The file-system calls podtoken makes. `node:fs` fits, and so does a memfs `fs`
 * (`memfs().fs`), which is how tests run without touching the disk.
 *
 * When `watch` is missing, changes are seen through the timers and the poll only. When
 * `promises.readlink` is missing, every file is treated as one written in place: a changed
 * token is read twice, a moment apart, before it is served.
 */
export interface TokenFileSystem {
  promises: {
    open(path: string, flags: 'r'): Promise<TokenFileHandle>;
    /**
     * Optional. Tells a file the kubelet wrote (a symlink into `..data/`, replaced all at
     * once) from a plain file that a writer may be caught half way through.
     */
    readlink?(path: string): Promise<string | Uint8Array>;
  };
  watch?(
    path: string,
    options: { persistent?: boolean },
    listener: (event: string, filename: string | null) => void,
  ): TokenFileWatcher;
}
