import { createHash } from 'node:crypto';
import type { Ref } from '@podtoken/core';
import { TokenVerificationError } from './errors.js';
import type { Identity, VerificationMethod } from './identity.js';
import { abortable } from './internal/abortable.js';
import { inspectToken, type InspectConfig, type InspectedToken } from './internal/inspect.js';
import { Lazy } from './internal/lazy.js';
import { isSafeUrl, OidcKeys } from './internal/oidc.js';
import { printable } from './internal/printable.js';
import { ExpiringCache } from './internal/reviewCache.js';
import { createReviewer, type KubeConfigLike, type Reviewer, type ReviewStatus } from './internal/tokenReview.js';

export type { KubeConfigLike } from './internal/tokenReview.js';

/** The algorithms the API server can sign ServiceAccount tokens with (RSA and ECDSA keys). */
export const DEFAULT_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512']);

const ASYMMETRIC = new Set(DEFAULT_ALGORITHMS);
const METHODS: readonly VerificationMethod[] = ['tokenreview', 'oidc', 'oidc+tokenreview'];

/** Options of {@link createTokenVerifier}. Only `audiences` is required. */
export interface TokenVerifierOptions {
  /**
   * The audiences this service accepts: a token must hold at least one. Give several during a
   * migration, e.g. the cluster's default audience (the issuer) and the service's own, then
   * drop the old one once every caller sends a token for the new one.
   */
  audiences: string | readonly string[];
  /**
   * How a token is checked:
   * - `'tokenreview'`: the API server checks it (signature, expiry, audience, and that its
   *   Pod and ServiceAccount still exist) with a TokenReview; answers are cached per token for
   *   `cacheTtl`. Needs `@kubernetes/client-node` and the `system:auth-delegator` ClusterRole.
   * - `'oidc'`: checked here against the issuer's public keys (OIDC discovery, jose): no API
   *   call per token, keeps working while the API server is slow or down, but cannot see
   *   whether the Pod still exists, so a stolen token stays good until its `exp`.
   * - `'oidc+tokenreview'`: the local check on every call, and a TokenReview for the object
   *   binding at most once per `cacheTtl` per token.
   * @default 'tokenreview'
   */
  method?: VerificationMethod;
  /**
   * The issuer (`iss`) tokens must carry, the cluster's `--service-account-issuer`. OIDC: also
   * where discovery starts (`<issuer>/.well-known/openid-configuration`), unless `jwksUri` or
   * `discovery: 'in-cluster'` says otherwise. TokenReview: tokens of another issuer are refused
   * without asking the API server.
   * @default OIDC in a pod: the `issuer` of the API server's discovery document; TokenReview: not checked here (the API server checks it)
   */
  issuer?: string;
  /**
   * Where the OIDC keys are found when `jwksUri` is not given:
   * - `'issuer'`: the issuer's discovery document and its `jwks_uri` (needs `issuer`);
   * - `'in-cluster'`: the pod's API server (`https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`),
   *   `/.well-known/openid-configuration` then `/openid/v1/jwks`, with the pod's `ca.crt` and
   *   token (the ServiceAccount needs the default `system:service-account-issuer-discovery` role).
   * @default 'issuer' when `issuer` is given, else 'in-cluster'
   */
  discovery?: 'issuer' | 'in-cluster';
  /** The key set's URL: no discovery. Needs `issuer`. https, or http to a loopback address. */
  jwksUri?: string | URL;
  /** PEM bundle to verify the issuer's and `jwksUri`'s TLS with. @default Node's root certificates ('in-cluster': the pod's ca.crt) */
  ca?: string | Uint8Array;
  /**
   * TokenReview: the KubeConfig to call the API server with (client-node 1.x or 2.x).
   * @default `loadInCluster()` from `@podtoken/kubernetes` (its token follows every rotation); `close()` releases it
   */
  kubeConfig?: KubeConfigLike;
  /**
   * A folder prefixed to the in-cluster paths (`${root}/var/run/secrets/kubernetes.io/serviceaccount/…`),
   * as `loadInCluster`'s `root`: for tests, or a volume mounted elsewhere.
   * @default '' (the real paths)
   */
  root?: string;
  /**
   * Seconds of clock skew allowed on `exp` and `nbf`. The API server allows 60 s on both, so
   * the default keeps the two methods in agreement, and a token minted a moment ago on a node
   * whose clock is a little ahead is not refused as "not yet valid".
   * @default 60
   */
  clockTolerance?: number;
  /**
   * Accept legacy Secret-based tokens (`iss: kubernetes/serviceaccount`). They have no `exp`
   * and no `aud`, so accepting them means accepting a token minted for any service, forever:
   * only for a migration. Their identity has no audiences.
   * @default false
   */
  allowLegacyTokens?: boolean;
  /**
   * The `alg` values accepted; asymmetric only (`none` and `HS*` are refused as options).
   * @default DEFAULT_ALGORITHMS (RS256/384/512, PS256/384/512, ES256/384/512)
   */
  algorithms?: readonly string[];
  /**
   * Characters; a longer token is refused before it is parsed or hashed.
   * @default 16_384
   */
  maxTokenLength?: number;
  /**
   * Milliseconds a TokenReview's "authenticated" answer is reused for the same token (never
   * past its `exp`). With `'oidc+tokenreview'`: how often at most each token is reviewed. The
   * API server itself caches successful authentications for 10 s. 0 turns the cache off.
   * @default 10_000
   */
  cacheTtl?: number;
  /**
   * Milliseconds a TokenReview's "not authenticated" answer is reused for the same token, so
   * that a caller retrying a dead token does not cost an API call per request. Short, because
   * the API server may not have seen a brand-new Pod yet. 0 turns it off.
   * @default 1_000
   */
  rejectionCacheTtl?: number;
  /**
   * TokenReview answers kept at most (least recently used go first).
   * @default 10_000
   */
  cacheSize?: number;
  /**
   * Milliseconds one TokenReview, discovery or key-set request may take.
   * @default 5_000
   */
  timeout?: number;
  /**
   * OIDC: milliseconds after a key-set fetch during which a token with an unknown `kid` is
   * refused without fetching again (jose's `cooldownDuration`).
   * @default 30_000
   */
  jwksCooldown?: number;
  /**
   * OIDC: milliseconds after which the key set is fetched again on the next use (jose's `cacheMaxAge`).
   * @default 600_000
   */
  jwksMaxAge?: number;
}

