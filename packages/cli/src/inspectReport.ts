import { dirname, posix, resolve } from 'node:path';
import { DEFAULT_TOKEN_PATH, decodeToken, isTokenSourceError, type Token, type TokenKind } from '@podtoken/core';
import { escapeControlCharacters } from './escapeControlCharacters.js';
import { formatDuration, formatTime } from './internal/format.js';

/**
 * How much a finding matters. `error` and `warning` make `inspect` exit 1; a `note` is
 * something a reviewer should know that is normal in a healthy cluster.
 */
export type FindingLevel = 'error' | 'warning' | 'note';

/**
 * A stable name for each finding, for scripts reading `--json`.
 *
 * - `unreadable`: the file is missing or cannot be read (exit 2).
 * - `malformed`, `too-large`: the file holds something podtoken would refuse.
 * - `expired`, `not-yet-valid`: outside its validity window now.
 * - `past-refresh`: past `warnafter` / 80 % of its lifetime and not yet replaced by the kubelet.
 * - `issued-in-future`: `iat` is more than a minute ahead of this machine's clock.
 * - `expires-before-issued`: `exp` is not after `iat`: never valid, no lifetime.
 * - `not-before-after-expiry`: `nbf` is not before `exp`: never valid.
 * - `warnafter-after-expiry`: `warnafter` is not before `exp` (podtoken ignores it).
 * - `warnafter-before-issued`: `warnafter` is not after `iat`.
 * - `no-expiry`: a JWT without `exp`.
 * - `long-lifetime`: valid for more than 24 hours (and not an extended default token).
 * - `extended-expiry`: the API server extended `exp` (it set `warnafter`).
 * - `api-server-audience-on-custom-path`: a token for the API server mounted where tokens for other services go.
 * - `audience-mismatch`: `aud` holds none of the audiences asked for with `--audience`.
 * - `no-audience`: a JWT without `aud`.
 * - `legacy-token`: a Secret-based token that never expires.
 * - `opaque-token`: not a JWT; nothing about it can be checked.
 * - `not-kubernetes`: a JWT without the `kubernetes.io` claim.
 * - `not-bound-to-pod`: a bound token tied to no pod and no Secret.
 */
export type FindingCode =
  | 'unreadable'
  | 'malformed'
  | 'too-large'
  | 'expired'
  | 'not-yet-valid'
  | 'past-refresh'
  | 'issued-in-future'
  | 'expires-before-issued'
  | 'not-before-after-expiry'
  | 'warnafter-after-expiry'
  | 'warnafter-before-issued'
  | 'no-expiry'
  | 'long-lifetime'
  | 'extended-expiry'
  | 'api-server-audience-on-custom-path'
  | 'audience-mismatch'
  | 'no-audience'
  | 'legacy-token'
  | 'opaque-token'
  | 'not-kubernetes'
  | 'not-bound-to-pod';

/** One thing `inspect` found about a token file. */
export interface Finding {
  readonly level: FindingLevel;
  readonly code: FindingCode;
  /**
   * One or two sentences: what it means and what to do. Never holds the token. Claims and
   * paths quoted in it have their control characters escaped (a token's claims come from
   * whoever can write the file), so it is safe to print as it is.
   */
  readonly message: string;
}

/** How a token file sits on disk. */
export interface VolumeInfo {
  /**
   * `projected`: the kubelet's atomic-writer layout (`token -> ..data/token`);
   * `symlink`: some other symlink; `file`: a plain file (no atomic swaps).
   */
  readonly layout: 'projected' | 'symlink' | 'file';
  /** The file's permission bits, in octal (`0644`). */
  readonly mode: string;
  /** The timestamped folder `..data` points at (projected layout). */
  readonly dataFolder?: string;
  /** Where the symlink points (symlink layout). */
  readonly target?: string;
}

/** A `Ref` (name and UID) of a Kubernetes object, as in the report. */
export interface ObjectRef {
  readonly name: string;
  /** Empty when the token does not say. */
  readonly uid: string;
}

/** What the token says, with times as ISO 8601 strings (UTC). Never holds the token itself. */
export interface TokenSummary {
  readonly kind: TokenKind;
  /** Length of the token in characters: enough to tell two tokens apart without showing them. */
  readonly length: number;
  readonly subject?: string;
  readonly audience: readonly string[];
  readonly issuer?: string;
  readonly issuedAt?: string;
  readonly notBefore?: string;
  readonly expiresAt?: string;
  readonly warnAfter?: string;
  /** When podtoken looks for a fresh token (see `refreshBasis`). */
  readonly refreshAt?: string;
  /** `warnafter`; `ratio`: a fraction (0.8 by default) of `exp − iat`; `expiry`: no start time known. */
  readonly refreshBasis?: 'warnafter' | 'ratio' | 'expiry';
  /** `exp − iat` (or `exp − nbf`), in seconds; absent when `exp` is not after that start (a nonsense token). */
  readonly lifetimeSeconds?: number;
  /** `exp − now` in seconds at `checkedAt`; negative once expired. */
  readonly expiresInSeconds?: number;
  readonly kubernetes?: {
    readonly namespace: string;
    readonly serviceAccount: ObjectRef;
    readonly pod?: ObjectRef;
    readonly node?: ObjectRef;
    readonly secret?: ObjectRef;
  };
}

