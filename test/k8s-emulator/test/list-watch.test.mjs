// Lists (selectors, pages) and watches (events from a resourceVersion,
// selector transitions, bookmarks, 410 Gone after compaction, timeouts).

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { client, start, watch } from "./helpers.mjs";

let emu;
let api;
let admin;
before(async () => {
  emu = await start();
  ({ api, admin } = client(emu));
  await api("POST", "/api/v1/namespaces", { metadata: { name: "sel" } });
  const make = (name, labels) => api("POST", "/api/v1/namespaces/sel/configmaps", { metadata: { name, labels } });
  await make("a", { app: "web", tier: "front" });
  await make("b", { app: "web", tier: "back" });
  await make("c", { app: "db" });
  await make("d", {});
});
after(() => emu.stop());

const names = (r) => r.body.items.map((i) => i.metadata.name).sort().join(",");
const sel = (q) => api("GET", `/api/v1/namespaces/sel/configmaps?labelSelector=${encodeURIComponent(q)}`);

test("label selectors: =, ==, !=, in, notin, exists, !exists, and AND", async () => {
  assert.equal(names(await sel("app=web")), "a,b");
  assert.equal(names(await sel("app==db")), "c");
  assert.equal(names(await sel("app!=web")), "c,d");
  assert.equal(names(await sel("tier in (front,back)")), "a,b");
  assert.equal(names(await sel("app notin (web)")), "c,d");
  assert.equal(names(await sel("tier")), "a,b");
  assert.equal(names(await sel("!tier")), "c,d");
  assert.equal(names(await sel("app=web,tier=back")), "b");
  assert.equal(names(await sel("")), "a,b,c,d");
  const bad = await sel("app in web");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.reason, "BadRequest");
});

test("field selectors: metadata.name, status.phase; others are refused", async () => {
  const r = await api("GET", "/api/v1/namespaces/sel/configmaps?fieldSelector=metadata.name%3Db");
  assert.equal(names(r), "b");
  const n = await api("GET", "/api/v1/namespaces/sel/configmaps?fieldSelector=metadata.name!%3Db");
  assert.equal(names(n), "a,c,d");
  const phase = await api("GET", "/api/v1/pods?fieldSelector=status.phase%3DRunning");
  assert.equal(phase.status, 200);
  const bad = await api("GET", "/api/v1/namespaces/sel/configmaps?fieldSelector=data.x%3D1");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.message, "field label not supported: data.x");
});

test("a list has kind, apiVersion, resourceVersion; items omit kind and apiVersion", async () => {
  const r = await api("GET", "/api/v1/namespaces/sel/configmaps");
  assert.equal(r.body.kind, "ConfigMapList");
  assert.equal(r.body.apiVersion, "v1");
  assert.equal(r.body.metadata.resourceVersion, String(emu.store.rv));
  assert.equal(r.body.items[0].kind, undefined);
  const all = await api("GET", "/api/v1/configmaps");
  assert.ok(all.body.items.length >= 4, "all namespaces");
});

test("limit and continue page through every item once", async () => {
  const seen = [];
  let cont = "";
  let pages = 0;
  let first = null;
  do {
    const r = await api("GET", `/api/v1/namespaces/sel/configmaps?limit=3${cont ? `&continue=${cont}` : ""}`);
    assert.equal(r.status, 200);
    first ??= r.body;
    seen.push(...r.body.items.map((i) => i.metadata.name));
    cont = r.body.metadata.continue ?? "";
    ++pages;
  } while (cont);
  assert.deepEqual(seen, ["a", "b", "c", "d"]);
  assert.equal(pages, 2);
  assert.equal(first.metadata.remainingItemCount, 1);
});

