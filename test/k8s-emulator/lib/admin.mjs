// The admin API (/_emulator/..., plain HTTP on its own port): the knobs
// the tests turn. Bodies and answers are JSON. See docs/k8s-emulator.md.

import { sendJson } from "./api.mjs";
import { globRegExp } from "./lifecycle.mjs";
import { parseLabelSelector } from "./selectors.mjs";

export class Admin {
  constructor(emu) {
    this.emu = emu;
  }

  async onRequest(req, res, readBody) {
    const url = new URL(req.url, "http://admin");
    let body = null;
    try {
      body = ["POST", "PUT", "PATCH", "DELETE"].includes(req.method) ? (await readBody(req)) ?? {} : (req.resume(), {});
      const out = await this.route(req.method, url, body);
      if (out === undefined)
        return sendJson(res, 404, { error: `no admin route ${req.method} ${url.pathname}` });
      sendJson(res, 200, out);
    } catch (e) {
      sendJson(res, e.code && e.code >= 400 && e.code < 600 ? e.code : 400, { error: e.message });
    }
  }

  async route(method, url, body) {
    const emu = this.emu;
    const api = emu.apiServer;
    const life = emu.lifecycle;
    const p = url.pathname.replace(/\/+$/, "");
    const q = url.searchParams;
    const parts = p.split("/").filter(Boolean);
    if (parts[0] !== "_emulator")
      return undefined;
    const what = `${method} /${parts.slice(1).join("/")}`;
    switch (what) {
      case "GET /healthz":
        return { ok: true };
      case "GET /state":
        return this.state(q.get("resource"));
      case "POST /compact":
        return { compactedResourceVersion: String(emu.store.compact(body.resourceVersion ? Number(body.resourceVersion) : undefined)) };
      case "POST /bookmark":
        return { watches: emu.bookmarkAll() };
      case "POST /close-watches":
        return { closed: emu.closeWatches() };
      case "GET /watches":
        return {
          watches: [...emu.store.watches.values()].flatMap((s) => [...s]).map((w) => ({
            resource: w.resource.plural, namespace: w.ns, bookmarks: Boolean(w.bookmarks),
            labelSelector: w.labels.map((l) => `${l.key} ${l.op} ${l.values.join(",")}`),
            fieldSelector: w.fields.map((f) => `${f.field ?? "metadata.name"}${f.neg ? "!=" : "="}${f.value}`),
          })),
        };
      case "POST /freeze":
        emu.freeze();
        return { frozen: true };
      case "POST /unfreeze":
        emu.thaw();
        return { frozen: false };
      case "POST /down":
        await api.down();
        return { up: false };
      case "POST /up":
        await api.up();
        return { up: true, port: api.port };
      case "GET /faults":
        return { faults: api.faults };
      case "POST /faults": {
        const f = {
          verb: body.verb ?? "*", resource: body.resource ?? null, count: body.count ?? 1,
          code: body.code ?? 500, retryAfterSeconds: body.retryAfterSeconds, message: body.message,
        };
        if (!Number.isInteger(f.code) || f.code < 400 || f.code > 599)
          throw new Error("code must be an HTTP error status (400-599)");
        api.faults.push(f);
        return { faults: api.faults };
      }
      case "DELETE /faults":
        api.faults.length = 0;
        return { faults: [] };
      case "POST /throttle":
        api.throttle = { qps: body.qps ?? 5, burst: body.burst ?? body.qps ?? 5, tokens: body.burst ?? body.qps ?? 5, last: Date.now() };
        return { throttle: api.throttle };
      case "DELETE /throttle":
        api.throttle = null;
        return { throttle: null };
      case "GET /requests":
        return { counts: Object.fromEntries(api.counts), recent: api.log.slice(-Number(q.get("limit") ?? 100)) };
      case "DELETE /requests":
        api.counts.clear();
        api.log.length = 0;
        return { counts: {} };
      case "GET /delays":
        return { delays: life.delays };
      case "POST /delays":
        for (const [k, v] of Object.entries(body)) {
          if (!(k in life.delays) || !Number.isFinite(v) || v < 0)
            throw new Error(`unknown delay ${k} or bad value (known: ${Object.keys(life.delays).join(", ")})`);
          life.delays[k] = v;
        }
        return { delays: life.delays };
      case "GET /image-failures":
        return { imageFailures: life.imageFailures.map(({ re, ...f }) => f) };
      case "POST /image-failures": {
        if (!body.image)
          throw new Error("image (a pattern, * matches anything) is required");
        life.imageFailures.push({ image: body.image, re: globRegExp(body.image), reason: body.reason, message: body.message });
        return { imageFailures: life.imageFailures.map(({ re, ...f }) => f) };
      }
      case "DELETE /image-failures": {
        const image = q.get("image");
        life.imageFailures = image ? life.imageFailures.filter((f) => f.image !== image) : [];
        return { imageFailures: life.imageFailures.map(({ re, ...f }) => f) };
      }
      case "GET /unschedulable":
        return { unschedulable: life.unschedulable.map(({ reqs, ...u }) => u) };
      case "POST /unschedulable": {
        const selector = body.labelSelector ?? "";
        life.unschedulable.push({ labelSelector: selector, reqs: parseLabelSelector(selector), message: body.message });
        return { unschedulable: life.unschedulable.map(({ reqs, ...u }) => u) };
      }
      case "DELETE /unschedulable":
        life.unschedulable = [];
        life.reschedule();
        return { unschedulable: [] };
    }
    // POST /_emulator/pods/bulk: many pods at once, without HTTP round
    // trips (benchmark setup); each is validated and created as by POST.
    if (method === "POST" && p === "/_emulator/pods/bulk")
      return this.bulk(body);
    // POST /_emulator/pods/{ns}/{name}/{exit|ignore-sigterm}
    if (method === "POST" && parts[1] === "pods" && parts.length === 5) {
      const [, , ns, name, action] = parts;
      if (action === "exit") {
        const pod = life.exit(ns, name, body.container ?? null, body.exitCode ?? 0, body.reason);
        if (!pod)
          throw Object.assign(new Error(`pod ${ns}/${name} is not running (or has no such container)`), { code: 409 });
        return { phase: pod.status.phase, resourceVersion: pod.metadata.resourceVersion };
      }
      if (action === "ignore-sigterm") {
        life.ignoreSigterm.add(`${ns}/${name}`);
        return { ignoreSigterm: [...life.ignoreSigterm] };
      }
    }
    return undefined;
  }

