// The resources the emulator serves: their discovery facts (group, version,
// kind, plural, short names, verbs), schema, name format, the fields a
// field selector may use, the defaults the API server adds on create, and
// the checks it makes on create and update. `customResource` describes a
// CRD-like kind from a JSON schema (e.g. agents.x-k8s.io Sandbox).

import Ajv from "ajv";
import YAML from "yaml";
import { Lease } from "kubernetes-models/coordination.k8s.io/v1";
import {
  ConfigMap, Event, Namespace, PersistentVolumeClaim, Pod, Secret, Service,
} from "kubernetes-models/v1";
import { metadataFields } from "./selectors.mjs";
import { dataErrors, fieldError, podErrors, serviceErrors } from "./validate.mjs";

const verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

// ---- pods -------------------------------------------------------------------------

/// The pull policy the API server defaults: Always for :latest or no tag.
function pullPolicy(image) {
  const last = String(image).split("/").pop();
  if (last.includes("@"))
    return "IfNotPresent";
  const colon = last.lastIndexOf(":");
  return colon < 0 || last.slice(colon + 1) === "latest" ? "Always" : "IfNotPresent";
}

function defaultContainer(c) {
  c.imagePullPolicy ??= pullPolicy(c.image ?? "");
  c.terminationMessagePath ??= "/dev/termination-log";
  c.terminationMessagePolicy ??= "File";
  c.resources ??= {};
  for (const p of c.ports ?? [])
    p.protocol ??= "TCP";
  for (const e of c.env ?? [])
    if (e.valueFrom?.fieldRef)
      e.valueFrom.fieldRef.apiVersion ??= "v1";
}

/// BestEffort, Burstable or Guaranteed, as the API server computes it.
function qosClass(spec) {
  const all = [...(spec.containers ?? []), ...(spec.initContainers ?? [])];
  let any = false;
  let guaranteed = true;
  for (const c of all) {
    const req = c.resources?.requests ?? {};
    const lim = c.resources?.limits ?? {};
    if (Object.keys(req).length || Object.keys(lim).length)
      any = true;
    for (const r of ["cpu", "memory"])
      if (lim[r] === undefined || (req[r] !== undefined && req[r] !== lim[r]))
        guaranteed = false;
  }
  return !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
}

