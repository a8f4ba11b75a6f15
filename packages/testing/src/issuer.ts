import { createHash, KeyObject, randomUUID, sign as signBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWTPayload } from 'jose';

/** Options of {@link createIssuer}. */
export interface IssuerOptions {
  /**
   * The `iss` claim, as a cluster's `--service-account-issuer`.
   * @default 'https://kubernetes.default.svc.cluster.local'
   */
  issuer?: string;
  /**
   * Signing algorithm; the API server signs with RS256 by default.
   * @default 'RS256'
   */
  alg?: 'RS256' | 'ES256';
}

/** Options of {@link Issuer.mint}: the fields of a TokenRequest, plus the clock. */
export interface MintOptions {
  /**
   * `aud`. The API server's default audience is its issuer.
   * @default [issuer]
   */
  audience?: string | string[];
  /**
   * Requested lifetime in seconds (the projected volume's `expirationSeconds`). From 600 s
   * (the API server's minimum) `exp` is `iat + expirationSeconds`, both cut from the same
   * instant, as the API server mints it. Shorter and fractional lifetimes, which no API server
   * issues but tests use, give `exp` = the clock plus the lifetime rounded up to a whole second,
   * so the token lives at least that long.
   * @default 3607
   */
  expirationSeconds?: number;
  /**
   * Do what the API server does for the default token with
   * `--service-account-extend-token-expiration` (its default): `exp = iat + 1 year` and
   * `warnafter = iat + 3607`. The API server extends only a token bound to a pod and
   * requested for exactly 3607 s (the kubelet's default token), so anything else throws a
   * `TypeError`; set `claims` to mint a token no API server would.
   * @default false
   */
  extendExpiration?: boolean;
  /** @default 'default' */
  namespace?: string;
  /** @default 'default' */
  serviceAccount?: string;
  /** The bound pod's name; `false` for a token bound to no pod. @default 'app-0' */
  pod?: string | false;
  /**
   * The node's name, in `kubernetes.io.node` (API servers add it by default since 1.30, and
   * in 1.29 behind a feature gate); `false` to leave it out, as older ones do. @default 'node-1'
   */
  node?: string | false;
  /**
   * The `jti` claim (API servers add one by default since 1.30, and in 1.29 behind a feature
   * gate); `false` to leave it out, as older ones do.
   * @default a fresh UUID
   */
  jti?: string | false;
  /** `iat` and `nbf`. @default now (Date.now() at the call, so fake timers apply) */
  issuedAt?: Date;
  /** Extra claims, merged last (they can override any of the above). */
  claims?: JWTPayload;
}

/** Options of {@link Issuer.mintLegacy}: a pre-1.24 Secret-based token. */
export interface MintLegacyOptions {
  /** @default 'default' */
  namespace?: string;
  /** @default 'default' */
  serviceAccount?: string;
  /** @default `${serviceAccount}-token-abcde` */
  secretName?: string;
}

/** A token issuer with a real key pair, like a cluster's service-account signer. */
export interface Issuer {
  /** The `iss` of the tokens it mints. */
  readonly issuer: string;
  readonly alg: 'RS256' | 'ES256';
  /**
   * The public key set a verifier needs (what `/openid/v1/jwks` serves). Its `kid` is derived
   * from the public key as the API server derives it, and is in every token's header.
   */
  readonly jwks: JSONWebKeySet;
  /** Mints a signed bound token with the claims a real cluster puts in one. */
  mint(options?: MintOptions): Promise<string>;
  /** Mints a signed legacy token: `iss: kubernetes/serviceaccount`, no `exp`, no `aud`. */
  mintLegacy(options?: MintLegacyOptions): Promise<string>;
}

const YEAR_SECONDS = 365 * 24 * 60 * 60;
// The one lifetime the API server extends (pkg/serviceaccount: WarnOnlyBoundTokenExpirationSeconds).
const EXTENDED_REQUEST_SECONDS = 3607;
// The shortest lifetime a TokenRequest may ask for.
const MIN_REQUEST_SECONDS = 600;
export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

/**
 * Creates an issuer with a fresh key pair. Tokens are minted at run time: never commit one.
 *
 * @example
 * ```ts
 * const issuer = await createIssuer();
 * const token = await issuer.mint({ audience: 'vault', expirationSeconds: 600 });
 * ```
 */
