import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIssuer } from '@podtoken/testing';
import { CASES } from './adversarial/cases.js';
import { DRIVERS } from './adversarial/drivers.js';
import { harnessEnv, startServers, type Servers } from './adversarial/harness.js';
import { RENDERING_COUNT } from './adversarial/renderings.js';
import { formatTable, runCorpus, type CorpusTokens, type RunResult } from './adversarial/run.js';

// The adversarial corpus (harness, cases and drivers under ./adversarial/): redirect
// statuses × cross-origin kinds × retries (the client's own, axios-retry, a fetch retry loop,
// the adapter's 401 retry) × origins lists, Location spellings that hide another host, and
// failures whose errors are rendered every way a log line could. Every case runs against
// every client; the table says where each request went (`*`: it carried a token) and how the
// call ended, `✗` marks a violation. Print it with:
//
//   npx vitest run test/reliability/adversarial.test.ts
//
// The token is never printed: the servers and the renderings compare it.

let servers: Servers;
let tokens: CorpusTokens;
let results: RunResult[] = [];

beforeAll(async () => {
  const issuer = await createIssuer();
  tokens = {
    first: await issuer.mint({ audience: 'adversarial', expirationSeconds: 3600 }),
    second: await issuer.mint({ audience: 'adversarial', expirationSeconds: 3600 }),
  };
  servers = await startServers([tokens.first, tokens.second]);
});

afterAll(async () => {
  await servers?.close();
});

describe('adversarial corpus', () => {
  it(`${CASES.length} cases × ${DRIVERS.length} clients: the token goes nowhere it should not, and no error renders it`, { timeout: 600_000 }, async () => {
    const started = performance.now();
    results = await runCorpus(CASES, DRIVERS, servers, harnessEnv(), tokens);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const failed = results.filter((result) => result.violations.length > 0);
    console.log(
      [
        `adversarial corpus: ${CASES.length} cases × ${DRIVERS.length} clients = ${results.length} runs in ${seconds} s; ` +
          `${failed.length} with a violation. Each error rendered ${RENDERING_COUNT.cheap} ways (${RENDERING_COUNT.deep} for the error cases).`,
        `clients: ${DRIVERS.map((driver) => `${driver.name} ${driver.version}`).join(', ')}`,
        `A = http://127.0.0.1:P, A/s = https on A's port, B = another port, H2 = 127.0.0.2:P, LH = localhost:P, API/SUB = api.test/sub.api.test:P; * = carried a token`,
        '',
        formatTable(CASES, DRIVERS, results),
      ].join('\n'),
    );
    const report = failed.map((result) => `${result.caseId} [${result.driver}]: ${result.violations.join('; ')}`);
    expect(report).toEqual([]);
  });

  it('is the corpus it claims to be: at least 60 cases, every kind covered', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(60);
    expect(new Set(CASES.map((test) => test.id)).size).toBe(CASES.length);
    for (const needle of ['301', '302', '303', '307', '308', 'port', '127.0.0.2', 'localhost', 'http→https', 'https→http', 'subdomain', 'A→B→A', 'retry', '401 at hop', '401 at start', 'origins=[A,B]']) {
      expect(CASES.some((test) => test.id.includes(needle)), needle).toBe(true);
    }
  });
});
