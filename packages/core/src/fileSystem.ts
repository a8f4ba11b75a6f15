/** The part of an open file that podtoken uses. */
export interface TokenFileHandle {
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
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
 * When `watch` is missing, changes are seen through the timers and the poll only.
 */
export interface TokenFileSystem {
  promises: {
    open(path: string, flags: 'r'): Promise<TokenFileHandle>;
  };
  watch?(
    path: string,
    options: { persistent?: boolean },
    listener: (event: string, filename: string | null) => void,
  ): TokenFileWatcher;
}
