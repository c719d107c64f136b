// Objects that do not match the official schema, or break the API
// server's own rules, are refused with 422 Invalid and the field causes.

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

const pods = "/api/v1/namespaces/default/pods";

test("an unknown field is refused with the field named", async () => {
  const p = pod("unknown");
  p.spec.containers[0].imagePullPolcy = "Always";
  const r = await api("POST", pods, p);
  assert.equal(r.status, 422);
  assert.equal(r.body.kind, "Status");
  assert.equal(r.body.reason, "Invalid");
  assert.equal(r.body.details.kind, "Pod");
  assert.equal(r.body.details.name, "unknown");
  assert.deepEqual(r.body.details.causes.map((c) => c.field), ["spec.containers[0].imagePullPolcy"]);
  assert.match(r.body.message, /^Pod "unknown" is invalid: spec\.containers\[0\]\.imagePullPolcy: unknown field/);
});

test("fieldValidation=Ignore drops unknown fields, Warn drops them with a Warning header", async () => {
  const p = pod("ignored");
  p.spec.bogus = true;
  const r = await api("POST", `${pods}?fieldValidation=Ignore`, p);
  assert.equal(r.status, 201);
  assert.equal(r.body.spec.bogus, undefined);
  const w = await api("POST", `${pods}?fieldValidation=Warn`, { ...p, metadata: { name: "warned" } });
  assert.equal(w.status, 201);
  assert.match(w.headers.warning, /299 - "unknown field \\"spec.bogus\\""/);
});

test("wrong types and unsupported enum values", async () => {
  const p = pod("types");
  p.spec.containers[0].ports = [{ containerPort: "80" }];
  p.spec.restartPolicy = "Sometimes";
  const r = await api("POST", pods, p);
  assert.equal(r.status, 422);
  const fields = r.body.details.causes.map((c) => c.field).sort();
  assert.ok(fields.includes("spec.containers[0].ports[0].containerPort"), JSON.stringify(r.body));
});

test("names must be DNS-1123 (pods, config maps) or DNS-1035 (services)", async () => {
  let r = await api("POST", pods, pod("Bad_Name"));
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.details.causes.map((c) => [c.field, c.reason]), [["metadata.name", "FieldValueInvalid"]]);
  r = await api("POST", "/api/v1/namespaces/default/services", { metadata: { name: "1svc" }, spec: { ports: [{ port: 80 }] } });
  assert.equal(r.status, 422);
  r = await api("POST", pods, { ...pod("x"), metadata: {} });
  assert.equal(r.status, 422);
  assert.equal(r.body.details.causes[0].reason, "FieldValueRequired");
});

test("labels and annotations must be well formed", async () => {
  let r = await api("POST", pods, pod("labels", { labels: { "bad key!": "v" } }));
  assert.equal(r.status, 422);
  r = await api("POST", pods, pod("labels2", { labels: { ok: "bad value!" } }));
  assert.equal(r.status, 422);
  r = await api("POST", pods, pod("labels3", { labels: { "example.com/ok": "v-1.2_3" } }));
  assert.equal(r.status, 201);
  r = await api("POST", pods, { ...pod("ann"), metadata: { name: "ann", annotations: { "x/y/z": "v" } } });
  assert.equal(r.status, 422);
});

test("the pod checks the schema leaves to Go code: containers, names, images, ports", async () => {
  let r = await api("POST", pods, { metadata: { name: "nocontainers" }, spec: { containers: [] } });
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.details.causes.map((c) => c.field), ["spec.containers"]);
  const p = pod("dups");
  p.spec.containers.push({ name: "main" });
  p.spec.containers[0].ports = [{ containerPort: 70000 }];
  r = await api("POST", pods, p);
  assert.equal(r.status, 422);
  const causes = r.body.details.causes.map((c) => `${c.field} ${c.reason}`).sort();
  assert.deepEqual(causes, [
    "spec.containers[0].ports[0].containerPort FieldValueInvalid",
    "spec.containers[1].image FieldValueRequired",
    "spec.containers[1].name FieldValueDuplicate",
  ]);
  assert.match(r.body.message, /^Pod "dups" is invalid: \[/);
});

