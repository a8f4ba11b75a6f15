import type { Ref } from '@podtoken/core';

/** How a token was verified: see `TokenVerifierOptions.method`. */
export type VerificationMethod = 'tokenreview' | 'oidc' | 'oidc+tokenreview';

/**
 * Who sent a verified token: a Kubernetes ServiceAccount, and the Pod and node it was issued
 * for when the token is bound to them. Holds no token text; safe to log whole.
 *
 * @example
 * ```ts
 * const identity = await verifier.verify(token);
 * if (identity.namespace !== 'shop') throw new Error('only the shop namespace may call this');
 * log.info({ caller: identity.username, pod: identity.pod?.name }, 'request');
 * ```
 */
export interface Identity {
  /** `system:serviceaccount:<namespace>:<name>`, as the API server names the caller. */
  readonly username: string;
  /** The ServiceAccount's namespace. */
  readonly namespace: string;
  /** The ServiceAccount: name and uid (the uid tells a deleted-and-recreated account apart). */
  readonly serviceAccount: Ref;
  /** The Pod the token is bound to; absent for tokens bound to no Pod (and legacy tokens). */
  readonly pod?: Ref;
  /** The node the Pod runs on, when the cluster puts it in the token (Kubernetes 1.30 and later). */
  readonly node?: Ref;
  /**
   * The token's audiences that this verifier accepts: never empty, except for a legacy token
   * accepted with `allowLegacyTokens` (legacy tokens have no audience).
   */
  readonly audiences: readonly string[];
  /** `exp`; absent only for a legacy token. */
  readonly expiresAt?: Date;
  /** `iss`. */
  readonly issuer?: string;
  /**
   * The groups the API server gives the caller (`system:serviceaccounts`,
   * `system:serviceaccounts:<namespace>`, `system:authenticated`); only when a TokenReview
   * answered for this token.
   */
  readonly groups?: readonly string[];
  /** How the token was verified. */
  readonly method: VerificationMethod;
  /** True for a legacy Secret-based token (only with `allowLegacyTokens`). */
  readonly legacy: boolean;
}
