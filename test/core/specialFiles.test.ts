// A token path that holds no regular file: a FIFO (with or without a writer), a device.
// Before, open() of a FIFO without a writer blocked a thread of libuv's pool until a writer
// came: four such sources and every fs and dns call in the process waited behind them.
import { FileTokenSource, readTokenFile } from '@podtoken/core';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defer, tempDir, until } from '../helpers.js';

describe('token paths that are not regular files', () => {
  it('a FIFO without a writer: refused at once, and the thread pool stays free for the rest of the process', async () => {
    const dir = await tempDir();
    const fifos = Array.from({ length: 6 }, (_, i) => join(dir, `fifo-${i}`));
    for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
    await expect(readTokenFile(fifos[0]!)).rejects.toMatchObject({ code: 'TOKEN_FILE_UNREADABLE', message: expect.stringContaining('not a regular file') });
    // More sources on FIFOs than libuv has threads (4): other file I/O must still go through.
    const sources = fifos.map((path) => new FileTokenSource({ path, pollInterval: 0, readyTimeout: 0 }));
    for (const source of sources) defer(() => source.close());
    await until('every source has read', () => sources.every((s) => s.status().lastError !== undefined), 5_000);
    for (const source of sources) expect(source.status()).toMatchObject({ state: 'loading', serving: false, lastError: { code: 'TOKEN_FILE_UNREADABLE' } });
    const other = join(dir, 'other');
    await writeFile(other, 'x');
    const started = performance.now();
    expect(await readFile(other, 'utf8')).toBe('x');
    expect(performance.now() - started).toBeLessThan(2_000); // hung for ever before
  });

  it('a FIFO with a writer but no data, and a device, are refused with the same clear error', async () => {
    const dir = await tempDir();
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK); // lets the writer open
    const writer = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    defer(async () => {
      await writer.close();
      await reader.close();
    });
    await expect(readTokenFile(fifo)).rejects.toMatchObject({ code: 'TOKEN_FILE_UNREADABLE', message: expect.stringContaining('not a regular file') });
    await expect(readTokenFile('/dev/zero')).rejects.toMatchObject({ code: 'TOKEN_FILE_UNREADABLE', message: expect.stringContaining('not a regular file') });
    await expect(readTokenFile('/dev/null')).rejects.toMatchObject({ code: 'TOKEN_FILE_UNREADABLE' });
  });

  it('an empty regular file is still an empty token (the kubelet may be writing), not an unreadable one', async () => {
    const dir = await tempDir();
    const path = join(dir, 'token');
    await writeFile(path, '');
    await expect(readTokenFile(path)).resolves.toBe('');
  });
});
