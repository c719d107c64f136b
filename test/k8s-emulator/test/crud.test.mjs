// Create, get, update, patch, delete: metadata the server owns,
// resourceVersion, 404/409 Status objects, subresources, defaults.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { client, pod, start } from "./helpers.mjs";

let emu;
let api;
before(async () => {
  emu = await start();
  ({ api } = client(emu));
});
after(() => emu.stop());

const cm = (name, data = { a: "1" }) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name }, data });
const cms = "/api/v1/namespaces/default/configmaps";

test("create sets uid, creationTimestamp, resourceVersion; a second create is 409 AlreadyExists", async () => {
  const r = await api("POST", cms, cm("c1"));
  assert.equal(r.status, 201);
  const m = r.body.metadata;
  assert.match(m.uid, /^[0-9a-f-]{36}$/);
  assert.match(m.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(m.resourceVersion, /^\d+$/);
  assert.equal(m.namespace, "default");
  assert.equal(r.body.kind, "ConfigMap");
  const again = await api("POST", cms, cm("c1"));
  assert.equal(again.status, 409);
  assert.deepEqual(again.body, {
    kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure",
    message: 'configmaps "c1" already exists', reason: "AlreadyExists",
    details: { name: "c1", kind: "configmaps" }, code: 409,
  });
});

test("GET of a missing object is a 404 NotFound Status", async () => {
  const r = await api("GET", `${cms}/nope`);
  assert.equal(r.status, 404);
  assert.equal(r.body.kind, "Status");
  assert.equal(r.body.reason, "NotFound");
  assert.equal(r.body.message, 'configmaps "nope" not found');
  assert.deepEqual(r.body.details, { name: "nope", kind: "configmaps" });
  const lease = await api("GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/nope");
  assert.equal(lease.body.message, 'leases.coordination.k8s.io "nope" not found');
  assert.equal(lease.body.details.group, "coordination.k8s.io");
});

test("one global resourceVersion increases across resources", async () => {
  const a = await api("POST", cms, cm("rv-a"));
  const s = await api("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "rv-s" }, stringData: { k: "v" } });
  const b = await api("POST", cms, cm("rv-b"));
  const rvs = [a, s, b].map((r) => Number(r.body.metadata.resourceVersion));
  assert.ok(rvs[0] < rvs[1] && rvs[1] < rvs[2], `${rvs}`);
});

test("PUT with a stale resourceVersion is 409 Conflict; with the current one it succeeds", async () => {
  const created = (await api("POST", cms, cm("upd"))).body;
  const first = await api("PUT", `${cms}/upd`, { ...created, data: { a: "2" } });
  assert.equal(first.status, 200);
  assert.ok(Number(first.body.metadata.resourceVersion) > Number(created.metadata.resourceVersion));
  assert.equal(first.body.metadata.uid, created.metadata.uid);
  const stale = await api("PUT", `${cms}/upd`, { ...created, data: { a: "3" } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.reason, "Conflict");
  assert.equal(stale.body.message, 'Operation cannot be fulfilled on configmaps "upd": the object has been modified; please apply your changes to the latest version and try again');
  const unconditional = await api("PUT", `${cms}/upd`, { ...cm("upd", { a: "4" }) });
  assert.equal(unconditional.status, 200);
  assert.equal(unconditional.body.data.a, "4");
});

test("an update that changes nothing keeps the resourceVersion", async () => {
  const created = (await api("POST", cms, cm("noop"))).body;
  const same = await api("PUT", `${cms}/noop`, created);
  assert.equal(same.status, 200);
  assert.equal(same.body.metadata.resourceVersion, created.metadata.resourceVersion);
});

test("the name in the body must match the URL", async () => {
  await api("POST", cms, cm("named"));
  const r = await api("PUT", `${cms}/named`, cm("other"));
  assert.equal(r.status, 400);
  assert.equal(r.body.reason, "BadRequest");
});

test("merge, strategic merge and JSON patches; a patch with a stale resourceVersion is 409", async () => {
  const p = (await api("POST", "/api/v1/namespaces/default/pods", pod("patched", { labels: { a: "1" } }))).body;
  const path = "/api/v1/namespaces/default/pods/patched";
  let r = await api("PATCH", path, { metadata: { labels: { b: "2", a: null } } }, { contentType: "application/merge-patch+json" });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.metadata.labels, { b: "2" });
  r = await api("PATCH", path, { metadata: { annotations: { x: "y" } }, spec: { containers: [{ name: "main", image: "busybox:1.37" }] } },
                { contentType: "application/strategic-merge-patch+json" });
  assert.equal(r.status, 200);
  assert.equal(r.body.spec.containers.length, 1);
  assert.equal(r.body.spec.containers[0].image, "busybox:1.37");
  assert.deepEqual(r.body.spec.containers[0].command, ["sleep", "3600"], "strategic merge keeps the other fields of the container");
  r = await api("PATCH", path, [{ op: "add", path: "/metadata/labels/c", value: "3" }, { op: "test", path: "/metadata/labels/b", value: "2" }],
                { contentType: "application/json-patch+json" });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.metadata.labels, { b: "2", c: "3" });
  r = await api("PATCH", path, { metadata: { resourceVersion: p.metadata.resourceVersion, labels: { d: "4" } } },
                { contentType: "application/merge-patch+json" });
  assert.equal(r.status, 409);
  r = await api("PATCH", path, [{ op: "test", path: "/metadata/labels/b", value: "nope" }], { contentType: "application/json-patch+json" });
  assert.equal(r.status, 422);
  r = await api("PATCH", `${cms}/nope`, { data: {} }, { contentType: "application/merge-patch+json" });
  assert.equal(r.status, 404);
});

test("a pod's spec may change only where the API server allows", async () => {
  const p = (await api("POST", "/api/v1/namespaces/default/pods", pod("immutable"))).body;
  const r = await api("PATCH", "/api/v1/namespaces/default/pods/immutable", { spec: { restartPolicy: "Never" } },
                      { contentType: "application/merge-patch+json" });
  assert.equal(r.status, 422);
  assert.equal(r.body.reason, "Invalid");
  assert.match(r.body.message, /pod updates may not change fields/);
  assert.ok(p.metadata.generation === 1);
});

test("server-side defaults of a pod", async () => {
  const r = await api("POST", "/api/v1/namespaces/default/pods", pod("defaults", { image: "busybox" }));
  const s = r.body.spec;
  assert.equal(s.restartPolicy, "Always");
  assert.equal(s.terminationGracePeriodSeconds, 30);
  assert.equal(s.dnsPolicy, "ClusterFirst");
  assert.equal(s.schedulerName, "default-scheduler");
  assert.equal(s.serviceAccountName, "default");
  assert.equal(s.containers[0].imagePullPolicy, "Always", "no tag: Always");
  assert.equal(s.containers[0].terminationMessagePath, "/dev/termination-log");
  assert.equal(s.containers[0].terminationMessagePolicy, "File");
  assert.equal(r.body.status.phase, "Pending");
  assert.equal(r.body.status.qosClass, "BestEffort");
  assert.equal(r.body.metadata.generation, 1);
});

test("status goes through the status subresource only", async () => {
  const created = (await api("POST", "/api/v1/namespaces/default/services", {
    metadata: { name: "svc-a" }, spec: { selector: { app: "a" }, ports: [{ port: 80 }] },
  })).body;
  assert.match(created.spec.clusterIP, /^10\.96\./);
  assert.equal(created.spec.ports[0].targetPort, 80);
  const ignored = await api("PUT", "/api/v1/namespaces/default/services/svc-a",
                            { ...created, status: { loadBalancer: { ingress: [{ ip: "1.2.3.4" }] } } });
  assert.deepEqual(ignored.body.status, { loadBalancer: {} });
  const set = await api("PUT", "/api/v1/namespaces/default/services/svc-a/status",
                        { ...created, status: { loadBalancer: { ingress: [{ ip: "1.2.3.4" }] } } });
  assert.equal(set.status, 200);
  assert.equal(set.body.status.loadBalancer.ingress[0].ip, "1.2.3.4");
  const ip = await api("PUT", "/api/v1/namespaces/default/services/svc-a", { ...set.body, spec: { ...set.body.spec, clusterIP: "10.96.9.9" } });
  assert.equal(ip.status, 422);
});

test("secrets: stringData becomes base64 data; bad base64 is refused", async () => {
  const r = await api("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "sec" }, stringData: { token: "abc" } });
  assert.equal(r.status, 201);
  assert.deepEqual(r.body.data, { token: Buffer.from("abc").toString("base64") });
  assert.equal(r.body.type, "Opaque");
  assert.equal(r.body.stringData, undefined);
  const bad = await api("POST", "/api/v1/namespaces/default/secrets", { metadata: { name: "sec2" }, data: { token: "not base64!" } });
  assert.equal(bad.status, 422);
});

test("generateName, dryRun and a missing namespace", async () => {
  const g = await api("POST", cms, { metadata: { generateName: "gen-" }, data: {} });
  assert.equal(g.status, 201);
  assert.match(g.body.metadata.name, /^gen-[a-z0-9]{5}$/);
  const dry = await api("POST", `${cms}?dryRun=All`, cm("dry"));
  assert.equal(dry.status, 201);
  assert.equal((await api("GET", `${cms}/dry`)).status, 404);
  const missing = await api("POST", "/api/v1/namespaces/nowhere/configmaps", cm("x"));
  assert.equal(missing.status, 404);
  assert.equal(missing.body.message, 'namespaces "nowhere" not found');
  const rv = await api("POST", cms, { ...cm("with-rv"), metadata: { name: "with-rv", resourceVersion: "5" } });
  assert.equal(rv.status, 500);
});

test("DELETE answers a Status for config maps, 404 for a missing one, 409 on a failed precondition", async () => {
  const c = (await api("POST", cms, cm("del"))).body;
  const pre = await api("DELETE", `${cms}/del`, { preconditions: { uid: "00000000-0000-0000-0000-000000000000" } });
  assert.equal(pre.status, 409);
  const r = await api("DELETE", `${cms}/del`);
  assert.equal(r.status, 200);
  assert.equal(r.body.kind, "Status");
  assert.equal(r.body.status, "Success");
  assert.equal(r.body.details.uid, c.metadata.uid);
  assert.equal((await api("GET", `${cms}/del`)).status, 404);
  assert.equal((await api("DELETE", `${cms}/del`)).status, 404);
});

test("finalizers hold a deletion until they are removed", async () => {
  await api("POST", cms, { ...cm("fin"), metadata: { name: "fin", finalizers: ["example.com/hold"] } });
  const d = await api("DELETE", `${cms}/fin`);
  assert.equal(d.status, 200);
  const held = await api("GET", `${cms}/fin`);
  assert.equal(held.status, 200);
  assert.ok(held.body.metadata.deletionTimestamp);
  const r = await api("PATCH", `${cms}/fin`, { metadata: { finalizers: null } }, { contentType: "application/merge-patch+json" });
  assert.equal(r.status, 200);
  assert.equal((await api("GET", `${cms}/fin`)).status, 404);
});

test("leases: leader election by optimistic concurrency", async () => {
  const path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
  const lease = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: "leader" },
                  spec: { holderIdentity: "a", leaseDurationSeconds: 15 } };
  assert.equal((await api("POST", path, lease)).status, 201);
  assert.equal((await api("POST", path, { ...lease, spec: { holderIdentity: "b" } })).status, 409);
  const cur = (await api("GET", `${path}/leader`)).body;
  const [x, y] = await Promise.all([
    api("PUT", `${path}/leader`, { ...cur, spec: { ...cur.spec, holderIdentity: "b" } }),
    api("PUT", `${path}/leader`, { ...cur, spec: { ...cur.spec, holderIdentity: "c" } }),
  ]);
  assert.deepEqual([x.status, y.status].sort(), [200, 409]);
  const bad = await api("POST", path, { ...lease, metadata: { name: "bad" }, spec: { leaseDurationSeconds: "15" } });
  assert.equal(bad.status, 422);
});

test("namespaces: created, Terminating while their contents go, then gone", async () => {
  assert.equal((await api("POST", "/api/v1/namespaces", { metadata: { name: "tmp-ns" } })).status, 201);
  await api("POST", "/api/v1/namespaces/tmp-ns/configmaps", cm("inside"));
  const d = await api("DELETE", "/api/v1/namespaces/tmp-ns");
  assert.equal(d.status, 200);
  assert.equal((await api("GET", "/api/v1/namespaces/tmp-ns/configmaps/inside")).status, 404);
  assert.equal((await api("GET", "/api/v1/namespaces/tmp-ns")).status, 404);
  assert.equal((await api("DELETE", "/api/v1/namespaces/default")).status, 403);
});
