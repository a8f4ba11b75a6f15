/**
 * Whether a pattern can only match a whole string: every top-level alternative starts with
 * `^` and ends with an unescaped `$`. `/^https:\/\/a\.example$/` and `/^a$|^b$/` are
 * anchored; `/a\.example/`, `/^a\.example/` and `/^a|b$/` (whose `a` branch matches
 * `a.evil.io`) are not.
 */
export function isAnchored(pattern: RegExp): boolean {
  const source = pattern.source;
  // With the v flag, character classes nest: [[a-z]--[aeiou]].
  const nestedClasses = pattern.flags.includes('v');
  let groups = 0;
  let classes = 0;
  let alternativeStart = 0;
  let endsWithDollar = false;
  for (let i = 0; i < source.length; i++) {
    const char = source[i];
    const topLevel = groups === 0 && classes === 0;
    if (char === '\\') {
      i += 1; // an escaped character, `\$` included, is a literal
      endsWithDollar = false;
      continue;
    }
    if (topLevel && char === '|') {
      if (source[alternativeStart] !== '^' || !endsWithDollar) return false;
      alternativeStart = i + 1;
      endsWithDollar = false;
      continue;
    }
    endsWithDollar = topLevel && char === '$';
    if (classes > 0) {
      if (char === ']') classes -= 1;
      else if (char === '[' && nestedClasses) classes += 1;
    } else if (char === '[') classes += 1;
    else if (char === '(') groups += 1;
    else if (char === ')') groups -= 1;
  }
  return source[alternativeStart] === '^' && endsWithDollar;
}
