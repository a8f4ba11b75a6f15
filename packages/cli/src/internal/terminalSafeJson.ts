// The characters escapeControlCharacters() escapes, minus what JSON.stringify already
// escapes (C0 controls, lone surrogates).
const UNSAFE_IN_JSON = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * `JSON.stringify`, with the characters a terminal may act on written as `\uXXXX` escapes
 * (JSON.stringify leaves C1 controls, bidi overrides and separators raw): still valid JSON
 * that parses to the very same value, and safe to print.
 */
export function toTerminalSafeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(UNSAFE_IN_JSON, (char) => {
    let escaped = '';
    for (let i = 0; i < char.length; i++) escaped += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return escaped;
  });
}

