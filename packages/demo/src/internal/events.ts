import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { DIAGNOSTICS_CHANNELS, type DiagnosticsChannelName } from '@podtoken/core';

/** Messages received on core's channels, counted by channel. */
export interface EventRecorder {
  /** Counts so far, every channel listed (0 when none came). */
  counts(): Record<DiagnosticsChannelName, number>;
  /** Every message kept, in order, with its channel. */
  readonly messages: ReadonlyArray<{ readonly channel: DiagnosticsChannelName; readonly message: unknown }>;
  /** Unsubscribes; idempotent. */
  close(): void;
}

/**
 * Subscribes to every `podtoken:*` channel and keeps the messages `belongs` accepts (the
 * channels are process-wide: another source in the process publishes on them too).
 */
export function recordEvents(belongs: (message: unknown) => boolean): EventRecorder {
  const names = Object.values(DIAGNOSTICS_CHANNELS);
  const counts = Object.fromEntries(names.map((name) => [name, 0])) as Record<DiagnosticsChannelName, number>;
  const messages: Array<{ channel: DiagnosticsChannelName; message: unknown }> = [];
  const handlers = names.map((channel) => {
    const handler = (message: unknown) => {
      if (!belongs(message)) return;
      counts[channel] += 1;
      messages.push({ channel, message });
    };
    subscribe(channel, handler);
    return [channel, handler] as const;
  });
  let open = true;
  return {
    counts: () => ({ ...counts }),
    messages,
    close() {
      if (!open) return;
      open = false;
      for (const [channel, handler] of handlers) unsubscribe(channel, handler);
    },
  };
}

/**
 * Whether any string in `items`, or any other item rendered as a logger would (`util.inspect`, JSON),
 * holds one of `tokens` or its signature alone.
 */
export function leaksToken(items: readonly unknown[], tokens: Iterable<string>): boolean {
  const needles = [...tokens].flatMap((token) => [token, token.split('.')[2] ?? token]).filter((needle) => needle.length >= 16);
  return items.some((item) => {
    const rendered = typeof item === 'string' ? [item] : [inspect(item, { depth: Infinity }), JSON.stringify(item) ?? ''];
    return rendered.some((text) => needles.some((needle) => text.includes(needle)));
  });
}

/**
 * Checks the token events against the kubelet's writes (`written`: each token's `exp` in
 * ms, in order): a token:loaded for the first, then token:refreshed for later ones, each
 * once, in order, the last one last. `skipped`: writes no event named.
 */
export function matchKubelet(
  written: ReadonlyArray<number | undefined>,
  tokenEvents: ReadonlyArray<{ readonly loaded: boolean; readonly exp: number | undefined }>,
): { matches: boolean; skipped: number } {
  let last = -1;
  let matches = tokenEvents.length > 0;
  for (const [i, event] of tokenEvents.entries()) {
    const index = event.exp === undefined ? -1 : written.indexOf(event.exp, last + 1);
    if (index === -1 || event.loaded !== (i === 0) || (i === 0 && index !== 0)) matches = false;
    else last = index;
  }
  matches &&= last === written.length - 1;
  return { matches, skipped: Math.max(0, written.length - tokenEvents.length) };
}