/** Options of {@link TokenVerifier.verify}. */
export interface VerifyOptions {
  /** Stops waiting: the promise rejects with `signal.reason` (a shared TokenReview goes on for the others). */
  signal?: AbortSignal;
}

/** Checks tokens; see {@link createTokenVerifier}. */
export interface TokenVerifier extends AsyncDisposable {
  /** How tokens are checked. */
  readonly method: VerificationMethod;
  /** The audiences accepted. */
  readonly audiences: readonly string[];
  /**
   * Resolves with the caller's identity, or rejects with a {@link TokenVerificationError}
   * (`TOKEN_*`: the token is refused; other codes: no verdict could be reached, which is
   * never an acceptance). A `TypeError` when `token` is not a string.
   */
  verify(token: string, options?: VerifyOptions): Promise<Identity>;
  /**
   * Sets up what the first verification would: loads client-node and the in-cluster config
   * (TokenReview), discovers the issuer and fetches its keys (OIDC). Call it at start-up to
   * fail early; rejects with the error a verification would get.
   */
  ready(): Promise<void>;
  /** Releases what the verifier opened (token source, CA watcher); later calls reject with `VERIFIER_CLOSED`. */
  close(): Promise<void>;
}

interface Reviewed {
  readonly authenticated: true;
  readonly status: ReviewStatus;
}
interface Rejected {
  readonly authenticated: false;
  readonly error: string | undefined;
}