test("a watch from a resourceVersion sees only later events, in order", async () => {
  const list = await api("GET", "/api/v1/namespaces/sel/configmaps");
  const rv = list.body.metadata.resourceVersion;
  const w = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&resourceVersion=${rv}`);
  await api("POST", "/api/v1/namespaces/sel/configmaps", { metadata: { name: "e" } });
  await api("PATCH", "/api/v1/namespaces/sel/configmaps/e", { data: { x: "1" } }, { contentType: "application/merge-patch+json" });
  await api("DELETE", "/api/v1/namespaces/sel/configmaps/e");
  const added = await w.next();
  const modified = await w.next();
  const deleted = await w.next();
  w.close();
  assert.deepEqual([added.type, modified.type, deleted.type], ["ADDED", "MODIFIED", "DELETED"]);
  assert.ok(added.object.metadata.name === "e" && added.object.kind === "ConfigMap" && added.object.apiVersion === "v1");
  const rvs = [added, modified, deleted].map((e) => Number(e.object.metadata.resourceVersion));
  assert.ok(Number(rv) < rvs[0] && rvs[0] < rvs[1] && rvs[1] < rvs[2], `${rv} ${rvs}`);
  assert.equal(modified.object.data.x, "1");
});

test("a watch without a resourceVersion starts with ADDED for what exists", async () => {
  const w = watch(emu.url, "/api/v1/namespaces/sel/configmaps?watch=true&labelSelector=app%3Dweb");
  const a = await w.next();
  const b = await w.next();
  w.close();
  assert.deepEqual([a.type, b.type], ["ADDED", "ADDED"]);
  assert.deepEqual([a.object.metadata.name, b.object.metadata.name].sort(), ["a", "b"]);
});

test("an object leaving a watch's selector is DELETED for it, one entering it ADDED", async () => {
  const rv = (await api("GET", "/api/v1/namespaces/sel/configmaps")).body.metadata.resourceVersion;
  const w = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&resourceVersion=${rv}&labelSelector=app%3Dweb`);
  const patch = (name, labels) => api("PATCH", `/api/v1/namespaces/sel/configmaps/${name}`, { metadata: { labels } }, { contentType: "application/merge-patch+json" });
  await patch("a", { app: "gone" });
  await patch("c", { app: "web" });
  const out = await w.next();
  const into = await w.next();
  w.close();
  assert.deepEqual([out.type, out.object.metadata.name], ["DELETED", "a"]);
  assert.deepEqual([into.type, into.object.metadata.name], ["ADDED", "c"]);
  await patch("a", { app: "web" });
  await patch("c", { app: "db" });
});

test("bookmarks: on demand and on a timer, carrying the current resourceVersion", async () => {
  const w = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=${emu.store.rv}`);
  await waitForWatches(1);
  const n = await admin("POST", "/bookmark");
  assert.equal(n.watches, 1);
  const b = await w.next();
  w.close();
  await waitForWatches(0);
  assert.equal(b.type, "BOOKMARK");
  assert.equal(b.object.kind, "ConfigMap");
  assert.equal(b.object.metadata.resourceVersion, String(emu.store.rv));
  // Without allowWatchBookmarks there are none.
  const quiet = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&resourceVersion=${emu.store.rv}`);
  await waitForWatches(1);
  assert.equal((await admin("POST", "/bookmark")).watches, 0);
  quiet.close();
  await waitForWatches(0);
  // On a timer.
  emu.options.bookmarkIntervalMs = 20;
  const timed = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&allowWatchBookmarks=1&resourceVersion=${emu.store.rv}`);
  assert.equal((await timed.next()).type, "BOOKMARK");
  timed.close();
  emu.options.bookmarkIntervalMs = 0;
});

test("sendInitialEvents: the current state, then a bookmark marking its end", async () => {
  const w = watch(emu.url, "/api/v1/namespaces/sel/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true");
  const end = await w.next((e) => e.type === "BOOKMARK");
  w.close();
  assert.equal(end.object.metadata.annotations["k8s.io/initial-events-end"], "true");
  assert.equal(w.events.filter((e) => e.type === "ADDED").length, 4);
});

test("after compaction a watch from an old resourceVersion gets a 410 Expired ERROR event", async () => {
  const old = emu.store.rv;
  await api("POST", "/api/v1/namespaces/sel/configmaps", { metadata: { name: "f" } });
  const ok = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&resourceVersion=${old}`);
  assert.equal((await ok.next()).object.metadata.name, "f", "the history still has it");
  ok.close();
  const c = await admin("POST", "/compact");
  assert.equal(c.compactedResourceVersion, String(emu.store.rv));
  const gone = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&resourceVersion=${old}`);
  const ev = await gone.next();
  await gone.end();
  assert.equal(gone.status(), 200);
  assert.equal(ev.type, "ERROR");
  assert.equal(ev.object.kind, "Status");
  assert.equal(ev.object.code, 410);
  assert.equal(ev.object.reason, "Expired");
  assert.match(ev.object.message, /^too old resource version: \d+ \(\d+\)$/);
  // From the compacted revision on, watches work.
  const fresh = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&resourceVersion=${c.compactedResourceVersion}`);
  await api("DELETE", "/api/v1/namespaces/sel/configmaps/f");
  assert.equal((await fresh.next()).type, "DELETED");
  fresh.close();
});

