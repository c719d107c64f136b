// The object store: one global resourceVersion counter (as etcd's
// revision), the objects of every resource, a bounded history of change
// events for watches from a resourceVersion (older ones answer 410 Gone),
// the open watches, and lists with selectors and limit/continue pages.
//
// Stored objects are never modified: every change stores a new object, so
// events and lists can share them, and each object's JSON is computed once.

import { matchFields, matchLabels } from "./selectors.mjs";

/// An API error the HTTP layer turns into a v1 Status.
export class ApiError extends Error {
  constructor(code, reason, message, details) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }
}

const itemJson = new WeakMap();

/// The JSON of `obj` without kind and apiVersion (as list items are sent).
export function itemJsonOf(obj) {
  let s = itemJson.get(obj);
  if (s === undefined) {
    const { kind, apiVersion, ...rest } = obj;
    s = JSON.stringify(rest);
    itemJson.set(obj, s);
  }
  return s;
}

/// The JSON of `obj` with kind and apiVersion first.
export function objectJsonOf(obj) {
  const rest = itemJsonOf(obj);
  return `{"kind":${JSON.stringify(obj.kind)},"apiVersion":${JSON.stringify(obj.apiVersion)}${
    rest === "{}" ? "}" : `,${rest.slice(1)}`}`;
}

/// A deep copy of a stored object (from its cached JSON: cheaper than
/// structuredClone for these plain objects).
export function copyOf(obj) {
  return JSON.parse(objectJsonOf(obj));
}

const keyOf = (ns, name) => `${ns ?? ""}/${name}`;

export class Store {
  /// @param historyLimit  change events kept for watches from a resourceVersion
  constructor({ historyLimit = 100000 } = {}) {
    this.rv = 1000;
    this.historyLimit = historyLimit;
    /// resource key -> {objects: Map(key -> obj), sorted: string[] | null}
    this.tables = new Map();
    /// [{rv, type, resource, obj, old}], oldest first
    this.history = [];
    /// events with rv <= compactedRv are no longer available
    this.compactedRv = this.rv;
    /// resource key -> Set of watches
    this.watches = new Map();
    /// functions that hear every change (in-process controllers); they
    /// must not write from inside the call
    this.observers = [];
  }

  table(resource) {
    let t = this.tables.get(resource.key);
    if (!t) {
      t = { objects: new Map(), sorted: null };
      this.tables.set(resource.key, t);
    }
    return t;
  }

  /// The next resourceVersion (a string, as in objects).
  nextRv() {
    return String(++this.rv);
  }

  get(resource, ns, name) {
    return this.table(resource).objects.get(keyOf(ns, name));
  }

  /// Stores a new object (its metadata.resourceVersion set here).
  create(resource, obj) {
    const rv = this.nextRv();
    obj.metadata.resourceVersion = rv;
    const t = this.table(resource);
    t.objects.set(keyOf(obj.metadata.namespace, obj.metadata.name), obj);
    t.sorted = null;
    this.emit({ rv: this.rv, type: "ADDED", resource, obj });
    return obj;
  }

  /// Replaces the stored `old` by `obj` (a new object).
  replace(resource, old, obj) {
    obj.metadata.resourceVersion = this.nextRv();
    this.table(resource).objects.set(keyOf(obj.metadata.namespace, obj.metadata.name), obj);
    this.emit({ rv: this.rv, type: "MODIFIED", resource, obj, old });
    return obj;
  }

  /// Removes `obj`; the DELETED event carries a new resourceVersion.
  remove(resource, obj) {
    const t = this.table(resource);
    const key = keyOf(obj.metadata.namespace, obj.metadata.name);
    if (t.objects.get(key) !== obj)
      return null;
    t.objects.delete(key);
    t.sorted = null;
    const gone = { ...obj, metadata: { ...obj.metadata, resourceVersion: this.nextRv() } };
    this.emit({ rv: this.rv, type: "DELETED", resource, obj: gone, old: obj });
    return gone;
  }

  /// All objects of `resource` (in namespace `ns` when given).
  *objects(resource, ns) {
    for (const obj of this.table(resource).objects.values())
      if (ns == null || obj.metadata.namespace === ns)
        yield obj;
  }

  count(resource) {
    return this.table(resource).objects.size;
  }

