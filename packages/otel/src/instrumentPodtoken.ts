import { diag, metrics, ValueType, type Attributes, type BatchObservableCallback, type MeterProvider, type Observable } from '@opentelemetry/api';
import {
  DIAGNOSTICS_CHANNELS,
  type ReadFailedMessage,
  type ReadFinishedMessage,
  type StatusSource,
  type StatusSourceCollection,
  type TokenExpiredMessage,
  type TokenInvalidatedMessage,
  type TokenLoadedMessage,
  type TokenRefreshedMessage,
  type UnauthorizedMessage,
  type SourceClosedMessage,
  type WatchFailedMessage,
  type WatchRearmedMessage,
} from '@podtoken/core';
import { PODTOKEN_ATTRIBUTES as ATTR, PODTOKEN_METRICS as METRICS, READ_DURATION_BUCKETS, SOURCE_STATES } from './names.js';

// node:diagnostics_channel without its ES module facade, as core takes it.
const dc = process.getBuiltinModule('node:diagnostics_channel');

/** Options of {@link instrumentPodtoken}. Every one is optional. */
export interface InstrumentPodtokenOptions {
  /**
   * Where the instruments are made (meter `@podtoken/otel`).
   * @default the global one: `metrics.getMeterProvider()` from `@opentelemetry/api`
   */
  meterProvider?: MeterProvider;
  /**
   * Sources whose `status()` the gauges read at each collection: a `FileTokenSource`, an
   * array of them, or what `createTokenSources()` returns. Their gauges are exact from the
   * first scrape and add `podtoken.source.state` and `podtoken.source.serving`.
   *
   * Without them (or for other sources), `podtoken.token.expires_in` and
   * `podtoken.token.age` come from the `exp` and `iat` of the last token each source
   * loaded after this call: a source that loaded its token before shows up at its next
   * refresh; a closed source (`podtoken:source:closed`) is no longer observed, though with
   * cumulative temporality the SDK keeps exporting the last value it saw.
   */
  sources?: StatusSource | Iterable<StatusSource> | SourceCollection;
}

/** A named collection of sources, as `createTokenSources()` returns (core's `StatusSourceCollection`). */
export type SourceCollection = StatusSourceCollection;

/** What {@link instrumentPodtoken} returns. */
export interface PodtokenInstrumentation extends Disposable {
  /**
   * Unsubscribes from every channel and stops the gauges' callback. The instruments stay
   * registered with the meter provider (OpenTelemetry cannot remove them), so counters keep
   * their last values. Calling it again does nothing.
   */
  close(): void;
}

type Handler = (message: never) => void;

// Meter providers with a live instrumentation: a second one would count every event twice.
const instrumented = new WeakSet<MeterProvider>();

/**
 * Reports podtoken's `node:diagnostics_channel` events as OpenTelemetry metrics: gauges
 * for each source's seconds to expiry, token age and state; counters for refreshes, read
 * failures by error code, expirations, invalidations, folder-watch failures and 401s per
 * adapter; a histogram of file-read latency. See the package README for names, units and
 * attributes. No attribute ever holds a token: only source names, error codes, adapter
 * names and the other bounded values the events carry.
 *
 * Nothing is subscribed before this is called, so podtoken pays nothing while it is unused
 * (core publishes only to channels with subscribers). Once per meter provider (a second
 * call throws until the first is closed); every `FileTokenSource` in the process (any copy
 * of `@podtoken/core`) is reported.
 *
 * @example
 * ```ts
 * import { MeterProvider } from '@opentelemetry/sdk-metrics';
 * import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
 * import { createTokenSources } from '@podtoken/core';
 * import { instrumentPodtoken } from '@podtoken/otel';
 *
 * const meterProvider = new MeterProvider({ readers: [new PrometheusExporter({ port: 9464 })] });
 * const tokens = createTokenSources({ vault: { name: 'vault', path: '/var/run/secrets/tokens/vault-token', audience: 'vault' } });
 * const instrumentation = instrumentPodtoken({ meterProvider, sources: tokens });
 * // GET :9464/metrics → podtoken_token_expires_in{podtoken_source_name="vault"} 2873.4 …
 * ```
 */
