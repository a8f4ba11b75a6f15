/** What {@link main} measured. Holds no token text. */
export interface Summary {
  /** Requests made during the rotation phase. */
  requests: number;
  /** How many were answered 200 with `ok: true`. */
  ok: number;
  /** Error codes of the failed ones. */
  failures: string[];
  /** The API's own counts for the rotation phase. */
  server: { ok: number; unauthorized: number; missing: number };
  /** Rotations by the kubelet during the rotation phase. */
  rotations: number;
  /** Distinct tokens the API saw (by id). */
  distinctTokens: number;
  /** The request made right after the API revoked the token in use: its status and how many 401s the API answered for it. */
  revoked: { status: number; refused: number };
  /** A redirect from the API to another origin: the final status, and how that origin judged what arrived (`'missing'`: no token). */
  redirect: { status: number; arrived: string };
  /** How the server outside `origins` judged the direct request it got: `'missing'` means no token. */
  otherOrigin: string;
}

/** Runs the demo in a temp folder and returns what it measured. */
export function main(options?: { requests?: number; concurrency?: number; minRotations?: number; log?: (line: string) => void }): Promise<Summary>;

/** What {@link callService} got back. Holds no token text. */
export interface CallResult {
  /** Requests sent. */
  requests: number;
  /** Answers by HTTP status (`'200'`, `'401'`…), or by error code when none came back. */
  statuses: Record<string, number>;
  /** The distinct `caller` names the service answered with (its view of who called). */
  callers: string[];
}

/**
 * The app pointed at a service of your own (e.g. examples/verify-service): a FileTokenSource
 * on `tokenPath` and axios with withTokenSource, sending `requests` GETs to `path` (default
 * `whoami`) of `target`, the token going to `target`'s origin only.
 */
export function callService(options: {
  target: string;
  tokenPath: string;
  audience?: string;
  requests?: number;
  concurrency?: number;
  path?: string;
  interval?: number;
}): Promise<CallResult>;
