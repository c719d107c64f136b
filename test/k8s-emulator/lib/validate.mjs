// Validation as the API server does it, returning field errors
// ({field, reason, message, detail}) that the API turns into a 422 Invalid
// Status:
//  - the official OpenAPI schema of the kind (kubernetes-models' compiled
//    validators, as deploy/k8s/validate.mjs uses them): types, enums,
//    required properties;
//  - unknown fields: the same validator runs over a recording proxy, and
//    every key it never read is unknown to the schema (the API server drops
//    those or, with fieldValidation=Strict, refuses them);
//  - what the Go validation adds: names (RFC 1123 / RFC 1035), labels and
//    annotations, the required fields the schema leaves optional (a pod's
//    containers' names and images), duplicates, port ranges.

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const qualifiedName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const configKey = /^[-._a-zA-Z0-9]+$/;
const base64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/// One field error, as in k8s.io/apimachinery/pkg/util/validation/field.
export const fieldError = {
  required: (field, detail = "") => ({ field, reason: "FieldValueRequired", message: "Required value", detail }),
  invalid: (field, value, detail) => ({
    field, reason: "FieldValueInvalid",
    message: `Invalid value: ${JSON.stringify(value)}${detail ? `: ${detail}` : ""}`,
  }),
  notSupported: (field, value, valid) => ({
    field, reason: "FieldValueNotSupported",
    message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${valid.map((v) => `"${v}"`).join(", ")}`,
  }),
  duplicate: (field, value) => ({ field, reason: "FieldValueDuplicate", message: `Duplicate value: ${JSON.stringify(value)}` }),
  tooLong: (field, max) => ({ field, reason: "FieldValueTooLong", message: `Too long: must have at most ${max} bytes` }),
  forbidden: (field, detail) => ({ field, reason: "FieldValueForbidden", message: `Forbidden: ${detail}` }),
  unknown: (field) => ({ field, reason: "FieldValueInvalid", message: `unknown field "${field}"`, unknown: true }),
};

/// Checks `name` against one of the API server's name formats.
export function nameErrors(field, name, format) {
  const errs = [];
  if (format === "label" && (name.length > 63 || !dns1123Label.test(name)))
    errs.push(fieldError.invalid(field, name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
  else if (format === "dns1035" && (name.length > 63 || !dns1035Label.test(name)))
    errs.push(fieldError.invalid(field, name, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"));
  else if (format === "subdomain" && (name.length > 253 || !dns1123Subdomain.test(name)))
    errs.push(fieldError.invalid(field, name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
  return errs;
}

function keyErrors(field, key) {
  const slash = key.lastIndexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== null && (prefix.length === 0 || prefix.length > 253 || !dns1123Subdomain.test(prefix)))
    return [fieldError.invalid(field, key, "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'")];
  if (name.length === 0 || name.length > 63 || !qualifiedName.test(name))
    return [fieldError.invalid(field, key, "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")];
  return [];
}

/// Checks metadata.labels and metadata.annotations.
export function metadataErrors(meta) {
  const errs = [];
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    errs.push(...keyErrors("metadata.labels", k));
    if (typeof v !== "string" || v.length > 63 || !labelValue.test(v))
      errs.push(fieldError.invalid("metadata.labels", v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
  }
  let size = 0;
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    errs.push(...keyErrors("metadata.annotations", k.toLowerCase()));
    size += k.length + String(v).length;
  }
  if (size > 256 * 1024)
    errs.push(fieldError.tooLong("metadata.annotations", 256 * 1024));
  return errs;
}

// ---- the OpenAPI schema -------------------------------------------------------

/// Wraps `value` so that every property read is recorded in `seen`.
function record(value, seen) {
  if (value === null || typeof value !== "object")
    return value;
  let keys = seen.get(value);
  if (!keys) {
    keys = new Set();
    seen.set(value, keys);
  }
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key === "string")
        keys.add(key);
      return record(Reflect.get(target, key, receiver), seen);
    },
  });
}

/// Lists the paths (dotted, with [i]) of keys the validator never read.
function unread(value, seen, at, out) {
  if (value === null || typeof value !== "object")
    return out;
  const keys = seen.get(value) ?? new Set();
  const isArray = Array.isArray(value);
  for (const k of Object.keys(value)) {
    const p = isArray ? `${at}[${k}]` : at ? `${at}.${k}` : k;
    if (!isArray && !keys.has(k))
      out.push(p);
    else
      unread(value[k], seen, p, out);
  }
  return out;
}

/// "/spec/containers/0/image" -> "spec.containers[0].image"
function fieldPath(instancePath) {
  let out = "";
  for (const part of instancePath.split("/").slice(1))
    out += /^\d+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

function valueAt(obj, instancePath) {
  let v = obj;
  for (const part of (instancePath ?? "").split("/").slice(1))
    v = v?.[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  return v;
}

/// Validates `obj` against the kind's compiled schema (a kubernetes-models
/// class, or any object with a `validate(obj)` that throws {errors}).
/// Returns {errors, unknown}: schema violations and unknown field paths.
export function schemaErrors(model, obj) {
  const seen = new Map();
  const errors = [];
  try {
    if (model.prototype?.validate)
      model.prototype.validate.call(record(obj, seen));
    else
      model.validate(record(obj, seen));
  } catch (e) {
    for (const err of e.errors ?? [{ instancePath: "", message: e.message }]) {
      const field = fieldPath(err.instancePath ?? "");
      if (err.keyword === "required") {
        const missing = err.params.missingProperty;
        errors.push(fieldError.required(field ? `${field}.${missing}` : missing));
      } else if (err.keyword === "enum") {
        errors.push(fieldError.notSupported(field, valueAt(obj, err.instancePath), err.params.allowedValues ?? []));
      } else {
        errors.push(fieldError.invalid(field, valueAt(obj, err.instancePath), err.message));
      }
    }
  }
  const unknown = errors.length ? [] : unread(obj, seen, "", []);
  return { errors, unknown };
}

// ---- what the Go validation adds, per kind ---------------------------------------

function portErrors(field, port) {
  return Number.isInteger(port) && port >= 1 && port <= 65535
    ? [] : [fieldError.invalid(field, port, "must be between 1 and 65535, inclusive")];
}

function containerErrors(field, containers, names) {
  const errs = [];
  containers.forEach((c, i) => {
    const at = `${field}[${i}]`;
    if (!c.name)
      errs.push(fieldError.required(`${at}.name`));
    else {
      errs.push(...nameErrors(`${at}.name`, c.name, "label"));
      if (names.has(c.name))
        errs.push(fieldError.duplicate(`${at}.name`, c.name));
      names.add(c.name);
    }
    if (!c.image || !String(c.image).trim())
      errs.push(fieldError.required(`${at}.image`));
    const ports = new Set();
    (c.ports ?? []).forEach((p, j) => {
      errs.push(...portErrors(`${at}.ports[${j}].containerPort`, p.containerPort));
      const key = `${p.containerPort}/${p.protocol ?? "TCP"}`;
      if (ports.has(key))
        errs.push(fieldError.duplicate(`${at}.ports[${j}]`, key));
      ports.add(key);
    });
    const envNames = new Set();
    (c.env ?? []).forEach((e, j) => {
      if (!e.name)
        errs.push(fieldError.required(`${at}.env[${j}].name`));
      envNames.add(e.name);
    });
    if (c.imagePullPolicy && !["Always", "IfNotPresent", "Never"].includes(c.imagePullPolicy))
      errs.push(fieldError.notSupported(`${at}.imagePullPolicy`, c.imagePullPolicy, ["Always", "IfNotPresent", "Never"]));
  });
  return errs;
}

/// Pod checks beyond the schema (pkg/apis/core/validation ValidatePod).
export function podErrors(pod) {
  const spec = pod.spec ?? {};
  const errs = [];
  if (!Array.isArray(spec.containers) || spec.containers.length === 0)
    return [fieldError.required("spec.containers")];
  const names = new Set();
  errs.push(...containerErrors("spec.containers", spec.containers, names));
  errs.push(...containerErrors("spec.initContainers", spec.initContainers ?? [], names));
  const rp = spec.restartPolicy;
  if (rp !== undefined && !["Always", "OnFailure", "Never"].includes(rp))
    errs.push(fieldError.notSupported("spec.restartPolicy", rp, ["Always", "OnFailure", "Never"]));
  const volumes = new Set();
  (spec.volumes ?? []).forEach((v, i) => {
    errs.push(...nameErrors(`spec.volumes[${i}].name`, v.name ?? "", "label"));
    if (volumes.has(v.name))
      errs.push(fieldError.duplicate(`spec.volumes[${i}].name`, v.name));
    volumes.add(v.name);
  });
  for (const [i, c] of (spec.containers ?? []).entries())
    for (const [j, m] of (c.volumeMounts ?? []).entries())
      if (!volumes.has(m.name))
        errs.push({ field: `spec.containers[${i}].volumeMounts[${j}].name`, reason: "FieldValueNotFound", message: `Not found: ${JSON.stringify(m.name)}` });
  if (spec.terminationGracePeriodSeconds !== undefined && spec.terminationGracePeriodSeconds < 0)
    errs.push(fieldError.invalid("spec.terminationGracePeriodSeconds", spec.terminationGracePeriodSeconds, "must be greater than or equal to 0"));
  return errs;
}

/// Service checks beyond the schema.
export function serviceErrors(svc) {
  const spec = svc.spec ?? {};
  const errs = [];
  if (spec.type !== "ExternalName" && !(spec.ports ?? []).length)
    errs.push(fieldError.required("spec.ports"));
  const ports = new Set();
  (spec.ports ?? []).forEach((p, i) => {
    errs.push(...portErrors(`spec.ports[${i}].port`, p.port));
    if (spec.ports.length > 1 && !p.name)
      errs.push(fieldError.required(`spec.ports[${i}].name`));
    if (ports.has(`${p.port}/${p.protocol ?? "TCP"}`))
      errs.push(fieldError.duplicate(`spec.ports[${i}]`, p.port));
    ports.add(`${p.port}/${p.protocol ?? "TCP"}`);
  });
  if (spec.type && !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].includes(spec.type))
    errs.push(fieldError.notSupported("spec.type", spec.type, ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]));
  return errs;
}

/// ConfigMap and Secret keys, Secret data in base64.
export function dataErrors(obj, isSecret) {
  const errs = [];
  for (const field of ["data", "binaryData", "stringData"])
    for (const [k, v] of Object.entries(obj[field] ?? {})) {
      if (k.length > 253 || !configKey.test(k))
        errs.push(fieldError.invalid(`${field}[${k}]`, k, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
      if ((isSecret && field === "data") || field === "binaryData")
        if (typeof v !== "string" || !base64.test(v))
          errs.push(fieldError.invalid(`${field}[${k}]`, "<value omitted>", "illegal base64 data"));
    }
  return errs;
}
