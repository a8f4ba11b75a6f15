import { FileTokenSource, type FileTokenSourceOptions } from './fileTokenSource.js';

/** Named {@link FileTokenSource}s made by {@link createTokenSources}. */
export interface TokenSources<K extends string> extends AsyncDisposable {
  /** The source made for `name`. Throws a `TypeError` for a name that was not in the specs. */
  get(name: K): FileTokenSource;
  /** Every source, by name. */
  readonly names: readonly K[];
  /** Resolves when every source has its first token; rejects with the first failure. */
  ready(): Promise<void>;
  /** Closes every source. */
  close(): Promise<void>;
}

/**
 * Makes one {@link FileTokenSource} per audience-specific token a pod holds. Sources over
 * files in the same folder share one folder watcher. Each source's `name` (in events,
 * metrics and readiness reports) is its key, unless its spec gives one.
 *
 * @example
 * ```ts
 * const tokens = createTokenSources({
 *   kubernetes: {},
 *   vault: { path: '/var/run/secrets/tokens/vault-token', audience: 'vault' },
 * });
 * const vault = withTokenSource(axios.create({ baseURL: 'https://vault:8200' }), tokens.get('vault'));
 * ```
 */
export function createTokenSources<K extends string>(specs: Record<K, FileTokenSourceOptions>): TokenSources<K> {
  if (typeof specs !== 'object' || specs === null) throw new TypeError('createTokenSources: specs must be an object');
  const names = Object.keys(specs) as K[];
  const sources = new Map<K, FileTokenSource>();
  try {
    for (const name of names) {
      const spec = specs[name];
      // The key names the source in events, metrics and readiness reports, unless the spec names it.
      sources.set(name, new FileTokenSource(spec?.name === undefined && name !== '' ? { ...spec, name } : spec));
    }
  } catch (error) {
    for (const source of sources.values()) void source.close();
    throw error;
  }
  const close = async () => {
    await Promise.all([...sources.values()].map((source) => source.close()));
  };
  return {
    names: Object.freeze(names),
    get(name: K): FileTokenSource {
      const source = sources.get(name);
      if (source === undefined) {
        throw new TypeError(`createTokenSources: no source named ${JSON.stringify(name)}; known: ${names.join(', ')}`);
      }
      return source;
    },
    async ready() {
      await Promise.all([...sources.values()].map((source) => source.ready()));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
