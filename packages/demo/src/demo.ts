import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { withTokenSource as withAxios } from '@podtoken/axios';
import {
  DIAGNOSTICS_CHANNELS,
  FileTokenSource,
  decodeToken,
  isTokenSourceError,
  readiness,
  type DiagnosticsChannelName,
  type ReadinessReport,
  type TokenRefreshedMessage,
  type TokenSourceState,
} from '@podtoken/core';
import { withTokenSource as withFetch } from '@podtoken/fetch';
import { withTokenSource as withGot } from '@podtoken/got';
import {
  FakeKubelet,
  ProjectedVolume,
  createIssuer,
  startTokenServer,
  tokenId,
  type Issuer,
  type TokenServer,
  type TokenServerCounts,
} from '@podtoken/testing';
import axios, { AxiosHeaders, type AxiosAdapter } from 'axios';
import got from 'got';
import type { DemoIO } from './demoIO.js';
import { HELP_OPTION, UsageError, fraction, integer, seconds, usageFailure } from './internal/args.js';
import { leaksToken, matchKubelet, recordEvents } from './internal/events.js';
import { formatMs, formatTable } from './internal/format.js';
import { createStyle, printable, type Style } from './internal/style.js';

/** The help text of `podtoken-demo`. */
export const DEMO_USAGE = `Usage: podtoken-demo [options]

Runs the whole story on this machine, no cluster needed: a token issuer, a fake kubelet
writing short-lived tokens into a temporary projected volume (the real atomic-writer
layout, on disk), a server that verifies every token against the issuer's keys, and an
app calling it through the axios, got and fetch adapters. Shows rotations, requests and
how fast each new token reaches the server, then a summary whose counts are checked
against the server's own, with what an operator would see: the events core published
on node:diagnostics_channel and the answer of a readiness endpoint.

Options:
  --duration <s>      how long the app sends requests (default 20)
  --token-ttl <s>     each token's lifetime (default 4)
  --rotate-after <f>  the fraction of the lifetime after which the fake kubelet writes the
                      next token (default 0.8, the kubelet's own rule)
  --concurrency <n>   requests in flight per client (default 2)
  --json              no live display; print the result as JSON at the end
  -h, --help          show this help

Exit codes: 0 when every request was authenticated, the counts match the server's, the
readiness endpoint answered 200 and the events match the kubelet's rotations and hold no
token; 1 otherwise; 2 usage error.
`;

/** The HTTP clients the demo's app uses, each through its podtoken adapter. */
export type DemoClientName = 'axios' | 'got' | 'fetch';

/** Requests as one client saw them, counted at the transport: every HTTP attempt, retries included. */
export interface DemoClientStats {
  readonly client: DemoClientName | 'total';
  /** HTTP responses received. */
  requests: number;
  /** 2xx answers. */
  ok: number;
  /** 401 answers to requests that carried a token. */
  unauthorized: number;
  /** 401 answers to requests sent without a token. */
  withoutToken: number;
  /** Other statuses. */
  other: number;
  /** Calls that failed without an HTTP response (e.g. the source had no valid token), by error code. */
  errors: number;
  readonly errorCodes: Record<string, number>;
}

/** Options of {@link runDemoScenario}. Times in seconds, like the command's options. */
export interface DemoOptions {
  /**
   * How long the app sends requests, in seconds.
   * @default 20
   */
  duration?: number;
  /**
   * Each token's lifetime in seconds.
   * @default 4
   */
  tokenTtl?: number;
  /**
   * The fraction of a token's lifetime after which the fake kubelet writes the next one.
   * @default 0.8 (the kubelet's rule)
   */
  rotateAfter?: number;
  /**
   * Requests in flight per client.
   * @default 2
   */
  concurrency?: number;
  /** Stops the run early (the result says `interrupted`); everything is still cleaned up. */
  signal?: AbortSignal;
  /** Called every `progressInterval` ms while requests run. */
  onProgress?: (progress: DemoProgress) => void;
  /**
   * Milliseconds between `onProgress` calls.
   * @default 1000
   */
  progressInterval?: number;
}

/**
 * Messages core published on its `node:diagnostics_channel` channels about the demo's
 * source, by channel name (`podtoken:token:refreshed`…); every channel is listed.
 */
export type DemoEventCounts = Readonly<Record<DiagnosticsChannelName, number>>;

/** The source's health as `source.status()` tells it: no token. */
export interface DemoSourceStatus {
  readonly state: TokenSourceState;
  /** Milliseconds until the token in memory expires. */
  readonly expiresIn?: number;
}

