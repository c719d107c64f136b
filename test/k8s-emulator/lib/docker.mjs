// Pods backed by real Docker containers (--docker; off by default): the
// first container of a pod runs as a Docker container on the default
// bridge (its image, command/args, literal env), the pod IP is the
// container's IP, so that a server under test reaches execd inside a
// "pod". The container's exit becomes the pod's container exit. Images are
// never pulled: one not present locally is ErrImagePull.
//
// Every container made is labelled with this emulator instance; removal
// and cleanup touch only containers carrying that label.

import { execFile, execFileSync } from "node:child_process";

export const instanceLabel = "io.opensandbox.k8s-emulator.instance";

function docker(args) {
  return new Promise((resolve, reject) => {
    execFile("docker", args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err)
        reject(new Error(`docker ${args[0]}: ${stderr.trim() || err.message}`));
      else
        resolve(stdout.trim());
    });
  });
}

export class DockerBacking {
  /// @param instance  a unique id for this emulator's containers
  constructor({ instance }) {
    this.instance = instance;
    /// pod uid -> {id, ns, name, removed}
    this.containers = new Map();
    this.pending = new Set();
    /// (ns, name, exitCode) when a container ends by itself
    this.onExit = null;
  }

  async init() {
    await docker(["version", "--format", "{{.Server.APIVersion}}"]);
  }

  /// ErrImagePull details when `image` is not present locally, else null.
  missingImage(image) {
    try {
      execFileSync("docker", ["image", "inspect", image], { stdio: "ignore" });
      return null;
    } catch {
      return {
        reason: "ErrImagePull",
        message: `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": the k8s emulator pulls nothing and the image is not present locally`,
      };
    }
  }

  /// Runs the pod's first container; resolves with its IP.
  async run(pod) {
    const { uid, namespace: ns, name } = pod.metadata;
    const c = pod.spec.containers[0];
    const args = ["run", "-d", "--label", `${instanceLabel}=${this.instance}`,
                  "--label", `io.opensandbox.k8s-emulator.pod=${ns}/${name}`,
                  "--name", `k8s-emu-${this.instance}-${ns}-${name}`.slice(0, 120)];
    for (const e of c.env ?? [])
      if (e.value !== undefined)
        args.push("-e", `${e.name}=${e.value}`);
    if (c.workingDir)
      args.push("-w", c.workingDir);
    let cmd = c.args ?? [];
    if (c.command?.length) {
      args.push("--entrypoint", c.command[0]);
      cmd = [...c.command.slice(1), ...cmd];
    }
    args.push(c.image, ...cmd);
    const id = await docker(args);
    const rec = { id, ns, name, removed: false };
    this.containers.set(uid, rec);
    const ip = await docker(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]);
    // The container's end becomes the pod container's exit.
    this.watch(rec);
    return ip;
  }

  /// Starts the stopped container of pod `uid` again (restartPolicy).
  restart(uid) {
    const rec = this.containers.get(uid);
    if (!rec || rec.removed)
      return;
    docker(["start", rec.id]).then(() => this.watch(rec), () => {});
  }

  watch(rec) {
    docker(["wait", rec.id]).then((code) => {
      if (!rec.removed)
        this.onExit?.(rec.ns, rec.name, Number(code));
    }, () => {});
  }

  /// Removes the container of pod `uid` (in the background).
  remove(uid) {
    const rec = this.containers.get(uid);
    if (!rec || rec.removed)
      return;
    rec.removed = true;
    this.containers.delete(uid);
    const p = docker(["rm", "-f", rec.id]).catch(() => {}).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /// Removes every container of this instance (by its label).
  async cleanup() {
    for (const uid of [...this.containers.keys()])
      this.remove(uid);
    await Promise.all([...this.pending]);
    const left = await docker(["ps", "-aq", "--filter", `label=${instanceLabel}=${this.instance}`]).catch(() => "");
    if (left)
      await docker(["rm", "-f", ...left.split(/\s+/)]).catch(() => {});
  }
}
