import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileTokenSource, type FileTokenSourceOptions } from '@podtoken/core';
import { FakeKubelet } from './fakeKubelet.js';
import { createIssuer, type Issuer } from './issuer.js';
import { ProjectedVolume } from './projectedVolume.js';
import { startTokenServer, type TokenServer, type TokenServerOptions } from './tokenServer.js';

/** Options of {@link startSimulatedPod}. */
export interface SimulatedPodOptions {
  /**
   * The audience of the projected token: what the kubelet asks for, what the server accepts,
   * and what the {@link SimulatedPodOptions.source source} checks.
   * @default the issuer's own (the API server audience), `issuer.issuer`
   */
  audience?: string | string[];
  /**
   * The projection's `expirationSeconds`: how long each token lives; may be fractional.
   * @default 3607
   */
  expirationSeconds?: number;
  /**
   * Fraction of each token's lifetime after which the kubelet writes the next one (with
   * `kubelet: 'start'`).
   * @default 0.8 (the kubelet's rule)
   */
  rotateAfter?: number;
  /** The token's file name in the volume (the projection's `path`). @default 'token' */
  file?: string;
  /** Other files of the volume, written with every token (e.g. `ca.crt`, `namespace`). */
  files?: Record<string, string | Uint8Array>;
  /**
   * What the kubelet does before `startSimulatedPod` resolves:
   * - `'once'`: writes the first token; later ones only when you call `kubelet.rotate()`;
   * - `'start'`: `kubelet.start()`: the first token now, then one at `rotateAfter` of each
   *   lifetime, on real or fake timers;
   * - `'none'`: writes nothing: the volume is empty until you write it or start the kubelet.
   * @default 'once'
   */
  kubelet?: 'once' | 'start' | 'none';
  /**
   * Also make a `FileTokenSource` on the token file and wait for its first token: `true`, or
   * the source's options (`path` is the pod's; `audience` defaults to the pod's).
   * Needs a token on disk, so not with `kubelet: 'none'`.
   * @default no source: make your own, as the app in a real pod does
   */
  source?: true | Omit<FileTokenSourceOptions, 'path'>;
  /** Reuse a signer (several pods, one cluster). @default a fresh `createIssuer()` */
  issuer?: Issuer;
  /** The verifying server's `port` and `handler` (see `startTokenServer`). */
  server?: Pick<TokenServerOptions, 'port' | 'handler'>;
  /**
   * The temp folder's name prefix: the pod lives in `<os tmpdir>/<name>-XXXXXX`.
   * @default 'podtoken-pod'
   */
  name?: string;
  /**
   * Where the volume is mounted, relative to the temp folder (a pod spec's `mountPath`).
   * @default 'var/run/secrets/tokens'
   */
  mountPath?: string;
}

/** A running simulated pod; see {@link startSimulatedPod}. */
export interface SimulatedPod<S extends FileTokenSource | undefined = FileTokenSource | undefined> extends AsyncDisposable {
  /** The temp folder everything lives in; `close()` removes it. */
  readonly dir: string;
  /** The cluster's service-account signer. */
  readonly issuer: Issuer;
  /** The projected volume, at `<dir>/<mountPath>`. */
  readonly volume: ProjectedVolume;
  /** Writes the token into `volume` (see the `kubelet` option). */
  readonly kubelet: FakeKubelet;
  /** An API on 127.0.0.1 that verifies tokens of `issuer` for the pod's audience. */
  readonly server: TokenServer;
  /** The token file's path: what a real pod passes to `new FileTokenSource({ path })`. */
  readonly tokenPath: string;
  /** The source made with the `source` option, ready; `undefined` without it. */
  readonly source: S;
  /** Stops the kubelet, closes the source and the server, and removes `dir`. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Sets up what a pod with a projected ServiceAccount token sees, in a temp folder: a signer
 * ({@link createIssuer}), the kubelet's atomic-writer volume ({@link ProjectedVolume}) with a
 * {@link FakeKubelet} writing the token, an API that verifies it ({@link startTokenServer}),
 * and optionally a `FileTokenSource` on the token file. One `close()` (or `await using`)
 * tears it all down. When a step fails, what was already started is closed again.
 *
 * @example
 * ```ts
 * import { FileTokenSource } from '@podtoken/core';
 * import { startSimulatedPod } from '@podtoken/testing';
 *
 * const pod = await startSimulatedPod({ audience: 'vault', expirationSeconds: 4, rotateAfter: 0.25, kubelet: 'start' });
 * try {
 *   const source = new FileTokenSource({ path: pod.tokenPath, audience: 'vault' });
 *   const response = await fetch(pod.server.url, { headers: { authorization: `Bearer ${await source.getToken()}` } });
 *   // response.status === 200; pod.server.counts.ok === 1
 *   await source.close();
 * } finally {
 *   await pod.close();
 * }
 * ```
 */
export function startSimulatedPod(options: SimulatedPodOptions & { source: true | Omit<FileTokenSourceOptions, 'path'> }): Promise<SimulatedPod<FileTokenSource>>;
export function startSimulatedPod(options?: SimulatedPodOptions): Promise<SimulatedPod>;
export async function startSimulatedPod(options: SimulatedPodOptions = {}): Promise<SimulatedPod> {
  if (typeof options !== 'object' || options === null) throw new TypeError('startSimulatedPod: options must be an object');
  const kubeletMode = options.kubelet ?? 'once';
  if (kubeletMode !== 'once' && kubeletMode !== 'start' && kubeletMode !== 'none') {
    throw new TypeError(`startSimulatedPod: kubelet must be 'once', 'start' or 'none', got ${String(kubeletMode)}`);
  }
  if (options.source !== undefined && kubeletMode === 'none') {
    throw new TypeError("startSimulatedPod: source needs a token on disk: use kubelet 'once' or 'start', or make the source yourself");
  }
  const name = options.name ?? 'podtoken-pod';
  if (typeof name !== 'string' || name === '' || /[/\\]/.test(name)) throw new TypeError('startSimulatedPod: name must be a non-empty folder name');

  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  let kubelet: FakeKubelet | undefined;
  let server: TokenServer | undefined;
  let source: FileTokenSource | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      // stop() resolves once a rotation under way has finished writing into the folder.
      await Promise.all([kubelet?.stop(), source?.close(), server?.close()]);
      await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    })();
    return closing;
  };

  try {
    const issuer = options.issuer ?? (await createIssuer());
    const audience = options.audience ?? issuer.issuer;
    const volume = new ProjectedVolume({ dir: join(dir, options.mountPath ?? 'var/run/secrets/tokens') });
    kubelet = new FakeKubelet({
      volume,
      issuer,
      audience,
      ...(options.file === undefined ? {} : { file: options.file }),
      ...(options.expirationSeconds === undefined ? {} : { expirationSeconds: options.expirationSeconds }),
      ...(options.rotateAfter === undefined ? {} : { rotateAfter: options.rotateAfter }),
      ...(options.files === undefined ? {} : { files: options.files }),
    });
    server = await startTokenServer({ ...options.server, issuer, audience });
    if (kubeletMode === 'start') await kubelet.start();
    else if (kubeletMode === 'once') await kubelet.rotate();
    if (options.source !== undefined) {
      source = new FileTokenSource({ audience, ...(options.source === true ? {} : options.source), path: kubelet.path });
      await source.ready();
    }
    return {
      dir,
      issuer,
      volume,
      kubelet,
      server,
      tokenPath: kubelet.path,
      source,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