  emit(ev) {
    this.history.push(ev);
    if (this.history.length > this.historyLimit * 1.25)
      this.compact(this.history[this.history.length - this.historyLimit - 1].rv);
    const ws = this.watches.get(ev.resource.key);
    if (ws)
      for (const w of ws)
        w.offer(ev);
    for (const fn of this.observers)
      fn(ev);
  }

  /// Drops the history up to and including `upTo` (default: everything),
  /// so that watches from an older resourceVersion get 410 Gone.
  compact(upTo = this.rv) {
    let i = 0;
    while (i < this.history.length && this.history[i].rv <= upTo)
      ++i;
    this.history.splice(0, i);
    this.compactedRv = Math.max(this.compactedRv, upTo);
    return this.compactedRv;
  }

  /// A list: {items, resourceVersion, continue, remainingItemCount}.
  /// @param opts  {ns, labels, fields (parsed requirements), limit, continue}
  list(resource, { ns = null, labels = [], fields = [], limit = 0, continue: token = "" } = {}) {
    const t = this.table(resource);
    if (!t.sorted)
      t.sorted = [...t.objects.keys()].sort();
    const keys = t.sorted;
    let start = 0;
    let listRv = this.rv;
    if (token) {
      let c;
      try {
        c = JSON.parse(Buffer.from(token, "base64url").toString());
      } catch {
        throw new ApiError(400, "BadRequest", "continue key is not valid: illegal base64 data");
      }
      if (c.rv < this.compactedRv)
        throw new ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
      listRv = c.rv;
      start = upperBound(keys, c.start);
    } else if (ns != null) {
      start = upperBound(keys, `${ns}/`) ;
      // upperBound finds keys > "ns/": every key of the namespace.
    }
    const items = [];
    const prefix = ns != null ? `${ns}/` : "";
    const filtered = labels.length > 0 || fields.length > 0;
    let i = start;
    for (; i < keys.length; ++i) {
      const key = keys[i];
      if (prefix && !key.startsWith(prefix))
        break;
      if (limit > 0 && items.length === limit)
        break;
      const obj = t.objects.get(key);
      if (filtered && !(matchLabels(labels, obj.metadata.labels) && matchFields(fields, obj)))
        continue;
      items.push(obj);
    }
    let more = false;
    for (let j = i; j < keys.length && !more; ++j) {
      if (prefix && !keys[j].startsWith(prefix))
        break;
      const obj = t.objects.get(keys[j]);
      more = !filtered || (matchLabels(labels, obj.metadata.labels) && matchFields(fields, obj));
    }
    const out = { items, resourceVersion: String(listRv) };
    if (limit > 0 && more) {
      out.continue = Buffer.from(JSON.stringify({ rv: listRv, start: keys[i - 1] })).toString("base64url");
      if (!filtered) {
        let remaining = 0;
        for (let j = i; j < keys.length && (!prefix || keys[j].startsWith(prefix)); ++j)
          ++remaining;
        out.remainingItemCount = remaining;
      }
    }
    return out;
  }

  /// Registers a watch; `w.offer(ev)` gets every later event of its resource.
  /// Returns the events to replay first (history after `fromRv`), or throws
  /// 410 Expired when that history was compacted.
  addWatch(w, fromRv) {
    let set = this.watches.get(w.resource.key);
    if (!set) {
      set = new Set();
      this.watches.set(w.resource.key, set);
    }
    let replay = [];
    if (fromRv !== null) {
      if (fromRv < this.compactedRv)
        throw new ApiError(410, "Expired", `too old resource version: ${fromRv} (${this.compactedRv + 1})`);
      let lo = 0;
      let hi = this.history.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (this.history[mid].rv <= fromRv)
          lo = mid + 1;
        else
          hi = mid;
      }
      replay = this.history.slice(lo).filter((ev) => ev.resource.key === w.resource.key);
    }
    set.add(w);
    return replay;
  }

  removeWatch(w) {
    this.watches.get(w.resource.key)?.delete(w);
  }

  watchCount() {
    let n = 0;
    for (const s of this.watches.values())
      n += s.size;
    return n;
  }
}

/// The index of the first key > `k` in sorted `keys`.
function upperBound(keys, k) {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (keys[mid] <= k)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}
