// Bench 10: what @podtoken/otel costs once installed. Every event core publishes goes to a
// subscriber that records it into the OpenTelemetry SDK (a counter add, a histogram record):
// the figure is the time per event handled, measured side by side with the same publish on
// a channel nobody listens to (what core pays, the hasSubscribers check aside, when unused:
// it does not even build the message). And a collection (scrape) of 10 sources' gauges.
// Events are rare in a pod (a read per rotation or poll, a 401 now and then), so the point
// is to show the cost is microseconds, never on getToken()'s path.
import { channel } from 'node:diagnostics_channel';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { DIAGNOSTICS_CHANNELS, FileTokenSource } from '@podtoken/core';
import { instrumentPodtoken } from '@podtoken/otel';
import { createIssuer } from '@podtoken/testing';
import { fmt, heading, median, result, shuffle, tempDir } from './lib/stats.mjs';

class CollectingReader extends MetricReader {
  onShutdown() { return Promise.resolve(); }
  onForceFlush() { return Promise.resolve(); }
}

const ROUNDS = 15;
const EVENTS = 20_000;

export async function otel() {
  heading('10. @podtoken/otel: cost per event handled, and per scrape');
  const reader = new CollectingReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const instrumentation = instrumentPodtoken({ meterProvider });
  const source = Object.freeze({ name: 'api', path: '/var/run/secrets/tokens/api' });
  const at = new Date();
  const contenders = {
    'read:finished (histogram)': [channel(DIAGNOSTICS_CHANNELS.readFinished), { source, trigger: 'event', outcome: 'changed', duration: 0.21, at }],
    'read:failed (counter)': [channel(DIAGNOSTICS_CHANNELS.readFailed), { source, trigger: 'event', code: 'TOKEN_MALFORMED', message: 'm', failures: 1, serving: true, at }],
    'request:unauthorized (counter)': [channel(DIAGNOSTICS_CHANNELS.requestUnauthorized), { adapter: 'fetch', source, retried: true, reason: 'retried', at }],
    'no subscriber (baseline)': [channel('podtoken-bench:nobody'), { source, at }],
  };
  const perEvent = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of shuffle(Object.keys(contenders))) {
      const [ch, message] = contenders[name];
      const started = performance.now();
      for (let i = 0; i < EVENTS; i++) ch.publish(message);
      perEvent[name].push(((performance.now() - started) * 1000) / EVENTS);
    }
  }
  for (const [name, values] of Object.entries(perEvent)) result(`${name}: ${fmt(median(values) * 1000, 0)} ns per event (median of ${ROUNDS} rounds of ${fmt(EVENTS)})`);

  // A scrape: the gauges read status() of 10 sources (on one real file), plus every counter.
  const { dir, cleanup } = await tempDir('otel');
  try {
    const issuer = await createIssuer();
    await writeFile(join(dir, 'token'), await issuer.mint({ audience: 'bench', expirationSeconds: 3600 }));
    const sources = Array.from({ length: 10 }, (_, i) => new FileTokenSource({ path: join(dir, 'token'), name: `s${i}`, pollInterval: 0 }));
    await Promise.all(sources.map((s) => s.ready()));
    const collector = new CollectingReader();
    const scrapeProvider = new MeterProvider({ readers: [collector] });
    const live = instrumentPodtoken({ meterProvider: scrapeProvider, sources });
    const times = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      await collector.collect();
      times.push(performance.now() - started);
    }
    result(`a collection with 10 sources' gauges (9 points each: 6 states, serving, expires_in, age) and the counters: ${fmt(median(times) * 1000, 0)} µs (median of 200)`);
    live.close();
    await Promise.all(sources.map((s) => s.close()));
    await scrapeProvider.shutdown();
  } finally {
    await cleanup();
  }
  instrumentation.close();
  await meterProvider.shutdown();
}
