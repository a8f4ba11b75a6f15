import { memfs } from 'memfs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { readTokenFile, type TokenFileSystem } from '../src/index.js';

describe('readTokenFile', () => {
  const { fs } = memfs({ '/t/token': 'abc\n', '/t/big': 'x'.repeat(100) });
  const options = { fs: fs as unknown as TokenFileSystem };

  it('reads once, with the same codes a FileTokenSource reports', async () => {
    await expect(readTokenFile('/t/token', options)).resolves.toBe('abc\n');
    await expect(readTokenFile('/t/missing', options)).rejects.toMatchObject({ code: 'TOKEN_FILE_MISSING', path: '/t/missing' });
    await expect(readTokenFile('/t/big', { ...options, maxTokenBytes: 99 })).rejects.toMatchObject({ code: 'TOKEN_TOO_LARGE' });
    await expect(readTokenFile('/t/big', { ...options, maxTokenBytes: 100 })).resolves.toHaveLength(100);
    // memfs reads a folder as empty; node:fs says EISDIR, as a pod's file system would.
    await expect(readTokenFile(tmpdir())).rejects.toMatchObject({ code: 'TOKEN_FILE_UNREADABLE' });
    expect(() => readTokenFile('', options)).toThrow(TypeError);
    expect(() => readTokenFile('/t/token', { maxTokenBytes: 0 })).toThrow(/maxTokenBytes/);
  });
});
