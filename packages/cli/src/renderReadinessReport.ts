import type { ReadinessReport } from '@podtoken/core';
import { escapeControlCharacters as esc } from './escapeControlCharacters.js';
import { formatRelative, formatTime } from './internal/format.js';
import { createStyle, type Style } from './style.js';

/** Options of {@link renderReadinessReport}. */
export interface RenderReadinessOptions {
  /** Why a source's last read failed, by source name (a `read:failed` message's `message`). */
  reasons?: ReadonlyMap<string, string>;
  /**
   * What relative times count from.
   * @default new Date()
   */
  now?: Date;
  /**
   * Colours (ANSI).
   * @default no colours
   */
  style?: Style;
}

/**
 * The human form of core's `ReadinessReport`: one line per source (`✓` serving, `✗` not)
 * with its state, expiry, refresh time and last error, then the verdict. Every string from
 * the report or the reasons is printed with control characters escaped.
 *
 * @example
 * ```ts
 * process.stdout.write(renderReadinessReport(readiness(source).check()));
 * // ✓ /var/run/secrets/tokens/vault-token  ok  expires 2026-12-02T11:40:01Z (in 9m 58s)  refresh 2026-12-02T11:38:01Z (in 7m 58s)
 * // ready: 1 of 1 files serve a token
 * ```
 */
export function renderReadinessReport(report: ReadinessReport, options: RenderReadinessOptions = {}): string {
  const style = options.style ?? createStyle({ isTTY: false }, {});
  const now = options.now ?? new Date();
  const when = (iso: string | undefined) => {
    const date = new Date(String(iso));
    return Number.isNaN(date.getTime()) ? esc(String(iso)) : `${formatTime(date)} (${formatRelative(date, now)})`;
  };
  const lines = report.sources.map((entry) => {
    const colour = !entry.serving ? style.red : entry.state === 'ok' ? style.green : style.yellow;
    const parts = [`${colour(entry.serving ? '✓' : '✗')} ${style.bold(esc(String(entry.name)))}`, colour(esc(String(entry.state)))];
    if (entry.expiresAt !== undefined) parts.push(`expires ${when(entry.expiresAt)}`);
    if (entry.refreshAt !== undefined && entry.serving) parts.push(`refresh ${when(entry.refreshAt)}`);
    if (entry.lastError !== undefined) {
      const reason = options.reasons?.get(entry.name);
      parts.push(`${esc(String(entry.lastError.code))}${reason === undefined ? '' : `: ${esc(reason)}`}`);
    } else if (!entry.serving) {
      const reason = options.reasons?.get(entry.name);
      if (reason !== undefined) parts.push(esc(reason));
    }
    return parts.join('  ');
  });
  const serving = report.sources.filter((entry) => entry.serving).length;
  const verdict = report.ready ? style.green('ready') : style.red('not ready');
  lines.push(`${verdict}: ${serving} of ${report.sources.length} file${report.sources.length === 1 ? '' : 's'} serve${report.sources.length === 1 ? 's' : ''} a token`);
  return `${lines.join('\n')}\n`;
}
