// The three PATCH flavours the API server accepts for built-in kinds:
//   application/merge-patch+json           RFC 7386
//   application/strategic-merge-patch+json Kubernetes' strategic merge, for
//       the lists kubectl and controllers patch (containers by name, env by
//       name, ports by containerPort/port, volumes by name, conditions by
//       type, finalizers as a set, ...) with the $patch, $retainKeys,
//       $deleteFromPrimitiveList and $setElementOrder directives
//   application/json-patch+json            RFC 6902
// Every function returns a new value; the input objects are not modified.

/// A patch the API server would refuse (the caller answers 422 or 400).
export class PatchError extends Error {}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/// RFC 7386 JSON merge patch.
export function mergePatch(target, patch) {
  if (!isObject(patch))
    return structuredClone(patch);
  const out = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null)
      delete out[k];
    else
      out[k] = mergePatch(out[k], v);
  }
  return out;
}

// Lists merged by a key (patchMergeKey in the Kubernetes Go types); the
// path is the dotted path of the list with "[]" for list elements.
const mergeKeys = [
  [/(^|\.)(containers|initContainers|ephemeralContainers)$/, "name"],
  [/Containers?\[\]\.env$|containers\[\]\.env$/, "name"],
  [/ontainers\[\]\.ports$/, "containerPort"],
  [/ontainers\[\]\.volumeMounts$/, "mountPath"],
  [/ontainers\[\]\.volumeDevices$/, "devicePath"],
  [/^spec\.ports$/, "port"],
  [/(^|\.)volumes$/, "name"],
  [/(^|\.)imagePullSecrets$/, "name"],
  [/(^|\.)hostAliases$/, "ip"],
  [/(^|\.)conditions$/, "type"],
  [/(^|\.)ownerReferences$/, "uid"],
  [/(^|\.)(containerStatuses|initContainerStatuses|ephemeralContainerStatuses)$/, "name"],
];
// Lists of scalars merged as sets.
const mergeSets = [/^metadata\.finalizers$/];

function listMergeKey(path) {
  for (const [re, key] of mergeKeys)
    if (re.test(path))
      return key;
  return null;
}

/// Kubernetes strategic merge patch of `target` (any built-in kind).
export function strategicMergePatch(target, patch, path = "") {
  if (!isObject(patch))
    return structuredClone(patch);
  if (patch.$patch === "replace") {
    const { $patch, ...rest } = patch;
    return structuredClone(rest);
  }
  if (patch.$patch === "delete")
    return undefined;
  let out = isObject(target) ? { ...target } : {};
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys);
    for (const k of Object.keys(out))
      if (!keep.has(k))
        delete out[k];
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === "$patch" || k === "$retainKeys" || k.startsWith("$setElementOrder/"))
      continue;
    if (k.startsWith("$deleteFromPrimitiveList/")) {
      const field = k.slice("$deleteFromPrimitiveList/".length);
      if (Array.isArray(out[field]) && Array.isArray(v))
        out[field] = out[field].filter((x) => !v.includes(x));
      continue;
    }
    const sub = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
    } else if (Array.isArray(v)) {
      out[k] = mergeList(out[k], v, sub);
    } else if (isObject(v)) {
      const r = strategicMergePatch(out[k], v, sub);
      if (r === undefined)
        delete out[k];
      else
        out[k] = r;
    } else {
      out[k] = v;
    }
  }
  return out;
}

function mergeList(current, patch, path) {
  const base = Array.isArray(current) ? current : [];
  if (patch.some((e) => isObject(e) && e.$patch === "replace"))
    return structuredClone(patch.filter((e) => !(isObject(e) && e.$patch === "replace")));
  if (mergeSets.some((re) => re.test(path))) {
    const out = [...base];
    for (const e of patch)
      if (!out.includes(e))
        out.push(e);
    return out;
  }
  const key = listMergeKey(path);
  if (!key)
    return structuredClone(patch);
  const out = base.map((e) => e);
  for (const e of patch) {
    if (!isObject(e) || !(key in e))
      throw new PatchError(`map: ${JSON.stringify(e)} does not contain declared merge key: ${key}`);
    const i = out.findIndex((x) => isObject(x) && x[key] === e[key]);
    if (e.$patch === "delete") {
      if (i >= 0)
        out.splice(i, 1);
    } else if (i >= 0) {
      out[i] = strategicMergePatch(out[i], e, `${path}[]`);
    } else {
      out.push(strategicMergePatch({}, e, `${path}[]`));
    }
  }
  return out;
}

// ---- RFC 6902 ---------------------------------------------------------------

function pointer(p) {
  if (p === "")
    return [];
  if (!p.startsWith("/"))
    throw new PatchError(`invalid JSON pointer "${p}"`);
  return p.slice(1).split("/").map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
}

function walk(doc, tokens) {
  let cur = doc;
  for (const t of tokens) {
    if (cur === null || typeof cur !== "object" || !(t in cur))
      throw new PatchError(`path not found: /${tokens.join("/")}`);
    cur = cur[t];
  }
  return cur;
}

function addAt(doc, tokens, value, replace) {
  if (tokens.length === 0)
    return value;
  const parent = walk(doc, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const i = last === "-" ? parent.length : Number(last);
    if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length))
      throw new PatchError(`index out of range: ${last}`);
    parent.splice(i, replace ? 1 : 0, value);
  } else if (parent !== null && typeof parent === "object") {
    if (replace && !(last in parent))
      throw new PatchError(`replace operation does not apply: doc is missing key: /${tokens.join("/")}`);
    parent[last] = value;
  } else {
    throw new PatchError(`cannot add to a scalar at /${tokens.join("/")}`);
  }
  return doc;
}

function removeAt(doc, tokens) {
  const parent = walk(doc, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const i = Number(last);
    if (!Number.isInteger(i) || i < 0 || i >= parent.length)
      throw new PatchError(`index out of range: ${last}`);
    parent.splice(i, 1);
  } else if (parent !== null && typeof parent === "object" && last in parent) {
    delete parent[last];
  } else {
    throw new PatchError(`remove operation does not apply: doc is missing path: /${tokens.join("/")}`);
  }
  return doc;
}

const equal = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/// RFC 6902 JSON patch.
export function jsonPatch(target, ops) {
  if (!Array.isArray(ops))
    throw new PatchError("json patch must be an array of operations");
  let doc = structuredClone(target);
  for (const op of ops) {
    const path = pointer(op.path ?? "");
    switch (op.op) {
      case "add": doc = addAt(doc, path, structuredClone(op.value), false); break;
      case "replace": doc = addAt(doc, path, structuredClone(op.value), true); break;
      case "remove": doc = removeAt(doc, path); break;
      case "test":
        if (!equal(walk(doc, path), op.value))
          throw new PatchError(`testing value /${path.join("/")} failed`);
        break;
      case "move": {
        const from = pointer(op.from ?? "");
        const v = walk(doc, from);
        doc = removeAt(doc, from);
        doc = addAt(doc, path, v, false);
        break;
      }
      case "copy":
        doc = addAt(doc, path, structuredClone(walk(doc, pointer(op.from ?? ""))), false);
        break;
      default:
        throw new PatchError(`unexpected op: ${op.op}`);
    }
  }
  return doc;
}
