// The Kubernetes REST surface: discovery (/version, /api, /apis, ...),
// /openapi/v2, health checks, and for every resource
//   GET    .../{plural}               list, or watch with ?watch=1
//   GET    .../watch/{plural}[/{name}] (legacy watch paths)
//   POST   .../{plural}               create
//   DELETE .../{plural}               deletecollection
//   GET|PUT|PATCH|DELETE .../{plural}/{name}
//   GET|PUT|PATCH        .../{plural}/{name}/status
// under /api/v1 and /apis/{group}/{version}, namespaced resources under
// .../namespaces/{ns}/. Errors are v1 Status objects.

import { ApiError, itemJsonOf, objectJsonOf } from "./store.mjs";
import { apiResources, apiVersionOf } from "./resources.mjs";
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.mjs";
import { toTable, wantsTable } from "./table.mjs";
import { notFound } from "./objects.mjs";

/// A v1 Status object for an error.
export function statusOf(err) {
  return {
    kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
    message: err.message, reason: err.reason ?? "InternalError",
    ...(err.details ? { details: err.details } : {}), code: err.code ?? 500,
  };
}

/// Sends `body` (an object or a JSON string) with `code`.
export function sendJson(res, code, body, headers = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(code, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendError(res, err, headers = {}) {
  if (!(err instanceof ApiError) && !err.code) {
    console.error("k8s-emulator: internal error:", err);
    err = new ApiError(500, "InternalError", `Internal error occurred: ${err.message}`);
  }
  sendJson(res, err.code, statusOf(err), headers);
}

// An empty openapi_v2.Document in protobuf: kubectl (which asks for
// protobuf) then finds no schema for any kind and leaves validation to
// the server, as it does for CRDs. Field 1 (openapi: string) = "2.0".
const openapiProtobuf = Buffer.from([0x0a, 0x03, 0x32, 0x2e, 0x30]);

function parseIntParam(q, name) {
  const v = q.get(name);
  if (v === null || v === "")
    return null;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new ApiError(400, "BadRequest", `invalid ${name}: ${v}`);
  return n;
}

export class Api {
  constructor(emu) {
    this.emu = emu;
    this.store = emu.store;
  }

  /// Routes one request. Returns the verb (for counters and faults).
  classify(method, url) {
    const parts = url.pathname.split("/").filter(Boolean);
    let group;
    let version;
    let rest;
    if (parts[0] === "api" && parts.length >= 2) {
      group = "";
      version = parts[1];
      rest = parts.slice(2);
    } else if (parts[0] === "apis" && parts.length >= 3) {
      group = parts[1];
      version = parts[2];
      rest = parts.slice(3);
    } else {
      return { kind: "other", verb: "get" };
    }
    let watchPath = false;
    if (rest[0] === "watch") {
      watchPath = true;
      rest = rest.slice(1);
    }
    if (rest.length === 0)
      return { kind: "discovery", verb: "get", group, version };
    let ns = null;
    if (rest[0] === "namespaces" && rest.length >= 3) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name = null, sub = null, ...extra] = rest;
    const r = this.emu.resource(group, version, plural);
    if (!r || extra.length || (sub && !(sub === "status" && r.statusSubresource)))
      return { kind: "unknown", verb: "get", group, version, plural };
    if (r.namespaced && ns === null && (name !== null || method !== "GET"))
      return { kind: "unknown", verb: "get", group, version, plural };
    if (!r.namespaced && ns !== null)
      return { kind: "unknown", verb: "get", group, version, plural };
    const watch = watchPath || ["1", "true"].includes(url.searchParams.get("watch"));
    let verb;
    if (method === "GET")
      verb = watch ? "watch" : name === null ? "list" : "get";
    else if (method === "POST" && name === null)
      verb = "create";
    else if (method === "PUT" && name !== null)
      verb = "update";
    else if (method === "PATCH" && name !== null)
      verb = "patch";
    else if (method === "DELETE")
      verb = name === null ? "deletecollection" : "delete";
    else
      return { kind: "method", verb: method.toLowerCase(), r };
    return { kind: "resource", verb, r, ns, name, sub };
  }

  /// Answers a request already classified; `body` is the parsed JSON body.
  handle(req, res, url, route, body) {
    const q = url.searchParams;
    switch (route.kind) {
      case "other": return this.other(req, res, url);
      case "discovery": return this.discovery(res, route, url);
      case "unknown":
        return sendError(res, new ApiError(404, "NotFound", "the server could not find the requested resource", {}));
      case "method":
        return sendError(res, new ApiError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource`));
    }
    const { r, ns, name, sub, verb } = route;
    const dryRun = q.getAll("dryRun").includes("All");
    const fieldValidation = q.get("fieldValidation") ?? this.emu.options.fieldValidation;
    if (!["Strict", "Warn", "Ignore"].includes(fieldValidation))
      throw new ApiError(400, "BadRequest", `fieldValidation ${fieldValidation} is invalid, valid values are: Ignore, Warn, Strict`);
    const opts = { dryRun, fieldValidation, status: sub === "status" };
    const objects = this.emu.objects;
    const reply = (code, { obj, warnings = [] }) => {
      const headers = warnings.length ? { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`).join(", ") } : {};
      sendJson(res, code, objectJsonOf(obj), headers);
    };
    switch (verb) {
      case "get": {
        const obj = this.store.get(r, ns, name);
        if (!obj)
          throw notFound(r, name);
        if (wantsTable(req.headers.accept))
          return sendJson(res, 200, toTable(r, [obj], { resourceVersion: obj.metadata.resourceVersion, include: q.get("includeObject") ?? "Metadata" }));
        return sendJson(res, 200, objectJsonOf(obj));
      }
      case "list": return this.list(req, res, r, ns, q);
      case "watch": return this.watch(req, res, r, ns, name, q);
      case "create": return reply(201, objects.create(r, ns, body, opts));
      case "update": return reply(200, objects.update(r, ns, name, body, opts));
      case "patch": {
        const type = (req.headers["content-type"] ?? "").split(";")[0].trim();
        if (type === "application/apply-patch+yaml")
          throw new ApiError(415, "UnsupportedMediaType", "server-side apply is not emulated (k8s-emulator)");
        return reply(200, objects.patch(r, ns, name, type, body, opts));
      }
      case "delete": {
        const options = { ...(body ?? {}) };
        const g = parseIntParam(q, "gracePeriodSeconds");
        if (g !== null)
          options.gracePeriodSeconds = g;
        const obj = objects.delete(r, ns, name, options, opts);
        if (r.returnDeletedObject || obj.metadata.deletionTimestamp && !dryRun && this.store.get(r, ns, name))
          return sendJson(res, 200, objectJsonOf(obj));
        return sendJson(res, 200, {
          kind: "Status", apiVersion: "v1", metadata: {}, status: "Success",
          details: { name, ...(r.group ? { group: r.group } : {}), kind: r.plural, uid: obj.metadata.uid },
        });
      }
      case "deletecollection": {
        const { labels, fields } = this.selectors(r, q);
        const options = { ...(body ?? {}) };
        const g = parseIntParam(q, "gracePeriodSeconds");
        if (g !== null)
          options.gracePeriodSeconds = g;
        const { items, resourceVersion } = this.store.list(r, { ns, labels, fields });
        const deleted = items.map((o) => objects.delete(r, o.metadata.namespace, o.metadata.name, options, opts));
        return sendJson(res, 200, this.listJson(r, deleted, { resourceVersion }));
      }
    }
    throw new ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
  }

  selectors(r, q) {
    try {
      return {
        labels: parseLabelSelector(q.get("labelSelector") ?? ""),
        fields: parseFieldSelector(q.get("fieldSelector") ?? "", r.fields),
      };
    } catch (e) {
      if (e instanceof SelectorError)
        throw new ApiError(400, "BadRequest", e.message);
      throw e;
    }
  }

  /// A List as JSON text, built from the objects' cached JSON.
  listJson(r, items, meta) {
    const m = JSON.stringify({
      resourceVersion: meta.resourceVersion,
      ...(meta.continue ? { continue: meta.continue } : {}),
      ...(meta.remainingItemCount !== undefined ? { remainingItemCount: meta.remainingItemCount } : {}),
    });
    return `{"kind":"${r.kind}List","apiVersion":"${apiVersionOf(r)}","metadata":${m},"items":[${
      items.map(r.custom ? objectJsonOf : itemJsonOf).join(",")}]}`;
  }

  list(req, res, r, ns, q) {
    const { labels, fields } = this.selectors(r, q);
    const limit = parseIntParam(q, "limit") ?? 0;
    const rv = q.get("resourceVersion");
    const match = q.get("resourceVersionMatch");
    if (match && !rv)
      throw new ApiError(400, "BadRequest", "resourceVersionMatch is forbidden unless resourceVersion is provided");
    if (rv && !/^\d+$/.test(rv))
      throw new ApiError(400, "BadRequest", `resourceVersion: Invalid value: "${rv}": must be a valid integer`);
    if (rv && match === "Exact" && Number(rv) !== this.store.rv) {
      if (Number(rv) < this.store.compactedRv)
        throw new ApiError(410, "Expired", `too old resource version: ${rv} (${this.store.compactedRv + 1})`);
      throw new ApiError(410, "Expired", `k8s-emulator lists only at the current resourceVersion (${this.store.rv}), not at ${rv}`);
    }
    if (rv && rv !== "0" && Number(rv) > this.store.rv)
      throw new ApiError(504, "Timeout", `Too large resource version: ${rv}, current: ${this.store.rv}`,
                         { causes: [{ reason: "ResourceVersionTooLarge", message: "Too large resource version" }], retryAfterSeconds: 1 });
    const out = this.store.list(r, { ns, labels, fields, limit, continue: q.get("continue") ?? "" });
    if (wantsTable(req.headers.accept))
      return sendJson(res, 200, toTable(r, out.items, { ...out, include: q.get("includeObject") ?? "Metadata" }));
    return sendJson(res, 200, this.listJson(r, out.items, out));
  }

  watch(req, res, r, ns, name, q) {
    const { labels, fields } = this.selectors(r, q);
    if (name !== null)
      fields.push({ get: (o) => o.metadata.name, neg: false, value: name });
    const rvParam = q.get("resourceVersion") ?? "";
    if (rvParam && !/^\d+$/.test(rvParam))
      throw new ApiError(400, "BadRequest", `resourceVersion: Invalid value: "${rvParam}": must be a valid integer`);
    const timeout = parseIntParam(q, "timeoutSeconds") ?? this.emu.options.watchTimeoutSeconds;
    const bookmarks = ["1", "true"].includes(q.get("allowWatchBookmarks"));
    const initialEvents = q.get("sendInitialEvents") === "true";
    const table = wantsTable(req.headers.accept)
      ? { include: q.get("includeObject") ?? "Metadata" } : null;
    const w = new Watch(this.emu, r, ns, labels, fields, res, table);
    res.writeHead(200, { "Content-Type": "application/json", "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
    res.flushHeaders?.();
    // "" and "0": the current state as ADDED events, then changes.
    // A resourceVersion: every change after it (410 Gone when compacted).
    const fromRv = rvParam && rvParam !== "0" && !initialEvents ? Number(rvParam) : null;
    let replay;
    try {
      replay = this.store.addWatch(w, fromRv);
    } catch (e) {
      res.end(`${JSON.stringify({ type: "ERROR", object: statusOf(e) })}\n`);
      return;
    }
    if (fromRv === null) {
      for (const obj of this.store.objects(r, ns))
        w.offer({ type: "ADDED", obj });
      if (initialEvents && bookmarks)
        w.bookmark({ "k8s.io/initial-events-end": "true" });
    } else {
      for (const ev of replay)
        w.offer(ev);
    }
    w.start(timeout, bookmarks);
  }

  /// /version, /healthz, /openapi/v2 and the like.
  other(req, res, url) {
    const p = url.pathname.replace(/\/+$/, "") || "/";
    if (p === "/version")
      return sendJson(res, 200, this.emu.version());
    if (["/healthz", "/livez", "/readyz"].includes(p)) {
      res.writeHead(200, { "Content-Type": "text/plain" });
      return res.end("ok");
    }
    if (p === "/api")
      return sendJson(res, 200, {
        kind: "APIVersions", versions: ["v1"],
        serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress: req.headers.host ?? "" }],
      });
    if (p === "/apis")
      return sendJson(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups: this.emu.groups().map((g) => this.group(g)) });
    if (p === "/openapi/v2") {
      if (/protobuf/.test(req.headers.accept ?? "")) {
        res.writeHead(200, { "Content-Type": "application/com.github.proto-openapi.spec.v2.v1.0+protobuf", "Content-Length": openapiProtobuf.length });
        return res.end(openapiProtobuf);
      }
      return sendJson(res, 200, { swagger: "2.0", info: { title: "Kubernetes (k8s-emulator)", version: this.emu.version().gitVersion }, paths: {}, definitions: {} });
    }
    const parts = p.split("/").filter(Boolean);
    if (parts[0] === "apis" && parts.length === 2) {
      const g = this.emu.groups().find((x) => x.name === parts[1]);
      if (g)
        return sendJson(res, 200, { kind: "APIGroup", apiVersion: "v1", ...this.group(g) });
    }
    return sendError(res, new ApiError(404, "NotFound", "the server could not find the requested resource", {}));
  }

  group(g) {
    const versions = g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v }));
    return { name: g.name, versions, preferredVersion: versions[0] };
  }

  discovery(res, { group, version }) {
    const rs = this.emu.resourcesOf(group, version);
    if (!rs.length)
      return sendError(res, new ApiError(404, "NotFound", "the server could not find the requested resource", {}));
    return sendJson(res, 200, {
      kind: "APIResourceList", apiVersion: "v1",
      groupVersion: group ? `${group}/${version}` : version,
      resources: rs.flatMap(apiResources),
    });
  }
}

