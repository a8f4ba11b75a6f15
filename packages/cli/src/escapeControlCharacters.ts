// What a terminal may act on instead of showing: C0 and C1 controls and DEL (ESC starts
// CSI/OSC sequences that clear the screen, set the title or forge OSC 8 hyperlinks; 8-bit
// C1 CSI and OSC do the same on terminals that honour them), Unicode format characters
// (bidi overrides and isolates such as U+202E reorder what follows; zero-width characters
// and tags hide text), line and paragraph separators, and lone surrogates.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Makes text from an untrusted source safe to print on a terminal: every control or
 * invisible formatting character is replaced by a visible escape (`\x1b`, `\x9b`, `\n`,
 * `\u202e`, `\u{e0041}`), and everything else is left as it is.
 *
 * Token claims come from whoever can write the token file, so `podtoken inspect` and
 * `watch` pass every claim, path and message through this before printing it. The result
 * holds no control character, so escaping twice changes nothing (a backslash is not
 * escaped: text that already looks like an escape stays as it is).
 *
 * @example
 * ```ts
 * escapeControlCharacters('system:serviceaccount:x\x1b]0;pwned\x07'); // 'system:serviceaccount:x\\x1b]0;pwned\\x07'
 * ```
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(UNSAFE, (char) => NAMED[char] ?? escapeCodePoint(char.codePointAt(0)!));
}

function escapeCodePoint(code: number): string {
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code < 0x10000) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\u{${code.toString(16)}}`;
}