function defaultPod(pod) {
  const s = pod.spec;
  for (const c of s.containers ?? [])
    defaultContainer(c);
  for (const c of s.initContainers ?? [])
    defaultContainer(c);
  // Limits without requests: requests default to the limits.
  for (const c of [...(s.containers ?? []), ...(s.initContainers ?? [])])
    for (const [r, v] of Object.entries(c.resources.limits ?? {}))
      (c.resources.requests ??= {})[r] ??= v;
  s.restartPolicy ??= "Always";
  s.terminationGracePeriodSeconds ??= 30;
  s.dnsPolicy ??= "ClusterFirst";
  s.securityContext ??= {};
  s.schedulerName ??= "default-scheduler";
  s.serviceAccountName ??= s.serviceAccount ?? "default";
  s.serviceAccount ??= s.serviceAccountName;
  s.enableServiceLinks ??= true;
  s.priority ??= 0;
  s.preemptionPolicy ??= "PreemptLowerPriority";
  // The DefaultTolerationSeconds admission plug-in.
  s.tolerations ??= [];
  for (const key of ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"])
    if (!s.tolerations.some((t) => t.key === key))
      s.tolerations.push({ key, operator: "Exists", effect: "NoExecute", tolerationSeconds: 300 });
  pod.status = { phase: "Pending", qosClass: qosClass(s) };
}

/// JSON with sorted keys and no undefined members (for comparisons).
export function canonical(v) {
  if (Array.isArray(v))
    return `[${v.map((x) => (x === undefined ? "null" : canonical(x))).join(",")}]`;
  if (v !== null && typeof v === "object")
    return `{${Object.keys(v).filter((k) => v[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  return JSON.stringify(v);
}

const podUpdatable = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

function podUpdateErrors(old, pod) {
  const mask = (spec) => ({
    ...spec,
    containers: (spec.containers ?? []).map((c) => ({ ...c, image: undefined })),
    initContainers: (spec.initContainers ?? []).map((c) => ({ ...c, image: undefined })),
    activeDeadlineSeconds: undefined,
    tolerations: undefined,
    nodeName: undefined,
  });
  const a = mask(old.spec);
  const b = mask(pod.spec);
  if (canonical(a) !== canonical(b))
    return [{ field: "spec", reason: "FieldValueForbidden", message: podUpdatable.slice("spec: ".length) }];
  if ((old.spec.tolerations ?? []).some((t) => !(pod.spec.tolerations ?? []).some(
    (u) => JSON.stringify(u) === JSON.stringify(t))))
    return [{ field: "spec.tolerations", reason: "FieldValueForbidden", message: "Forbidden: existing toleration can not be modified except its tolerationSeconds" }];
  if (old.spec.nodeName && pod.spec.nodeName !== old.spec.nodeName)
    return [{ field: "spec.nodeName", reason: "FieldValueForbidden", message: "Forbidden: pod updates may not change fields other than `spec.containers[*].image`" }];
  return [];
}

const podFields = {
  ...metadataFields,
  "spec.nodeName": (p) => p.spec.nodeName,
  "spec.restartPolicy": (p) => p.spec.restartPolicy,
  "spec.schedulerName": (p) => p.spec.schedulerName,
  "spec.serviceAccountName": (p) => p.spec.serviceAccountName,
  "spec.hostNetwork": (p) => String(p.spec.hostNetwork ?? false),
  "status.phase": (p) => p.status?.phase,
  "status.podIP": (p) => p.status?.podIP,
  "status.nominatedNodeName": (p) => p.status?.nominatedNodeName,
};

// ---- the others -------------------------------------------------------------------

function immutableDataErrors(old, obj) {
  if (old.immutable && (JSON.stringify(old.data) !== JSON.stringify(obj.data)
                        || JSON.stringify(old.binaryData) !== JSON.stringify(obj.binaryData)))
    return [fieldError.forbidden("data", "field is immutable when `immutable` is set")];
  if (old.immutable && !obj.immutable)
    return [fieldError.forbidden("immutable", "field is immutable when `immutable` is set")];
  return [];
}

function defaultSecret(secret) {
  secret.type ??= "Opaque";
  if (secret.stringData) {
    secret.data ??= {};
    for (const [k, v] of Object.entries(secret.stringData))
      secret.data[k] = Buffer.from(String(v)).toString("base64");
    delete secret.stringData;
  }
}

function defaultService(svc, ctx) {
  const s = svc.spec;
  s.type ??= "ClusterIP";
  s.sessionAffinity ??= "None";
  if (s.type !== "ExternalName") {
    s.clusterIP ??= ctx.allocateServiceIP();
    s.clusterIPs ??= [s.clusterIP];
    s.ipFamilies ??= ["IPv4"];
    s.ipFamilyPolicy ??= "SingleStack";
    s.internalTrafficPolicy ??= "Cluster";
  }
  for (const p of s.ports ?? []) {
    p.protocol ??= "TCP";
    p.targetPort ??= p.port;
  }
  svc.status = { loadBalancer: {} };
}

function serviceUpdateErrors(old, svc) {
  if (old.spec.clusterIP && svc.spec.clusterIP !== old.spec.clusterIP)
    return [fieldError.invalid("spec.clusterIP", svc.spec.clusterIP ?? "", "field is immutable")];
  return [];
}

function defaultPvc(pvc) {
  pvc.spec.volumeMode ??= "Filesystem";
  // No provisioner: every claim binds at once to a volume of its request.
  pvc.spec.volumeName ??= `pvc-${pvc.metadata.uid}`;
  pvc.status = {
    phase: "Bound",
    accessModes: pvc.spec.accessModes ?? [],
    capacity: { ...(pvc.spec.resources?.requests ?? {}) },
  };
}

function defaultNamespace(ns) {
  ns.metadata.labels = { ...ns.metadata.labels, "kubernetes.io/metadata.name": ns.metadata.name };
  ns.spec = { finalizers: ["kubernetes"], ...ns.spec };
  ns.status = { phase: "Active" };
}

const core = (kind, plural, extra) => ({
  group: "", version: "v1", kind, plural, singular: kind.toLowerCase(),
  namespaced: true, nameFormat: "subdomain", fields: metadataFields,
  hasSpec: true, statusSubresource: false, shortNames: [], ...extra,
});

/// The built-in resources, in discovery order.
export function builtinResources() {
  return [
    core("Namespace", "namespaces", {
      namespaced: false, nameFormat: "label", shortNames: ["ns"], model: Namespace,
      statusSubresource: true, hasSpec: false, defaults: defaultNamespace,
      fields: { ...metadataFields, "status.phase": (n) => n.status?.phase },
    }),
    core("Pod", "pods", {
      shortNames: ["po"], categories: ["all"], model: Pod, statusSubresource: true,
      fields: podFields, defaults: defaultPod,
      validate: podErrors, validateUpdate: podUpdateErrors,
    }),
    core("Secret", "secrets", {
      model: Secret, hasSpec: false, defaults: defaultSecret,
      validate: (s) => dataErrors(s, true), validateUpdate: immutableDataErrors,
      fields: { ...metadataFields, type: (s) => s.type },
    }),
    core("ConfigMap", "configmaps", {
      shortNames: ["cm"], model: ConfigMap, hasSpec: false,
      validate: (c) => dataErrors(c, false), validateUpdate: immutableDataErrors,
    }),
    core("Service", "services", {
      shortNames: ["svc"], categories: ["all"], model: Service, nameFormat: "dns1035",
      statusSubresource: true, defaults: defaultService, validate: serviceErrors,
      validateUpdate: serviceUpdateErrors,
    }),
    core("PersistentVolumeClaim", "persistentvolumeclaims", {
      shortNames: ["pvc"], model: PersistentVolumeClaim, statusSubresource: true,
      defaults: defaultPvc,
    }),
    core("Event", "events", {
      shortNames: ["ev"], model: Event, hasSpec: false,
      fields: {
        ...metadataFields,
        "involvedObject.kind": (e) => e.involvedObject?.kind,
        "involvedObject.namespace": (e) => e.involvedObject?.namespace,
        "involvedObject.name": (e) => e.involvedObject?.name,
        "involvedObject.uid": (e) => e.involvedObject?.uid,
        "involvedObject.apiVersion": (e) => e.involvedObject?.apiVersion,
        "involvedObject.resourceVersion": (e) => e.involvedObject?.resourceVersion,
        "involvedObject.fieldPath": (e) => e.involvedObject?.fieldPath,
        reason: (e) => e.reason,
        type: (e) => e.type,
        source: (e) => e.source?.component,
        reportingComponent: (e) => e.reportingComponent,
      },
    }),
    core("Lease", "leases", {
      group: "coordination.k8s.io", model: Lease, hasSpec: true,
    }),
  ];
}

let ajv = null;

/// A CRD-like resource from a description:
///   {group, version, kind, plural, singular?, namespaced?, shortNames?,
///    schema?: OpenAPI v3 schema of the whole object (JSON Schema),
///    statusSubresource?: bool}
/// Unknown fields are those the schema does not name (as a structural CRD
/// prunes them) unless it says x-kubernetes-preserve-unknown-fields.
export function customResource(d) {
  ajv ??= new Ajv({ allErrors: true, strict: false, validateFormats: false });
  const schema = d.schema ?? { type: "object", "x-kubernetes-preserve-unknown-fields": true };
  const check = ajv.compile(schema);
  return {
    group: d.group, version: d.version, kind: d.kind, plural: d.plural,
    singular: d.singular ?? d.kind.toLowerCase(), namespaced: d.namespaced ?? true,
    shortNames: d.shortNames ?? [], categories: d.categories ?? [],
    nameFormat: "subdomain", fields: metadataFields, hasSpec: true,
    statusSubresource: d.statusSubresource ?? true, custom: true,
    model: {
      validate(obj) {
        // The recording proxy needs every key read: walk the schema.
        readAll(obj, schema, true);
        if (!check(obj))
          throw Object.assign(new Error("invalid"), { errors: check.errors });
      },
    },
  };
}

/// Reads the keys of `value` that `schema` names (so that the recording
/// proxy in validate.mjs sees them; keys never read are unknown fields).
function readAll(value, schema, top = false) {
  if (value === null || typeof value !== "object" || !schema)
    return;
  if (schema["x-kubernetes-preserve-unknown-fields"]) {
    for (const k of Object.keys(value))
      readAll(value[k], schema.properties?.[k] ?? { "x-kubernetes-preserve-unknown-fields": true });
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value)
      readAll(v, schema.items);
    return;
  }
  // The object's own metadata is ObjectMeta (checked elsewhere).
  const props = top
    ? { ...schema.properties, apiVersion: {}, kind: {}, metadata: { "x-kubernetes-preserve-unknown-fields": true } }
    : schema.properties ?? {};
  for (const k of Object.keys(value)) {
    if (k in props)
      readAll(value[k], props[k]);
    else if (schema.additionalProperties)
      readAll(value[k], schema.additionalProperties === true
        ? { "x-kubernetes-preserve-unknown-fields": true } : schema.additionalProperties);
  }
}

/// The custom resources a file describes: CustomResourceDefinition
/// manifests (YAML or JSON, several documents; every served version) or
/// customResource() descriptions (JSON).
export function customResourcesFromFile(text) {
  const out = [];
  for (const doc of YAML.parseAllDocuments(text)) {
    if (doc.errors.length)
      throw new Error(`CRD file: ${doc.errors.map((e) => e.message).join("; ")}`);
    const d = doc.toJS();
    if (d == null)
      continue;
    if (d.kind !== "CustomResourceDefinition") {
      out.push(d);
      continue;
    }
    const n = d.spec.names;
    for (const v of d.spec.versions ?? [])
      if (v.served !== false)
        out.push({
          group: d.spec.group, version: v.name, kind: n.kind, plural: n.plural,
          singular: n.singular, shortNames: n.shortNames, categories: n.categories,
          namespaced: d.spec.scope !== "Cluster", schema: v.schema?.openAPIV3Schema,
          statusSubresource: Boolean(v.subresources?.status),
        });
  }
  return out;
}

/// apiVersion as written in objects: "v1" or "group/version".
export const apiVersionOf = (r) => (r.group ? `${r.group}/${r.version}` : r.version);

/// The discovery entry (APIResource) of `r` and its subresources.
export function apiResources(r) {
  const out = [{
    name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind,
    verbs, ...(r.shortNames.length ? { shortNames: r.shortNames } : {}),
    ...(r.categories?.length ? { categories: r.categories } : {}),
    storageVersionHash: Buffer.from(`${apiVersionOf(r)}/${r.kind}`).toString("base64").slice(0, 11),
  }];
  if (r.statusSubresource)
    out.push({ name: `${r.plural}/status`, singularName: "", namespaced: r.namespaced,
               kind: r.kind, verbs: ["get", "patch", "update"] });
  return out;
}

export { verbs };
