// What the scheduler and the kubelet do to pods, driven by the emulator:
//   Pending -> scheduled (PodScheduled, spec.nodeName)
//           -> sandbox (podIP, hostIP, startTime, Initialized/Ready false)
//           -> init containers run one by one (initContainerStatuses)
//           -> images pulled, containers running: phase Running,
//              ContainersReady and Ready true
//   exits (a knob):  Succeeded/Failed, or a restart (restartCount)
//   delete:          Terminating (deletionTimestamp), containers stop, gone
// with knobs: delays, images that fail to pull (ErrImagePull then
// ImagePullBackOff, retried until the knob is cleared), unschedulable
// pods, containers that ignore SIGTERM (deletion takes the grace period).
// Pods may be backed by real Docker containers (lib/docker.mjs).

import { matchLabels } from "./selectors.mjs";
import { timestamp } from "./objects.mjs";
import { copyOf } from "./store.mjs";

/// The default delays (ms) of each step.
export const defaultDelays = {
  scheduleMs: 50, // created -> scheduled
  startMs: 50, // scheduled -> sandbox and IP
  pullMs: 20, // each image pull
  initMs: 50, // each init container's run
  terminateMs: 100, // SIGTERM -> containers stopped (capped by the grace period)
  backoffMs: 500, // ErrImagePull <-> ImagePullBackOff retries
  restartMs: 100, // container exit -> restarted (restartPolicy)
};