/** The demo's readiness endpoint (`readiness(source)` on 127.0.0.1), fetched once over HTTP at the end. */
export interface DemoReadiness {
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  /** `ready` from the JSON body. */
  readonly ready?: boolean;
  /** The source's `state` from the body. */
  readonly state?: TokenSourceState;
  /** The source's `expiresIn` from the body, in ms. */
  readonly expiresIn?: number;
}

/** A snapshot while the demo runs. */
export interface DemoProgress {
  readonly elapsedMs: number;
  readonly durationMs: number;
  /** Tokens the kubelet wrote since requests started. */
  readonly rotations: number;
  readonly clients: readonly DemoClientStats[];
  /** The verifying server's own counts. */
  readonly server: Readonly<TokenServerCounts>;
  /** The latest measured pickup latency, in ms. */
  readonly lastPickupMs: number | undefined;
  /** The app's source, from `status()`. */
  readonly source: DemoSourceStatus;
  /** Events so far. */
  readonly events: DemoEventCounts;
}

/** Latencies in ms, nearest-rank percentiles of measured samples. */
export interface LatencySummary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly samples: number;
}

/** What the demo measured; `passed` decides the exit code. */
export interface DemoResult {
  /** How long requests ran, in ms. */
  readonly elapsedMs: number;
  /** Stopped by the signal before `duration`. */
  readonly interrupted: boolean;
  readonly tokenTtl: number;
  readonly rotateAfter: number;
  readonly concurrency: number;
  readonly clients: readonly DemoClientStats[];
  /** The clients' counts summed. */
  readonly total: DemoClientStats;
  /** The verifying server's own counts. */
  readonly server: Readonly<TokenServerCounts>;
  /** The client totals equal the server's counts (requests, ok, 401 with and without a token). */
  readonly countsMatch: boolean;
  /** Tokens the kubelet wrote while requests ran. */
  readonly rotations: number;
  /** How far behind its schedule (each write `rotateAfter × tokenTtl` after the last) the fake kubelet fell, at most, in ms. */
  readonly maxKubeletLagMs: number;
  /**
   * Rotations the fake kubelet wrote only after the previous token had expired (this
   * machine was too busy to run its timer on time). Calls in that gap rightly fail with
   * `TOKEN_EXPIRED`: no SDK can send a valid token that does not exist yet.
   */
  readonly lateRotations: number;
  /** How late the latest of those was, in ms. */
  readonly maxLateMs?: number;
  /** Rotations whose token reached the server. */
  readonly pickedUp: number;
  /**
   * Pickup latency: from the `..data` swap to the first request carrying the new token as
   * seen by the server. Absent when no rotation was picked up.
   */
  readonly pickupMs?: LatencySummary;
  /** Reload latency: from the `..data` swap to the new token in the app's `FileTokenSource`. */
  readonly reloadMs?: LatencySummary;
  /** Events core published about the app's source while it ran (subscribed before it was created). */
  readonly events: DemoEventCounts;
  /** Tokens the fake kubelet wrote while the app's source was open, the first included. */
  readonly tokensWritten: number;
  /**
   * Tokens the kubelet replaced before the app's source read them (normal for the SDK: it
   * only needs the newest; a sign of a machine too busy to run the watch in time).
   */
  readonly skippedTokens: number;
  /**
   * `token:loaded` named the kubelet's first token, and each `token:refreshed` a later one,
   * each once and in the order written (matched by their `exp`), ending on the last one:
   * one `token:refreshed` per token written after the first, less {@link skippedTokens}.
   */
  readonly eventsMatchKubelet: boolean;
  /** No event message, nor the readiness body, holds a token's text (rendered with `util.inspect` and JSON). */
  readonly eventsHoldNoToken: boolean;
  /** The readiness endpoint's answer at the end. */
  readonly readiness: DemoReadiness;
  /**
   * At least one request, every one authenticated, no call failed, the counts match,
   * readiness answered 200, and the events match the kubelet and hold no token.
   */
  readonly passed: boolean;
}

const AUDIENCE = 'https://demo-api.podtoken.test';
const CLIENTS: readonly DemoClientName[] = ['axios', 'got', 'fetch'];

