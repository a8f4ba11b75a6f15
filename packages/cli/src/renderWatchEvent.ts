import { escapeControlCharacters as esc } from './escapeControlCharacters.js';
import { formatTime, formatTtl } from './internal/format.js';
import { createStyle, type Style } from './style.js';
import type { JsonOf, WatchEvent } from './watchEvent.js';
import type { SourceRef, TokenFacts } from '@podtoken/core';

// The widest label that `podtoken watch` prints in practice (`token:invalidated`); the
// rarer `request:unauthorized` runs past it.
const LABEL_WIDTH = 17;

/**
 * The human line for a {@link WatchEvent}, with a newline: its time (`at`), its event
 * without the `podtoken:` prefix, the source (or folder), then the message's facts in
 * words. It shows the same event as the `--json` line, in the same order, one line each.
 *
 * Every string in it (names, paths, claims, codes, messages) is printed with control
 * characters escaped (see {@link escapeControlCharacters}): a token file's content must not
 * be able to act on the terminal or forge a line. Works on any object, even a hand-made one.
 *
 * @example
 * ```ts
 * process.stdout.write(renderWatchEvent(toWatchEvent(DIAGNOSTICS_CHANNELS.tokenRefreshed, message), createStyle(process.stdout)));
 * // 2026-12-02T11:30:00.412Z  token:refreshed    /var/run/secrets/tokens/vault-token  bound  expires 2026-12-02T11:40:01Z  ttl 10m  refresh 2026-12-02T11:38:01Z  via event
 * ```
 */
export function renderWatchEvent(event: WatchEvent, style: Style = createStyle({ isTTY: false }, {})): string {
  const label = esc(String(event.event).replace(/^podtoken:/, ''));
  const line = (colour: (text: string) => string, subject: string, parts: Array<string | undefined>) =>
    `${[`${style.dim(esc(String(event.at)))}  ${colour(label.padEnd(LABEL_WIDTH))}  ${subject}`, ...parts.filter((p) => p !== undefined && p !== '')].join('  ')}\n`;

  switch (event.event) {
    case 'podtoken:token:loaded':
    case 'podtoken:token:refreshed':
      return line(style.green, source(event.source), [...tokenParts(event.token, event.expiresIn), via(event.trigger)]);
    case 'podtoken:token:expired':
      return line(style.red, source(event.source), [
        esc(String(event.token?.kind ?? '?')),
        `expired ${time(event.token?.expiresAt)}`,
        'getToken() rejects with TOKEN_EXPIRED until a fresh token is read',
      ]);
    case 'podtoken:token:invalidated':
      return line(style.yellow, source(event.source), [
        `re-read after a refusal: ${esc(String(event.outcome))}`,
        event.current ? undefined : '(the refused token was an older one)',
      ]);
    case 'podtoken:read:finished':
      return line(style.dim, source(event.source), [
        esc(String(event.outcome)),
        event.code === undefined ? undefined : esc(String(event.code)),
        via(event.trigger),
        `${Number(event.duration).toFixed(1)} ms`,
      ]);
    case 'podtoken:read:failed': {
      // A missing file with nothing to serve is what a pod looks like until the kubelet has
      // mounted the volume (or written the file again): the source waits for it.
      const waiting = event.code === 'TOKEN_FILE_MISSING' && event.serving !== true;
      return line(waiting || event.serving === true ? style.yellow : style.red, source(event.source), [
        esc(String(event.code)),
        esc(String(event.message)) + (waiting ? ' Waiting for it to appear.' : ''),
        `(failure ${Number(event.failures)}; ${event.serving === true ? 'still serving the last good token' : 'no token to serve'}; ${via(event.trigger)})`,
      ]);
    }
    case 'podtoken:watch:failed':
      return line(style.yellow, esc(String(event.folder)), [
        esc(String(event.reason)),
        event.code === undefined ? undefined : esc(String(event.code)),
        'changes are seen by the poll and retries until the watch is up again',
      ]);
    case 'podtoken:watch:rearmed':
      return line(style.green, esc(String(event.folder)), ['watching again']);
    case 'podtoken:request:unauthorized':
      return line(style.yellow, event.source === undefined ? '-' : source(event.source), [
        `${esc(String(event.adapter))} got a 401`,
        event.retried ? 'retried with a newer token' : `not retried: ${esc(String(event.reason))}`,
      ]);
    case 'podtoken:source:closed':
      return line(style.dim, source(event.source), ['closed']);
    case 'podtoken:status': {
      const colour = event.state === 'ok' ? style.green : event.serving === true ? style.yellow : style.red;
      return line(colour, esc(String(event.name)), [
        colour(esc(String(event.state))),
        event.serving === true ? 'serving' : 'not serving',
        event.expiresAt === undefined ? undefined : `expires ${time(event.expiresAt)}`,
        event.expiresIn === undefined ? undefined : `ttl ${formatTtl(Number(event.expiresIn))}`,
        event.refreshAt === undefined ? undefined : `refresh ${time(event.refreshAt)}`,
        event.lastError === undefined ? undefined : `last error ${esc(String(event.lastError.code))} at ${time(event.lastError.at)}`,
      ]);
    }
    default: {
      // Not one of ours (a hand-made object): shown, escaped, as JSON-ish text.
      const unknown = event as { source?: JsonOf<SourceRef> };
      return line(style.dim, unknown.source === undefined ? '-' : source(unknown.source), []);
    }
  }
}

/** The source's name, and its path when the name is another. */
function source(ref: JsonOf<SourceRef> | undefined): string {
  if (ref === undefined || ref === null) return '-';
  const name = esc(String(ref.name));
  return ref.path === undefined || ref.path === ref.name ? name : `${name} (${esc(String(ref.path))})`;
}

function tokenParts(token: JsonOf<TokenFacts> | undefined, expiresIn: number | undefined): string[] {
  const parts = [esc(String(token?.kind ?? '?'))];
  if (token?.expiresAt === undefined) {
    parts.push('never expires');
  } else {
    parts.push(`expires ${time(token.expiresAt)}`);
    if (expiresIn !== undefined) parts.push(`ttl ${formatTtl(Number(expiresIn))}`);
  }
  if (token?.refreshAt !== undefined) parts.push(`refresh ${time(token.refreshAt)}`);
  return parts;
}

function via(trigger: unknown): string {
  return `via ${esc(String(trigger))}`;
}

/** An ISO time to the second; anything else (a hand-made event) shown as it is, escaped. */
function time(iso: unknown): string {
  const date = new Date(String(iso));
  return Number.isNaN(date.getTime()) ? esc(String(iso)) : formatTime(date);
}
