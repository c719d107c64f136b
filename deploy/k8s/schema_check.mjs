// The unknown-field check of validate.mjs and validate_runtime.mjs: the
// compiled schema validator runs over a recording proxy, and every key it
// never looked at is unknown to the schema.

/// Wraps `value` so that every property read is recorded in `seen`.
export function record(value, seen) {
  if (value === null || typeof value !== "object")
    return value;
  const keys = new Set();
  seen.set(value, keys);
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string")
        keys.add(key);
      return record(Reflect.get(target, key, receiver), seen);
    },
  });
}

/// Lists the keys of `value` (recursively) that the validator never read.
export function unread(value, seen, at, out) {
  if (value === null || typeof value !== "object")
    return out;
  const keys = seen.get(value) ?? new Set();
  for (const k of Object.keys(value)) {
    const p = Array.isArray(value) ? `${at}[${k}]` : `${at}.${k}`;
    if (!Array.isArray(value) && !keys.has(k))
      out.push(p);
    else
      unread(value[k], seen, p, out);
  }
  return out;
}