/**
 * The report on one token file: what `podtoken inspect` prints, as data. Plain JSON
 * (strings, numbers, arrays): `JSON.stringify` gives the `--json` output.
 */
export interface InspectReport {
  /** The file, as given. */
  readonly path: string;
  /** When the report was made (ISO 8601); relative times count from it. */
  readonly checkedAt: string;
  /** `healthy`: notes at most (exit 0); `problem`: an error or warning (exit 1); `unreadable`: exit 2. */
  readonly status: 'healthy' | 'problem' | 'unreadable';
  /** The exit code this file alone calls for. */
  readonly exitCode: 0 | 1 | 2;
  /** Absent when the file could not be read or decoded. */
  readonly token?: TokenSummary;
  readonly volume?: VolumeInfo;
  /** Errors first, then warnings, then notes. */
  readonly findings: readonly Finding[];
}

/** What {@link buildInspectReport} looks at: the file's content, or why it could not be read. */
export type InspectInput =
  | { readonly path: string; readonly content: string; readonly volume?: VolumeInfo | undefined }
  | { readonly path: string; readonly error: unknown; readonly volume?: VolumeInfo | undefined };

/** Options of {@link buildInspectReport}. */
export interface InspectReportOptions {
  /**
   * The time to judge the token at.
   * @default new Date()
   */
  now?: Date;
  /** The token's `aud` must hold one of these; otherwise an `audience-mismatch` error. Default: any. */
  audience?: readonly string[];
  /**
   * The fraction of the lifetime after which podtoken refreshes a token without `warnafter`.
   * @default 0.8
   */
  refreshRatio?: number;
  /**
   * Where the default token lives; a token for the API server anywhere else is flagged.
   * @default DEFAULT_TOKEN_PATH
   */
  defaultTokenPath?: string;
}

const DAY_SECONDS = 24 * 60 * 60;
const SKEW_MS = 60_000;
// The API server's audience defaults to its issuer; these are the usual in-cluster names too.
const API_SERVER_AUDIENCES = new Set([
  'https://kubernetes.default.svc',
  'https://kubernetes.default.svc.cluster.local',
  'kubernetes.default.svc',
  'kubernetes',
]);
const LEVEL_ORDER: Record<FindingLevel, number> = { error: 0, warning: 1, note: 2 };

/**
 * Builds the report `podtoken inspect` prints for one token file. Pure: no I/O, the time
 * comes from `options.now`. The token value never enters the report.
 *
 * @example
 * ```ts
 * const report = buildInspectReport({ path, content: await readFile(path, 'utf8') }, { now: new Date() });
 * if (report.exitCode !== 0) console.log(report.findings.map((f) => f.message).join('\n'));
 * ```
 */
export function buildInspectReport(input: InspectInput, options: InspectReportOptions = {}): InspectReport {
  const now = options.now ?? new Date();
  const base = {
    path: input.path,
    checkedAt: now.toISOString(),
    ...(input.volume === undefined ? {} : { volume: input.volume }),
  };
  if ('error' in input) return fromError(base, input.error);

  let token: Token;
  try {
    token = decodeToken(input.content, options.refreshRatio === undefined ? {} : { refreshRatio: options.refreshRatio });
  } catch (error) {
    return fromError(base, error);
  }
  const findings = judge(token, input.path, now, options);
  findings.sort((a, b) => LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level]);
  const problem = findings.some((f) => f.level !== 'note');
  return {
    ...base,
    status: problem ? 'problem' : 'healthy',
    exitCode: problem ? 1 : 0,
    token: summarize(token, now),
    findings,
  };
}

/** The exit code for several reports: the worst one (2 beats 1 beats 0). */
export function exitCodeOf(reports: readonly InspectReport[]): 0 | 1 | 2 {
  return reports.reduce<0 | 1 | 2>((worst, r) => (r.exitCode > worst ? r.exitCode : worst), 0);
}

