import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Attributes } from '@opentelemetry/api';
import { MetricReader, type DataPoint, type Histogram, type ResourceMetrics } from '@opentelemetry/sdk-metrics';

/** A reader the test collects from when it wants: the SDK's own collection path, no exporter. */
export class CollectingReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** One collection, with the data points of each instrument by name. */
export class Collected {
  constructor(readonly metrics: ResourceMetrics) {}

  /** Every data point of `name` (every scope). */
  points<T = number>(name: string): Array<DataPoint<T>> {
    return this.metrics.scopeMetrics.flatMap((scope) => scope.metrics.filter((m) => m.descriptor.name === name).flatMap((m) => m.dataPoints as Array<DataPoint<T>>));
  }

  /** The descriptor of `name`. */
  descriptor(name: string) {
    return this.metrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name)?.descriptor;
  }

  /** The value of the point of `name` whose attributes are exactly `attributes`; undefined when there is none. */
  value(name: string, attributes: Attributes): number | undefined {
    return this.points(name).find((p) => sameAttributes(p.attributes, attributes))?.value;
  }

  /** The histogram point of `name` with exactly `attributes`. */
  histogram(name: string, attributes: Attributes): Histogram | undefined {
    return this.points<Histogram>(name).find((p) => sameAttributes(p.attributes, attributes))?.value;
  }

  /** The sum of every point of counter `name` whose attributes include `attributes`. */
  sum(name: string, attributes: Attributes = {}): number {
    return this.points(name)
      .filter((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))
      .reduce((total, p) => total + p.value, 0);
  }
}

export async function collect(reader: MetricReader): Promise<Collected> {
  const { resourceMetrics, errors } = await reader.collect();
  if (errors.length > 0) throw new AggregateError(errors, 'metric collection failed');
  return new Collected(resourceMetrics);
}

function sameAttributes(a: Attributes, b: Attributes): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** A temporary folder, removed by the returned function. */
export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'podtoken-otel-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Resolves with the first value `check` returns that is not undefined, polling every 10 ms; rejects after `ms`. */
export async function until<T>(check: () => T | undefined | Promise<T | undefined>, ms = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every piece of a JWT a leak could show: the whole token and each of its three parts. */
export function secretParts(token: string): string[] {
  return [token, ...token.split('.').filter((part) => part.length >= 16)];
}
