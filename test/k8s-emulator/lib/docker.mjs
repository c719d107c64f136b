// Pods backed by real Docker containers (--docker; off by default), run as
// the kubelet runs them, so that a server under test reaches execd inside a
// "pod":
//   volumes          emptyDir: a Docker volume per pod; hostPath: a bind
//                    mount (the node is this host)
//   initContainers   one after the other, each to its end; a non-zero exit
//                    fails the pod's start (lib/lifecycle.mjs)
//   containers       the first on the default bridge (its IP is the pod
//                    IP), the others in its network namespace
//                    (--network container:<first>), as a pod's containers
//                    share one; each with its command/args, literal env,
//                    volumeMounts (readOnly, subPath of hostPath),
//                    securityContext (capabilities add/drop, runAsUser,
//                    runAsGroup, allowPrivilegeEscalation false)
// The first container's exit becomes the pod's container exit. Images are
// never pulled: one not present locally is ErrImagePull.
//
// Every container and volume made is labelled with this emulator instance;
// removal and cleanup touch only what carries that label.

import { execFile, execFileSync } from "node:child_process";
import net from "node:net";

export const instanceLabel = "io.opensandbox.k8s-emulator.instance";
const podLabel = "io.opensandbox.k8s-emulator.pod";

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

/// The last lines of a container's output (stdout and stderr).
function logs(id) {
  return new Promise((resolve) => {
    execFile("docker", ["logs", "--tail", "5", id], (err, stdout, stderr) => resolve(`${stdout}${stderr}`.trim()));
  });
}

/// True once something accepts a TCP connection on ip:port.
function tcpOpen(ip, port, timeoutMs = 500) {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.on("connect", () => done(true));
    s.on("error", () => done(false));
  });
}