test("apiVersion, kind and namespace of the body must match the URL", async () => {
  let r = await api("POST", pods, { ...pod("k"), kind: "ConfigMap" });
  assert.equal(r.status, 400);
  r = await api("POST", pods, { ...pod("k"), apiVersion: "v2" });
  assert.equal(r.status, 400);
  r = await api("POST", pods, { ...pod("k"), metadata: { name: "k", namespace: "kube-system" } });
  assert.equal(r.status, 400);
  r = await api("POST", pods, "{not json", {});
  assert.equal(r.status, 400);
});

test("custom resources are validated against their JSON schema", async () => {
  const r = emu.addCustomResource({
    group: "agents.x-k8s.io", version: "v1alpha1", kind: "Sandbox", plural: "sandboxes",
    schema: {
      type: "object",
      properties: {
        spec: {
          type: "object", required: ["podTemplate"],
          properties: {
            podTemplate: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
            replicas: { type: "integer", minimum: 0, maximum: 1 },
          },
        },
        status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
      },
    },
  });
  assert.ok(r);
  const base = "/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes";
  const sb = { apiVersion: "agents.x-k8s.io/v1alpha1", kind: "Sandbox", metadata: { name: "sb" },
               spec: { podTemplate: { spec: { containers: [] } }, replicas: 1 } };
  let res = await api("POST", base, sb);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  res = await api("POST", base, { ...sb, metadata: { name: "sb2" }, spec: { replicas: 2 } });
  assert.equal(res.status, 422);
  assert.deepEqual(res.body.details.causes.map((c) => c.field).sort(), ["spec.podTemplate", "spec.replicas"]);
  res = await api("POST", base, { ...sb, metadata: { name: "sb3" }, spec: { ...sb.spec, extra: 1 } });
  assert.equal(res.status, 422);
  assert.deepEqual(res.body.details.causes.map((c) => c.field), ["spec.extra"]);
  const list = await api("GET", "/apis/agents.x-k8s.io/v1alpha1/sandboxes");
  assert.equal(list.body.kind, "SandboxList");
  assert.equal(list.body.items[0].kind, "Sandbox");
  const disco = await api("GET", "/apis/agents.x-k8s.io/v1alpha1");
  assert.deepEqual(disco.body.resources.map((x) => x.name), ["sandboxes", "sandboxes/status"]);
  const groups = await api("GET", "/apis");
  assert.ok(groups.body.groups.some((g) => g.name === "agents.x-k8s.io"));
});

test("a CustomResourceDefinition manifest (YAML) adds its served versions", async () => {
  const { customResourcesFromFile } = await import("../lib/resources.mjs");
  const crd = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec:
            type: object
            properties:
              size: {type: integer, format: int32}
              template:
                type: object
                properties:
                  metadata: {type: object, properties: {labels: {type: object, additionalProperties: {type: string}}}}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v0
    served: false
    storage: false
`;
  const ds = customResourcesFromFile(crd);
  assert.deepEqual(ds.map((d) => `${d.group}/${d.version} ${d.kind}`), ["example.com/v1 Widget"]);
  const small = await start({ customResources: ds });
  try {
    const c = client(small);
    const base = "/apis/example.com/v1/namespaces/default/widgets";
    const w = { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w1", labels: { a: "b" } },
                spec: { size: 3, template: { metadata: { labels: { x: "y" } } } } };
    assert.equal((await c.api("POST", base, w)).status, 201);
    const bad = await c.api("POST", base, { ...w, metadata: { name: "w2" }, spec: { size: "3", template: { metadata: { name: "n" } } } });
    assert.equal(bad.status, 422);
    assert.deepEqual(bad.body.details.causes.map((x) => x.field), ["spec.size"]);
    const unknown = await c.api("POST", base, { ...w, metadata: { name: "w3" }, spec: { template: { metadata: { name: "n" } } } });
    assert.deepEqual(unknown.body.details.causes.map((x) => x.field), ["spec.template.metadata.name"]);
    const st = await c.api("PUT", `${base}/w1/status`, { ...w, status: { ready: true } });
    assert.equal(st.status, 200);
    assert.deepEqual(st.body.status, { ready: true });
  } finally {
    await small.stop();
  }
});
