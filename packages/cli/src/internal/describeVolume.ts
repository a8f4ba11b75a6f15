import { lstat, readlink, stat } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import type { VolumeInfo } from '../inspectReport.js';

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