/// One open watch stream: filters events by namespace and selectors
/// (an object leaving the selection is DELETED, one entering it ADDED),
/// writes newline-delimited JSON, sends bookmarks, ends after its timeout.
class Watch {
  constructor(emu, resource, ns, labels, fields, res, table) {
    this.emu = emu;
    this.resource = resource;
    this.ns = ns;
    this.labels = labels;
    this.fields = fields;
    this.res = res;
    this.table = table;
    this.closed = false;
    this.timers = [];
    res.on("close", () => this.close());
  }

  matches(obj) {
    return (this.ns === null || obj.metadata.namespace === this.ns)
      && (this.labels.length === 0 || matchLabels(this.labels, obj.metadata.labels))
      && (this.fields.length === 0 || matchFields(this.fields, obj));
  }

  offer(ev) {
    if (this.closed)
      return;
    const now = this.matches(ev.obj);
    const before = ev.old ? this.matches(ev.old) : false;
    let type;
    if (ev.type === "ADDED")
      type = now ? "ADDED" : null;
    else if (ev.type === "DELETED")
      type = before ? "DELETED" : null;
    else
      type = now ? (before ? "MODIFIED" : "ADDED") : before ? "DELETED" : null;
    if (type)
      this.send(type, ev.obj);
  }

  send(type, obj) {
    let line;
    if (this.table)
      line = `${JSON.stringify({ type, object: toTable(this.resource, [obj], { resourceVersion: obj.metadata.resourceVersion, include: this.table.include }) })}\n`;
    else
      line = `{"type":"${type}","object":${objectJsonOf(obj)}}\n`;
    this.write(line);
  }