function fromError(base: Pick<InspectReport, 'path' | 'checkedAt' | 'volume'>, error: unknown): InspectReport {
  const code = isTokenSourceError(error) ? error.code : undefined;
  const message = isTokenSourceError(error) ? error.message : `Reading the token failed: ${error instanceof Error ? error.message : String(error)}`;
  const unreadable = code === undefined || code === 'TOKEN_FILE_MISSING' || code === 'TOKEN_FILE_UNREADABLE';
  const finding: Finding = {
    level: 'error',
    code: unreadable ? 'unreadable' : code === 'TOKEN_TOO_LARGE' ? 'too-large' : 'malformed',
    message: escapeControlCharacters(message),
  };
  return { ...base, status: unreadable ? 'unreadable' : 'problem', exitCode: unreadable ? 2 : 1, findings: [finding] };
}

function judge(token: Token, path: string, now: Date, options: InspectReportOptions): Finding[] {
  const findings: Finding[] = [];
  const add = (level: FindingLevel, code: FindingCode, message: string) => findings.push({ level, code, message: escapeControlCharacters(message) });
  const nowMs = now.getTime();
  const exp = token.expiresAt?.getTime();
  const start = (token.issuedAt ?? token.notBefore)?.getTime();

  switch (token.kind) {
    case 'opaque':
      add(
        'warning',
        'opaque-token',
        'Not a JWT: its audience, owner and expiry cannot be checked, and podtoken never refreshes it on a timer (only on file changes and 401s).',
      );
      break;
    case 'legacy':
      add(
        'warning',
        'legacy-token',
        'A legacy Secret-based ServiceAccount token: it never expires and is not bound to a pod; it stays valid until its Secret is deleted. Use a projected (bound) token instead.',
      );
      break;
    case 'jwt':
      if (token.kubernetes === undefined) {
        add('note', 'not-kubernetes', 'A JWT without the kubernetes.io claim: not a ServiceAccount token (an OIDC token from another issuer?).');
      }
      if (exp === undefined) add('warning', 'no-expiry', 'The token has no expiry (exp): it stays valid until its key is rotated.');
      break;
    case 'bound':
      break;
  }

  if (exp !== undefined && exp <= nowMs) {
    add('error', 'expired', `Expired ${formatDuration(nowMs - exp)} ago: servers reject it. The kubelet should have replaced it; is it still running this pod?`);
  }
  const nbf = token.notBefore?.getTime();
  if (nbf !== undefined && nbf > nowMs) {
    add('error', 'not-yet-valid', `Not valid before ${formatTime(token.notBefore!)}: servers reject it until then. Check this machine's clock.`);
  }
  const iat = token.issuedAt?.getTime();
  if (iat !== undefined && iat > nowMs + SKEW_MS) {
    add('warning', 'issued-in-future', "Issued in the future by this machine's clock: one of the clocks is wrong.");
  }
  const refreshAt = token.refreshAt?.getTime();
  if (exp !== undefined && exp > nowMs && refreshAt !== undefined && refreshAt <= nowMs) {
    add(
      'warning',
      'past-refresh',
      token.warnAfter !== undefined && token.warnAfter.getTime() <= nowMs
        ? 'Past warnafter and not yet replaced: the kubelet should have written a fresh token by now, and the API server logs each use of this one as stale.'
        : 'Past its refresh time and not yet replaced: the kubelet replaces a token after 80 % of its lifetime, so it is late or not running.',
    );
  }

  // Claims no API server mints together. Whoever wrote the file may be testing, broken or
  // hostile; either way the times above cannot all be believed.
  const warn = token.warnAfter?.getTime();
  const expiresBeforeIssued = exp !== undefined && iat !== undefined && exp <= iat;
  if (expiresBeforeIssued) {
    add(
      'warning',
      'expires-before-issued',
      `Its expiry (exp ${formatTime(token.expiresAt!)}) is not after its issue time (iat ${formatTime(token.issuedAt!)}): it was never valid, and it has no lifetime. An API server does not mint such a token: check what writes this file.`,
    );
  }
  // With nbf = iat, as the API server sets it, that is the same fault: say it once.
  if (exp !== undefined && nbf !== undefined && nbf >= exp && !(expiresBeforeIssued && nbf <= iat!)) {
    add(
      'warning',
      'not-before-after-expiry',
      `Its not-before time (nbf ${formatTime(token.notBefore!)}) is not before its expiry (exp ${formatTime(token.expiresAt!)}): there is no moment at which it is valid.`,
    );
  }
  if (exp !== undefined && warn !== undefined && warn >= exp) {
    add(
      'warning',
      'warnafter-after-expiry',
      `Its warnafter (${formatTime(token.warnAfter!)}) is not before its expiry (exp ${formatTime(token.expiresAt!)}): the API server sets warnafter well before an extended exp. podtoken ignores it and refreshes as it would without it.`,
    );
  }
  if (warn !== undefined && iat !== undefined && warn <= iat) {
    add(
      'warning',
      'warnafter-before-issued',
      `Its warnafter (${formatTime(token.warnAfter!)}) is not after its issue time (iat ${formatTime(token.issuedAt!)}): the API server sets it an hour or so after iat. podtoken looks for a fresh token from warnafter on.`,
    );
  }

  const extended = warn !== undefined && exp !== undefined && warn < exp && (start === undefined || warn > start);
  if (extended) {
    const requested = start === undefined ? undefined : Math.round((warn - start) / 1000);
    add(
      'note',
      'extended-expiry',
      `The API server extended this token's expiry (warnafter is set): it is accepted until ${formatTime(token.expiresAt!)} while the pod exists, but was requested for ${
        requested === undefined ? 'less' : `${requested} s`
      }; the kubelet replaces it after warnafter and podtoken refreshes then.`,
    );
  } else if (exp !== undefined && start !== undefined && exp - start > DAY_SECONDS * 1000) {
    add(
      'warning',
      'long-lifetime',
      `Valid for ${formatDuration(exp - start)}: longer than 24 h, so a leaked copy stays useful for long. Lower expirationSeconds in the pod spec.`,
    );
  }

  if (token.kind !== 'opaque' && token.kind !== 'legacy' && token.audience.length === 0) {
    add('warning', 'no-audience', 'The token has no audience (aud): any service trusting its issuer may accept it.');
  }
  if (options.audience !== undefined && options.audience.length > 0 && !token.audience.some((a) => options.audience!.includes(a))) {
    add(
      'error',
      'audience-mismatch',
      `The audience is [${token.audience.join(', ')}], expected one of [${options.audience.join(', ')}]: the server will reject it. Check serviceAccountToken.audience in the pod spec.`,
    );
  }
  const defaultPath = options.defaultTokenPath ?? DEFAULT_TOKEN_PATH;
  const apiServerAudience = token.audience.find((a) => API_SERVER_AUDIENCES.has(a) || (token.kind !== 'legacy' && a === token.issuer));
  if (token.kind !== 'opaque' && apiServerAudience !== undefined && !inFolderOf(path, defaultPath)) {
    add(
      'warning',
      'api-server-audience-on-custom-path',
      `The audience ${apiServerAudience} is the API server's, but the file is outside ${posix.dirname(defaultPath)}: a token mounted for another service should name that service in serviceAccountToken.audience, or whoever receives it can call the API server as this ServiceAccount.`,
    );
  }
  if (token.kind === 'bound' && token.kubernetes?.pod === undefined && token.kubernetes?.secret === undefined) {
    add('warning', 'not-bound-to-pod', 'Bound to no pod and no Secret: it stays valid until it expires, even after the workload is gone.');
  }
  return findings;
}

