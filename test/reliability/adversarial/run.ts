import type { TokenSource } from '@podtoken/core';
import type { AdversarialCase } from './cases.js';
import { route, type ClientDriver, type HarnessEnv, type Servers } from './harness.js';
import { leakingRenderings } from './renderings.js';

// Runs the corpus: every case against every driver, judged from what the servers saw and
// from every rendering of the error the call rejected with. Prints nothing itself.

/** The verdict for one case and one driver. */
export interface RunResult {
  readonly caseId: string;
  readonly driver: string;
  /** Where the requests went, in order (`A* B B`: `*` marks a request that carried a token), and how the call ended. */
  readonly cell: string;
  /** Everything that went wrong; empty when the run is clean. */
  readonly violations: readonly string[];
}

/** The two tokens of a run: the source hands out `first`, and `second` after an invalidate(). */
export interface CorpusTokens {
  readonly first: string;
  readonly second: string;
}

/** A source that serves `first`, then `second` once `first` was refused (a 401). */
export function rotatingSource(tokens: CorpusTokens): TokenSource {
  let current = tokens.first;
  return {
    getToken: async () => current,
    invalidate: async (rejected) => {
      if (rejected === current && current === tokens.first) current = tokens.second;
    },
  };
}

let runs = 0;

/** Runs one case against one driver. */
export async function runCase(test: AdversarialCase, driver: ClientDriver, servers: Servers, env: HarnessEnv, tokens: CorpusTokens): Promise<RunResult> {
  const run = `r${(++runs).toString(36)}`;
  const r = route(run);
  const controller = new AbortController();
  const timer = test.abortAfterMs === undefined ? undefined : setTimeout(() => controller.abort(), test.abortAfterMs);
  const origins = test.origins?.(servers);
  const result = await driver
    .call(
      {
        url: test.start(servers, r),
        method: test.method,
        body: test.body,
        source: rotatingSource(tokens),
        options: origins === undefined ? {} : { origins },
        retry: test.retry,
        timeoutMs: test.timeoutMs,
        signal: test.abortAfterMs === undefined ? undefined : controller.signal,
        trustTestCa: test.trustTestCa ?? true,
      },
      env,
    )
    .catch((error: unknown) => ({ status: undefined, error: new Error(`the driver threw: ${describe(error)}`) }));
  clearTimeout(timer);

  const seen = servers.log.filter((entry) => entry.run === run);
  const violations: string[] = [];
  for (const entry of seen) {
    const where = `${servers.label(entry.origin)} ${entry.method} /${entry.phase}`;
    if (entry.carried && entry.phase !== 'start' && entry.phase !== 'same') violations.push(`LEAK: the token reached ${where} (the chain had left its origin)`);
    if (!entry.carried && (entry.phase === 'start' || entry.phase === 'same')) violations.push(`SILENT: no token on ${where}`);
  }
  if (test.reachesHop && !seen.some((entry) => entry.phase === 'after' || entry.phase === 'same')) {
    violations.push('NOT RUN: the chain never reached its hop');
  }
  if (test.status !== undefined && result.status !== test.status) violations.push(`ended with ${result.status ?? describe(result.error)}, expected ${test.status}`);
  if (result.error !== undefined) {
    for (const rendering of leakingRenderings(result.error, [tokens.first, tokens.second], test.deep === true)) {
      violations.push(`LEAK: ${rendering} of the error holds the token`);
    }
  }
  const hops = squeeze(seen.map((entry) => `${servers.label(entry.origin)}${entry.carried ? '*' : ''}`));
  const end = result.status !== undefined ? String(result.status) : describe(result.error);
  return { caseId: test.id, driver: driver.name, cell: `${hops || '-'} → ${end}`, violations };
}

/**
 * Runs every case against every driver, one call at a time. One at a time on purpose: a
 * serializer without a depth limit follows an error into connection pools (an `http.Agent`
 * in the config, follow-redirects' reference to the `http` module and its globalAgent) and
 * from there into other requests still in flight, which hold the token while they are being
 * sent. No adapter can clean those without breaking them (the READMEs say so); the corpus
 * judges what the adapter hands back.
 */
export async function runCorpus(cases: readonly AdversarialCase[], drivers: readonly ClientDriver[], servers: Servers, env: HarnessEnv, tokens: CorpusTokens): Promise<RunResult[]> {
  const results: RunResult[] = [];
  for (const test of cases) {
    for (const driver of drivers) results.push(await runCase(test, driver, servers, env, tokens));
  }
  for (const driver of drivers) await driver.close?.();
  return results;
}

/** A pivot table: one row per case, one column per driver. */
export function formatTable(cases: readonly AdversarialCase[], drivers: readonly ClientDriver[], results: readonly RunResult[]): string {
  const byKey = new Map(results.map((result) => [`${result.caseId}\u0000${result.driver}`, result]));
  const header = ['case', ...drivers.map((driver) => driver.name)];
  const rows = cases.map((test) => [
    test.id,
    ...drivers.map((driver) => {
      const result = byKey.get(`${test.id}\u0000${driver.name}`);
      return result === undefined ? '' : `${result.violations.length === 0 ? '' : '✗ '}${result.cell}`;
    }),
  ]);
  const widths = header.map((_, column) => Math.max(...[header, ...rows].map((row) => row[column]!.length)));
  const line = (row: string[]) => row.map((text, column) => text.padEnd(widths[column]!)).join(' │ ').trimEnd();
  return [line(header), widths.map((width) => '─'.repeat(width)).join('─┼─'), ...rows.map(line)].join('\n');
}

/** `A* A* A* B` → `A*×3 B`: endless redirects stay one short cell. */
function squeeze(hops: string[]): string {
  const out: string[] = [];
  for (let i = 0; i < hops.length; ) {
    let j = i;
    while (j < hops.length && hops[j] === hops[i]) j++;
    out.push(j - i > 2 ? `${hops[i]}×${j - i}` : hops.slice(i, j).join(' '));
    i = j;
  }
  return out.join(' ');
}

/** An error's class and code (never its message or fields: those could hold anything). */
function describe(error: unknown): string {
  if (error === undefined) return 'no status';
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const name = error.constructor.name || error.name;
    return typeof code === 'string' ? `${name} ${code}` : name;
  }
  return typeof error;
}
