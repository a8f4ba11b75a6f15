import { hasSubscribers } from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { createTokenSources, DIAGNOSTICS_CHANNELS, FileTokenSource, type TokenSourceError } from '@podtoken/core';
import { withTokenSource } from '@podtoken/fetch';
import { createIssuer, ProjectedVolume, startTokenServer, type Issuer, type TokenServer } from '@podtoken/testing';
import { instrumentPodtoken, PODTOKEN_ATTRIBUTES as A, PODTOKEN_METRICS as M, READ_DURATION_BUCKETS, type PodtokenInstrumentation } from '@podtoken/otel';
import { collect, CollectingReader, secretParts, tempDir, until } from './support.js';

const AUDIENCE = 'https://api.internal';
const channelNames = Object.values(DIAGNOSTICS_CHANNELS);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Setup {
  issuer: Issuer;
  volume: ProjectedVolume;
  reader: CollectingReader;
  meterProvider: MeterProvider;
  minted: string[];
  mint(options?: { expirationSeconds?: number }): Promise<string>;
  source(options?: { name?: string; sources?: boolean }): Promise<{ source: FileTokenSource; instrumentation: PodtokenInstrumentation }>;
}

async function setup(): Promise<Setup> {
  const { dir, remove } = await tempDir();
  cleanups.push(remove);
  const issuer = await createIssuer();
  const volume = new ProjectedVolume({ dir });
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  cleanups.push(() => meterProvider.shutdown());
  const minted: string[] = [];
  const mint = async (options: { expirationSeconds?: number } = {}) => {
    const token = await issuer.mint({ audience: AUDIENCE, expirationSeconds: options.expirationSeconds ?? 3600 });
    minted.push(token);
    return token;
  };
  await volume.write({ token: await mint() });
  return {
    issuer,
    volume,
    reader,
    meterProvider,
    minted,
    mint,
    // The source starts reading before instrumentPodtoken() subscribes, as in an app that
    // sets up metrics after its sources: that first read is still timed (see the first test).
    async source({ name = 'api', sources = true } = {}) {
      const source = new FileTokenSource({ path: volume.path('token'), name, audience: AUDIENCE, pollInterval: 0 });
      cleanups.push(() => source.close());
      const instrumentation = instrumentPodtoken({ meterProvider, ...(sources ? { sources: [source] } : {}) });
      cleanups.push(() => instrumentation.close());
      await source.ready();
      return { source, instrumentation };
    },
  };
}

function nextError(source: FileTokenSource): Promise<TokenSourceError> {
  return new Promise((resolve) => {
    const off = source.onError((error) => {
      off();
      resolve(error);
    });
  });
}

function nextRefresh(source: FileTokenSource): Promise<void> {
  return new Promise((resolve) => {
    const off = source.onRefresh(() => {
      off();
      resolve();
    });
  });
}

