// The pod lifecycle the emulator drives, and its knobs: image pull
// failures, unschedulable pods, container exits, graceful deletion.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { client, pod, start, waitForPod, watch } from "./helpers.mjs";

let emu;
let api;
let admin;
before(async () => {
  emu = await start();
  ({ api, admin } = client(emu));
});
after(() => emu.stop());

const pods = "/api/v1/namespaces/default/pods";
const cond = (p, type) => p.status.conditions?.find((c) => c.type === type)?.status;

test("Pending -> scheduled -> Running with an IP, ready conditions, running containers", async () => {
  const rv = emu.store.rv;
  const w = watch(emu.url, `${pods}?watch=1&resourceVersion=${rv}&fieldSelector=metadata.name%3Drun`);
  const created = (await api("POST", pods, pod("run"))).body;
  assert.equal(created.status.phase, "Pending");
  const running = (await w.next((e) => e.object.status.phase === "Running")).object;
  w.close();
  const phases = w.events.map((e) => e.object.status.phase);
  assert.equal(phases[0], "Pending");
  const scheduled = w.events.find((e) => e.object.spec.nodeName);
  assert.equal(cond(scheduled.object, "PodScheduled"), "True");
  assert.equal(running.spec.nodeName, "emulator-node");
  assert.match(running.status.podIP, /^10\.244\.\d+\.\d+$/);
  assert.deepEqual(running.status.podIPs, [{ ip: running.status.podIP }]);
  assert.ok(running.status.hostIP && running.status.startTime);
  for (const t of ["PodScheduled", "Initialized", "ContainersReady", "Ready"])
    assert.equal(cond(running, t), "True", t);
  const cs = running.status.containerStatuses[0];
  assert.equal(cs.name, "main");
  assert.equal(cs.ready, true);
  assert.ok(cs.state.running.startedAt);
  const byRv = w.events.map((e) => Number(e.object.metadata.resourceVersion));
  assert.deepEqual(byRv, [...byRv].sort((a, b) => a - b));
  const events = await api("GET", `/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Drun`);
  const reasons = events.body.items.map((e) => e.reason);
  for (const r of ["Scheduled", "Pulled", "Created", "Started"])
    assert.ok(reasons.includes(r), `${r} in ${reasons}`);
});

test("init containers run one after the other before the containers", async () => {
  const p = pod("inits", { initContainers: [{ name: "i1", image: "busybox:1.36" }, { name: "i2", image: "busybox:1.36" }] });
  const w = watch(emu.url, `${pods}?watch=1&resourceVersion=${emu.store.rv}&fieldSelector=metadata.name%3Dinits`);
  await api("POST", pods, p);
  const running = (await w.next((e) => e.object.status.phase === "Running")).object;
  w.close();
  assert.deepEqual(running.status.initContainerStatuses.map((s) => s.state.terminated?.reason), ["Completed", "Completed"]);
  const seq = w.events.map((e) => (e.object.status.initContainerStatuses ?? []).map((s) => Object.keys(s.state)[0]).join(","));
  assert.ok(seq.includes("running,waiting"), seq.join(" | "));
  assert.ok(seq.includes("terminated,running"), seq.join(" | "));
  const initializing = w.events.find((e) => e.object.status.initContainerStatuses);
  assert.equal(cond(initializing.object, "Initialized"), "False");
  assert.equal(cond(running, "Initialized"), "True");
});

test("an image that fails to pull: ErrImagePull, then ImagePullBackOff, until the knob is cleared", async () => {
  await admin("POST", "/image-failures", { image: "registry.example/broken:*" });
  const w = watch(emu.url, `${pods}?watch=1&resourceVersion=${emu.store.rv}&fieldSelector=metadata.name%3Dpull`);
  await api("POST", pods, pod("pull", { image: "registry.example/broken:1" }));
  const err = (await w.next((e) => e.object.status.containerStatuses?.[0].state.waiting?.reason === "ErrImagePull")).object;
  assert.equal(err.status.phase, "Pending");
  const backoff = (await w.next((e) => e.object.status.containerStatuses?.[0].state.waiting?.reason === "ImagePullBackOff")).object;
  assert.match(backoff.status.containerStatuses[0].state.waiting.message, /Back-off pulling image/);
  const ev = await api("GET", "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dpull,reason%3DFailed");
  assert.ok(ev.body.items.length >= 1);
  await admin("DELETE", "/image-failures");
  await w.next((e) => e.object.status.phase === "Running");
  w.close();
});

test("an unschedulable pod stays Pending with PodScheduled False until the knob is cleared", async () => {
  await admin("POST", "/unschedulable", { labelSelector: "pool=none" });
  const w = watch(emu.url, `${pods}?watch=1&resourceVersion=${emu.store.rv}&fieldSelector=metadata.name%3Dnosched`);
  await api("POST", pods, pod("nosched", { labels: { pool: "none" } }));
  const un = (await w.next((e) => e.object.status.conditions?.length)).object;
  const c = un.status.conditions.find((x) => x.type === "PodScheduled");
  assert.deepEqual([c.status, c.reason], ["False", "Unschedulable"]);
  assert.equal(un.spec.nodeName, undefined);
  await admin("DELETE", "/unschedulable");
  await w.next((e) => e.object.status.phase === "Running");
  w.close();
});

