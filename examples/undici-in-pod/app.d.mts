/** What {@link main} measured. Holds no token text. */
export interface Summary {
  /** Requests made with the global fetch during the rotation phase. */
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
  /** The readiness endpoint's answer and the source's state in it; then again after `source.close()`. */
  readiness: { status: number; state: string; afterClose: { status: number; state: string } };
  /** How many of the tokens the kubelet wrote appear in the printed lines or the probe's answers (0). */
  printedTokens: number;
}

/** Runs the demo in a temp folder and returns what it measured. Restores the global dispatcher it replaced. */
export function main(options?: { requests?: number; concurrency?: number; minRotations?: number; log?: (line: string) => void }): Promise<Summary>;

/**
 * In a real pod: installs the global dispatcher with the projected token at `token` (default:
 * the ServiceAccount token) for `url`'s origin, serves the readiness probe on `readyPort`
 * (default 8081; 0 for any free port), calls `url` with plain `fetch` `rounds` times,
 * `interval` ms apart, and prints each status. Resolves with the exit code: 0 when every call
 * was answered 2xx.
 */
export function inCluster(options: {
  url: string;
  token?: string;
  audience?: string;
  rounds?: number;
  interval?: number;
  readyPort?: number;
  readyHost?: string;
  log?: (line: string) => void;
}): Promise<number>;