/**
 * Creates a verifier for the ServiceAccount tokens a service receives: with a TokenReview
 * (the API server decides), locally against the issuer's keys (OIDC), or both.
 *
 * Every token is first checked for what needs no key: its length (before it is read), `alg`,
 * form, kind, issuer, expiry and audience; a token that fails there costs no API call and no
 * key-set fetch.
 *
 * @throws `TypeError` naming the option, for bad options.
 *
 * @example
 * ```ts
 * import { createTokenVerifier } from '@podtoken/verify';
 *
 * // In a pod whose ServiceAccount is bound to system:auth-delegator:
 * const verifier = createTokenVerifier({ audiences: 'https://orders.shop.svc' });
 * await verifier.ready();
 * const identity = await verifier.verify(token);
 * console.log(identity.username, identity.pod?.name); // system:serviceaccount:shop:checkout checkout-7d4b9c-x2k8f
 * ```
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const where = 'createTokenVerifier';
  if (typeof options !== 'object' || options === null) throw new TypeError(`${where}: options must be an object`);
  const audiences = [options.audiences].flat() as unknown[];
  if (audiences.length === 0 || audiences.some((audience) => typeof audience !== 'string' || audience === '')) {
    throw new TypeError(`${where}: audiences must be a non-empty string or a non-empty array of non-empty strings`);
  }
  const method = options.method ?? 'tokenreview';
  if (!METHODS.includes(method)) throw new TypeError(`${where}: method must be one of ${METHODS.map((m) => `'${m}'`).join(', ')}, got ${printable(method)}`);
  const usesOidc = method !== 'tokenreview';
  const usesReview = method !== 'oidc';

  const issuer = options.issuer;
  if (issuer !== undefined && (typeof issuer !== 'string' || issuer === '')) throw new TypeError(`${where}: issuer must be a non-empty string`);
  let jwksUri: URL | undefined;
  if (options.jwksUri !== undefined) {
    try {
      jwksUri = new URL(options.jwksUri);
    } catch {
      throw new TypeError(`${where}: jwksUri must be an absolute URL`);
    }
    if (!isSafeUrl(jwksUri)) throw new TypeError(`${where}: jwksUri must be an https URL (or http to 127.0.0.1, ::1 or localhost)`);
    if (issuer === undefined) throw new TypeError(`${where}: jwksUri needs issuer (the "iss" the tokens must carry)`);
  }
  const discovery = options.discovery ?? (issuer === undefined ? 'in-cluster' : 'issuer');
  if (discovery !== 'issuer' && discovery !== 'in-cluster') throw new TypeError(`${where}: discovery must be 'issuer' or 'in-cluster'`);
  if (usesOidc && jwksUri === undefined && discovery === 'issuer') {
    if (issuer === undefined) throw new TypeError(`${where}: discovery 'issuer' needs issuer`);
    let url: URL;
    try {
      url = new URL(issuer);
    } catch {
      throw new TypeError(`${where}: issuer must be a URL for OIDC discovery (or pass jwksUri, or discovery: 'in-cluster')`);
    }
    if (!isSafeUrl(url)) throw new TypeError(`${where}: issuer must be an https URL for OIDC discovery (or http to 127.0.0.1, ::1 or localhost)`);
  }
  const ca = options.ca;
  if (ca !== undefined && typeof ca !== 'string' && !(ca instanceof Uint8Array)) throw new TypeError(`${where}: ca must be a PEM string or bytes`);
  const kubeConfig = options.kubeConfig;
  if (kubeConfig !== undefined && typeof kubeConfig?.makeApiClient !== 'function') {
    throw new TypeError(`${where}: kubeConfig must be a KubeConfig from @kubernetes/client-node`);
  }
  const root = options.root;
  if (root !== undefined && (typeof root !== 'string' || root === '')) throw new TypeError(`${where}: root must be a non-empty string (a folder path)`);
  const clockTolerance = number(options.clockTolerance, 60, 'clockTolerance', 'seconds');
  const allowLegacyTokens = options.allowLegacyTokens ?? false;
  if (typeof allowLegacyTokens !== 'boolean') throw new TypeError(`${where}: allowLegacyTokens must be a boolean`);
  const algorithms = options.algorithms ?? DEFAULT_ALGORITHMS;
  if (!Array.isArray(algorithms) || algorithms.length === 0 || algorithms.some((alg) => !ASYMMETRIC.has(alg))) {
    throw new TypeError(`${where}: algorithms must be a non-empty array of ${DEFAULT_ALGORITHMS.join(', ')} (never none or HS*)`);
  }
  const maxTokenLength = integer(options.maxTokenLength, 16_384, 'maxTokenLength', 1);
  const cacheTtl = number(options.cacheTtl, 10_000, 'cacheTtl', 'milliseconds');
  const rejectionCacheTtl = number(options.rejectionCacheTtl, 1_000, 'rejectionCacheTtl', 'milliseconds');
  const cacheSize = integer(options.cacheSize, 10_000, 'cacheSize', 0);
  const timeout = integer(options.timeout, 5_000, 'timeout', 1);
  const jwksCooldown = integer(options.jwksCooldown, 30_000, 'jwksCooldown', 0);
  const jwksMaxAge = integer(options.jwksMaxAge, 600_000, 'jwksMaxAge', 0);

  function number(value: unknown, fallback: number, name: string, unit: string): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${where}: ${name} must be a number of ${unit}, >= 0`);
    return value;
  }
  function integer(value: unknown, fallback: number, name: string, min: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) throw new TypeError(`${where}: ${name} must be an integer >= ${min}`);
    return value;
  }

  const accepted = Object.freeze([...(audiences as string[])]);
  const inspectConfig: InspectConfig = {
    maxTokenLength,
    algorithms: new Set(algorithms),
    audiences: new Set(accepted),
    allowLegacyTokens,
    clockTolerance,
  };
  const oidc = usesOidc
    ? new OidcKeys({
        issuer,
        jwksUri,
        discovery,
        ca: ca === undefined ? undefined : typeof ca === 'string' ? ca : Buffer.from(ca),
        root,
        timeout,
        jwksCooldown,
        jwksMaxAge,
        algorithms,
        clockTolerance,
        audiences: accepted,
      })
    : undefined;
  const reviewer = usesReview ? new Lazy<Reviewer>(() => createReviewer(kubeConfig, root)) : undefined;
  const answers = new ExpiringCache<Reviewed | Rejected>(cacheSize);
  const inFlight = new Map<string, Promise<Reviewed | Rejected>>();
  let closed = false;
  let closing: Promise<void> | undefined;

  const closedError = () => new TokenVerificationError('VERIFIER_CLOSED', 'The verifier is closed.');

  /** The TokenReview's answer for `token`: cached, shared with concurrent callers, or asked. */
  function reviewed(token: string, inspected: InspectedToken): Promise<Reviewed | Rejected> {
    // A digest, not the token, is the key: a heap snapshot of the cache holds no credential.
    const key = createHash('sha256').update(token).digest('base64');
    const cached = answers.get(key, Date.now());
    if (cached !== undefined) return Promise.resolve(cached);
    let pending = inFlight.get(key);
    if (pending === undefined) {
      pending = (async () => {
        const client = await reviewer!.get();
        if (closed) throw closedError();
        // Legacy tokens have no audience: asked about ours, the API server would refuse them.
        const status = await client.review(token, inspected.legacy ? undefined : accepted, AbortSignal.timeout(timeout));
        const answer: Reviewed | Rejected = status.authenticated ? { authenticated: true, status } : { authenticated: false, error: status.error };
        const now = Date.now();
        const ttl = status.authenticated ? cacheTtl : rejectionCacheTtl;
        if (!closed) answers.set(key, answer, Math.min(now + ttl, inspected.expiresAtMs), now);
        return answer;
      })().finally(() => inFlight.delete(key));
      inFlight.set(key, pending);
    }
    return pending;
  }

  async function verify(token: string, verifyOptions: VerifyOptions = {}): Promise<Identity> {
    if (closed) throw closedError();
    const signal = verifyOptions.signal;
    signal?.throwIfAborted();
    const inspected = inspectToken(token, inspectConfig, issuer ?? oidc?.issuer);
    if (oidc !== undefined) await abortable(oidc.verify(token, inspected), signal);
    if (reviewer === undefined) return identityOf(inspected, method, undefined);
    const answer = await abortable(reviewed(token, inspected), signal);
    if (!answer.authenticated) {
      throw new TokenVerificationError('TOKEN_REJECTED', `The API server did not authenticate the token${answer.error === undefined ? '' : `: ${answer.error}`}.`);
    }
    return identityOf(inspected, method, answer.status);
  }

  async function ready(): Promise<void> {
    if (closed) throw closedError();
    await Promise.all([oidc?.load(), reviewer?.get()]);
  }

  function close(): Promise<void> {
    closed = true;
    answers.clear();
    closing ??= (async () => {
      const made = reviewer?.settled;
      await Promise.all([oidc?.close(), made?.close()]);
      // A reviewer still being made when close() was called is released once it is there.
      if (made === undefined) await reviewer?.get().then((late) => late.close(), () => {});
    })();
    return closing;
  }

  return {
    method,
    audiences: accepted,
    verify,
    ready,
    close,
    [Symbol.asyncDispose]: close,
  };
}

