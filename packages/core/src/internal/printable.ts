const MAX = 64;

/**
 * Text from a token file (a claim) made safe to put in a message: whoever writes the file
 * controls it, and messages reach terminals and logs. Control, non-ASCII, quote and
 * backslash characters are escaped as `\uXXXX`, and text is cut at 64 characters.
 */
export function printable(text: string): string {
  const cut = text.length > MAX ? `${text.slice(0, MAX)}...` : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[^\x20-\x7e]|["\\]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
