import { readFile } from 'node:fs/promises';
import { bearer, FileTokenSource, tokenForRetry } from '@podtoken/core';
import { createRemoteJWKSet, customFetch, jwtVerify, type FetchImplementation, type JWTVerifyOptions } from 'jose';
import { TokenVerificationError, type VerificationErrorCode } from '../errors.js';
import { httpGet, type HttpGetResponse } from './httpGet.js';
import { inClusterEndpoint } from './inCluster.js';
import { Lazy } from './lazy.js';
import { LEGACY_ISSUER, type InspectedToken } from './inspect.js';
import { printable } from './printable.js';
import { safeCause } from './safeCause.js';

/** What {@link OidcKeys} needs from the verifier's options. */
export interface OidcConfig {
  /** The expected `iss`; undefined: taken from the in-cluster discovery document. */
  readonly issuer: string | undefined;
  /** Keys from here, without discovery. */
  readonly jwksUri: URL | undefined;
  readonly discovery: 'issuer' | 'in-cluster';
  readonly ca: string | Buffer | undefined;
  readonly root: string | undefined;
  /** ms, per fetch. */
  readonly timeout: number;
  /** ms. */
  readonly jwksCooldown: number;
  /** ms. */
  readonly jwksMaxAge: number;
  readonly algorithms: readonly string[];
  /** Seconds. */
  readonly clockTolerance: number;
  readonly audiences: readonly string[];
}

/** The discovery document and the key set are small; anything larger is refused unread. */
const MAX_DOCUMENT_BYTES = 1 << 20;
const JSON_ACCEPT = 'application/json, application/jwk-set+json';

type KeySet = ReturnType<typeof createRemoteJWKSet>;

interface Keys {
  readonly issuer: string;
  readonly jwks: KeySet;
}

/**
 * The OIDC half of the verifier: finds the issuer's key set (from `jwksUri`, the issuer's
 * discovery document, or the in-cluster API server's), keeps it with jose's
 * `createRemoteJWKSet` (refetched on an unknown `kid`, at most once per cooldown, and every
 * `jwksMaxAge`), and checks a token's signature and claims with `jwtVerify`.
 */
export class OidcKeys {
  readonly #config: OidcConfig;
  readonly #keys = new Lazy(() => this.#discover());
  #issuer: string | undefined;
  #source: FileTokenSource | undefined;
  #closed = false;
  #boundOptions: JWTVerifyOptions | undefined;
  #legacyOptions: JWTVerifyOptions | undefined;

  constructor(config: OidcConfig) {
    this.#config = config;
    this.#issuer = config.issuer;
  }

  /** The expected `iss`, once known (always, unless discovered in the cluster). */
  get issuer(): string | undefined {
    return this.#issuer;
  }

  /** The key set, discovered once (again after a failure, at most once a second). */
  keys(): Promise<Keys> {
    return this.#keys.get();
  }

  /** Fetches the key set now (for `ready()`): discovery errors and key-set errors alike reject. */
  async load(): Promise<void> {
    const { jwks } = await this.keys();
    try {
      await jwks.reload();
    } catch (error) {
      throw unavailable('The issuer\'s key set could not be fetched', error);
    }
  }

