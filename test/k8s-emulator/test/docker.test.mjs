// Pods backed by Docker containers (--docker). Skipped where Docker or the
// project's busybox image is missing. Every container is labelled with the
// emulator instance and removed: the test checks that nothing is left.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
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