export async function createIssuer(options: IssuerOptions = {}): Promise<Issuer> {
  const issuer = options.issuer ?? DEFAULT_ISSUER;
  const alg = options.alg ?? 'RS256';
  if (typeof issuer !== 'string' || issuer === '') throw new TypeError('createIssuer: issuer must be a non-empty string');
  if (alg !== 'RS256' && alg !== 'ES256') throw new TypeError(`createIssuer: alg must be 'RS256' or 'ES256', got ${String(alg)}`);
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  // As the API server: base64url(SHA-256(DER of the public key)), so a kid reads like a real one.
  const kid = createHash('sha256').update(KeyObject.from(publicKey).export({ type: 'spki', format: 'der' })).digest('base64url');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  const jwks: JSONWebKeySet = { keys: [jwk] };

  const key = KeyObject.from(privateKey);
  // Signed synchronously with node:crypto (jose's SignJWT goes through WebCrypto, whose
  // promises settle on the thread pool): a mint then completes within vitest's
  // advanceTimersByTimeAsync, so a FakeKubelet on fake timers rotates exactly on time.
  const sign = async (payload: JWTPayload): Promise<string> => {
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    // The API server's header holds alg and kid only (no typ).
    const input = `${encode({ alg, kid })}.${encode(payload)}`;
    const signature =
      alg === 'RS256'
        ? signBytes('sha256', Buffer.from(input), key)
        : signBytes('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  };

  return {
    issuer,
    alg,
    jwks,
    async mint(mint: MintOptions = {}) {
      const expirationSeconds = mint.expirationSeconds ?? 3607;
      if (!Number.isFinite(expirationSeconds) || expirationSeconds <= 0) {
        throw new TypeError(`mint: expirationSeconds must be a positive number, got ${String(expirationSeconds)}`);
      }
      if (mint.extendExpiration && (expirationSeconds !== EXTENDED_REQUEST_SECONDS || mint.pod === false)) {
        throw new TypeError(
          `mint: extendExpiration applies only to a pod-bound token requested for ${EXTENDED_REQUEST_SECONDS} s, as on the API server ` +
            `(got expirationSeconds ${String(expirationSeconds)}${mint.pod === false ? ', pod false' : ''}); use claims to mint anything else`,
        );
      }
      const now = (mint.issuedAt?.getTime() ?? Date.now()) / 1000;
      const iat = Math.floor(now);
      // The API server truncates iat and exp from one instant: exp - iat is exactly the lifetime.
      // Below its 600 s minimum, exp is rounded up instead, so that a 1–2 s test token minted
      // 0.9 s into a second still lives at least as long as asked.
      const lifetimeEnd =
        Number.isInteger(expirationSeconds) && expirationSeconds >= MIN_REQUEST_SECONDS ? iat + expirationSeconds : Math.ceil(now + expirationSeconds);
      const namespace = mint.namespace ?? 'default';
      const serviceAccount = mint.serviceAccount ?? 'default';
      const podName = mint.pod ?? 'app-0';
      const nodeName = mint.node ?? 'node-1';
      const k8s: Record<string, unknown> = {
        namespace,
        serviceaccount: { name: serviceAccount, uid: randomUUID() },
      };
      if (podName !== false) k8s['pod'] = { name: podName, uid: randomUUID() };
      if (nodeName !== false) k8s['node'] = { name: nodeName, uid: randomUUID() };
      if (mint.extendExpiration) k8s['warnafter'] = iat + expirationSeconds;
      const payload: JWTPayload = {
        aud: [mint.audience ?? issuer].flat(),
        exp: mint.extendExpiration ? iat + YEAR_SECONDS : lifetimeEnd,
        iat,
        nbf: iat,
        iss: issuer,
        ...(mint.jti === false ? {} : { jti: mint.jti ?? randomUUID() }),
        sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
        'kubernetes.io': k8s,
        ...mint.claims,
      };
      return sign(payload);
    },
    async mintLegacy(legacy: MintLegacyOptions = {}) {
      const namespace = legacy.namespace ?? 'default';
      const serviceAccount = legacy.serviceAccount ?? 'default';
      return sign(
        {
          iss: 'kubernetes/serviceaccount',
          sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
          'kubernetes.io/serviceaccount/namespace': namespace,
          'kubernetes.io/serviceaccount/secret.name': legacy.secretName ?? `${serviceAccount}-token-abcde`,
          'kubernetes.io/serviceaccount/service-account.name': serviceAccount,
          'kubernetes.io/serviceaccount/service-account.uid': randomUUID(),
        },
      );
    },
  };
}
