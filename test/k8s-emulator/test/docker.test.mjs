// Pods backed by Docker containers (--docker). Skipped where Docker or the
// project's busybox image is missing. Every container is labelled with the
// emulator instance and removed: the test checks that nothing is left.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { instanceLabel } from "../lib/docker.mjs";
import { client, pod, start, waitForPod, watch } from "./helpers.mjs";

const image = process.env.K8S_EMULATOR_DOCKER_IMAGE ?? "opensandbox/busybox:latest";
let available = true;
try {
  execFileSync("docker", ["image", "inspect", image], { stdio: "ignore" });
} catch {
  available = false;
}

let emu;
let api;
const leftovers = () => execFileSync("docker", ["ps", "-aq", "--filter", `label=${instanceLabel}=${emu.docker.instance}`]).toString().trim();

before(async () => {
  if (!available)
    return;
  emu = await start({ docker: true });
  ({ api } = client(emu));
});
after(async () => {
  if (!emu)
    return;
  await emu.stop();
  assert.equal(leftovers(), "", "the emulator's containers are all removed");
});

const pods = "/api/v1/namespaces/default/pods";

test("a pod runs as a container: its IP is the container's, its exit the container's", { skip: !available && `no ${image}` }, async () => {
  const p = pod("dk-exit", { image, restartPolicy: "Never" });
  p.spec.containers[0].command = ["sh", "-c", "sleep 1; exit 3"];
  const w = watch(emu.url, `${pods}?watch=1&resourceVersion=${emu.store.rv}&fieldSelector=metadata.name%3Ddk-exit`, { timeoutMs: 20000 });
  await api("POST", pods, p);
  const running = (await w.next((e) => e.object.status.phase === "Running")).object;
  const id = execFileSync("docker", ["ps", "-q", "--filter", `label=${instanceLabel}=${emu.docker.instance}`]).toString().trim();
  assert.ok(id, "a container runs");
  const ip = execFileSync("docker", ["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]).toString().trim();
  assert.equal(running.status.podIP, ip);
  const failed = (await w.next((e) => e.object.status.phase === "Failed")).object;
  w.close();
  assert.equal(failed.status.containerStatuses[0].state.terminated.exitCode, 3);
  await api("DELETE", pods + "/dk-exit");
});

test("deleting a pod removes its container; a missing image is ErrImagePull", { skip: !available && `no ${image}` }, async () => {
  const p = pod("dk-sleep", { image });
  p.spec.containers[0].command = ["sleep", "3600"];
  await api("POST", pods, p);
  await waitForPod(emu, "default", "dk-sleep", (x) => x.status.phase === "Running", 20000);
  assert.notEqual(leftovers(), "");
  const w = watch(emu.url, `${pods}?watch=1&fieldSelector=metadata.name%3Ddk-sleep`, { timeoutMs: 20000 });
  await api("DELETE", `${pods}/dk-sleep?gracePeriodSeconds=1`);
  await w.next((e) => e.type === "DELETED");
  w.close();
  await Promise.all([...emu.docker.pending]);
  assert.equal(leftovers(), "");
  await api("POST", pods, pod("dk-missing", { image: "k8s-emulator.invalid/none:1" }));
  const waiting = await waitForPod(emu, "default", "dk-missing", (x) => x.status.containerStatuses?.[0].state.waiting?.reason === "ErrImagePull");
  assert.match(waiting.status.containerStatuses[0].state.waiting.message, /not present locally/);
});

const podContainers = (name) => execFileSync("docker", ["ps", "-aq", "--filter", `label=${instanceLabel}=${emu.docker.instance}`, "--filter", `label=io.opensandbox.k8s-emulator.pod=default/${name}`]).toString().trim();
const volumes = (name) => execFileSync("docker", ["volume", "ls", "-q", "--filter", `label=${instanceLabel}=${emu.docker.instance}`, "--filter", `label=io.opensandbox.k8s-emulator.pod=default/${name}`]).toString().trim();
const inContainer = (id, ...cmd) => {
  try {
    return { code: 0, out: execFileSync("docker", ["exec", id, ...cmd], { stdio: ["ignore", "pipe", "ignore"] }).toString() };
  } catch (e) {
    return { code: e.status, out: "" };
  }
};

test("init containers fill an emptyDir and a hostPath; a second container shares the pod's network; delete removes containers and volumes", { skip: !available && `no ${image}` }, async () => {
  const p = pod("dk-pod", { image, restartPolicy: "Never" });
  const hostDir = fs.mkdtempSync(path.join(os.tmpdir(), "k8s-emu-host-"));
  p.spec.volumes = [{ name: "data", emptyDir: {} }, { name: "host", hostPath: { path: hostDir, type: "DirectoryOrCreate" } }];
  p.spec.initContainers = [
    { name: "fill", image, command: ["sh", "-c", "echo from-init > /data/index.html; echo on-host > /host/f"], volumeMounts: [{ name: "data", mountPath: "/data" }, { name: "host", mountPath: "/host" }] },
    { name: "check", image, command: ["sh", "-c", "grep -q from-init /data/index.html"], volumeMounts: [{ name: "data", mountPath: "/data" }] },
  ];
  p.spec.containers = [
    { name: "web", image, command: ["httpd", "-f", "-p", "8080", "-h", "/data"], volumeMounts: [{ name: "data", mountPath: "/data", readOnly: true }], readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 }, securityContext: { capabilities: { drop: ["NET_RAW"] } } },
    { name: "side", image, command: ["sleep", "3600"], securityContext: { capabilities: { add: ["NET_ADMIN"] }, runAsUser: 1234 } },
  ];
  await api("POST", pods, p);
  const ready = await waitForPod(emu, "default", "dk-pod", (x) => x.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"), 20000);
  assert.deepEqual(ready.status.initContainerStatuses.map((s) => s.state.terminated?.exitCode), [0, 0]);
  assert.equal(ready.status.phase, "Running");
  assert.equal(fs.readFileSync(path.join(hostDir, "f"), "utf8"), "on-host\n", "a hostPath is a bind mount");
  fs.rmSync(hostDir, { recursive: true, force: true });
  const ids = podContainers("dk-pod").split(/\s+/);
  assert.equal(ids.length, 2, "the init containers are gone, the two containers run");
  assert.notEqual(volumes("dk-pod"), "", "the emptyDir is a Docker volume");
  const byName = Object.fromEntries(ids.map((id) => [execFileSync("docker", ["inspect", "-f", "{{.Name}}", id]).toString().trim().split("-").pop(), id]));
  // The pod IP serves what the init container wrote; the second container
  // reaches it on 127.0.0.1 (one network namespace).
  const page = await new Promise((resolve, reject) => {
    fetch(`http://${ready.status.podIP}:8080/index.html`).then((r) => r.text()).then(resolve, reject);
  });
  assert.equal(page.trim(), "from-init");
  const side = inContainer(byName.side, "wget", "-qO-", "http://127.0.0.1:8080/index.html");
  assert.equal(side.out.trim(), "from-init");
  assert.match(execFileSync("docker", ["inspect", "-f", "{{.HostConfig.NetworkMode}}", byName.side]).toString().trim(), new RegExp(`^container:${byName.web}`));
  // readOnly, capabilities and runAsUser reach Docker.
  assert.notEqual(inContainer(byName.web, "touch", "/data/x").code, 0, "a readOnly mount is read-only");
  assert.match(execFileSync("docker", ["inspect", "-f", "{{.HostConfig.CapDrop}}/{{.Config.User}}", byName.web]).toString().trim(), /^\[(CAP_)?NET_RAW\]\/$/);
  assert.match(execFileSync("docker", ["inspect", "-f", "{{.HostConfig.CapAdd}}/{{.Config.User}}", byName.side]).toString().trim(), /^\[(CAP_)?NET_ADMIN\]\/1234$/);
  const w = watch(emu.url, `${pods}?watch=1&fieldSelector=metadata.name%3Ddk-pod`, { timeoutMs: 20000 });
  await api("DELETE", `${pods}/dk-pod?gracePeriodSeconds=1`);
  await w.next((e) => e.type === "DELETED");
  w.close();
  await Promise.all([...emu.docker.pending]);
  assert.equal(podContainers("dk-pod"), "");
  assert.equal(volumes("dk-pod"), "", "the pod's volumes are removed with it");
});

test("a failing init container: its exit code, the pod fails (restartPolicy Never), nothing else runs", { skip: !available && `no ${image}` }, async () => {
  const p = pod("dk-init-fail", { image, restartPolicy: "Never" });
  p.spec.volumes = [{ name: "bin", emptyDir: {} }];
  p.spec.initContainers = [{ name: "copy", image, command: ["sh", "-c", "echo no such file >&2; exit 7"], volumeMounts: [{ name: "bin", mountPath: "/opt/bin" }] }];
  p.spec.containers[0].command = ["sleep", "3600"];
  await api("POST", pods, p);
  const failed = await waitForPod(emu, "default", "dk-init-fail", (x) => x.status.initContainerStatuses?.[0].state.terminated, 20000);
  const t = failed.status.initContainerStatuses[0].state.terminated;
  assert.equal(t.exitCode, 7);
  assert.equal(t.reason, "Error");
  assert.match(t.message, /no such file/);
  assert.equal(failed.status.phase, "Failed");
  assert.equal(failed.status.containerStatuses[0].state.waiting.reason, "PodInitializing");
  assert.equal(podContainers("dk-init-fail"), "", "the failed init container is removed, no container started");
  await api("DELETE", `${pods}/dk-init-fail`);
  await Promise.all([...emu.docker.pending]);
  assert.equal(volumes("dk-init-fail"), "");
});
