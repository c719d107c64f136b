// The write path of every resource: create, update (PUT and status), patch,
// delete and deletecollection with the API server's rules — validation,
// defaults, metadata the server owns (uid, creationTimestamp, generation,
// resourceVersion), preconditions (409 Conflict), finalizers, graceful pod
// deletion (Terminating), namespace lifecycle.

import crypto from "node:crypto";
import { PatchError, jsonPatch, mergePatch, strategicMergePatch } from "./patch.mjs";
import { apiVersionOf, canonical } from "./resources.mjs";
import { ApiError } from "./store.mjs";
import { metadataErrors, nameErrors, schemaErrors, fieldError } from "./validate.mjs";

/// RFC 3339 with seconds, as metav1.Time is written.
export const timestamp = (ms = Date.now()) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

/// "pods" or "leases.coordination.k8s.io", as in error messages.
export const qualified = (r) => (r.group ? `${r.plural}.${r.group}` : r.plural);

export const notFound = (r, name) =>
  new ApiError(404, "NotFound", `${qualified(r)} "${name}" not found`,
               { name, ...(r.group ? { group: r.group } : {}), kind: r.plural });

export const conflict = (r, name, why = "the object has been modified; please apply your changes to the latest version and try again") =>
  new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`,
               { name, ...(r.group ? { group: r.group } : {}), kind: r.plural });

const invalid = (r, name, causes) =>
  new ApiError(422, "Invalid",
               `${r.kind} "${name}" is invalid: ${causes.length === 1
                 ? `${causes[0].field}: ${causes[0].message}`
                 : `[${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}]`}`,
               { name, ...(r.group ? { group: r.group } : {}), kind: r.kind,
                 causes: causes.map(({ reason, message, field }) => ({ reason, message, field })) });

const randomSuffix = () => {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  let s = "";
  for (const b of crypto.randomBytes(5))
    s += alphabet[b % alphabet.length];
  return s;
};

/// Drops the keys at dotted `paths` (unknown fields) from `obj`.
function prune(obj, paths) {
  for (const p of paths) {
    const parts = p.match(/[^.[\]]+/g);
    let cur = obj;
    for (const part of parts.slice(0, -1))
      cur = cur?.[part];
    if (cur && typeof cur === "object")
      delete cur[parts[parts.length - 1]];
  }
}

export class Objects {
  /// @param emu  the emulator: store, lifecycle, options, resource lookup
  constructor(emu) {
    this.emu = emu;
    this.store = emu.store;
  }

  /// Validates `obj` as `r` (schema, unknown fields, names, kind checks).
  /// `mode` is the fieldValidation parameter: Strict (the emulator's
  /// default: unknown fields are refused), Warn or Ignore (dropped).
  /// Returns the warnings to send.
  validate(r, obj, mode) {
    const name = obj.metadata?.name ?? "";
    const { errors, unknown } = schemaErrors(r.model, obj);
    if (errors.length)
      throw invalid(r, name, errors);
    const warnings = [];
    if (unknown.length) {
      if (mode === "Strict")
        throw invalid(r, name, unknown.map((f) => fieldError.unknown(f)));
      if (mode === "Warn")
        warnings.push(...unknown.map((f) => `unknown field "${f}"`));
      prune(obj, unknown);
    }
    const errs = [];
    if (!name)
      errs.push(fieldError.required("metadata.name", "name or generateName is required"));
    else
      errs.push(...nameErrors("metadata.name", name, r.nameFormat));
    errs.push(...metadataErrors(obj.metadata));
    errs.push(...(r.validate?.(obj) ?? []));
    if (errs.length)
      throw invalid(r, name, errs);
    return warnings;
  }

  /// Checks the body's apiVersion, kind and namespace against the request.
  checkBody(r, ns, body) {
    if (body === null || typeof body !== "object" || Array.isArray(body))
      throw new ApiError(400, "BadRequest", "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml");
    if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(r))
      throw new ApiError(400, "BadRequest", `the API version in the data (${body.apiVersion}) does not match the expected API version (${apiVersionOf(r)})`);
    if (body.kind !== undefined && body.kind !== r.kind)
      throw new ApiError(400, "BadRequest", `${r.kind} in version "${r.version}" cannot be handled as a ${body.kind}`);
    body.apiVersion = apiVersionOf(r);
    body.kind = r.kind;
    body.metadata ??= {};
    if (r.namespaced) {
      if (body.metadata.namespace !== undefined && body.metadata.namespace !== ns)
        throw new ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
      body.metadata.namespace = ns;
    } else {
      delete body.metadata.namespace;
    }
  }

  /// The namespace must exist and not be terminating.
  checkNamespace(ns, name) {
    const nsObj = this.store.get(this.emu.resource("", "v1", "namespaces"), null, ns);
    if (!nsObj)
      throw new ApiError(404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" });
    if (nsObj.metadata.deletionTimestamp)
      throw new ApiError(403, "Forbidden", `unable to create new content in namespace ${ns} because it is being terminated`,
                         { name, causes: [{ reason: "NamespaceTerminating", message: `namespace ${ns} is being terminated`, field: "metadata.namespace" }] });
  }

  /// POST: returns {obj, warnings} (obj not stored under dryRun).
  create(r, ns, body, { fieldValidation = "Strict", dryRun = false } = {}) {
    this.checkBody(r, ns, body);
    const meta = body.metadata;
    if (!meta.name && meta.generateName)
      meta.name = `${meta.generateName}${randomSuffix()}`;
    if (meta.resourceVersion)
      throw new ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created");
    if (r.namespaced)
      this.checkNamespace(ns, meta.name);
    if (r.statusSubresource)
      delete body.status;
    for (const k of ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields"])
      delete meta[k];
    const warnings = this.validate(r, body, fieldValidation);
    if (this.store.get(r, ns, meta.name))
      throw new ApiError(409, "AlreadyExists", `${qualified(r)} "${meta.name}" already exists`,
                         { name: meta.name, ...(r.group ? { group: r.group } : {}), kind: r.plural });
    meta.uid = crypto.randomUUID();
    meta.creationTimestamp = timestamp();
    if (r.hasSpec)
      meta.generation = 1;
    r.defaults?.(body, this.emu.allocators);
    // Defaults must still match the schema (an emulator bug otherwise).
    if (dryRun)
      return { obj: { ...body, metadata: { ...meta, resourceVersion: "" } }, warnings };
    const obj = this.store.create(r, body);
    this.emu.onCreate(r, obj);
    return { obj, warnings };
  }

  /// PUT (and PUT .../status): returns {obj, warnings}.
  update(r, ns, name, body, { fieldValidation = "Strict", dryRun = false, status = false } = {}) {
    this.checkBody(r, ns, body);
    const old = this.store.get(r, ns, name);
    if (!old)
      throw notFound(r, name);
    const meta = body.metadata;
    if (meta.name !== undefined && meta.name !== name)
      throw new ApiError(400, "BadRequest", `the name of the object (${meta.name}) does not match the name on the URL (${name})`);
    meta.name = name;
    if (meta.resourceVersion && meta.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(r, name);
    if (meta.uid && meta.uid !== old.metadata.uid)
      throw conflict(r, name, `Precondition failed: UID in precondition: ${meta.uid}, UID in object meta: ${old.metadata.uid}`);
    let obj;
    if (status) {
      // The status subresource changes the status only.
      obj = { ...structuredClone(old), status: body.status };
    } else {
      obj = body;
      if (r.statusSubresource)
        obj.status = structuredClone(old.status);
    }
    // The server owns these.
    for (const k of ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"])
      if (old.metadata[k] !== undefined)
        obj.metadata[k] = old.metadata[k];
      else
        delete obj.metadata[k];
    obj.metadata.namespace = old.metadata.namespace;
    if (obj.metadata.deletionTimestamp && (obj.metadata.finalizers ?? []).length
        > (old.metadata.finalizers ?? []).length)
      throw invalid(r, name, [fieldError.forbidden("metadata.finalizers", "no new finalizers can be added if the object is being deleted")]);
    const warnings = this.validate(r, obj, fieldValidation);
    const errs = r.validateUpdate?.(old, obj) ?? [];
    if (errs.length)
      throw invalid(r, name, errs);
    if (r.hasSpec && !status && canonical(old.spec) !== canonical(obj.spec))
      obj.metadata.generation = (old.metadata.generation ?? 1) + 1;
    obj.metadata.resourceVersion = old.metadata.resourceVersion;
    // An update that changes nothing stores nothing (same resourceVersion).
    if (canonical(old) === canonical(obj))
      return { obj: old, warnings };
    if (dryRun)
      return { obj, warnings };
    if (obj.metadata.deletionTimestamp && !(obj.metadata.finalizers ?? []).length
        && !this.emu.lifecycle?.owns(r, obj)) {
      const last = this.store.replace(r, old, obj);
      const gone = this.store.remove(r, last);
      this.emu.onUpdate(r, old, last);
      return { obj: gone, warnings };
    }
    const stored = this.store.replace(r, old, obj);
    this.emu.onUpdate(r, old, stored);
    return { obj: stored, warnings };
  }

  /// PATCH with one of the three patch types.
  patch(r, ns, name, type, patch, opts = {}) {
    const old = this.store.get(r, ns, name);
    if (!old)
      throw notFound(r, name);
    let obj;
    try {
      if (type === "application/merge-patch+json")
        obj = mergePatch(old, patch);
      else if (type === "application/strategic-merge-patch+json") {
        if (r.custom)
          throw new ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml");
        obj = strategicMergePatch(old, patch);
      } else if (type === "application/json-patch+json")
        obj = jsonPatch(old, patch);
      else
        throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json`);
    } catch (e) {
      if (e instanceof PatchError)
        throw new ApiError(type === "application/json-patch+json" ? 422 : 400,
                           type === "application/json-patch+json" ? "Invalid" : "BadRequest", e.message);
      throw e;
    }
    if (obj === null || typeof obj !== "object")
      throw new ApiError(400, "BadRequest", "the patch made the object not an object");
    obj = structuredClone(obj);
    obj.metadata ??= {};
    // A patch without a resourceVersion is unconditional.
    if (!obj.metadata.resourceVersion)
      obj.metadata.resourceVersion = old.metadata.resourceVersion;
    return this.update(r, ns, name, obj, opts);
  }

  /// DELETE: returns the object (pods: perhaps Terminating) or null when the
  /// resource answers a Status.
  delete(r, ns, name, options = {}, { dryRun = false } = {}) {
    const old = this.store.get(r, ns, name);
    if (!old)
      throw notFound(r, name);
    const pre = options.preconditions ?? {};
    if (pre.uid && pre.uid !== old.metadata.uid)
      throw conflict(r, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(r, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
    if (dryRun)
      return old;
    if (r.kind === "Namespace")
      return this.emu.deleteNamespace(old);
    if (r.kind === "Pod")
      return this.emu.lifecycle.delete(old, options.gracePeriodSeconds);
    if ((old.metadata.finalizers ?? []).length) {
      if (old.metadata.deletionTimestamp)
        return old;
      const obj = structuredClone(old);
      obj.metadata.deletionTimestamp = timestamp();
      obj.metadata.deletionGracePeriodSeconds = 0;
      return this.store.replace(r, old, obj);
    }
    return this.store.remove(r, old);
  }
}