describe('instrumentPodtoken', () => {
  it('subscribes to nothing until it is called, and to nothing after close()', async () => {
    // Importing the package (done above) subscribed nothing: core publishes nothing.
    expect(channelNames.filter((name) => hasSubscribers(name))).toEqual([]);
    const meterProvider = new MeterProvider({ readers: [new CollectingReader()] });
    const instrumentation = instrumentPodtoken({ meterProvider });
    expect(channelNames.filter((name) => hasSubscribers(name))).toEqual(channelNames);
    // A second instrumentation of the same provider would count every event twice.
    expect(() => instrumentPodtoken({ meterProvider })).toThrow(/already instrumented/);
    instrumentation.close();
    instrumentation.close();
    expect(channelNames.filter((name) => hasSubscribers(name))).toEqual([]);
    instrumentPodtoken({ meterProvider }).close(); // once closed, it can be instrumented again
    await meterProvider.shutdown();
  });

  it('reports expiry, age, state and the first read of a source it is given, read from status() at collection time', async () => {
    const t = await setup();
    await t.source();
    const now = await collect(t.reader);
    const api = { [A.source]: 'api' };

    const expiresIn = now.value(M.expiresIn, api)!;
    expect(expiresIn).toBeGreaterThan(3590);
    expect(expiresIn).toBeLessThanOrEqual(3600);
    expect(now.descriptor(M.expiresIn)).toMatchObject({ unit: 's', type: 'OBSERVABLE_GAUGE' });
    const age = now.value(M.age, api)!;
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(10);
    expect(now.value(M.serving, api)).toBe(1);
    expect(Object.fromEntries(now.points(M.state).map((p) => [p.attributes[A.state], p.value]))).toEqual({
      loading: 0,
      ok: 1,
      'refresh-overdue': 0,
      failing: 0,
      expired: 0,
      closed: 0,
    });

    // The first read: one histogram point, in seconds, with the advised buckets.
    const read = now.histogram(M.readDuration, { ...api, [A.readOutcome]: 'changed' })!;
    expect(read.count).toBe(1);
    expect(read.sum).toBeGreaterThan(0);
    expect(read.sum).toBeLessThan(1);
    expect(read.buckets.boundaries).toEqual(READ_DURATION_BUCKETS);
    expect(now.descriptor(M.readDuration)).toMatchObject({ unit: 's', type: 'HISTOGRAM' });
    // A first load is not a refresh.
    expect(now.sum(M.refreshes)).toBe(0);

    // Gauges are computed when collected: a second later the token is a second older.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const later = await collect(t.reader);
    expect(later.value(M.age, api)! - age).toBeGreaterThanOrEqual(1);
    expect(expiresIn - later.value(M.expiresIn, api)!).toBeGreaterThanOrEqual(1);
  });

  it('counts a rotation by trigger, a broken file by error code, and shows the source failing while it still serves', async () => {
    const t = await setup();
    const { source } = await t.source();
    const api = { [A.source]: 'api' };

    const refreshed = nextRefresh(source);
    await t.volume.write({ token: await t.mint({ expirationSeconds: 1800 }) });
    await refreshed;
    let now = await collect(t.reader);
    expect(now.value(M.refreshes, { ...api, [A.trigger]: 'event' })).toBe(1);
    expect(now.value(M.expiresIn, api)!).toBeLessThanOrEqual(1800);
    expect(now.histogram(M.readDuration, { ...api, [A.readOutcome]: 'changed' })!.count).toBe(2);

    // Garbage where a JWT was: refused as TOKEN_MALFORMED, the last good token still served.
    const failed = nextError(source);
    await t.volume.write({ token: 'not a token at all' });
    expect((await failed).code).toBe('TOKEN_MALFORMED');
    now = await collect(t.reader);
    expect(now.value(M.readFailures, { ...api, [A.errorType]: 'TOKEN_MALFORMED' })).toBeGreaterThanOrEqual(1);
    expect(now.histogram(M.readDuration, { ...api, [A.readOutcome]: 'failed' })!.count).toBeGreaterThanOrEqual(1);
    expect(now.value(M.state, { ...api, [A.state]: 'failing' })).toBe(1);
    expect(now.value(M.state, { ...api, [A.state]: 'ok' })).toBe(0);
    expect(now.value(M.serving, api)).toBe(1);

    // A good token again: state back to ok.
    const back = nextRefresh(source);
    await t.volume.write({ token: await t.mint() });
    await back;
    now = await collect(t.reader);
    expect(now.value(M.state, { ...api, [A.state]: 'ok' })).toBe(1);
    expect(now.sum(M.refreshes, api)).toBe(2); // by event, or by the retry timer after the failure

    // The volume torn down: the folder watch fails (folder removed) and the file is missing.
    const missing = until(() => (source.status().lastError?.code === 'TOKEN_FILE_MISSING' ? true : undefined), 5_000, 'TOKEN_FILE_MISSING');
    await t.volume.remove();
    await missing;
    now = await until(async () => {
      const c = await collect(t.reader);
      return c.sum(M.watchFailures) > 0 ? c : undefined;
    });
    expect(now.value(M.readFailures, { ...api, [A.errorType]: 'TOKEN_FILE_MISSING' })).toBeGreaterThanOrEqual(1);
    const watch = now.points(M.watchFailures);
    expect(watch.every((p) => p.attributes[A.watchFolder] === t.volume.dir)).toBe(true);
    expect(watch.map((p) => p.attributes[A.watchReason])).toContain('removed');

    // The volume back: the watch is re-armed, and counted.
    const rearmed = nextRefresh(source);
    await t.volume.write({ token: await t.mint() });
    await rearmed;
    now = await until(async () => {
      const c = await collect(t.reader);
      return c.sum(M.watchRearms) > 0 ? c : undefined;
    }, 10_000, 'watch rearmed');
    expect(now.value(M.watchRearms, { [A.watchFolder]: t.volume.dir })).toBeGreaterThanOrEqual(1);
  });

  it('counts a real 401 through @podtoken/fetch by adapter and reason, and the re-read it caused', async () => {
    const t = await setup();
    const { source } = await t.source();
    // A server for another audience: it refuses every token this pod has.
    const server: TokenServer = await startTokenServer({ issuer: t.issuer, audience: 'https://someone-else' });
    cleanups.push(() => server.close());
    const fetch = withTokenSource(globalThis.fetch, source, { origins: [server.origin] });

    const response = await fetch(`${server.url}orders`);
    await response.arrayBuffer();
    expect(response.status).toBe(401);
    expect(server.counts.unauthorized).toBe(1); // the re-read found the same token: no retry

    const now = await collect(t.reader);
    expect(now.value(M.unauthorized, { [A.adapter]: 'fetch', [A.source]: 'api', [A.unauthorizedReason]: 'token-unchanged' })).toBe(1);
    expect(now.value(M.invalidations, { [A.source]: 'api', [A.invalidationOutcome]: 'unchanged' })).toBe(1);
    expect(now.histogram(M.readDuration, { [A.source]: 'api', [A.readOutcome]: 'same' })!.count).toBeGreaterThanOrEqual(1);

    // Only token text ever minted could leak; none of it is in the collected metrics.
    const everything = JSON.stringify(now.metrics) + inspect(now.metrics, { depth: Infinity });
    for (const token of t.minted) for (const part of secretParts(token)) expect(everything.includes(part)).toBe(false);
  });

  it('counts the token passing its exp, and reports the source expired and not serving', async () => {
    const t = await setup();
    const { source } = await t.source();
    // The issuer refuses lifetimes under 600 s, as the API server does: write one minted with
    // an iat in the past instead, expiring 1.5 s from now.
    const short = await t.issuer.mint({ audience: AUDIENCE, expirationSeconds: 600, issuedAt: new Date(Date.now() - 598_500) });
    t.minted.push(short);
    const refreshed = nextRefresh(source);
    await t.volume.write({ token: short });
    await refreshed;
    await until(() => (source.status().state === 'expired' ? true : undefined), 5_000, 'expired');
    const now = await until(async () => {
      const c = await collect(t.reader);
      return c.sum(M.expirations) > 0 ? c : undefined;
    });
    expect(now.value(M.expirations, { [A.source]: 'api' })).toBe(1);
    expect(now.value(M.state, { [A.source]: 'api', [A.state]: 'expired' })).toBe(1);
    expect(now.value(M.serving, { [A.source]: 'api' })).toBe(0);
    expect(now.value(M.expiresIn, { [A.source]: 'api' })!).toBeLessThan(0);
  });

  it('without sources, reports expiry and age of each source from the last token it loaded', async () => {
    const t = await setup();
    await t.source({ name: 'events-only', sources: false });
    const now = await collect(t.reader);
    const attrs = { [A.source]: 'events-only' };
    expect(now.value(M.expiresIn, attrs)!).toBeGreaterThan(3590);
    expect(now.value(M.age, attrs)!).toBeLessThan(10);
    // state and serving need status(): only for sources given.
    expect(now.points(M.state)).toEqual([]);
    expect(now.points(M.serving)).toEqual([]);
  });

  it('takes what createTokenSources() returns (named by their keys) or one source', async () => {
    const t = await setup();
    const tokens = createTokenSources({ kubernetes: { path: t.volume.path('token'), pollInterval: 0 } });
    cleanups.push(() => tokens.close());
    const lone = new FileTokenSource({ path: t.volume.path('token'), name: 'lone', pollInterval: 0 });
    cleanups.push(() => lone.close());
    const byCollection = instrumentPodtoken({ meterProvider: t.meterProvider, sources: tokens });
    cleanups.push(() => byCollection.close());
    await Promise.all([tokens.ready(), lone.ready()]);
    const loneReader = new CollectingReader();
    const loneProvider = new MeterProvider({ readers: [loneReader] });
    cleanups.push(() => loneProvider.shutdown());
    const bySource = instrumentPodtoken({ meterProvider: loneProvider, sources: lone });
    cleanups.push(() => bySource.close());
    const now = await collect(t.reader);
    expect(now.value(M.state, { [A.source]: 'kubernetes', [A.state]: 'ok' })).toBe(1);
    expect((await collect(loneReader)).value(M.state, { [A.source]: 'lone', [A.state]: 'ok' })).toBe(1);
  });

  it('refuses sources without status() and a meter provider without getMeter(), subscribing nothing', async () => {
    const meterProvider = new MeterProvider({ readers: [new CollectingReader()] });
    cleanups.push(() => meterProvider.shutdown());
    expect(() => instrumentPodtoken({ meterProvider, sources: [{} as never] })).toThrow(/source 0 has no status\(\)/);
    expect(() => instrumentPodtoken({ meterProvider, sources: 42 as never })).toThrow(TypeError);
    expect(() => instrumentPodtoken({ meterProvider: {} as never })).toThrow(/getMeter/);
    expect(channelNames.filter((name) => hasSubscribers(name))).toEqual([]);
  });

  it('stops counting after close()', async () => {
    const t = await setup();
    const { source, instrumentation } = await t.source();
    instrumentation.close();
    const refreshed = nextRefresh(source);
    await t.volume.write({ token: await t.mint() });
    await refreshed;
    const now = await collect(t.reader);
    expect(now.sum(M.refreshes)).toBe(0);
    expect(now.points(M.expiresIn)).toEqual([]);
  });
});