export class DockerBacking {
  /// @param instance  a unique id for this emulator's containers
  constructor({ instance }) {
    this.instance = instance;
    /// pod uid -> {ids: [container ids, first is the pod's], volumes:
    /// [names], ns, name, removed}
    this.pods = new Map();
    this.pending = new Set();
    /// (ns, name, exitCode) when a pod's first container ends by itself
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

  record(pod) {
    const { uid, namespace: ns, name } = pod.metadata;
    let rec = this.pods.get(uid);
    if (!rec) {
      rec = { ids: [], volumes: [], mounts: new Map(), ns, name, removed: false };
      this.pods.set(uid, rec);
    }
    return rec;
  }

  labels(rec) {
    return ["--label", `${instanceLabel}=${this.instance}`, "--label", `${podLabel}=${rec.ns}/${rec.name}`];
  }

  dockerName(rec, suffix) {
    return `k8s-emu-${this.instance}-${rec.ns}-${rec.name}`.slice(0, 100) + `-${suffix}`.slice(0, 60);
  }

  /// Makes the pod's volumes (once): a Docker volume per emptyDir.
  async volumes(pod) {
    const rec = this.record(pod);
    if (rec.mounts.size)
      return rec;
    for (const v of pod.spec.volumes ?? []) {
      if (v.emptyDir) {
        const vol = await docker(["volume", "create", ...this.labels(rec), this.dockerName(rec, `vol-${v.name}`)]);
        if (rec.removed) {
          docker(["volume", "rm", "-f", vol]).catch(() => {});
          throw new Error("the pod was deleted");
        }
        rec.volumes.push(vol);
        rec.mounts.set(v.name, { source: vol });
      } else if (v.hostPath) {
        rec.mounts.set(v.name, { source: v.hostPath.path, host: true });
      } else {
        rec.mounts.set(v.name, { unsupported: Object.keys(v).filter((k) => k !== "name").join(",") });
      }
    }
    return rec;
  }

  /// `docker run` arguments of container `c` (before the image).
  containerArgs(rec, c) {
    const args = [...this.labels(rec)];
    for (const e of c.env ?? [])
      if (e.value !== undefined)
        args.push("-e", `${e.name}=${e.value}`);
    if (c.workingDir)
      args.push("-w", c.workingDir);
    for (const m of c.volumeMounts ?? []) {
      const v = rec.mounts.get(m.name);
      if (!v)
        throw new Error(`volumeMount ${m.name}: no such volume in the pod`);
      if (v.unsupported)
        throw new Error(`volume ${m.name}: ${v.unsupported} is not supported by the k8s emulator's --docker mode`);
      if (m.subPath && !v.host)
        throw new Error(`volumeMount ${m.name}: subPath of an emptyDir is not supported by the k8s emulator`);
      const source = m.subPath ? `${v.source.replace(/\/$/, "")}/${m.subPath}` : v.source;
      args.push("-v", `${source}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
    }
    const sc = c.securityContext ?? {};
    for (const cap of sc.capabilities?.add ?? [])
      args.push("--cap-add", cap);
    for (const cap of sc.capabilities?.drop ?? [])
      args.push("--cap-drop", cap);
    if (sc.allowPrivilegeEscalation === false)
      args.push("--security-opt", "no-new-privileges");
    if (sc.runAsUser !== undefined)
      args.push("--user", sc.runAsGroup !== undefined ? `${sc.runAsUser}:${sc.runAsGroup}` : `${sc.runAsUser}`);
    let cmd = c.args ?? [];
    if (c.command?.length) {
      args.push("--entrypoint", c.command[0]);
      cmd = [...c.command.slice(1), ...cmd];
    }
    args.push(c.image, ...cmd);
    return args;
  }

  /// Keeps container `id` of the pod; one made after the pod's removal
  /// began is removed at once (and the run fails).
  track(rec, id) {
    if (!rec.removed) {
      rec.ids.push(id);
      return id;
    }
    const p = docker(["rm", "-f", id]).catch(() => {}).finally(() => this.pending.delete(p));
    this.pending.add(p);
    throw new Error("the pod was deleted");
  }

  /// Runs init container `index` of `pod` to its end; resolves with
  /// {exitCode, message} (the container is removed).
  async runInit(pod, index) {
    const rec = await this.volumes(pod);
    const c = pod.spec.initContainers[index];
    const id = this.track(rec, await docker(["create", "--name", this.dockerName(rec, `init-${c.name}`), ...this.containerArgs(rec, c)]));
    try {
      await docker(["start", id]);
      const exitCode = Number(await docker(["wait", id]));
      // As terminationMessagePolicy FallbackToLogsOnError: the log's end.
      const message = exitCode === 0 ? "" : (await logs(id)).slice(-500);
      return { exitCode, message };
    } finally {
      rec.ids = rec.ids.filter((x) => x !== id);
      await docker(["rm", "-f", id]).catch(() => {});
    }
  }

  /// Runs the pod's containers; resolves with the first one's IP.
  async run(pod) {
    const rec = await this.volumes(pod);
    const [first, ...others] = pod.spec.containers;
    const id = this.track(rec, await docker(["run", "-d", "--name", this.dockerName(rec, first.name), ...this.containerArgs(rec, first)]));
    const ip = await docker(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]);
    for (const c of others) {
      this.track(rec, await docker(["run", "-d", "--name", this.dockerName(rec, c.name), "--network", `container:${id}`, ...this.containerArgs(rec, c)]));
    }
    rec.first = id;
    // The container's end becomes the pod container's exit.
    this.watch(rec);
    return ip;
  }

  /// Resolves true once container `c`'s readinessProbe (tcpSocket only)
  /// succeeds at `ip`, false after `timeoutMs`; true without a probe.
  async ready(c, ip, rec, timeoutMs = 30000) {
    const port = c.readinessProbe?.tcpSocket?.port;
    if (typeof port !== "number")
      return true;
    const until = Date.now() + timeoutMs;
    while (!rec.removed && Date.now() < until) {
      if (await tcpOpen(ip, port))
        return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return false;
  }

  /// The pod `uid`'s record (for readiness), or null.
  podOf(uid) {
    return this.pods.get(uid) ?? null;
  }

  /// Starts the stopped first container of pod `uid` again (restartPolicy).
  restart(uid) {
    const rec = this.pods.get(uid);
    if (!rec || rec.removed || !rec.first)
      return;
    docker(["start", rec.first]).then(() => this.watch(rec), () => {});
  }

  watch(rec) {
    docker(["wait", rec.first]).then((code) => {
      if (!rec.removed)
        this.onExit?.(rec.ns, rec.name, Number(code));
    }, () => {});
  }

  /// Removes the containers and volumes of pod `uid` (in the background).
  remove(uid) {
    const rec = this.pods.get(uid);
    if (!rec || rec.removed)
      return;
    rec.removed = true;
    this.pods.delete(uid);
    const p = (async () => {
      // Containers first: a volume in use cannot be removed. Ones still
      // being made are found by their pod label.
      const labelled = await docker(["ps", "-aq", "--filter", `label=${instanceLabel}=${this.instance}`, "--filter", `label=${podLabel}=${rec.ns}/${rec.name}`]).catch(() => "");
      const ids = [...new Set([...rec.ids, ...labelled.split(/\s+/).filter(Boolean)])];
      if (ids.length)
        await docker(["rm", "-f", ...ids]).catch(() => {});
      if (rec.volumes.length)
        await docker(["volume", "rm", "-f", ...rec.volumes]).catch(() => {});
    })().finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /// Removes every container and volume of this instance (by its label).
  async cleanup() {
    for (const uid of [...this.pods.keys()])
      this.remove(uid);
    await Promise.all([...this.pending]);
    const filter = `label=${instanceLabel}=${this.instance}`;
    const left = await docker(["ps", "-aq", "--filter", filter]).catch(() => "");
    if (left)
      await docker(["rm", "-f", ...left.split(/\s+/)]).catch(() => {});
    const vols = await docker(["volume", "ls", "-q", "--filter", filter]).catch(() => "");
    if (vols)
      await docker(["volume", "rm", "-f", ...vols.split(/\s+/)]).catch(() => {});
  }
}
