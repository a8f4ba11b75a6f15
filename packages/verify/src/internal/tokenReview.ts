import { isTokenSourceError } from '@podtoken/core';
import { TokenVerificationError } from '../errors.js';
import { abortable } from './abortable.js';
import { printable } from './printable.js';
import { safeCause } from './safeCause.js';

/**
 * What the verifier needs of a KubeConfig: `makeApiClient`. A structural type, so that this
 * package's declarations never name `@kubernetes/client-node` (an optional peer: a service
 * that only uses OIDC does not install it). Any `KubeConfig` of client-node 1.x or 2.x fits.
 */
export interface KubeConfigLike {
  makeApiClient: (...args: never[]) => unknown;
}

/** The part of a TokenReview's answer the verifier keeps: never the echoed `spec.token`. */
export interface ReviewStatus {
  readonly authenticated: boolean;
  /** `status.error`, cut to printable ASCII; present when the API server gave one. */
  readonly error: string | undefined;
  readonly audiences: readonly string[];
  readonly username: string | undefined;
  readonly uid: string | undefined;
  readonly groups: readonly string[];
  readonly extra: Readonly<Record<string, readonly string[]>>;
}

/** Sends TokenReviews. */
export interface Reviewer {
  review(token: string, audiences: readonly string[] | undefined, signal: AbortSignal): Promise<ReviewStatus>;
  close(): Promise<void>;
}

interface TokenReviewApi {
  createTokenReview(param: { body: unknown }, options?: unknown): Promise<unknown>;
}

interface RequestContextLike {
  setSignal?(signal: AbortSignal): void;
}

/**
 * Builds the reviewer: with `kubeConfig` when given, else `loadInCluster()` from
 * `@podtoken/kubernetes` (whose token follows every rotation and which retries once on a
 * 401). client-node is imported here, and only here, on first use: the OIDC path never loads it.
 */
export async function createReviewer(kubeConfig: KubeConfigLike | undefined, root: string | undefined): Promise<Reviewer> {
  let clientNode: { AuthenticationV1Api: new (...args: never[]) => unknown };
  try {
    clientNode = (await import('@kubernetes/client-node')) as unknown as typeof clientNode;
  } catch (error) {
    throw new TokenVerificationError(
      'REVIEW_UNAVAILABLE',
      "method 'tokenreview' needs @kubernetes/client-node 1.x or 2.x: install it (npm install @kubernetes/client-node), or use method 'oidc'.",
      { cause: error },
    );
  }
  let config = kubeConfig;
  let close = async () => {};
  if (config === undefined) {
    const kubernetes = await import('@podtoken/kubernetes');
    let loaded: Awaited<ReturnType<typeof kubernetes.loadInCluster>>;
    try {
      loaded = kubernetes.loadInCluster(root === undefined ? {} : { root });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new TokenVerificationError('REVIEW_UNAVAILABLE', `Cannot send TokenReviews (outside a pod, pass kubeConfig): ${reason}`, { cause: error });
    }
    config = loaded as unknown as KubeConfigLike;
    close = () => kubernetes.closeInCluster(loaded);
  }
  const api = (config.makeApiClient as unknown as (type: unknown) => TokenReviewApi)(clientNode.AuthenticationV1Api);
  return {
    review: (token, audiences, signal) => review(api, token, audiences, signal),
    close,
  };
}

async function review(api: TokenReviewApi, token: string, audiences: readonly string[] | undefined, signal: AbortSignal): Promise<ReviewStatus> {
  const body = {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: audiences === undefined ? { token } : { token, audiences: [...audiences] },
  };
  // client-node's per-call middleware is the one place to hand the request a signal (its
  // stub "observables" only need toPromise()).
  const passSignal = {
    pre: (context: RequestContextLike) => ({
      toPromise: () => {
        context.setSignal?.(signal);
        return Promise.resolve(context);
      },
    }),
    post: (context: unknown) => ({ toPromise: () => Promise.resolve(context) }),
  };
  let answer: unknown;
  try {
    const call = api.createTokenReview({ body }, { middleware: [passSignal], middlewareMergeStrategy: 'append' });
    answer = await abortable(call, signal);
  } catch (error) {
    throw fromClientError(error, token, signal);
  }
  // The answer echoes spec.token: only status is read, and the object is dropped here.
  const status = (answer as { status?: unknown } | undefined)?.status as Record<string, unknown> | undefined;
  if (typeof status !== 'object' || status === null || (status['authenticated'] !== undefined && typeof status['authenticated'] !== 'boolean')) {
    throw new TokenVerificationError('REVIEW_FAILED', 'The API server answered the TokenReview without a usable status.');
  }
  const user = (typeof status['user'] === 'object' && status['user'] !== null ? status['user'] : {}) as Record<string, unknown>;
  const extra: Record<string, readonly string[]> = {};
  if (typeof user['extra'] === 'object' && user['extra'] !== null) {
    for (const [key, value] of Object.entries(user['extra'] as Record<string, unknown>)) {
      if (Array.isArray(value)) extra[key] = value.filter((item): item is string => typeof item === 'string');
    }
  }
  const error = typeof status['error'] === 'string' && status['error'] !== '' && !status['error'].includes(token) ? status['error'] : undefined;
  return {
    authenticated: status['authenticated'] === true,
    error: error === undefined ? undefined : printable(error),
    audiences: strings(status['audiences']),
    username: typeof user['username'] === 'string' ? user['username'] : undefined,
    uid: typeof user['uid'] === 'string' ? user['uid'] : undefined,
    groups: strings(user['groups']),
    extra,
  };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/**
 * client-node's failure, as ours. An `ApiException` is never kept as the cause: its body is
 * what the server (or a proxy) answered, which could echo the request, and so the token.
 */
function fromClientError(error: unknown, token: string, signal: AbortSignal): TokenVerificationError {
  if (error instanceof TokenVerificationError) return error;
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'number' && code >= 100 && code <= 599) {
    if (code === 401) {
      return new TokenVerificationError(
        'REVIEW_UNAUTHORIZED',
        "The API server answered 401 to the verifier's TokenReview: its own credentials were refused (an expired or revoked token?).",
        { status: code },
      );
    }
    if (code === 403) {
      return new TokenVerificationError(
        'REVIEW_FORBIDDEN',
        "The API server answered 403 to the verifier's TokenReview: its ServiceAccount may not create tokenreviews. Bind it to the system:auth-delegator ClusterRole.",
        { status: code },
      );
    }
    if (code === 429 || code >= 500) {
      return new TokenVerificationError('REVIEW_UNAVAILABLE', `The API server answered the TokenReview with HTTP ${code}.`, { status: code });
    }
    return new TokenVerificationError('REVIEW_FAILED', `The API server answered the TokenReview with HTTP ${code}.`, { status: code });
  }
  if (signal.aborted) {
    return new TokenVerificationError('REVIEW_UNAVAILABLE', 'The TokenReview timed out.', { cause: safeCause(signal.reason, token) });
  }
  if (isTokenSourceError(error)) {
    return new TokenVerificationError('REVIEW_UNAVAILABLE', `The verifier has no token of its own to send the TokenReview with: ${error.message}`, { cause: error });
  }
  const reason = error instanceof Error ? error.message : String(error);
  const cause = safeCause(error, token);
  return new TokenVerificationError(
    'REVIEW_UNAVAILABLE',
    `The TokenReview could not be sent: ${cause === undefined || reason.includes(token) ? 'a network error' : reason}`,
    { cause },
  );
}