test("a container exit: Succeeded or Failed with restartPolicy Never, a restart with Always", async () => {
  for (const [name, code, phase] of [["ok-exit", 0, "Succeeded"], ["bad-exit", 3, "Failed"]]) {
    await api("POST", pods, pod(name, { restartPolicy: "Never" }));
    await waitForPod(emu, "default", name, (p) => p.status.phase === "Running");
    const r = await admin("POST", `/pods/default/${name}/exit`, { exitCode: code });
    assert.equal(r.phase, phase);
    const p = (await api("GET", `${pods}/${name}`)).body;
    assert.equal(p.status.phase, phase);
    assert.equal(p.status.containerStatuses[0].state.terminated.exitCode, code);
    assert.equal(cond(p, "Ready"), "False");
  }
  await api("POST", pods, pod("restarts"));
  await waitForPod(emu, "default", "restarts", (p) => p.status.phase === "Running");
  await admin("POST", "/pods/default/restarts/exit", { exitCode: 1 });
  const back = await waitForPod(emu, "default", "restarts", (p) => p.status.containerStatuses[0].restartCount === 1 && p.status.containerStatuses[0].ready);
  assert.equal(back.status.containerStatuses[0].lastState.terminated.exitCode, 1);
  assert.equal(back.status.phase, "Running");
});

test("a deleted pod is Terminating (deletionTimestamp) before it is gone", async () => {
  await api("POST", pods, pod("term"));
  await waitForPod(emu, "default", "term", (p) => p.status.phase === "Running");
  const w = watch(emu.url, `${pods}?watch=1&resourceVersion=${emu.store.rv}&fieldSelector=metadata.name%3Dterm`);
  const d = await api("DELETE", `${pods}/term`);
  assert.equal(d.status, 200);
  assert.equal(d.body.kind, "Pod");
  assert.ok(d.body.metadata.deletionTimestamp);
  assert.equal(d.body.metadata.deletionGracePeriodSeconds, 30);
  assert.equal((await api("GET", `${pods}/term`)).status, 200, "still there while terminating");
  const first = await w.next();
  assert.equal(first.type, "MODIFIED");
  assert.ok(first.object.metadata.deletionTimestamp);
  const gone = await w.next((e) => e.type === "DELETED");
  w.close();
  assert.equal(gone.object.metadata.name, "term");
  assert.equal((await api("GET", `${pods}/term`)).status, 404);
});

test("gracePeriodSeconds=0 deletes at once; a pod ignoring SIGTERM takes its grace period", async () => {
  await api("POST", pods, pod("now"));
  await waitForPod(emu, "default", "now", (p) => p.status.phase === "Running");
  const d = await api("DELETE", `${pods}/now?gracePeriodSeconds=0`);
  assert.equal(d.status, 200);
  assert.equal((await api("GET", `${pods}/now`)).status, 404);

  await api("POST", pods, pod("stubborn"));
  await waitForPod(emu, "default", "stubborn", (p) => p.status.phase === "Running");
  await admin("POST", "/pods/default/stubborn/ignore-sigterm");
  const t0 = Date.now();
  await api("DELETE", `${pods}/stubborn`, { gracePeriodSeconds: 1 });
  const w = watch(emu.url, `${pods}?watch=1&fieldSelector=metadata.name%3Dstubborn`);
  const gone = await w.next((e) => e.type === "DELETED");
  w.close();
  assert.ok(Date.now() - t0 >= 950, `took ${Date.now() - t0} ms`);
  const last = w.events.filter((e) => e.type === "MODIFIED").pop()?.object ?? gone.object;
  assert.equal(last.status.containerStatuses[0].state.terminated?.exitCode, 137);
});

test("a pod that was never scheduled is deleted at once", async () => {
  await admin("POST", "/unschedulable", { labelSelector: "" });
  await api("POST", pods, pod("never"));
  const d = await api("DELETE", `${pods}/never`);
  assert.equal(d.status, 200);
  assert.equal((await api("GET", `${pods}/never`)).status, 404);
  await admin("DELETE", "/unschedulable");
});

test("deletecollection with a label selector", async () => {
  await api("POST", pods, pod("dc1", { labels: { batch: "x" } }));
  await api("POST", pods, pod("dc2", { labels: { batch: "x" } }));
  await api("POST", pods, pod("dc3", { labels: { batch: "y" } }));
  const r = await api("DELETE", `${pods}?labelSelector=batch%3Dx&gracePeriodSeconds=0`);
  assert.equal(r.status, 200);
  assert.equal(r.body.kind, "PodList");
  assert.deepEqual(r.body.items.map((i) => i.metadata.name).sort(), ["dc1", "dc2"]);
  const left = await api("GET", `${pods}?labelSelector=batch`);
  assert.deepEqual(left.body.items.map((i) => i.metadata.name), ["dc3"]);
});

test("delays can be changed through the admin API", async () => {
  const d = await admin("POST", "/delays", { scheduleMs: 7 });
  assert.equal(d.delays.scheduleMs, 7);
  const bad = await fetch(`${emu.adminUrl}/_emulator/delays`, { method: "POST", body: JSON.stringify({ nope: 1 }) });
  assert.equal(bad.status, 400);
});

test("a pod with a finalizer stays Terminating until the finalizer goes", async () => {
  await api("POST", pods, { ...pod("held"), metadata: { name: "held", finalizers: ["example.com/hold"] } });
  await waitForPod(emu, "default", "held", (p) => p.status.phase === "Running");
  await api("DELETE", `${pods}/held`, { gracePeriodSeconds: 0 });
  const held = await waitForPod(emu, "default", "held", (p) => p.status.containerStatuses[0].state.terminated);
  assert.ok(held.metadata.deletionTimestamp);
  const w = watch(emu.url, `${pods}?watch=1&fieldSelector=metadata.name%3Dheld`);
  await api("PATCH", `${pods}/held`, { metadata: { finalizers: null } }, { contentType: "application/merge-patch+json" });
  await w.next((e) => e.type === "DELETED");
  w.close();
  assert.equal((await api("GET", `${pods}/held`)).status, 404);
  assert.equal(emu.lifecycle.state.has(held.metadata.uid), false, "the lifecycle forgot it");
});
