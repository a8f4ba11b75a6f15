// The `headers` shapes undici's dispatch accepts (lib/core/request.js in undici 7): a plain
// object (values: string, string[] or undefined), a flat array [name, value, name, value…]
// whose names may be Buffers, or an iterable of [name, value] pairs (an array of pairs, a
// Map, a Headers). Helpers here never change the caller's object: they build a new one.

type HeaderName = string | Uint8Array;

/** Whether a header name (string or Buffer, any case) is `authorization`. */
export function isAuthorization(name: unknown): boolean {
  if (typeof name === 'string') return name.length === 13 && name.toLowerCase() === 'authorization';
  if (name instanceof Uint8Array) return name.length === 13 && Buffer.from(name).toString('latin1').toLowerCase() === 'authorization';
  return false;
}

/** undici's own test for "iterate it as pairs" (util.hasSafeIterator): a Map or Headers, or an object with its own iterator; not a plain object. */
function isPairIterable(headers: object): headers is Iterable<unknown> {
  const prototype: unknown = Object.getPrototypeOf(headers);
  return (
    Object.prototype.hasOwnProperty.call(headers, Symbol.iterator) ||
    (prototype != null && prototype !== Object.prototype && typeof (headers as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function')
  );
}

/**
 * `headers` with every `Authorization` replaced by one `authorization: value`, in a new object
 * or array: a plain object stays a plain object (the common case, and the cheapest), any other
 * shape becomes a flat array, which every undici 7 handler (the redirect interceptor's
 * cross-origin cleaning included) reads correctly.
 */
export function withAuthorization(headers: unknown, value: string): Record<string, unknown> | unknown[] {
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) {
    const flat = pairsToFlat(headers, isAuthorization);
    flat.push('authorization', value);
    return flat;
  }
  if (typeof headers === 'object') {
    if (isPairIterable(headers)) {
      const flat = pairsToFlat([...headers], isAuthorization);
      flat.push('authorization', value);
      return flat;
    }
    const record: Record<string, unknown> = {};
    for (const name of Object.keys(headers)) if (!isAuthorization(name)) record[name] = (headers as Record<string, unknown>)[name];
    record['authorization'] = value;
    return record;
  }
  // Not a shape undici accepts: leave it for undici to reject, without our token.
  return headers as unknown[];
}

/**
 * `headers` without an `Authorization` whose value `drop` says is ours, or `headers` itself
 * when it holds none: a request to an origin that is not allowed keeps a header of the
 * caller's own.
 */
export function withoutOwnAuthorization(headers: unknown, drop: (value: unknown) => boolean): unknown {
  if (headers == null || typeof headers !== 'object') return headers;
  const isOurs = (name: unknown, value: unknown) => isAuthorization(name) && drop(value);
  if (Array.isArray(headers)) {
    const pairs = headers.length > 0 && Array.isArray(headers[0]);
    let found = false;
    if (pairs) for (const pair of headers as unknown[][]) found ||= isOurs(pair[0], pair[1]);
    else for (let i = 0; i < headers.length; i += 2) found ||= isOurs(headers[i], headers[i + 1]);
    return found ? pairsToFlat(headers, (name, value) => isOurs(name, value)) : headers;
  }
  if (isPairIterable(headers)) {
    const list = [...headers];
    return list.some((pair) => Array.isArray(pair) && isOurs(pair[0], pair[1])) ? pairsToFlat(list, isOurs) : headers;
  }
  const names = Object.keys(headers).filter((name) => isOurs(name, (headers as Record<string, unknown>)[name]));
  if (names.length === 0) return headers;
  const record = { ...(headers as Record<string, unknown>) };
  for (const name of names) delete record[name];
  return record;
}

/** A flat [name, value…] copy of a flat array or a list of pairs, without the entries `skip` matches. */
function pairsToFlat(headers: readonly unknown[], skip: (name: unknown, value: unknown) => boolean): unknown[] {
  const flat: unknown[] = [];
  if (headers.length > 0 && Array.isArray(headers[0])) {
    for (const pair of headers) {
      // Let undici reject a malformed pair itself (it checks the shape), without our help.
      if (!Array.isArray(pair) || pair.length !== 2) return [...headers];
      const [name, value] = pair as [HeaderName, unknown];
      if (!skip(name, value)) flat.push(name, value);
    }
    return flat;
  }
  for (let i = 0; i < headers.length; i += 2) if (!skip(headers[i], headers[i + 1])) flat.push(headers[i], headers[i + 1]);
  return flat;
}