/**
 * Runs the demo without printing anything: issuer, fake kubelet on a temporary projected
 * volume, verifying server, and an app calling it through the axios, got and fetch
 * adapters. Removes its temporary folder and closes its server and source before it
 * resolves, also when interrupted or when something fails.
 *
 * @example
 * ```ts
 * const result = await runDemoScenario({ duration: 3, tokenTtl: 1 });
 * console.log(result.passed, result.total.ok, result.server.ok, result.pickupMs?.p99);
 * ```
 */
export async function runDemoScenario(options: DemoOptions = {}): Promise<DemoResult> {
  const durationMs = Math.round((options.duration ?? 20) * 1000);
  const tokenTtl = options.tokenTtl ?? 4;
  const rotateAfter = options.rotateAfter ?? 0.8;
  const concurrency = options.concurrency ?? 2;
  const signal = options.signal;
  const cleanups: Array<() => unknown> = [];

  const stats = new Map<DemoClientName, DemoClientStats>(CLIENTS.map((client) => [client, emptyStats(client)]));
  const record = (client: DemoClientName, status: number, sentToken: boolean) => {
    const s = stats.get(client)!;
    s.requests += 1;
    if (status >= 200 && status < 300) s.ok += 1;
    else if (status === 401 && sentToken) s.unauthorized += 1;
    else if (status === 401) s.withoutToken += 1;
    else s.other += 1;
  };

  try {
    const dir = await mkdtemp(join(tmpdir(), 'podtoken-demo-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    // When each token was minted and expires, on the performance.now() clock the swaps are timed with.
    const minted = new Map<string, { at: number; expiresAt: number }>();
    const issuer = withExactExpiry(await createIssuer(), (token, ttlMs) => {
      const at = performance.now();
      minted.set(tokenId(token), { at, expiresAt: at + ttlMs });
    });
    // The server notes when it first sees each token; with the kubelet's swap time that
    // gives the pickup latency, measured end to end rather than inside the SDK.
    const firstSeen = new Map<string, number>();
    const server: TokenServer = await startTokenServer({
      issuer,
      audience: AUDIENCE,
      handler: (_request, _response, context) => {
        if (context.tokenId !== undefined && !firstSeen.has(context.tokenId)) firstSeen.set(context.tokenId, performance.now());
        return false;
      },
    });
    cleanups.push(() => server.close());

    const volume = new ProjectedVolume({ dir: join(dir, 'tokens') });
    const kubelet = new FakeKubelet({
      volume,
      issuer,
      file: 'api-token',
      audience: AUDIENCE,
      expirationSeconds: tokenTtl,
      rotateAfter,
      mint: { namespace: 'demo', serviceAccount: 'demo-app', pod: 'demo-app-0', node: 'node-1' },
      files: { namespace: 'demo' },
    });
    const swaps: Array<{ id: string; token: string; swappedAt: number }> = [];
    kubelet.onRotate((rotation) => swaps.push({ id: tokenId(rotation.token), token: rotation.token, swappedAt: rotation.swappedAt }));
    cleanups.push(async () => {
      kubelet.stop();
      // stop() lets a write in progress finish, and that write would recreate the folder
      // after it is removed. A rotate() queues behind it: once it resolves, nothing writes.
      await kubelet.rotate().catch(() => {});
    });
    // What an operator would subscribe to, from before the source exists so that its
    // token:loaded counts. The channels are process-wide: keep only this source's events.
    const sourcePath = resolve(kubelet.path);
    const events = recordEvents((message) => {
      const m = message as { source?: { path?: unknown }; folder?: unknown } | null;
      return m?.source?.path === sourcePath || (typeof m?.folder === 'string' && m.folder.startsWith(dir));
    });
    cleanups.push(() => events.close());

    // The first token, without a schedule yet: the clients warm up on it first.
    await kubelet.rotate();

    const source = new FileTokenSource({ path: kubelet.path, audience: AUDIENCE, readyTimeout: 10_000, name: 'demo-app' });
    cleanups.push(() => source.close());
    // A readinessProbe's endpoint, as a pod would serve it.
    const probe = createServer(readiness(source));
    await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise((resolve) => {
          probe.closeAllConnections();
          probe.close(resolve);
        }),
    );
    const readinessUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}/ready`;
    const reloadedAt = new Map<string, number>();
    source.onRefresh((token) => reloadedAt.set(tokenId(token.value), performance.now()));
    await source.ready();

    const url = (client: DemoClientName) => `${server.url}anything?client=${client}`;
    const send = createSenders(source, record, url);
    const attempt = async (client: DemoClientName) => {
      try {
        await send[client]();
      } catch (error) {
        const s = stats.get(client)!;
        s.errors += 1;
        const code = isTokenSourceError(error) ? error.code : String((error as { code?: unknown })?.code ?? (error as Error)?.name ?? 'Error');
        s.errorCodes[code] = (s.errorCodes[code] ?? 0) + 1;
        // A source that rejects at once would otherwise spin the loop on microtasks.
        await sleep(20);
      }
    };
    // One request per client before the clock starts: the first request through each
    // client loads and compiles code for a while, which must not delay the first rotation.
    for (const client of CLIENTS) await attempt(client);

    // Now the kubelet's schedule starts, with a fresh token the app holds before the load begins.
    const fresh = await kubelet.start();
    await holding(source, fresh.token, 5_000);
    // Rotations from here on happen under load; they are the ones measured.
    const measuredFrom = swaps.length;
    const latencies = (seenAt: ReadonlyMap<string, number>): number[] => {
      const result: number[] = [];
      for (const swap of swaps.slice(measuredFrom)) {
        const seen = seenAt.get(swap.id);
        if (seen !== undefined) result.push(Math.max(0, seen - swap.swappedAt));
      }
      return result;
    };

    let stopping = false;
    const started = performance.now();
    const workers = CLIENTS.flatMap((client) =>
      Array.from({ length: concurrency }, async () => {
        while (!stopping) await attempt(client);
      }),
    );

    const progress = (): DemoProgress => {
      const latest = latencies(firstSeen).at(-1);
      return {
        elapsedMs: performance.now() - started,
        durationMs,
        rotations: swaps.length - measuredFrom,
        clients: CLIENTS.map((client) => ({ ...stats.get(client)!, errorCodes: { ...stats.get(client)!.errorCodes } })),
        server: server.counts,
        lastPickupMs: latest,
        source: sourceStatus(source),
        events: events.counts(),
      };
    };
    const ticker = options.onProgress === undefined ? undefined : setInterval(() => options.onProgress!(progress()), options.progressInterval ?? 1000);

    let interrupted = false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, durationMs);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }
      function onAbort() {
        interrupted = true;
        done();
      }
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
    stopping = true;
    clearInterval(ticker);
    await Promise.all(workers);
    const elapsedMs = performance.now() - started;
    // Once the kubelet's last write has finished, give the source a moment to read it, so
    // that every token written has had its chance to be an event.
    await kubelet.stop();
    await holding(source, swaps.at(-1)!.token, 2_000);
    const probed = await probeReadiness(readinessUrl);
    const eventCounts = events.counts();
    const tokenEvents = events.messages.filter((m) => m.channel === DIAGNOSTICS_CHANNELS.tokenLoaded || m.channel === DIAGNOSTICS_CHANNELS.tokenRefreshed);
    const eventMatch = matchKubelet(
      swaps.map((swap) => decodeToken(swap.token).expiresAt?.getTime()),
      tokenEvents.map((m) => ({ loaded: m.channel === DIAGNOSTICS_CHANNELS.tokenLoaded, exp: (m.message as TokenRefreshedMessage).token.expiresAt?.getTime() })),
    );
    const eventsHoldNoToken = !leaksToken([...events.messages.map((m) => m.message), probed.body], swaps.map((swap) => swap.token));

    // Every request has been answered, and the server counts before it answers.
    const serverCounts = server.counts;
    const clients = CLIENTS.map((client) => stats.get(client)!);
    const total = sumStats(clients);
    const countsMatch =
      total.requests === serverCounts.ok + serverCounts.unauthorized + serverCounts.missing &&
      total.ok === serverCounts.ok &&
      total.unauthorized === serverCounts.unauthorized &&
      total.withoutToken === serverCounts.missing;
    const pickups = latencies(firstSeen).sort((a, b) => a - b);
    const reloads = latencies(reloadedAt).sort((a, b) => a - b);
    const rotations = swaps.length - measuredFrom;
    // The fake kubelet runs on a timer in this process: on a busy machine it falls behind,
    // and a swap after the previous token expired leaves the app nothing valid to send.
    const lateness: number[] = [];
    let maxKubeletLagMs = 0;
    for (let i = Math.max(1, measuredFrom); i < swaps.length; i++) {
      const previous = minted.get(swaps[i - 1]!.id);
      if (previous === undefined) continue;
      const swappedAt = swaps[i]!.swappedAt;
      maxKubeletLagMs = Math.max(maxKubeletLagMs, swappedAt - (previous.at + rotateAfter * tokenTtl * 1000));
      if (swappedAt > previous.expiresAt) lateness.push(swappedAt - previous.expiresAt);
    }
    return {
      elapsedMs,
      interrupted,
      tokenTtl,
      rotateAfter,
      concurrency,
      clients,
      total,
      server: serverCounts,
      countsMatch,
      rotations,
      maxKubeletLagMs,
      lateRotations: lateness.length,
      ...(lateness.length === 0 ? {} : { maxLateMs: Math.max(...lateness) }),
      pickedUp: pickups.length,
      ...(pickups.length === 0 ? {} : { pickupMs: summarize(pickups) }),
      ...(reloads.length === 0 ? {} : { reloadMs: summarize(reloads) }),
      events: eventCounts,
      tokensWritten: swaps.length,
      skippedTokens: eventMatch.skipped,
      eventsMatchKubelet: eventMatch.matches,
      eventsHoldNoToken,
      readiness: probed.readiness,
      passed:
        countsMatch &&
        eventMatch.matches &&
        eventsHoldNoToken &&
        probed.readiness.status === 200 &&
        total.requests > 0 &&
        total.ok === total.requests &&
        total.unauthorized === 0 &&
        total.withoutToken === 0 &&
        total.errors === 0,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch {
        // Best effort: one failed step must not leave the others (the temp folder) behind.
      }
    }
  }
}

/**
 * `podtoken-demo`: runs {@link runDemoScenario} with a live display (redrawn on a
 * terminal, a line a second or two otherwise), then prints the summary table. Returns 0
 * only when the result `passed`.
 *
 * @example
 * ```ts
 * process.exitCode = await runDemo(['--duration', '5'], { stdout: process.stdout, stderr: process.stderr });
 * ```
 */
export async function runDemo(args: readonly string[], io: DemoIO): Promise<number> {
  let options: Required<Pick<DemoOptions, 'duration' | 'tokenTtl' | 'rotateAfter' | 'concurrency'>>;
  let json: boolean;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        ...HELP_OPTION,
        duration: { type: 'string' },
        'token-ttl': { type: 'string' },
        'rotate-after': { type: 'string' },
        concurrency: { type: 'string' },
        json: { type: 'boolean' },
      },
    });
    if (values.help) {
      io.stdout.write(DEMO_USAGE);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    options = {
      duration: seconds(values.duration, 'duration', 20, { min: 0.5, max: 3600 }),
      tokenTtl: seconds(values['token-ttl'], 'token-ttl', 4, { min: 0.5, max: 3600 }),
      rotateAfter: fraction(values['rotate-after'], 'rotate-after', 0.8),
      concurrency: integer(values.concurrency, 'concurrency', 2, { min: 1, max: 32 }),
    };
    json = values.json === true;
  } catch (error) {
    return usageFailure(error, io);
  }

  const style = createStyle(io.stdout, io.env);
  const live = !json && io.stdout.isTTY === true;
  let drawn = 0;
  const onProgress = (p: DemoProgress) => {
    if (json) return;
    if (live) {
      const lines = renderLive(p, options, style);
      // Back to the top of the previous frame, clear it, draw the new one.
      io.stdout.write(`${drawn > 0 ? `\x1b[${drawn}F\x1b[J` : ''}${lines.join('\n')}\n`);
      drawn = lines.length;
    } else {
      io.stdout.write(`${renderProgressLine(p)}\n`);
    }
  };
  if (!json) {
    io.stdout.write(
      `podtoken-demo: ${options.duration} s of requests through axios, got and fetch (${options.concurrency} in flight each); ` +
        `tokens live ${options.tokenTtl} s and the fake kubelet replaces them after ${Math.round(options.rotateAfter * 100)} %.\n`,
    );
    if (live) io.stdout.write('\x1b[?25l');
  }

  let result: DemoResult;
  try {
    result = await runDemoScenario({
      ...options,
      onProgress,
      progressInterval: live ? 200 : options.duration <= 10 ? 1000 : 2000,
      ...(io.signal === undefined ? {} : { signal: io.signal }),
    });
  } catch (error) {
    io.stderr.write(`podtoken-demo: failed: ${printable(error instanceof Error ? error.message : String(error))}\n`);
    return 1;
  } finally {
    if (live) io.stdout.write('\x1b[?25h');
  }

  if (json) {
    io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    if (live && drawn > 0) io.stdout.write(`\x1b[${drawn}F\x1b[J`);
    io.stdout.write(renderDemoSummary(result, style));
  }
  return result.passed ? 0 : 1;
}

function createSenders(
  source: FileTokenSource,
  record: (client: DemoClientName, status: number, sentToken: boolean) => void,
  url: (client: DemoClientName) => string,
): Record<DemoClientName, () => Promise<void>> {
  // Counted at the transport, under the adapters, so a 401 the adapter retried counts
  // twice, exactly as the server counts it.
  const http = axios.getAdapter('http');
  const countingAdapter: AxiosAdapter = async (config) => {
    const sent = AxiosHeaders.from(config.headers).has('authorization');
    try {
      const response = await http(config);
      record('axios', response.status, sent);
      return response;
    } catch (error) {
      if (axios.isAxiosError(error) && error.response !== undefined) record('axios', error.response.status, sent);
      throw error;
    }
  };
  const axiosClient = withAxios(axios.create({ adapter: countingAdapter }), source);

  const gotClient = withGot(
    got.extend({
      retry: { limit: 0 },
      throwHttpErrors: false,
      hooks: {
        afterResponse: [
          (response) => {
            record('got', response.statusCode, response.request.options.headers['authorization'] !== undefined);
            return response;
          },
        ],
      },
    }),
    source,
  );

  const countingFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const sent = request.headers.has('authorization');
    const response = await fetch(request);
    record('fetch', response.status, sent);
    return response;
  };
  const fetchClient = withFetch(countingFetch, source);

  return {
    axios: async () => {
      try {
        await axiosClient.get(url('axios'));
      } catch (error) {
        // An HTTP answer (a 401) is already counted; only calls without one are errors.
        if (!axios.isAxiosError(error) || error.response === undefined) throw error;
      }
    },
    got: async () => {
      await gotClient.get(url('got'));
    },
    fetch: async () => {
      const response = await fetchClient(url('fetch'));
      await response.arrayBuffer();
    },
  };
}

// A real cluster mints tokens that live 10 minutes or more, where a whole-second `exp` is
// exact enough; the test issuer rounds `exp` up to a whole second, which at a 1 s lifetime
// would make tokens live anywhere from 1 to 2 s. The demo stamps `exp` to the millisecond
// instead (RFC 7519 allows fractional NumericDates), so a token lives exactly --token-ttl.
function withExactExpiry(issuer: Issuer, onMint: (token: string, ttlMs: number) => void): Issuer {
  return {
    issuer: issuer.issuer,
    alg: issuer.alg,
    jwks: issuer.jwks,
    mint: async (options = {}) => {
      const ttl = options.expirationSeconds ?? 3607;
      const minted = Date.now();
      const token = await issuer.mint({ ...options, claims: { exp: (minted + ttl * 1000) / 1000, ...options.claims } });
      onMint(token, ttl * 1000 - (Date.now() - minted));
      return token;
    },
    mintLegacy: (options) => issuer.mintLegacy(options),
  };
}

/** Resolves once `source` holds `token`, or after `timeout` ms. */
async function holding(source: FileTokenSource, token: string, timeout: number): Promise<void> {
  let off = () => {};
  await Promise.race([
    new Promise<void>((resolve) => {
      if (source.current?.value === token) return resolve();
      off = source.onRefresh((loaded) => {
        if (loaded.value === token) resolve();
      });
    }),
    sleep(timeout, undefined, { ref: false }),
  ]);
  off();
}

function sourceStatus(source: FileTokenSource): DemoSourceStatus {
  const { state, expiresIn } = source.status();
  return expiresIn === undefined ? { state } : { state, expiresIn };
}

// Over real HTTP, as the kubelet's probe would. The body is read for state and expiresIn only.
async function probeReadiness(url: string): Promise<{ readiness: DemoReadiness; body: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    const body = await response.text();
    let report: Partial<ReadinessReport> | undefined;
    try {
      report = JSON.parse(body) as Partial<ReadinessReport>;
    } catch {
      report = undefined;
    }
    const entry = Array.isArray(report?.sources) ? report.sources[0] : undefined;
    return {
      body,
      readiness: {
        status: response.status,
        ...(typeof report?.ready === 'boolean' ? { ready: report.ready } : {}),
        ...(typeof entry?.state === 'string' ? { state: entry.state } : {}),
        ...(typeof entry?.expiresIn === 'number' ? { expiresIn: entry.expiresIn } : {}),
      },
    };
  } catch {
    return { body: '', readiness: { status: 0 } };
  }
}

function emptyStats(client: DemoClientStats['client']): DemoClientStats {
  return { client, requests: 0, ok: 0, unauthorized: 0, withoutToken: 0, other: 0, errors: 0, errorCodes: {} };
}

function sumStats(all: readonly DemoClientStats[]): DemoClientStats {
  const total = emptyStats('total');
  for (const s of all) {
    total.requests += s.requests;
    total.ok += s.ok;
    total.unauthorized += s.unauthorized;
    total.withoutToken += s.withoutToken;
    total.other += s.other;
    total.errors += s.errors;
    for (const [code, n] of Object.entries(s.errorCodes)) total.errorCodes[code] = (total.errorCodes[code] ?? 0) + n;
  }
  return total;
}

function summarize(sorted: readonly number[]): LatencySummary {
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1)!, samples: sorted.length };
}

// Nearest rank: the value below which p % of the samples fall; always a measured sample.
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function latencyText(l: LatencySummary): string {
  return `p50 ${formatMs(l.p50)}  p99 ${formatMs(l.p99)}  max ${formatMs(l.max)}`;
}

function renderProgressLine(p: DemoProgress): string {
  const t = sumStats(p.clients);
  const elapsed = `${(p.elapsedMs / 1000).toFixed(1)}s`.padStart(6);
  return (
    `[${elapsed}] rotations ${p.rotations} | requests ${t.requests}: ok ${t.ok}, 401 ${t.unauthorized}, without token ${t.withoutToken}, errors ${t.errors}` +
    ` | last pickup ${p.lastPickupMs === undefined ? '-' : formatMs(p.lastPickupMs)}` +
    ` | source ${sourceText(p.source)}, ${p.events[DIAGNOSTICS_CHANNELS.tokenRefreshed]} token:refreshed`
  );
}

function renderLive(p: DemoProgress, options: { duration: number }, style: Style): string[] {
  const width = 24;
  const done = Math.min(1, p.elapsedMs / p.durationMs);
  const bar = `${'█'.repeat(Math.round(done * width))}${'░'.repeat(width - Math.round(done * width))}`;
  const rows = [
    ['client', 'requests', 'ok', '401', 'without token', 'errors'],
    ...p.clients.map((c) => [c.client, String(c.requests), String(c.ok), String(c.unauthorized), String(c.withoutToken), String(c.errors)]),
    ['server', String(p.server.ok + p.server.unauthorized + p.server.missing), String(p.server.ok), String(p.server.unauthorized), String(p.server.missing), ''],
  ];
  return [
    `  ${bar} ${(p.elapsedMs / 1000).toFixed(1)} / ${options.duration} s`,
    `  rotations ${style.bold(String(p.rotations))}   last pickup ${style.bold(p.lastPickupMs === undefined ? '-' : formatMs(p.lastPickupMs))}   source ${style.bold(sourceText(p.source))}`,
    `  events ${eventsText(p.events)}`,
    ...formatTable(rows, new Set([1, 2, 3, 4, 5])).map((line, i) => `  ${i === 0 ? style.dim(line) : line}`),
  ];
}

function sourceText(status: DemoSourceStatus): string {
  return `${status.state}${status.expiresIn === undefined ? '' : `, expires in ${(status.expiresIn / 1000).toFixed(1)}s`}`;
}

// The channels a newcomer should look at first, always shown; any other with events after them.
const KEY_CHANNELS: readonly DiagnosticsChannelName[] = [
  DIAGNOSTICS_CHANNELS.tokenRefreshed,
  DIAGNOSTICS_CHANNELS.tokenLoaded,
  DIAGNOSTICS_CHANNELS.readFailed,
  DIAGNOSTICS_CHANNELS.requestUnauthorized,
];

function eventsText(counts: DemoEventCounts): string {
  const others = (Object.keys(counts) as DiagnosticsChannelName[]).filter((name) => !KEY_CHANNELS.includes(name) && counts[name] > 0);
  return [...KEY_CHANNELS, ...others].map((name) => `${counts[name]} ${name.replace(/^podtoken:/, '')}`).join(', ');
}

function readinessText(r: DemoReadiness, style: Style): string {
  if (r.status === 0) return style.red('GET /ready got no answer ✗');
  const detail = [r.state === undefined ? undefined : printable(r.state), r.expiresIn === undefined ? undefined : `expires in ${(r.expiresIn / 1000).toFixed(1)}s`]
    .filter((part) => part !== undefined)
    .join(', ');
  const text = `GET /ready answered ${r.status}${detail === '' ? '' : ` (demo-app: ${detail})`}`;
  return r.status === 200 ? style.green(`${text} ✓`) : style.red(`${text} ✗`);
}

/** The summary table printed at the end of `podtoken-demo`. */
function renderDemoSummary(r: DemoResult, style: Style): string {
  const row = (s: DemoClientStats) => [s.client, String(s.requests), String(s.ok), String(s.unauthorized), String(s.withoutToken), String(s.errors)];
  const serverTotal = r.server.ok + r.server.unauthorized + r.server.missing;
  const table = formatTable(
    [
      ['client', 'requests', 'ok', '401', 'without token', 'errors'],
      ...r.clients.map(row),
      row(r.total),
      ['server', String(serverTotal), String(r.server.ok), String(r.server.unauthorized), String(r.server.missing), '-'],
    ],
    new Set([1, 2, 3, 4, 5]),
  );
  const lines = [
    '',
    `${style.bold('Summary')}${r.interrupted ? style.yellow(' (interrupted)') : ''}: ${(r.elapsedMs / 1000).toFixed(1)} s, tokens living ${r.tokenTtl} s replaced after ${Math.round(r.rotateAfter * 100)} %, ${r.concurrency} request${r.concurrency === 1 ? '' : 's'} in flight per client`,
    '',
    ...table.map((line, i) => `  ${i === 0 ? style.dim(line) : i === table.length - 2 ? style.bold(line) : line}`),
    '',
    `  rotations        ${r.rotations}, ${r.pickedUp} seen at the server`,
    `  pickup latency   ${
      r.pickupMs === undefined
        ? '-'
        : `${latencyText(r.pickupMs)}  (..data swap to the first request with the new token at the server)`
    }`,
    `  reload latency   ${r.reloadMs === undefined ? '-' : `${latencyText(r.reloadMs)}  (..data swap to the new token in the app's memory)`}`,
  ];
  if (r.maxKubeletLagMs > 100 && r.lateRotations === 0) {
    lines.push(`  fake kubelet     ${style.yellow(`up to ${formatMs(r.maxKubeletLagMs)} behind its schedule`)}: this machine is busy.`);
  }
  if (r.lateRotations > 0) {
    lines.push(
      `  late rotations   ${style.yellow(String(r.lateRotations))}: the fake kubelet wrote a token up to ${formatMs(r.maxLateMs ?? 0)} after the previous one expired (this machine was too busy); calls in that gap fail with TOKEN_EXPIRED. Try a longer --token-ttl.`,
    );
  }
  const refreshed = r.events[DIAGNOSTICS_CHANNELS.tokenRefreshed];
  const skipped = r.skippedTokens === 0 ? '' : `; ${r.skippedTokens} replaced before the app read ${r.skippedTokens === 1 ? 'it' : 'them'}`;
  lines.push(
    `  events           ${eventsText(r.events)}`,
    `                   ${
      r.eventsMatchKubelet
        ? style.green(`${refreshed} token:refreshed for the ${r.tokensWritten - 1} tokens the fake kubelet wrote after the first${skipped}, each matched by its exp ✓`)
        : style.red(`${refreshed} token:refreshed DO NOT match the ${r.tokensWritten - 1} tokens the fake kubelet wrote after the first ✗`)
    }`,
    `                   ${r.eventsHoldNoToken ? style.green('no event message holds a token ✓') : style.red('an event message or the readiness body HOLDS a token ✗')}`,
    `  readiness        ${readinessText(r.readiness, style)}`,
  );
  const codes = Object.entries(r.total.errorCodes);
  if (codes.length > 0) lines.push(`  errors           ${codes.map(([code, n]) => `${printable(code)} ×${n}`).join(', ')}`);
  if (r.total.other > 0) lines.push(`  other statuses   ${r.total.other}`);
  lines.push(
    `  counts           ${r.countsMatch ? style.green("client totals equal the server's own counts ✓") : style.red("client totals DIFFER from the server's own counts ✗")}`,
    `  result           ${
      r.passed
        ? style.green('✓ every request was authenticated')
        : style.red(
            r.total.requests === 0
              ? '✗ no request was made'
              : r.total.ok !== r.total.requests || r.total.errors > 0
                ? '✗ some requests failed authentication or never got an answer'
                : '✗ every request was authenticated, but a check above failed',
          )
    }`,
    '',
  );
  return lines.join('\n');
}