/// "busybox*" style patterns (only * is special).
function globRegExp(pattern) {
  return new RegExp(`^${pattern.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}

export class Lifecycle {
  constructor(emu, { delays = {}, nodeName = "emulator-node", docker = null } = {}) {
    this.emu = emu;
    this.store = emu.store;
    this.delays = { ...defaultDelays, ...delays };
    this.nodeName = nodeName;
    this.hostIP = "10.240.0.10";
    this.docker = docker;
    /// [{pattern, re, reason, message}]
    this.imageFailures = [];
    /// [{selector (text), reqs, message}]
    this.unschedulable = [];
    /// pods that ignore SIGTERM: "ns/name"
    this.ignoreSigterm = new Set();
    /// uid -> {timers: Set, terminating: bool}
    this.state = new Map();
    this.nextIp = 2;
    this.freeIps = [];
    this.waitingForNode = new Set();
    if (docker)
      docker.onExit = (ns, name, code) => this.exit(ns, name, null, code);
  }

  get pods() {
    return this.emu.resource("", "v1", "pods");
  }

  stateOf(uid) {
    let s = this.state.get(uid);
    if (!s) {
      s = { timers: new Set(), terminating: false };
      this.state.set(uid, s);
    }
    return s;
  }

  /// Runs `fn` after `ms`, unless the pod is gone by then; waits while the
  /// API is frozen (the kubelet's writes would hang).
  later(uid, ms, fn) {
    const s = this.stateOf(uid);
    const t = setTimeout(() => {
      s.timers.delete(t);
      if (!this.state.has(uid))
        return;
      if (this.emu.frozen)
        this.emu.whenThawed(() => this.state.has(uid) && fn());
      else
        fn();
    }, ms);
    s.timers.add(t);
  }

  /// The stored pod `uid` (by namespace and name), or null when gone.
  current(ns, name, uid) {
    const pod = this.store.get(this.pods, ns, name);
    return pod && pod.metadata.uid === uid ? pod : null;
  }

  /// Changes a pod's status (and spec.nodeName) as the kubelet or scheduler
  /// would: a new object, a new resourceVersion, a MODIFIED event.
  change(ns, name, uid, mutate) {
    const old = this.current(ns, name, uid);
    if (!old)
      return null;
    const pod = copyOf(old);
    if (mutate(pod) === false)
      return old;
    return this.store.replace(this.pods, old, pod);
  }

  /// True while the kubelet is still stopping a deleted pod.
  owns(r, obj) {
    return r.kind === "Pod" && this.state.get(obj.metadata.uid)?.terminating === true;
  }

  allocateIp() {
    const n = this.freeIps.pop() ?? this.nextIp++;
    return `10.244.${(n >> 8) & 255}.${n & 255}`;
  }

  releaseIp(ip) {
    const m = /^10\.244\.(\d+)\.(\d+)$/.exec(ip ?? "");
    if (m)
      this.freeIps.push(Number(m[1]) * 256 + Number(m[2]));
  }

  imageFailure(image) {
    return this.imageFailures.find((f) => f.re.test(image)) ?? null;
  }

  // ---- the scheduler ------------------------------------------------------------

  onCreate(pod) {
    const { namespace: ns, name, uid } = pod.metadata;
    this.stateOf(uid);
    if (pod.spec.nodeName)
      this.later(uid, this.delays.startMs, () => this.startSandbox(ns, name, uid));
    else
      this.later(uid, this.delays.scheduleMs, () => this.schedule(ns, name, uid));
  }

  schedule(ns, name, uid) {
    const pod = this.current(ns, name, uid);
    if (!pod || pod.metadata.deletionTimestamp)
      return;
    const rule = this.unschedulable.find((u) => matchLabels(u.reqs, pod.metadata.labels));
    if (rule) {
      this.waitingForNode.add(uid);
      const message = rule.message ?? "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.";
      this.change(ns, name, uid, (p) => {
        const cond = p.status.conditions?.find((c) => c.type === "PodScheduled");
        if (cond?.reason === "Unschedulable" && cond.message === message)
          return false;
        p.status.conditions = [{ type: "PodScheduled", status: "False", lastProbeTime: null, lastTransitionTime: timestamp(), reason: "Unschedulable", message }];
      });
      this.emu.recordEvent(pod, "Warning", "FailedScheduling", message, "default-scheduler");
      return;
    }
    this.waitingForNode.delete(uid);
    this.change(ns, name, uid, (p) => {
      p.spec.nodeName = this.nodeName;
      p.status.conditions = [{ type: "PodScheduled", status: "True", lastProbeTime: null, lastTransitionTime: timestamp() }];
    });
    this.emu.recordEvent(pod, "Normal", "Scheduled", `Successfully assigned ${ns}/${name} to ${this.nodeName}`, "default-scheduler");
    this.later(uid, this.delays.startMs, () => this.startSandbox(ns, name, uid));
  }

  /// Schedules the pods waiting for a node (after a knob changed).
  reschedule() {
    for (const uid of [...this.waitingForNode]) {
      const pod = [...this.store.objects(this.pods)].find((p) => p.metadata.uid === uid);
      if (pod)
        this.schedule(pod.metadata.namespace, pod.metadata.name, uid);
      else
        this.waitingForNode.delete(uid);
    }
  }

  // ---- the kubelet --------------------------------------------------------------

  startSandbox(ns, name, uid) {
    const pod = this.current(ns, name, uid);
    if (!pod || pod.metadata.deletionTimestamp)
      return;
    const inits = pod.spec.initContainers ?? [];
    const now = timestamp();
    const ip = this.allocateIp();
    this.stateOf(uid).ip = ip;
    this.change(ns, name, uid, (p) => {
      const st = p.status;
      st.hostIP = this.hostIP;
      st.hostIPs = [{ ip: this.hostIP }];
      st.podIP = ip;
      st.podIPs = [{ ip }];
      st.startTime = now;
      const cond = (type, status, reason) => ({ type, status, lastProbeTime: null, lastTransitionTime: now, ...(reason ? { reason } : {}) });
      st.conditions = [
        cond("PodReadyToStartContainers", "True"),
        cond("Initialized", inits.length ? "False" : "True", inits.length ? "ContainersNotInitialized" : null),
        cond("Ready", "False", "ContainersNotReady"),
        cond("ContainersReady", "False", "ContainersNotReady"),
        ...(st.conditions ?? []).filter((c) => c.type === "PodScheduled"),
      ];
      if (inits.length)
        st.initContainerStatuses = inits.map((c, i) => waiting(c, i === 0 ? "PodInitializing" : "PodInitializing"));
      st.containerStatuses = p.spec.containers.map((c) => waiting(c, inits.length ? "PodInitializing" : "ContainerCreating"));
    });
    this.runInit(ns, name, uid, 0);
  }

  /// Pulls `image` for container `field[index]`; calls `done` once pulled,
  /// or reports ErrImagePull / ImagePullBackOff and retries.
  pull(ns, name, uid, field, index, done, attempt = 0) {
    const pod = this.current(ns, name, uid);
    if (!pod || pod.metadata.deletionTimestamp)
      return;
    const c = pod.spec[field][index];
    const failure = this.imageFailure(c.image) ?? this.docker?.missingImage(c.image);
    if (!failure) {
      this.emu.recordEvent(pod, "Normal", "Pulled", `Container image "${c.image}" already present on machine`, "kubelet", `spec.${field}{${c.name}}`);
      this.later(uid, this.delays.pullMs, done);
      return;
    }
    const reason = attempt % 2 === 0 ? failure.reason ?? "ErrImagePull" : "ImagePullBackOff";
    const message = attempt % 2 === 0
      ? failure.message ?? `rpc error: code = NotFound desc = failed to pull and unpack image "${c.image}": not found`
      : `Back-off pulling image "${c.image}"`;
    const statusField = field === "initContainers" ? "initContainerStatuses" : "containerStatuses";
    this.change(ns, name, uid, (p) => {
      p.status[statusField][index] = { ...waiting(c, reason), state: { waiting: { reason, message } } };
    });
    this.emu.recordEvent(pod, "Warning", attempt % 2 === 0 ? "Failed" : "BackOff", message, "kubelet", `spec.${field}{${c.name}}`);
    this.later(uid, this.delays.backoffMs, () => this.pull(ns, name, uid, field, index, done, attempt + 1));
  }

  runInit(ns, name, uid, i) {
    const pod = this.current(ns, name, uid);
    if (!pod)
      return;
    const inits = pod.spec.initContainers ?? [];
    if (i >= inits.length) {
      this.startContainers(ns, name, uid);
      return;
    }
    this.pull(ns, name, uid, "initContainers", i, () => {
      const started = timestamp();
      this.change(ns, name, uid, (p) => {
        p.status.initContainerStatuses[i] = { ...base(inits[i]), ready: false, started: true, state: { running: { startedAt: started } } };
      });
      if (this.docker) {
        this.runInitInDocker(ns, name, uid, i, started);
        return;
      }
      this.later(uid, this.delays.initMs, () => {
        const last = i === inits.length - 1;
        this.change(ns, name, uid, (p) => {
          p.status.initContainerStatuses[i] = {
            ...base(inits[i]), ready: true, started: false,
            state: { terminated: { exitCode: 0, reason: "Completed", startedAt: started, finishedAt: timestamp() } },
          };
          if (last)
            setCondition(p, "Initialized", "True");
        });
        this.runInit(ns, name, uid, i + 1);
      });
    });
  }

  /// Runs init container `i` as a Docker container (lib/docker.mjs): its
  /// exit code is the init container's; a failure ends the pod's start (as
  /// the kubelet: Failed under restartPolicy Never, else it stays Pending,
  /// kubectl's "Init:Error"; the emulator does not retry).
  async runInitInDocker(ns, name, uid, i, started) {
    const pod = this.current(ns, name, uid);
    if (!pod || pod.metadata.deletionTimestamp)
      return;
    const c = pod.spec.initContainers[i];
    let result;
    try {
      result = await this.docker.runInit(pod, i);
    } catch (e) {
      this.change(ns, name, uid, (p) => {
        p.status.initContainerStatuses[i] = { ...waiting(c, "CreateContainerConfigError"), state: { waiting: { reason: "CreateContainerConfigError", message: e.message } } };
      });
      return;
    }
    if (!this.state.has(uid))
      return;
    const { exitCode, message } = result;
    const last = i === pod.spec.initContainers.length - 1;
    this.change(ns, name, uid, (p) => {
      const terminated = { exitCode, reason: exitCode === 0 ? "Completed" : "Error", startedAt: started, finishedAt: timestamp(), ...(message ? { message } : {}) };
      p.status.initContainerStatuses[i] = { ...base(c), ready: exitCode === 0, started: false, state: { terminated } };
      if (exitCode === 0 && last)
        setCondition(p, "Initialized", "True");
      if (exitCode !== 0 && p.spec.restartPolicy === "Never")
        p.status.phase = "Failed";
    });
    if (exitCode === 0)
      this.runInit(ns, name, uid, i + 1);
    else
      this.emu.recordEvent(pod, "Warning", "Failed", `Init container ${c.name} exited with code ${exitCode}`, "kubelet", `spec.initContainers{${c.name}}`);
  }

  /// In --docker mode, marks each container with a tcpSocket readinessProbe
  /// ready once its port accepts connections (the pod is Ready when all
  /// are).
  probe(ns, name, uid, ip) {
    const pod = this.current(ns, name, uid);
    const rec = this.docker.podOf(uid);
    if (!pod || !rec)
      return;
    pod.spec.containers.forEach((c, i) => {
      if (typeof c.readinessProbe?.tcpSocket?.port !== "number")
        return;
      this.docker.ready(c, ip, rec).then((ok) => {
        if (!ok || !this.state.has(uid))
          return;
        this.change(ns, name, uid, (p) => {
          const st = p.status.containerStatuses[i];
          if (!st?.state?.running || st.ready)
            return false;
          st.ready = true;
          if (p.status.containerStatuses.every((s) => s.ready)) {
            setCondition(p, "ContainersReady", "True");
            setCondition(p, "Ready", "True");
          }
        });
      });
    });
  }

  startContainers(ns, name, uid) {
    const pod = this.current(ns, name, uid);
    if (!pod)
      return;
    const containers = pod.spec.containers;
    let pending = containers.length;
    containers.forEach((c, i) => this.pull(ns, name, uid, "containers", i, async () => {
      if (--pending > 0)
        return;
      let ip = null;
      if (this.docker) {
        try {
          ip = await this.docker.run(this.current(ns, name, uid));
        } catch (e) {
          this.change(ns, name, uid, (p) => {
            p.status.containerStatuses[0] = { ...waiting(containers[0], "CreateContainerError"), state: { waiting: { reason: "CreateContainerError", message: e.message } } };
          });
          return;
        }
      }
      const started = timestamp();
      this.change(ns, name, uid, (p) => {
        if (ip) {
          p.status.podIP = ip;
          p.status.podIPs = [{ ip }];
        }
        p.status.phase = "Running";
        // Real containers with a probe are ready when it succeeds.
        const probed = (k) => ip !== null && typeof k.readinessProbe?.tcpSocket?.port === "number";
        p.status.containerStatuses = p.spec.containers.map((k) => ({ ...running(k, started), ready: !probed(k) }));
        if (p.status.containerStatuses.every((s) => s.ready)) {
          setCondition(p, "ContainersReady", "True");
          setCondition(p, "Ready", "True");
        }
      });
      if (ip !== null)
        this.probe(ns, name, uid, ip);
      for (const k of containers) {
        this.emu.recordEvent(pod, "Normal", "Created", `Created container ${k.name}`, "kubelet", `spec.containers{${k.name}}`);
        this.emu.recordEvent(pod, "Normal", "Started", `Started container ${k.name}`, "kubelet", `spec.containers{${k.name}}`);
      }
    }));
  }

  /// A container exits with `exitCode` (a knob, or the Docker container
  /// ended). Returns the pod, or null when it is not running.
  exit(ns, name, containerName, exitCode, reason) {
    const pod = this.store.get(this.pods, ns, name);
    if (!pod || pod.status.phase !== "Running")
      return null;
    const uid = pod.metadata.uid;
    const index = containerName ? pod.spec.containers.findIndex((c) => c.name === containerName) : 0;
    if (index < 0)
      return null;
    const c = pod.spec.containers[index];
    const policy = pod.spec.restartPolicy;
    const restart = policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
    const terminated = {
      exitCode, reason: reason ?? (exitCode === 0 ? "Completed" : "Error"),
      startedAt: pod.status.containerStatuses[index].state.running?.startedAt ?? timestamp(),
      finishedAt: timestamp(),
    };
    const out = this.change(ns, name, uid, (p) => {
      const st = p.status.containerStatuses[index];
      p.status.containerStatuses[index] = restart
        ? { ...st, ready: false, started: false, restartCount: st.restartCount + 1, lastState: { terminated }, state: { waiting: { reason: "CrashLoopBackOff", message: `back-off restarting failed container ${c.name}` } } }
        : { ...st, ready: false, started: false, state: { terminated } };
      setCondition(p, "ContainersReady", "False", restart ? "ContainersNotReady" : "PodCompleted");
      setCondition(p, "Ready", "False", restart ? "ContainersNotReady" : "PodCompleted");
      if (!restart && p.status.containerStatuses.every((s) => s.state.terminated)) {
        const failed = p.status.containerStatuses.some((s) => s.state.terminated.exitCode !== 0);
        p.status.phase = failed ? "Failed" : "Succeeded";
      }
    });
    if (restart)
      this.later(uid, this.delays.restartMs, () => this.change(ns, name, uid, (p) => {
        if (index === 0)
          this.docker?.restart(uid);
        const st = p.status.containerStatuses[index];
        p.status.containerStatuses[index] = { ...st, ready: true, started: true, state: { running: { startedAt: timestamp() } } };
        if (p.status.containerStatuses.every((s) => s.ready)) {
          setCondition(p, "ContainersReady", "True");
          setCondition(p, "Ready", "True");
        }
      }));
    return out;
  }

  // ---- deletion -----------------------------------------------------------------

  /// DELETE of a pod with `grace` seconds (undefined: the pod's own).
  delete(pod, grace) {
    const { namespace: ns, name, uid } = pod.metadata;
    let period = grace ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    // The API server deletes at once what no kubelet runs.
    if (!pod.spec.nodeName || ["Succeeded", "Failed"].includes(pod.status.phase))
      period = 0;
    const s = this.stateOf(uid);
    if (pod.metadata.deletionTimestamp) {
      // Only a shorter grace period changes a pending deletion.
      if (period >= (pod.metadata.deletionGracePeriodSeconds ?? 0))
        return pod;
    }
    if (period === 0 && !(pod.metadata.finalizers ?? []).length) {
      this.forget(uid, pod.status.podIP);
      return this.store.remove(this.pods, pod);
    }
    s.terminating = true;
    const out = this.change(ns, name, uid, (p) => {
      p.metadata.deletionTimestamp = timestamp(Date.now() + period * 1000);
      p.metadata.deletionGracePeriodSeconds = period;
    });
    for (const t of s.timers)
      clearTimeout(t);
    s.timers.clear();
    for (const c of pod.spec.containers)
      if (pod.status.containerStatuses?.some((k) => k.name === c.name && k.state?.running))
        this.emu.recordEvent(pod, "Normal", "Killing", `Stopping container ${c.name}`, "kubelet", `spec.containers{${c.name}}`);
    const ignores = this.ignoreSigterm.has(`${ns}/${name}`);
    const ms = ignores ? period * 1000 : Math.min(this.delays.terminateMs, period * 1000);
    this.later(uid, ms, () => this.finishTermination(ns, name, uid, ignores));
    return out;
  }

  finishTermination(ns, name, uid, killed) {
    this.docker?.remove(uid);
    const now = timestamp();
    const pod = this.change(ns, name, uid, (p) => {
      for (const st of p.status.containerStatuses ?? [])
        if (st.state?.running)
          Object.assign(st, { ready: false, started: false, state: { terminated: { exitCode: killed ? 137 : 0, reason: killed ? "Error" : "Completed", startedAt: st.state.running.startedAt, finishedAt: now } } });
      for (const c of p.status.conditions ?? [])
        if (c.type === "Ready" || c.type === "ContainersReady")
          Object.assign(c, { status: "False", reason: "PodCompleted", lastTransitionTime: now });
    });
    const s = this.state.get(uid);
    if (s)
      s.terminating = false;
    if (pod && !(pod.metadata.finalizers ?? []).length) {
      this.forget(uid, pod.status.podIP);
      this.store.remove(this.pods, pod);
    }
  }

  /// Forgets a pod's timers, IP and container.
  forget(uid, ip) {
    const s = this.state.get(uid);
    if (s)
      for (const t of s.timers)
        clearTimeout(t);
    this.state.delete(uid);
    this.waitingForNode.delete(uid);
    if (s?.ip)
      this.releaseIp(s.ip);
    this.docker?.remove(uid);
  }

  /// A pod left the store some other way (namespace deletion, finalizers).
  onRemoved(pod) {
    if (this.state.has(pod.metadata.uid))
      this.forget(pod.metadata.uid, pod.status?.podIP);
  }

  stop() {
    for (const s of this.state.values())
      for (const t of s.timers)
        clearTimeout(t);
    this.state.clear();
  }
}

const base = (c) => ({ name: c.name, image: c.image, imageID: "", restartCount: 0 });

function waiting(c, reason) {
  return { ...base(c), ready: false, started: false, state: { waiting: { reason } }, lastState: {} };
}

function running(c, startedAt) {
  return { ...base(c), imageID: `docker-pullable://${c.image}`, containerID: `containerd://${Buffer.from(c.name + startedAt).toString("hex").padEnd(64, "0").slice(0, 64)}`, ready: true, started: true, state: { running: { startedAt } }, lastState: {} };
}

function setCondition(p, type, status, reason) {
  const now = timestamp();
  const cs = (p.status.conditions ??= []);
  const c = cs.find((x) => x.type === type);
  if (c) {
    if (c.status !== status)
      c.lastTransitionTime = now;
    c.status = status;
    if (reason)
      c.reason = reason;
    else
      delete c.reason;
  } else {
    cs.push({ type, status, lastProbeTime: null, lastTransitionTime: now, ...(reason ? { reason } : {}) });
  }
}

export { globRegExp };
