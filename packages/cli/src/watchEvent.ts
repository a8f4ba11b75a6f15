import { DIAGNOSTICS_CHANNELS, type DiagnosticsChannelName, type DiagnosticsMessages, type TokenSourceStatus } from '@podtoken/core';

/** The message each of core's channels carries: core's own map, re-exported. */
export type { DiagnosticsMessages };

/**
 * What `JSON.stringify` makes of a value, as a type: every `Date` becomes its ISO 8601
 * string (`Date#toJSON`), everything else stays as it is. `JsonOf<TokenLoadedMessage>` is a
 * `podtoken:token:loaded` message as `podtoken watch --json` prints it.
 */
export type JsonOf<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? ReadonlyArray<JsonOf<U>>
    : T extends object
      ? { readonly [K in keyof T]: JsonOf<T[K]> }
      : T;

/** The `event` of the line `podtoken watch --status-interval` prints: the CLI's own, not a channel. */
export const WATCH_STATUS_EVENT = 'podtoken:status';

/**
 * One line of `podtoken watch --json`: `event` is the channel's name, and the other fields
 * are the message core published on it, as they are (nothing renamed, nothing added), with
 * its `Date`s as ISO 8601 strings. A consumer can type a parsed line with core's message
 * types through {@link JsonOf}.
 */
export type DiagnosticsEvent = {
  [N in DiagnosticsChannelName]: { readonly event: N } & JsonOf<DiagnosticsMessages[N]>;
}[DiagnosticsChannelName];

/**
 * The line `podtoken watch --status-interval` prints for each file: `event` is
 * `podtoken:status` (the CLI's, not a channel), `at` when it was taken, and the rest is
 * `FileTokenSource#status()` as it is, with its `Date`s as ISO 8601 strings.
 */
export type StatusEvent = { readonly event: typeof WATCH_STATUS_EVENT; readonly at: string } & JsonOf<TokenSourceStatus>;

/** One line of `podtoken watch`: an event core published ({@link DiagnosticsEvent}) or a status line ({@link StatusEvent}). Never holds a token. */
export type WatchEvent = DiagnosticsEvent | StatusEvent;

/** Every channel name, for checks. */
const CHANNEL_NAMES: ReadonlySet<string> = new Set(Object.values(DIAGNOSTICS_CHANNELS));

/**
 * The line for a message published on `channel`: `{ event: channel, ...message }` passed
 * through JSON, so that the human and the JSON output are made from the same object.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe(DIAGNOSTICS_CHANNELS.tokenRefreshed, (message, name) => print(toWatchEvent(String(name), message)));
 * ```
 */
export function toWatchEvent(channel: string, message: unknown): DiagnosticsEvent {
  if (!CHANNEL_NAMES.has(channel)) throw new TypeError(`toWatchEvent: ${channel} is not one of podtoken's channels`);
  return JSON.parse(JSON.stringify({ event: channel, ...(message as object) })) as DiagnosticsEvent;
}

/** The status line for a source's `status()`, taken at `at`. */
export function toStatusEvent(status: TokenSourceStatus, at: Date): StatusEvent {
  return JSON.parse(JSON.stringify({ event: WATCH_STATUS_EVENT, at, ...status })) as StatusEvent;
}
