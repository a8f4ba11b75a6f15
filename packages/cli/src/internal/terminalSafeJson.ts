// The characters escapeControlCharacters() escapes, minus what JSON.stringify already
// escapes in strings (C0 controls, lone surrogates): a raw C0 character in its output is
// the indentation's own whitespace. Left: DEL and C1, format characters, separators.
const UNSAFE_IN_JSON = /[\u007f-\u009f\p{Cf}\p{Zl}\p{Zp}]/gu;

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

