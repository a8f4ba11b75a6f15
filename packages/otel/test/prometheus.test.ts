import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, expect, it } from 'vitest';
import { FileTokenSource } from '@podtoken/core';
import { withTokenSource } from '@podtoken/fetch';
import { createIssuer, ProjectedVolume, startTokenServer } from '@podtoken/testing';
import { instrumentPodtoken } from '@podtoken/otel';
import { secretParts, tempDir } from './support.js';

const AUDIENCE = 'https://api.internal';
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('a Prometheus scrape over HTTP shows every series, and no token text', async () => {
  const { dir, remove } = await tempDir();
  cleanups.push(remove);
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir });
  const minted: string[] = [];
  const mint = async () => {
    const token = await issuer.mint({ audience: AUDIENCE, expirationSeconds: 3600 });
    minted.push(token);
    return token;
  };
  await volume.write({ token: await mint() });

  // The exporter's own handler, served on a free loopback port (its port option cannot be 0).
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  cleanups.push(() => meterProvider.shutdown());
  const http: Server = createServer((request, response) => exporter.getMetricsRequestHandler(request, response));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => http.close(resolve)));
  const scrape = async () => {
    const response = await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  };

  const source = new FileTokenSource({ path: volume.path('token'), name: 'api', audience: AUDIENCE, pollInterval: 0 });
  cleanups.push(() => source.close());
  const instrumentation = instrumentPodtoken({ meterProvider, sources: [source] });
  cleanups.push(() => instrumentation.close());
  await source.ready();

  // A rotation, a broken file, a good one again, and a 401 from a server for another audience.
  const refreshed = () => new Promise<void>((resolve) => { const off = source.onRefresh(() => { off(); resolve(); }); });
  const failed = () => new Promise<void>((resolve) => { const off = source.onError(() => { off(); resolve(); }); });
  let next = refreshed();
  await volume.write({ token: await mint() });
  await next;
  next = failed();
  await volume.write({ token: 'garbage' });
  await next;
  next = refreshed();
  await volume.write({ token: await mint() });
  await next;
  const server = await startTokenServer({ issuer, audience: 'https://someone-else' });
  cleanups.push(() => server.close());
  const response = await withTokenSource(globalThis.fetch, source, { origins: [server.origin] })(server.url);
  await response.arrayBuffer();
  expect(response.status).toBe(401);

  const text = await scrape();
  const lines = parse(text);
  const series = (name: string) => lines.filter((line) => line.name === name);
  const value = (name: string, labels: Record<string, string>) => {
    const found = series(name).filter((line) => Object.entries(labels).every(([k, v]) => line.labels[k] === v));
    expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
    return found[0]!.value;
  };
  const api = { podtoken_source_name: 'api' };
  expect(value('podtoken_token_expires_in', api)).toBeGreaterThan(3500);
  expect(value('podtoken_token_expires_in', api)).toBeLessThanOrEqual(3600);
  expect(value('podtoken_token_age', api)).toBeLessThan(60);
  expect(series('podtoken_source_state')).toHaveLength(6);
  expect(value('podtoken_source_state', { ...api, podtoken_source_state: 'ok' })).toBe(1);
  expect(value('podtoken_source_state', { ...api, podtoken_source_state: 'failing' })).toBe(0);
  expect(value('podtoken_source_serving', api)).toBe(1);
  // Two new tokens after the first: read on their folder event (or, for the one after the
  // garbage, perhaps by the retry timer first).
  expect(series('podtoken_token_refreshes_total').reduce((sum, line) => sum + line.value, 0)).toBe(2);
  // One garbage write; its folder events may cause a second read of it.
  expect(value('podtoken_read_failures_total', { ...api, error_type: 'TOKEN_MALFORMED' })).toBeGreaterThanOrEqual(1);
  expect(value('podtoken_request_unauthorized_total', { ...api, podtoken_adapter: 'fetch', podtoken_unauthorized_reason: 'token-unchanged' })).toBe(1);
  expect(value('podtoken_token_invalidations_total', { ...api, podtoken_invalidation_outcome: 'unchanged' })).toBe(1);
  expect(value('podtoken_read_duration_bucket', { ...api, podtoken_read_outcome: 'failed', le: '+Inf' })).toBe(value('podtoken_read_failures_total', { ...api, error_type: 'TOKEN_MALFORMED' }));
  expect(value('podtoken_read_duration_bucket', { ...api, podtoken_read_outcome: 'changed', le: '1' })).toBe(3);
  expect(value('podtoken_read_duration_count', { ...api, podtoken_read_outcome: 'same' })).toBeGreaterThanOrEqual(1); // the 401's re-read
  // Every series is labelled by its source, or its folder, or its adapter: bounded sets.
  for (const line of lines.filter((l) => l.name.startsWith('podtoken_'))) {
    expect(line.labels.podtoken_source_name ?? line.labels.podtoken_watch_folder ?? line.labels.podtoken_adapter).toBeDefined();
  }
  expect(text).toContain('# UNIT podtoken_read_duration s');

  // Three tokens minted at run time, each in full and by its parts: none in the scrape.
  expect(minted).toHaveLength(3);
  for (const token of minted) for (const part of secretParts(token)) expect(text.includes(part)).toBe(false);
  // The check would see a token: the tokens are base64url, and the scrape holds such text.
  expect(text).toMatch(/[A-Za-z0-9_-]{3,}/);
});

interface Line {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The sample lines of a Prometheus text exposition (no escaped quotes in our label values). */
function parse(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(raw);
    if (match === null) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    lines.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return lines;
}
