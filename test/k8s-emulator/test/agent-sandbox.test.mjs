// The emulator's minimal agent-sandbox controller (--agent-sandbox-controller):
// Sandbox -> pod from its template (owned, named as the Sandbox), Ready from
// the pod, the pod deleted with the Sandbox, at shutdownTime (Delete and
// Retain), and when the pod cannot be made, a ReconcilerError.

import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, test } from "node:test";
import { customResourcesFromFile } from "../lib/resources.mjs";
import { nameHash, nameHashLabel } from "../lib/agent-sandbox.mjs";
import { client, start, waitForPod, watch } from "./helpers.mjs";

// OSB_AGENT_SANDBOX_CRD: the upstream CRD instead of ours (the same tests).
const crd = process.env.OSB_AGENT_SANDBOX_CRD ?? new URL("../crds/agent-sandbox-v1alpha1.yaml", import.meta.url);
const sandboxes = "/apis/agents.x-k8s.io/v1alpha1/namespaces/default/sandboxes";
const pods = "/api/v1/namespaces/default/pods";

let emu;
let api;
before(async () => {
  emu = await start({ customResources: customResourcesFromFile(fs.readFileSync(crd, "utf8")),
                      agentSandboxController: true });
  ({ api } = client(emu));
});
after(() => emu.stop());

function sandbox(name, spec = {}) {
  return {
    apiVersion: "agents.x-k8s.io/v1alpha1", kind: "Sandbox",
    metadata: { name, labels: { app: "x" } },
    spec: {
      podTemplate: {
        metadata: { labels: { app: "x" }, annotations: { note: "kept" } },
        spec: { containers: [{ name: "main", image: "busybox:1.36", command: ["sleep", "3600"] }] },
      },
      ...spec,
    },
  };
}

/// Waits (by watching) until Sandbox `name` satisfies `pred`.
async function waitForSandbox(name, pred, timeoutMs = 5000) {
  const w = watch(emu.url, `${sandboxes}?watch=1&fieldSelector=metadata.name%3D${name}`, { timeoutMs });
  try {
    return (await w.next((e) => pred(e.type, e.object))).object;
  } finally {
    w.close();
  }
}

const ready = (sb) => sb.status?.conditions?.find((c) => c.type === "Ready");

test("the controller needs the Sandbox kind", async () => {
  await assert.rejects(start({ agentSandboxController: true }), /needs the Sandbox kind/);
});

test("a Sandbox gets its pod, owned and labelled, and goes Ready with it", async () => {
  const r = await api("POST", sandboxes, sandbox("sb-run"));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  const pod = await waitForPod(emu, "default", "sb-run", (p) => p.status.phase === "Running");
  assert.equal(pod.metadata.labels.app, "x");
  assert.equal(pod.metadata.labels[nameHashLabel], nameHash("sb-run"));
  assert.equal(pod.metadata.annotations.note, "kept");
  const owner = pod.metadata.ownerReferences[0];
  assert.deepEqual([owner.kind, owner.name, owner.uid, owner.controller],
                   ["Sandbox", "sb-run", r.body.metadata.uid, true]);
  const sb = await waitForSandbox("sb-run", (_, o) => ready(o)?.status === "True");
  assert.equal(ready(sb).reason, "DependenciesReady");
  assert.deepEqual(sb.status.podIPs, [pod.status.podIP]);
  assert.equal(sb.status.replicas, 1);
  assert.equal(sb.status.selector, `${nameHashLabel}=${nameHash("sb-run")}`);
  // Deleting the Sandbox deletes its pod.
  const w = watch(emu.url, `${pods}?watch=1&fieldSelector=metadata.name%3Dsb-run`);
  assert.equal((await api("DELETE", `${sandboxes}/sb-run`)).status, 200);
  await w.next((e) => e.type === "DELETED");
  w.close();
});

test("a pod that ends makes Ready False with its reason", async () => {
  await api("POST", sandboxes, sandbox("sb-exit"));
  await waitForSandbox("sb-exit", (_, o) => ready(o)?.status === "True");
  const { admin } = client(emu);
  // restartPolicy Always: the container restarts, late enough that the
  // controller sees the pod not Ready meanwhile.
  await admin("POST", "/delays", { restartMs: 5000 });
  await admin("POST", "/pods/default/sb-exit/exit", { exitCode: 3 });
  const sb = await waitForSandbox("sb-exit", (_, o) => ready(o)?.status === "False");
  assert.equal(ready(sb).reason, "DependenciesNotReady");
  await admin("POST", "/delays", { restartMs: 10 });
  await api("DELETE", `${sandboxes}/sb-exit`);
});

test("at shutdownTime the pod goes; Delete deletes the Sandbox, Retain keeps it expired", async () => {
  const soon = new Date(Date.now() + 300).toISOString();
  await api("POST", sandboxes, sandbox("sb-del", { shutdownTime: soon, shutdownPolicy: "Delete" }));
  await api("POST", sandboxes, sandbox("sb-ret", { shutdownTime: soon, shutdownPolicy: "Retain" }));
  await waitForSandbox("sb-del", (type) => type === "DELETED");
  const kept = await waitForSandbox("sb-ret", (_, o) => ready(o)?.reason === "SandboxExpired");
  assert.equal(ready(kept).status, "False");
  assert.equal(kept.status.replicas, 0);
  const gone = await api("GET", `${pods}/sb-ret`);
  assert.ok(gone.status === 404 || gone.body.metadata.deletionTimestamp, JSON.stringify(gone.body));
  await api("DELETE", `${sandboxes}/sb-ret`);
});

test("moving shutdownTime later keeps the sandbox", async () => {
  await api("POST", sandboxes, sandbox("sb-renew", { shutdownTime: new Date(Date.now() + 300).toISOString(), shutdownPolicy: "Delete" }));
  const later = new Date(Date.now() + 3600_000).toISOString();
  const r = await api("PATCH", `${sandboxes}/sb-renew`, { spec: { shutdownTime: later } },
                      { contentType: "application/merge-patch+json" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await new Promise((resolve) => setTimeout(resolve, 600));
  assert.equal((await api("GET", `${sandboxes}/sb-renew`)).status, 200);
  assert.equal((await api("GET", `${pods}/sb-renew`)).status, 200);
  await api("DELETE", `${sandboxes}/sb-renew`);
});

test("a template the API server refuses is a ReconcilerError that names it", async () => {
  const bad = sandbox("sb-bad");
  bad.spec.podTemplate.spec.containers[0].image = "";
  await api("POST", sandboxes, bad);
  const sb = await waitForSandbox("sb-bad", (_, o) => ready(o)?.reason === "ReconcilerError");
  assert.match(ready(sb).message, /Pod "sb-bad" is invalid/);
  await api("DELETE", `${sandboxes}/sb-bad`);
});

test("the CRD's schema refuses what it does not allow", async () => {
  const r = await api("POST", sandboxes, sandbox("sb-schema", { replicas: 2, shutdownPolicy: "Keep" }));
  assert.equal(r.status, 422);
  assert.deepEqual(r.body.details.causes.map((c) => c.field).sort(), ["spec.replicas", "spec.shutdownPolicy"]);
});