export function instrumentPodtoken(options: InstrumentPodtokenOptions = {}): PodtokenInstrumentation {
  if (typeof options !== 'object' || options === null) throw new TypeError('instrumentPodtoken: options must be an object');
  const provider = options.meterProvider ?? metrics.getMeterProvider();
  if (typeof provider?.getMeter !== 'function') {
    throw new TypeError('instrumentPodtoken: meterProvider must be an OpenTelemetry MeterProvider (it has no getMeter())');
  }
  if (instrumented.has(provider)) {
    throw new Error('instrumentPodtoken: this meter provider is already instrumented (every counter would count twice); close() the first instrumentation first');
  }
  const sources = listSources(options.sources);
  const meter = provider.getMeter('@podtoken/otel');
  instrumented.add(provider);

  const int = { valueType: ValueType.INT };
  const refreshes = meter.createCounter(METRICS.refreshes, { ...int, unit: '{refresh}', description: 'Tokens replaced by a newer one, by source and by what started the read.' });
  const readFailures = meter.createCounter(METRICS.readFailures, { ...int, unit: '{failure}', description: 'Failed reads of a token file or refused content, by source and error code.' });
  const expirations = meter.createCounter(METRICS.expirations, { ...int, unit: '{expiration}', description: 'Times the only token a source held passed its exp.' });
  const invalidations = meter.createCounter(METRICS.invalidations, { ...int, unit: '{invalidation}', description: 'Re-reads after a server refused a token, by outcome.' });
  const unauthorized = meter.createCounter(METRICS.unauthorized, { ...int, unit: '{response}', description: '401 (gRPC: UNAUTHENTICATED) answers to a token an adapter sent, by adapter and what it did.' });
  const watchFailures = meter.createCounter(METRICS.watchFailures, { ...int, unit: '{failure}', description: 'Folder watches that could not start, failed or lost their folder.' });
  const watchRearms = meter.createCounter(METRICS.watchRearms, { ...int, unit: '{rearm}', description: 'Folder watches up again after a failure.' });
  const readDuration = meter.createHistogram(METRICS.readDuration, {
    unit: 's',
    description: 'Time to read and check a token file, by source and outcome.',
    advice: { explicitBucketBoundaries: [...READ_DURATION_BUCKETS] },
  });
  const expiresIn = meter.createObservableGauge(METRICS.expiresIn, { unit: 's', description: "Seconds until the token a source holds passes its exp (negative after)." });
  const age = meter.createObservableGauge(METRICS.age, { unit: 's', description: 'Seconds since the token a source holds was issued (iat).' });
  const state = meter.createObservableGauge(METRICS.state, { ...int, unit: '{state}', description: 'Each source state: 1 for the state the source is in, 0 for the others.' });
  const serving = meter.createObservableGauge(METRICS.serving, { ...int, unit: '{source}', description: '1 while getToken() answers with a token, 0 otherwise.' });

  // The last token each source loaded, for sources not given in `options.sources`.
  const seen = new Map<string, { expiresAt: number | undefined; issuedAt: number | undefined }>();
  const onToken = (message: TokenLoadedMessage | TokenRefreshedMessage) => {
    seen.set(message.source.name, { expiresAt: message.token.expiresAt?.getTime(), issuedAt: message.token.issuedAt?.getTime() });
  };

  const handlers: Record<string, Handler> = {
    [DIAGNOSTICS_CHANNELS.tokenLoaded]: onToken,
    [DIAGNOSTICS_CHANNELS.tokenRefreshed]: (message: TokenRefreshedMessage) => {
      onToken(message);
      refreshes.add(1, { [ATTR.source]: message.source.name, [ATTR.trigger]: message.trigger });
    },
    [DIAGNOSTICS_CHANNELS.tokenExpired]: (message: TokenExpiredMessage) => {
      expirations.add(1, { [ATTR.source]: message.source.name });
    },
    [DIAGNOSTICS_CHANNELS.tokenInvalidated]: (message: TokenInvalidatedMessage) => {
      invalidations.add(1, { [ATTR.source]: message.source.name, [ATTR.invalidationOutcome]: message.outcome });
    },
    [DIAGNOSTICS_CHANNELS.readFinished]: (message: ReadFinishedMessage) => {
      readDuration.record(message.duration / 1000, { [ATTR.source]: message.source.name, [ATTR.readOutcome]: message.outcome });
    },
    [DIAGNOSTICS_CHANNELS.readFailed]: (message: ReadFailedMessage) => {
      readFailures.add(1, { [ATTR.source]: message.source.name, [ATTR.errorType]: message.code });
    },
    [DIAGNOSTICS_CHANNELS.watchFailed]: (message: WatchFailedMessage) => {
      const attributes: Attributes = { [ATTR.watchFolder]: message.folder, [ATTR.watchReason]: message.reason };
      if (message.code !== undefined) attributes[ATTR.errorType] = message.code;
      watchFailures.add(1, attributes);
    },
    [DIAGNOSTICS_CHANNELS.watchRearmed]: (message: WatchRearmedMessage) => {
      watchRearms.add(1, { [ATTR.watchFolder]: message.folder });
    },
    [DIAGNOSTICS_CHANNELS.sourceClosed]: (message: SourceClosedMessage) => {
      // A closed source's gauges stop: its last token no longer says anything.
      seen.delete(message.source.name);
    },
    [DIAGNOSTICS_CHANNELS.requestUnauthorized]: (message: UnauthorizedMessage) => {
      const attributes: Attributes = { [ATTR.adapter]: message.adapter, [ATTR.unauthorizedReason]: message.reason };
      if (message.source !== undefined) attributes[ATTR.source] = message.source.name;
      unauthorized.add(1, attributes);
    },
  };

  // A subscriber that throws would surface as an uncaught exception in the process that
  // published (diagnostics_channel rethrows on the next tick): report it to OTel's diag.
  const subscriptions = Object.entries(handlers).map(([name, handler]) => {
    const subscriber = (message: unknown) => {
      try {
        (handler as (message: unknown) => void)(message);
      } catch (error) {
        diag.warn(`@podtoken/otel: could not record ${name}`, error);
      }
    };
    dc.subscribe(name, subscriber);
    return [name, subscriber] as const;
  });

  const observe: BatchObservableCallback = (result) => {
    const now = Date.now();
    const reported = new Set<string>();
    for (const source of sources) {
      let status;
      try {
        status = source.status();
      } catch (error) {
        diag.warn('@podtoken/otel: a source status() threw', error);
        continue;
      }
      const attributes = { [ATTR.source]: status.name };
      reported.add(status.name);
      for (const each of SOURCE_STATES) result.observe(state, each === status.state ? 1 : 0, { ...attributes, [ATTR.state]: each });
      result.observe(serving, status.serving ? 1 : 0, attributes);
      if (status.state === 'closed') continue;
      if (status.expiresIn !== undefined) result.observe(expiresIn, status.expiresIn / 1000, attributes);
      if (status.age !== undefined) result.observe(age, status.age / 1000, attributes);
    }
    for (const [name, token] of seen) {
      if (reported.has(name)) continue;
      const attributes = { [ATTR.source]: name };
      if (token.expiresAt !== undefined) result.observe(expiresIn, (token.expiresAt - now) / 1000, attributes);
      if (token.issuedAt !== undefined) result.observe(age, (now - token.issuedAt) / 1000, attributes);
    }
  };
  const observables: Observable[] = [expiresIn, age, state, serving];
  meter.addBatchObservableCallback(observe, observables);

  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    for (const [name, subscriber] of subscriptions) dc.unsubscribe(name, subscriber);
    meter.removeBatchObservableCallback(observe, observables);
    seen.clear();
    instrumented.delete(provider);
  };
  return { close, [Symbol.dispose]: close };
}

function listSources(sources: InstrumentPodtokenOptions['sources']): StatusSource[] {
  if (sources === undefined) return [];
  let list: StatusSource[];
  if (isCollection(sources)) list = sources.names.map((name) => sources.get(name));
  else if (typeof (sources as StatusSource).status === 'function') list = [sources as StatusSource];
  else if (typeof (sources as Iterable<StatusSource>)[Symbol.iterator] === 'function') list = [...(sources as Iterable<StatusSource>)];
  else throw new TypeError('instrumentPodtoken: sources must be a source with status(), an iterable of them, or what createTokenSources() returns');
  for (const [index, source] of list.entries()) {
    if (typeof source?.status !== 'function') {
      throw new TypeError(`instrumentPodtoken: source ${index} has no status() method (a FileTokenSource has one)`);
    }
  }
  return list;
}

function isCollection(value: unknown): value is SourceCollection {
  return typeof value === 'object' && value !== null && Array.isArray((value as SourceCollection).names) && typeof (value as SourceCollection).get === 'function';
}
