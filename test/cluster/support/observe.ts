import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import {
  DIAGNOSTICS_CHANNELS,
  readiness,
  type FileTokenSource,
  type ReadinessReport,
  type TokenRefreshedMessage,
  type TokenSourceState,
  type UnauthorizedMessage,
} from '@podtoken/core';
import { expect } from 'vitest';
import { defer } from '../../helpers.js';

// What an operator sees of sources that the kubelet's real writer feeds: every message core
// publishes on node:diagnostics_channel, and `status()` / `readiness()` sampled on every
// message and every few milliseconds between them.

/** One message, as published. */
export interface Published {
  readonly channel: string;
  readonly message: unknown;
}

export interface Observation {
  /** Every message on every podtoken channel since {@link observeSources}, in order. */
  readonly messages: readonly Published[];
  /** `podtoken:token:refreshed` messages for the source named `name`. */
  refreshed(name: string): TokenRefreshedMessage[];
  /** `podtoken:request:unauthorized` messages so far. */
  unauthorized(): UnauthorizedMessage[];
  /** How often each `status().state` was seen, by source name. */
  readonly states: ReadonlyMap<string, ReadonlyMap<TokenSourceState, number>>;
  /** Samples taken, and how many of them `readiness(...sources).check()` answered not ready. */
  readonly samples: { readonly taken: number; readonly notReady: number };
  /** The readiness handler over the sources, as a pod would serve it for its `readinessProbe`. */
  readonly probe: ReturnType<typeof readiness>;
  /** Stops sampling and listening (also done after the test). */
  stop(): void;
}

/**
 * Listens on every channel of `DIAGNOSTICS_CHANNELS` and samples the `status()` of the sources
 * given to `add()` and `readiness(...sources).check()` on each message and every `every` ms.
 * Call it before making the sources to see their first load too, then `add()` them.
 */
export function observeSources(every = 10): Observation & { add(...sources: FileTokenSource[]): void } {
  const messages: Published[] = [];
  const sources: FileTokenSource[] = [];
  const states = new Map<string, Map<TokenSourceState, number>>();
  const samples = { taken: 0, notReady: 0 };
  let probe: ReturnType<typeof readiness> | undefined;
  const sample = () => {
    if (probe === undefined) return;
    samples.taken += 1;
    for (const source of sources) {
      const { name, state } = source.status();
      const seen = states.get(name) ?? new Map<TokenSourceState, number>();
      seen.set(state, (seen.get(state) ?? 0) + 1);
      states.set(name, seen);
    }
    if (!probe.check().ready) samples.notReady += 1;
  };
  const listeners = Object.values(DIAGNOSTICS_CHANNELS).map((channel) => {
    const listener = (message: unknown) => {
      messages.push({ channel, message });
      sample();
    };
    subscribe(channel, listener);
    return [channel, listener] as const;
  });
  const timer = setInterval(sample, every);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    for (const [channel, listener] of listeners) unsubscribe(channel, listener);
  };
  defer(stop);
  return {
    messages,
    refreshed: (name) =>
      messages
        .filter((m) => m.channel === DIAGNOSTICS_CHANNELS.tokenRefreshed && (m.message as TokenRefreshedMessage).source.name === name)
        .map((m) => m.message as TokenRefreshedMessage),
    unauthorized: () => messages.filter((m) => m.channel === DIAGNOSTICS_CHANNELS.requestUnauthorized).map((m) => m.message as UnauthorizedMessage),
    states,
    samples,
    get probe() {
      if (probe === undefined) throw new Error('observeSources: add() the sources first');
      return probe;
    },
    add(...added) {
      sources.push(...added);
      probe = readiness(...sources);
    },
    stop,
  };
}

/** The readiness handler answering one GET through node:http, as the kubelet's probe would ask. */
export async function probeOverHttp(probe: ReturnType<typeof readiness>): Promise<{ status: number; text: string; report: ReadinessReport }> {
  const server = createServer(probe);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await new Promise((resolve, reject) => {
      get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ready`, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, report: JSON.parse(text) as ReadinessReport }));
      }).on('error', reject);
    });
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/**
 * Each rotation gave each source exactly one `podtoken:token:refreshed`, from a folder
 * event, for the token the kubelet minted (matched by `iat`, one per second at most: podtoken-kubelet
 * waits for the next second before it mints again), in order; and every sample said `ok` and ready.
 */
export function expectOneRefreshPerRotation(observation: Observation, names: readonly string[], mintedAt: readonly number[]): void {
  for (const name of names) {
    const refreshed = observation.refreshed(name);
    expect(refreshed.map((m) => m.trigger), `${name}: one refresh per rotation, each from a folder event`).toEqual(mintedAt.map(() => 'event'));
    expect(refreshed.map((m) => m.token.issuedAt!.getTime() / 1000), `${name}: the rotations' tokens, in order`).toEqual([...mintedAt]);
    expect([...(observation.states.get(name) ?? new Map()).keys()], `${name}: status() throughout`).toEqual(['ok']);
  }
  expect(observation.samples.taken).toBeGreaterThan(0);
  expect(observation.samples.notReady, 'readiness samples not ready').toBe(0);
}

/** No value, rendered by util.inspect (every depth, hidden fields), JSON or String(), holds any of `tokens`, whole or its signature. */
export function expectNoTokenIn(values: readonly unknown[], tokens: readonly string[]): void {
  const secrets = tokens.flatMap((token) => [token, token.split('.')[2] ?? token]);
  for (const [index, value] of values.entries()) {
    for (const text of [inspect(value, { depth: Infinity, showHidden: true }), JSON.stringify(value) ?? '', String(value)]) {
      expect(secrets.some((secret) => text.includes(secret)), `value ${index} holds a token`).toBe(false);
    }
  }
}