function summarize(token: Token, now: Date): TokenSummary {
  const iso = (date: Date | undefined) => date?.toISOString();
  const exp = token.expiresAt?.getTime();
  const start = (token.issuedAt ?? token.notBefore)?.getTime();
  const refreshBasis =
    token.refreshAt === undefined
      ? undefined
      : token.warnAfter !== undefined && token.refreshAt.getTime() === token.warnAfter.getTime()
        ? 'warnafter'
        : token.refreshAt.getTime() === exp
          ? 'expiry'
          : 'ratio';
  const k8s = token.kubernetes;
  const summary: Record<string, unknown> = {
    kind: token.kind,
    length: token.value.length,
    subject: token.subject,
    audience: [...token.audience],
    issuer: token.issuer,
    issuedAt: iso(token.issuedAt),
    notBefore: iso(token.notBefore),
    expiresAt: iso(token.expiresAt),
    warnAfter: iso(token.warnAfter),
    refreshAt: iso(token.refreshAt),
    refreshBasis,
    lifetimeSeconds: exp !== undefined && start !== undefined && exp > start ? (exp - start) / 1000 : undefined,
    expiresInSeconds: exp !== undefined ? (exp - now.getTime()) / 1000 : undefined,
    kubernetes:
      k8s === undefined
        ? undefined
        : dropUndefined({
            namespace: k8s.namespace,
            serviceAccount: { ...k8s.serviceAccount },
            pod: k8s.pod && { ...k8s.pod },
            node: k8s.node && { ...k8s.node },
            secret: k8s.secret && { ...k8s.secret },
          }),
  };
  return dropUndefined(summary) as unknown as TokenSummary;
}

function dropUndefined<T extends Record<string, unknown>>(object: T): T {
  for (const key of Object.keys(object)) if (object[key] === undefined) delete object[key];
  return object;
}

function inFolderOf(path: string, defaultPath: string): boolean {
  return dirname(resolve(path)) === dirname(resolve(defaultPath));
}
