import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { staticTokenSource } from '@podtoken/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTokenSource } from '../src/index.js';
import { createCa, issueServerCert } from './support/pki.js';
import { HOP_KINDS, LAB_NAMES, REDIRECT_STATUSES, startRedirectLab, type HopKind, type RedirectLab } from './support/redirectLab.js';
import { renderingsHolding } from './support/renderings.js';
import { FLAVORS, type ClientNode } from './support/simulatedPod.js';

// The adversarial corpus for @kubernetes/client-node: an API server (A) answers the first
// request of each case with a redirect (301, 302, 303, 307, 308) to another port of its host
// (B), another host name (localhost), a subdomain of its name (api.lab.test → evil.api.lab.test,
// through a CONNECT proxy that resolves them), plain http, or to B which sends the client back to A.
// Each case runs through an API client call, a Watch and a Log, with client-node 1.4.0
// (node-fetch 2) and 2.0.1 (undici), with podtoken and, for comparison, with client-node's own
// static-token user. `origins` lists every lab origin, so only the redirect rule can keep the
// token from a hop: it may reach A's first request and nothing else, and no error rendering
// may hold it. The table says where the token went; the token itself is never printed.

type Helper = 'API client' | 'Watch' | 'Log';
const HELPERS: readonly Helper[] = ['API client', 'Watch', 'Log'];
const TOKEN = `podtoken-corpus-${randomBytes(12).toString('hex')}`; // a stand-in, not a secret

interface Row {
  readonly name: string;
  readonly status: number;
  readonly kind: HopKind;
  readonly helper: Helper;
  readonly with: 'podtoken' | 'client-node alone';
  readonly wentTo: string[];
  readonly reachedTarget: boolean;
  readonly outcome: string;
  readonly leakyRenderings: string[];
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]);
}

function outcomeOf(error: unknown): string {
  if (error === undefined) return 'ok';
  const e = error as { name?: string; code?: unknown; statusCode?: unknown; cause?: { code?: unknown } };
  return [e.name, e.code ?? e.cause?.code ?? e.statusCode].filter((part) => part !== undefined).join(' ');
}

for (const flavor of FLAVORS) {
  describe.runIf(flavor.supported)(`redirect corpus with ${flavor.title}`, () => {
    let k8s: ClientNode;
    let lab: RedirectLab;
    let caData: string;
    const rows: Row[] = [];
    let counter = 0;

    beforeAll(async () => {
      k8s = await flavor.load();
      const ca = createCa('podtoken-corpus-ca');
      caData = Buffer.from(ca.certPem).toString('base64');
      lab = await startRedirectLab(issueServerCert(ca, [LAB_NAMES.api, LAB_NAMES.subdomain]), `Bearer ${TOKEN}`);
    });

    afterAll(async () => {
      await lab?.close();
      if (rows.length === 0) return;
      const width = (values: string[]) => Math.max(...values.map((value) => value.length));
      const cells = rows.map((row) => [
        `${row.status} ${row.kind}`,
        `${flavor.name} ${row.helper}`,
        row.with,
        row.wentTo.join(', ') || 'nowhere',
        row.reachedTarget ? 'followed' : 'not followed',
        row.outcome,
      ]);
      const header = ['case', 'client', 'auth', 'token went to (server#hop)', 'redirect', 'outcome'];
      const widths = header.map((title, column) => width([title, ...cells.map((cell) => cell[column]!)]));
      const line = (cell: string[]) => cell.map((value, column) => value.padEnd(widths[column]!)).join(' | ');
      console.log(
        [
          `[${flavor.name}] where the token went (A = the API server, B = another port, H = another host, D = a subdomain, S = plain http; #hop):`,
          line(header),
          ...cells.map(line),
        ].join('\n'),
      );
    });

    // The subdomain case needs names: the API server is reached as api.lab.test through the lab's proxy.
    function kubeConfig(user: Record<string, unknown>, kind: HopKind) {
      const config = new k8s.KubeConfig();
      const cluster = kind === 'subdomain' ? { server: lab.namedOrigin, proxyUrl: lab.proxy } : { server: lab.origin };
      config.loadFromOptions({
        clusters: [{ name: 'lab', ...cluster, caData, skipTLSVerify: false }],
        users: [{ name: 'u', ...user }],
        contexts: [{ name: 'lab', cluster: 'lab', user: 'u' }],
        currentContext: 'lab',
      });
      return config;
    }

    async function run(config: InstanceType<ClientNode['KubeConfig']>, helper: Helper, namespace: string): Promise<void> {
      if (helper === 'API client') {
        await withTimeout(config.makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace }), 10_000, helper);
      } else if (helper === 'Watch') {
        await withTimeout(
          new Promise<void>((resolve, reject) => {
            new k8s.Watch(config)
              .watch(`/api/v1/namespaces/${namespace}/pods`, {}, () => {}, (error: unknown) => (error ? reject(error) : resolve()))
              .catch(reject);
          }),
          10_000,
          helper,
        );
      } else {
        const stream = new PassThrough();
        const ended = new Promise<void>((resolve) => stream.on('end', () => resolve()));
        stream.resume();
        await withTimeout(
          new k8s.Log(config).log(namespace, 'p', 'c', stream).then(() => ended),
          10_000,
          helper,
        );
      }
    }

    async function runCase(status: number, kind: HopKind, helper: Helper, auth: Row['with']): Promise<Row> {
      const name = `case-${++counter}`;
      lab.plan(name, { status, kind });
      const config = kubeConfig(auth === 'podtoken' ? {} : { token: TOKEN }, kind);
      if (auth === 'podtoken') withTokenSource(config, staticTokenSource(TOKEN), { origins: [...lab.origins] });
      let error: unknown;
      try {
        await run(config, helper, name);
      } catch (caught) {
        error = caught ?? new Error('rejected with nothing');
      }
      const hops = lab.hops(name);
      const row: Row = {
        name,
        status,
        kind,
        helper,
        with: auth,
        wentTo: hops.filter((hop) => hop.authorization === 'token').map((hop) => `${hop.at}#${hop.hop}`),
        reachedTarget: hops.some((hop) => hop.hop >= 2),
        outcome: outcomeOf(error),
        leakyRenderings: error === undefined ? [] : renderingsHolding(error, TOKEN),
      };
      rows.push(row);
      return row;
    }

    for (const helper of HELPERS) {
      it.each(REDIRECT_STATUSES.flatMap((status) => HOP_KINDS.map((kind) => [status, kind] as const)))(
        `${helper}: %i to %s: the token reaches the API server's first request only`,
        async (status, kind) => {
          const ours = await runCase(status, kind, helper, 'podtoken');
          // For comparison (printed, not asserted): client-node with a static token.
          await runCase(status, kind, helper, 'client-node alone');
          expect(ours.wentTo).toEqual(['A#1']);
          expect(ours.leakyRenderings).toEqual([]);
        },
      );
    }
  });
}