const POD_NAME = 'authentication.kubernetes.io/pod-name';
const POD_UID = 'authentication.kubernetes.io/pod-uid';
const NODE_NAME = 'authentication.kubernetes.io/node-name';
const NODE_UID = 'authentication.kubernetes.io/node-uid';

/**
 * The identity of a token that passed: from its claims (authenticated by the signature or by
 * the API server), and from the TokenReview's user when there is one, which must name the
 * same ServiceAccount: a token the API server authenticates as someone else (through another
 * authenticator) is refused.
 */
function identityOf(inspected: InspectedToken, method: VerificationMethod, status: ReviewStatus | undefined): Identity {
  const { decoded } = inspected;
  const k8s = decoded.kubernetes!;
  const username = decoded.subject!;
  let serviceAccount: Ref = { name: k8s.serviceAccount.name, uid: k8s.serviceAccount.uid };
  let pod = k8s.pod;
  let node = k8s.node;
  let audiences = inspected.audiences;
  if (status !== undefined) {
    if (status.username !== username) {
      throw new TokenVerificationError(
        'TOKEN_CLAIMS_INVALID',
        `The API server authenticated the token as ${printable(status.username)}, not as the ServiceAccount its claims name.`,
      );
    }
    if (!inspected.legacy) {
      const confirmed = status.audiences.filter((audience) => inspected.audiences.includes(audience));
      if (confirmed.length === 0) {
        throw new TokenVerificationError(
          'TOKEN_AUDIENCE_MISMATCH',
          'The API server did not confirm any of this service\'s audiences for the token (an audience-unaware authenticator accepted it).',
        );
      }
      audiences = confirmed;
    }
    if (status.uid) serviceAccount = { name: serviceAccount.name, uid: status.uid };
    const first = (key: string) => status.extra[key]?.[0];
    const podName = first(POD_NAME);
    if (podName !== undefined) pod = { name: podName, uid: first(POD_UID) ?? '' };
    const nodeName = first(NODE_NAME);
    if (nodeName !== undefined) node = { name: nodeName, uid: first(NODE_UID) ?? '' };
  }
  const identity: { -readonly [K in keyof Identity]: Identity[K] } = {
    username,
    namespace: k8s.namespace,
    serviceAccount: Object.freeze(serviceAccount),
    audiences: Object.freeze([...audiences]),
    method,
    legacy: inspected.legacy,
  };
  if (pod !== undefined) identity.pod = Object.freeze({ name: pod.name, uid: pod.uid });
  if (node !== undefined) identity.node = Object.freeze({ name: node.name, uid: node.uid });
  if (decoded.expiresAt !== undefined) identity.expiresAt = new Date(decoded.expiresAt.getTime());
  if (decoded.issuer !== undefined) identity.issuer = decoded.issuer;
  if (status !== undefined) identity.groups = Object.freeze([...status.groups]);
  return Object.freeze(identity);
}