  write(line) {
    if (this.emu.frozen) {
      // A frozen API server delivers nothing; events wait for the thaw.
      this.emu.whenThawed(() => this.write(line));
      return;
    }
    if (this.closed)
      return;
    // Lines written in one turn of the event loop go out in one write.
    if (this.pending === undefined) {
      this.pending = [];
      setImmediate(() => {
        const lines = this.pending;
        this.pending = undefined;
        if (!this.closed)
          this.res.write(lines.join(""));
      });
    }
    this.pending.push(line);
  }

  bookmark(annotations) {
    const r = this.resource;
    this.write(`${JSON.stringify({
      type: "BOOKMARK",
      object: { kind: r.kind, apiVersion: apiVersionOf(r), metadata: { resourceVersion: String(this.emu.store.rv), ...(annotations ? { annotations } : {}) } },
    })}\n`);
  }

  start(timeoutSeconds, bookmarks) {
    this.bookmarks = bookmarks;
    if (timeoutSeconds > 0)
      this.timers.push(setTimeout(() => {
        if (bookmarks)
          this.bookmark();
        this.end();
      }, timeoutSeconds * 1000));
    if (bookmarks && this.emu.options.bookmarkIntervalMs > 0)
      this.timers.push(setInterval(() => this.bookmark(), this.emu.options.bookmarkIntervalMs));
  }

  /// Ends the stream as the server does at the watch's timeout.
  end() {
    if (!this.closed)
      this.res.end(this.pending?.join("") ?? "");
    this.pending = undefined;
    this.close();
  }

  close() {
    if (this.closed)
      return;
    this.closed = true;
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this.emu.store.removeWatch(this);
  }
}
