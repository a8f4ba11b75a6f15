const MAX = 100;

/**
 * A value from a token or an answer, made safe to put in a message that reaches logs and
 * terminals: JSON-quoted, printable ASCII only (control characters, escapes and non-ASCII
 * become `?`), at most 100 characters. The claims of a refused token are the sender's text.
 */
export function printable(value: unknown): string {
  if (value === undefined) return '(none)';
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const cut = text.length > MAX ? `${text.slice(0, MAX)}…` : text;
  return JSON.stringify(cut.replace(/[^\x20-\x7e…]/g, '?'));
}