test("a continue token older than the compaction is 410 Expired", async () => {
  const page = await api("GET", "/api/v1/namespaces/sel/configmaps?limit=1");
  await api("POST", "/api/v1/namespaces/sel/configmaps", { metadata: { name: "g" } });
  await admin("POST", "/compact");
  const r = await api("GET", `/api/v1/namespaces/sel/configmaps?limit=1&continue=${page.body.metadata.continue}`);
  assert.equal(r.status, 410);
  assert.equal(r.body.reason, "Expired");
});

test("the history is bounded: old resourceVersions expire by themselves", async () => {
  const small = await start({ historyLimit: 10 });
  const c = client(small);
  const first = small.store.rv;
  for (let i = 0; i < 20; ++i)
    await c.api("POST", "/api/v1/namespaces/default/configmaps", { metadata: { name: `h${i}` } });
  const w = watch(small.url, `/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${first}`);
  const ev = await w.next();
  w.close();
  await small.stop();
  assert.equal(ev.type, "ERROR");
  assert.equal(ev.object.code, 410);
});

test("timeoutSeconds ends the stream (with a last bookmark when allowed)", async () => {
  const w = watch(emu.url, `/api/v1/namespaces/sel/configmaps?watch=1&timeoutSeconds=1&allowWatchBookmarks=true&resourceVersion=${emu.store.rv}`);
  await w.end();
  assert.deepEqual(w.events.map((e) => e.type), ["BOOKMARK"]);
});

test("legacy /watch/ paths and a single object's watch", async () => {
  const w = watch(emu.url, `/api/v1/watch/namespaces/sel/configmaps/b?resourceVersion=${emu.store.rv}`);
  await api("PATCH", "/api/v1/namespaces/sel/configmaps/a", { data: { y: "1" } }, { contentType: "application/merge-patch+json" });
  await api("PATCH", "/api/v1/namespaces/sel/configmaps/b", { data: { y: "1" } }, { contentType: "application/merge-patch+json" });
  const ev = await w.next();
  w.close();
  assert.equal(ev.object.metadata.name, "b");
});

test("discovery: /api, /apis, /api/v1, a group, /version", async () => {
  const core = await api("GET", "/api");
  assert.deepEqual(core.body.versions, ["v1"]);
  const v1 = await api("GET", "/api/v1");
  const res = v1.body.resources.map((r) => r.name);
  for (const n of ["pods", "pods/status", "namespaces", "secrets", "configmaps", "services", "persistentvolumeclaims", "events"])
    assert.ok(res.includes(n), n);
  const pods = v1.body.resources.find((r) => r.name === "pods");
  assert.deepEqual(pods.shortNames, ["po"]);
  assert.ok(pods.verbs.includes("watch"));
  const coord = await api("GET", "/apis/coordination.k8s.io/v1");
  assert.deepEqual(coord.body.resources.map((r) => r.name), ["leases"]);
  const g = await api("GET", "/apis/coordination.k8s.io");
  assert.equal(g.body.preferredVersion.groupVersion, "coordination.k8s.io/v1");
  assert.equal((await api("GET", "/version")).body.major, "1");
  assert.equal((await api("GET", "/api/v1/nothings")).status, 404);
});

test("Table output for kubectl get", async () => {
  const t = await api("GET", "/api/v1/namespaces/sel/configmaps", undefined, { headers: { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" } });
  assert.equal(t.body.kind, "Table");
  assert.deepEqual(t.body.columnDefinitions.map((c) => c.name), ["Name", "Age"]);
  assert.equal(t.body.rows[0].object.kind, "PartialObjectMetadata");
});

async function waitForWatches(n) {
  // The watch registers when its request arrives; wait for that request.
  for (let i = 0; i < 5000; ++i) {
    if (emu.store.watchCount() === n)
      return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`expected ${n} watches, have ${emu.store.watchCount()}`);
}