  /// Creates `count` pods named `${prefix}${i}` from `template` (a pod
  /// manifest) in `namespace`; `labelIndex` names a label set to i.
  bulk({ namespace = "default", count = 1, prefix = "pod-", template, labelIndex = null, start = 0 }) {
    if (!template?.spec)
      throw new Error("template (a pod manifest) is required");
    const r = this.emu.resource("", "v1", "pods");
    const t0 = performance.now();
    let first = null;
    for (let i = start; i < start + count; ++i) {
      const pod = structuredClone(template);
      pod.metadata = { ...pod.metadata, name: `${prefix}${i}` };
      if (labelIndex)
        pod.metadata.labels = { ...pod.metadata.labels, [labelIndex]: String(i) };
      const { obj } = this.emu.objects.create(r, namespace, pod);
      first ??= obj.metadata.resourceVersion;
    }
    return { created: count, firstResourceVersion: first, resourceVersion: String(this.emu.store.rv),
             ms: Math.round(performance.now() - t0) };
  }

  /// Every object (or those of one resource, by plural), the counters and knobs.
  state(only) {
    const emu = this.emu;
    const objects = {};
    for (const r of emu.resources)
      if (!only || r.plural === only)
        objects[r.group ? `${r.plural}.${r.group}` : r.plural] = [...emu.store.objects(r)];
    return {
      resourceVersion: String(emu.store.rv),
      compactedResourceVersion: String(emu.store.compactedRv),
      historyLength: emu.store.history.length,
      frozen: emu.frozen,
      up: emu.apiServer.listener.listening,
      watches: emu.store.watchCount(),
      delays: emu.lifecycle.delays,
      objects,
    };
  }
}
