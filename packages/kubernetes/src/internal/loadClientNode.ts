import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type * as ClientNode from '@kubernetes/client-node';
import { ClientNodeVersionError } from '../clientNodeVersionError.js';

const require = createRequire(import.meta.url);
const loaded = new Map<string, typeof ClientNode>();

/**
 * The `@kubernetes/client-node` module this package resolves, loaded on first use rather than
 * imported: 2.x throws while it loads on Node 20 (its undici 8 needs Node 22), and a static
 * import would make that crash happen on `import '@podtoken/kubernetes'`, where nobody can
 * catch it. `require()` of an ES module (Node >= 20.19) is synchronous, so `loadInCluster`
 * stays synchronous, and it shares the module instance with `import`.
 *
 * @param specifier - what to resolve (tests pass another installed copy).
 * @throws {@link ClientNodeVersionError} when it cannot load because this Node is too old for it.
 */
export function loadClientNode(specifier = '@kubernetes/client-node'): typeof ClientNode {
  const cached = loaded.get(specifier);
  if (cached !== undefined) return cached;
  let module: typeof ClientNode;
  try {
    module = require(specifier) as typeof ClientNode;
  } catch (error) {
    const found = versionOf(specifier);
    const nodeMajor = Number(process.versions.node.split('.')[0]);
    if (found !== undefined && Number(found.version.split('.')[0]) >= 2 && nodeMajor < 22) {
      throw new ClientNodeVersionError(found.version, process.versions.node, found.requiredNode ?? '>=22', { cause: error });
    }
    throw error;
  }
  loaded.set(specifier, module);
  return module;
}

/** The resolved copy's version, and the Node its undici needs (when that can be read). */
function versionOf(specifier: string): { version: string; requiredNode: string | undefined } | undefined {
  try {
    const main = require.resolve(specifier);
    let dir = dirname(main);
    for (let depth = 0; depth < 5; depth += 1, dir = dirname(dir)) {
      let manifest: { name?: string; version?: string; engines?: { node?: string } };
      try {
        manifest = require(join(dir, 'package.json')) as typeof manifest;
      } catch {
        continue;
      }
      if (manifest.name !== '@kubernetes/client-node' || typeof manifest.version !== 'string') continue;
      let requiredNode = manifest.engines?.node;
      try {
        const undici = createRequire(join(dir, 'package.json'))('undici/package.json') as { engines?: { node?: string } };
        requiredNode ??= undici.engines?.node;
      } catch {
        // no undici beside it (1.x): nothing more to say
      }
      return { version: manifest.version, requiredNode };
    }
  } catch {
    // not resolvable: the original error says so
  }
  return undefined;
}