  /**
   * Checks the signature with the issuer's keys, and `iss`, `aud`, `exp`, `nbf` and `alg` again
   * (jose's own checks, on the same bytes {@link inspectToken} read).
   */
  async verify(token: string, inspected: InspectedToken): Promise<void> {
    const { issuer, jwks } = await this.keys();
    if (!inspected.legacy && inspected.decoded.issuer !== issuer) {
      // Known only now when the issuer was discovered.
      throw new TokenVerificationError(
        'TOKEN_ISSUER_MISMATCH',
        `The token's issuer is ${printable(inspected.decoded.issuer)}, not ${printable(issuer)}.`,
      );
    }
    // Made once per issuer: jose only reads them.
    const options = inspected.legacy ? (this.#legacyOptions ??= this.#options(LEGACY_ISSUER, false)) : (this.#boundOptions ??= this.#options(issuer, true));
    try {
      await jwtVerify(token, jwks, options);
    } catch (error) {
      throw fromJose(error, token);
    }
  }

  #options(issuer: string, bound: boolean): JWTVerifyOptions {
    const options: JWTVerifyOptions = {
      issuer,
      algorithms: [...this.#config.algorithms],
      clockTolerance: this.#config.clockTolerance,
      requiredClaims: bound ? ['exp', 'sub'] : ['sub'],
    };
    // Legacy tokens carry no audience: allowing them means not asking for one.
    if (bound) options.audience = [...this.#config.audiences];
    return options;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#source?.close();
  }

  async #discover(): Promise<Keys> {
    const config = this.#config;
    if (config.jwksUri !== undefined) {
      return { issuer: config.issuer!, jwks: this.#keySet(config.jwksUri, (url, signal) => this.#get(url, signal, config.ca)) };
    }
    if (config.discovery === 'issuer') {
      const issuer = config.issuer!;
      const document = await this.#document(new URL(`${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`), (url, signal) =>
        this.#get(url, signal, config.ca),
      );
      if (document.issuer !== issuer) {
        throw new TokenVerificationError(
          'DISCOVERY_FAILED',
          `The discovery document of ${issuer} names the issuer ${printable(document.issuer)}: it must be the same string (OpenID Connect Discovery 1.0, section 4.3).`,
        );
      }
      let jwksUri: URL;
      try {
        jwksUri = new URL(String(document.jwks_uri));
      } catch {
        throw new TokenVerificationError('DISCOVERY_FAILED', `The discovery document of ${issuer} has no usable "jwks_uri".`);
      }
      if (!isSafeUrl(jwksUri)) {
        throw new TokenVerificationError('DISCOVERY_FAILED', `The discovery document of ${issuer} has a "jwks_uri" that is not https: ${printable(jwksUri.href)}.`);
      }
      return { issuer, jwks: this.#keySet(jwksUri, (url, signal) => this.#get(url, signal, config.ca)) };
    }

    // In a pod: the API server's own discovery endpoints, with the pod's CA and token.
    const endpoint = inClusterEndpoint(config.root);
    if ('missing' in endpoint) {
      throw new TokenVerificationError(
        'DISCOVERY_FAILED',
        `Cannot discover the cluster's issuer: not running in a pod (missing ${endpoint.missing.join(', ')}). Outside a pod, pass issuer (and jwksUri when the issuer cannot be reached).`,
      );
    }
    if (this.#closed) throw new TokenVerificationError('VERIFIER_CLOSED', 'The verifier is closed.');
    const source = (this.#source ??= new FileTokenSource({ path: endpoint.tokenPath }));
    const get = async (url: URL, signal: AbortSignal): Promise<HttpGetResponse> => {
      const ca = await readFile(endpoint.caPath);
      const token = await source.getToken({ signal });
      const response = await httpGet(url, { ca, authorization: bearer(token), signal, maxBytes: MAX_DOCUMENT_BYTES, accept: JSON_ACCEPT });
      if (response.status !== 401) return response;
      // The pod's token was refused: re-read it, and ask once more when it changed.
      const next = await tokenForRetry(source, token, signal);
      return next === undefined ? response : httpGet(url, { ca, authorization: bearer(next), signal, maxBytes: MAX_DOCUMENT_BYTES, accept: JSON_ACCEPT });
    };
    const document = await this.#document(new URL('/.well-known/openid-configuration', endpoint.origin), get);
    const issuer = document.issuer;
    if (typeof issuer !== 'string' || issuer === '') {
      throw new TokenVerificationError('DISCOVERY_FAILED', `The API server's discovery document at ${endpoint.origin} names no issuer.`);
    }
    if (config.issuer !== undefined && issuer !== config.issuer) {
      throw new TokenVerificationError(
        'DISCOVERY_FAILED',
        `The API server at ${endpoint.origin} names the issuer ${printable(issuer)}, not the configured ${printable(config.issuer)}.`,
      );
    }
    this.#issuer = issuer;
    // The document's jwks_uri names the address the issuer publishes to the world (often not
    // reachable from the pod); the API server always serves the same keys at this path.
    return { issuer, jwks: this.#keySet(new URL('/openid/v1/jwks', endpoint.origin), get) };
  }

  async #document(url: URL, get: (url: URL, signal: AbortSignal) => Promise<HttpGetResponse>): Promise<Record<string, unknown>> {
    let response: HttpGetResponse;
    try {
      response = await get(url, AbortSignal.timeout(this.#config.timeout));
    } catch (error) {
      throw unavailable(`The discovery document at ${url.href} could not be fetched`, error);
    }
    if (response.status !== 200) {
      throw new TokenVerificationError('DISCOVERY_FAILED', `The discovery document at ${url.href} was answered with HTTP ${response.status}.`, {
        status: response.status,
      });
    }
    let document: unknown;
    try {
      document = JSON.parse(response.body.toString('utf8'));
    } catch {
      document = undefined;
    }
    if (typeof document !== 'object' || document === null || Array.isArray(document)) {
      throw new TokenVerificationError('DISCOVERY_FAILED', `The discovery document at ${url.href} is not a JSON object.`);
    }
    return document as Record<string, unknown>;
  }

  #keySet(url: URL, get: (url: URL, signal: AbortSignal) => Promise<HttpGetResponse>): KeySet {
    const fetchImplementation: FetchImplementation = async (href, init) => {
      const { status, body } = await get(new URL(href), init.signal);
      // Response refuses a body with 204/304 and statuses outside 200–599; jose wants a 200 anyway.
      if (status < 200 || status > 599 || status === 204 || status === 205 || status === 304) return new Response(null, { status: 502 });
      return new Response(new Uint8Array(body), { status, headers: { 'content-type': 'application/json' } });
    };
    return createRemoteJWKSet(url, {
      timeoutDuration: this.#config.timeout,
      cooldownDuration: this.#config.jwksCooldown,
      cacheMaxAge: this.#config.jwksMaxAge,
      [customFetch]: fetchImplementation,
    });
  }

  #get(url: URL, signal: AbortSignal, ca: string | Buffer | undefined): Promise<HttpGetResponse> {
    return httpGet(url, { ca, signal, maxBytes: MAX_DOCUMENT_BYTES, accept: JSON_ACCEPT });
  }
}

/** http: only to a loopback address (tests, a local issuer); everything else must be https:. */
export function isSafeUrl(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

function unavailable(what: string, error: unknown): TokenVerificationError {
  if (error instanceof TokenVerificationError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new TokenVerificationError('DISCOVERY_FAILED', `${what}: ${reason}`, { cause: error });
}

// jose's codes for what a token did wrong; any other failure is the key set's (a fetch).
const JOSE_CODES: Record<string, VerificationErrorCode> = {
  ERR_JWT_EXPIRED: 'TOKEN_EXPIRED',
  ERR_JOSE_ALG_NOT_ALLOWED: 'TOKEN_ALGORITHM_NOT_ALLOWED',
  ERR_JOSE_NOT_SUPPORTED: 'TOKEN_ALGORITHM_NOT_ALLOWED',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'TOKEN_SIGNATURE_INVALID',
  ERR_JWKS_NO_MATCHING_KEY: 'TOKEN_KEY_NOT_FOUND',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'TOKEN_KEY_NOT_FOUND',
  ERR_JWS_INVALID: 'TOKEN_MALFORMED',
  ERR_JWT_INVALID: 'TOKEN_MALFORMED',
};
const CLAIM_CODES: Record<string, VerificationErrorCode> = {
  nbf: 'TOKEN_NOT_YET_VALID',
  aud: 'TOKEN_AUDIENCE_MISMATCH',
  iss: 'TOKEN_ISSUER_MISMATCH',
};
const MESSAGES: Partial<Record<VerificationErrorCode, string>> = {
  TOKEN_EXPIRED: 'The token has expired.',
  TOKEN_NOT_YET_VALID: 'The token is not valid yet.',
  TOKEN_AUDIENCE_MISMATCH: 'The token is not for this service\'s audiences.',
  TOKEN_ISSUER_MISMATCH: 'The token is not from the expected issuer.',
  TOKEN_ALGORITHM_NOT_ALLOWED: 'The token\'s algorithm is not allowed.',
  TOKEN_SIGNATURE_INVALID: 'The token\'s signature does not verify with the issuer\'s keys.',
  TOKEN_KEY_NOT_FOUND: 'No key of the issuer\'s key set matches the token\'s "kid", even after fetching the key set again; the key is unknown, or was rotated in less than jwksCooldown ago.',
  TOKEN_MALFORMED: 'The token is not a well-formed JWS.',
  TOKEN_CLAIMS_INVALID: 'The token\'s claims are invalid.',
};

/** jose's error, as ours. Its own is never kept as the cause: it may hold the claims. */
function fromJose(error: unknown, token: string): TokenVerificationError {
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && code in JOSE_CODES) {
    const ours = JOSE_CODES[code]!;
    return new TokenVerificationError(ours, MESSAGES[ours]!);
  }
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    const ours = CLAIM_CODES[String((error as { claim?: unknown }).claim)] ?? 'TOKEN_CLAIMS_INVALID';
    return new TokenVerificationError(ours, MESSAGES[ours]!);
  }
  const reason = code === 'ERR_JWKS_TIMEOUT' ? 'timed out' : error instanceof Error ? error.message : String(error);
  return new TokenVerificationError('DISCOVERY_FAILED', `The issuer's key set could not be fetched: ${reason}`, { cause: safeCause(error, token) });
}
