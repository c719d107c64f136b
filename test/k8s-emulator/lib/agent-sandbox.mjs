// A minimal kubernetes-sigs/agent-sandbox controller for the emulator
// (--agent-sandbox-controller): each agents.x-k8s.io Sandbox gets one pod
// from its spec.podTemplate, named as the Sandbox, owned by it (controller
// ownerReference) and labelled agents.x-k8s.io/sandbox-name-hash; the
// Sandbox's status (Ready condition, podIPs, replicas, selector) follows
// the pod; the pod is deleted with the Sandbox, when spec.replicas is 0,
// and at spec.shutdownTime (then shutdownPolicy Delete deletes the
// Sandbox, Retain keeps it with Ready=False, reason SandboxExpired). What
// the real controller does beyond this (Services, PVCs from
// volumeClaimTemplates, warm pools, suspension) is not emulated.

import { timestamp } from "./objects.mjs";

export const nameHashLabel = "agents.x-k8s.io/sandbox-name-hash";
const group = "agents.x-k8s.io";
/// setTimeout's limit; later shutdown times are re-armed when it fires.
const maxDelayMs = 2 ** 31 - 1;

/// FNV-1a (32 bits, hex) of a Sandbox's name: the label value of its pod.
export function nameHash(name) {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(name, "utf8")) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

export class AgentSandboxController {
  /// @param emu  the emulator; its resources must include the Sandbox kind
  ///             (--crd with the agent-sandbox CRD)
  constructor(emu) {
    this.emu = emu;
    this.store = emu.store;
    this.podResource = emu.resource("", "v1", "pods");
    this.sandboxResources = emu.resources.filter((r) => r.group === group && r.kind === "Sandbox");
    if (!this.sandboxResources.length)
      throw new Error("--agent-sandbox-controller needs the Sandbox kind of group agents.x-k8s.io (--crd FILE)");
    /// Sandbox uid -> {at, timer}: the wake-up at spec.shutdownTime.
    this.timers = new Map();
    /// Reconciles queued (one per Sandbox at a time).
    this.queued = new Set();
    this.stopped = false;
    this.store.observers.push((ev) => this.onEvent(ev));
  }

  stop() {
    this.stopped = true;
    for (const { timer } of this.timers.values())
      clearTimeout(timer);
    this.timers.clear();
  }

  // ---- events -------------------------------------------------------------------

  onEvent(ev) {
    if (this.stopped)
      return;
    const r = ev.resource;
    if (this.sandboxResources.includes(r)) {
      if (ev.type === "DELETED")
        this.later(() => this.onSandboxDeleted(ev.obj));
      else
        this.queue(r, ev.obj.metadata.namespace, ev.obj.metadata.name);
      return;
    }
    if (r !== this.podResource)
      return;
    const owner = controllerOf(ev.obj);
    if (!owner)
      return;
    const sr = this.sandboxResources.find((x) => `${x.group}/${x.version}` === owner.apiVersion);
    if (sr)
      this.queue(sr, ev.obj.metadata.namespace, owner.name);
  }

  /// Runs `fn` after the current write (a controller is another process),
  /// held while the emulator is frozen.
  later(fn) {
    setImmediate(() => this.emu.whenThawed(() => {
      if (!this.stopped)
        fn();
    }));
  }

  queue(r, ns, name) {
    const key = `${r.key}/${ns}/${name}`;
    if (this.queued.has(key))
      return;
    this.queued.add(key);
    this.later(() => {
      this.queued.delete(key);
      this.reconcile(r, ns, name);
    });
  }

  onSandboxDeleted(sb) {
    this.disarm(sb.metadata.uid);
    this.deleteOwnedPod(sb);
  }

  // ---- reconciling ------------------------------------------------------------------

  reconcile(r, ns, name) {
    const sb = this.store.get(r, ns, name);
    if (!sb || sb.metadata.deletionTimestamp)
      return;
    const spec = sb.spec ?? {};
    const shutdown = spec.shutdownTime ? Date.parse(spec.shutdownTime) : NaN;
    if (Number.isNaN(shutdown))
      this.disarm(sb.metadata.uid);
    else
      this.arm(r, sb, shutdown);
    if (!Number.isNaN(shutdown) && shutdown <= Date.now()) {
      this.deleteOwnedPod(sb);
      if ((spec.shutdownPolicy ?? "Retain") === "Delete") {
        this.disarm(sb.metadata.uid);
        try {
          this.emu.objects.delete(r, ns, name);
        } catch { /* gone meanwhile */ }
        return;
      }
      return this.writeStatus(r, sb, null, ["False", "SandboxExpired", "Sandbox has expired"]);
    }
    let pod = this.store.get(this.podResource, ns, name);
    if (pod && !ownedBy(pod, sb))
      return this.writeStatus(r, sb, null, ["False", "ReconcilerError",
        `Error seen: pod "${name}" is not owned by sandbox "${name}"`]);
    if ((spec.replicas ?? 1) === 0) {
      this.deleteOwnedPod(sb);
      return this.writeStatus(r, sb, null, ["False", "DependenciesNotReady", "Pod does not exist"]);
    }
    if (!pod) {
      try {
        pod = this.emu.objects.create(this.podResource, ns, this.podFor(r, sb)).obj;
      } catch (e) {
        return this.writeStatus(r, sb, null, ["False", "ReconcilerError",
          `Error seen: failed to create pod: ${e.message}`]);
      }
    }
    this.writeStatus(r, sb, pod, readyOf(pod));
  }

  /// The pod of a Sandbox: its template under the Sandbox's name.
  podFor(r, sb) {
    const tmpl = sb.spec.podTemplate ?? {};
    const name = sb.metadata.name;
    return {
      apiVersion: "v1", kind: "Pod",
      metadata: {
        name,
        labels: { ...(tmpl.metadata?.labels ?? {}), [nameHashLabel]: nameHash(name) },
        ...(tmpl.metadata?.annotations ? { annotations: { ...tmpl.metadata.annotations } } : {}),
        ownerReferences: [{
          apiVersion: `${r.group}/${r.version}`, kind: "Sandbox", name, uid: sb.metadata.uid,
          controller: true, blockOwnerDeletion: true,
        }],
      },
      spec: structuredClone(tmpl.spec ?? {}),
    };
  }

  deleteOwnedPod(sb) {
    const pod = this.store.get(this.podResource, sb.metadata.namespace, sb.metadata.name);
    if (!pod || !ownedBy(pod, sb) || pod.metadata.deletionTimestamp)
      return;
    try {
      this.emu.objects.delete(this.podResource, pod.metadata.namespace, pod.metadata.name);
    } catch { /* gone meanwhile */ }
  }

  /// Writes the status through the status subresource (a no-op when it is
  /// unchanged: the update then keeps the resourceVersion).
  writeStatus(r, sb, pod, [status, reason, message]) {
    const old = (sb.status?.conditions ?? []).find((c) => c.type === "Ready");
    const ready = {
      type: "Ready", status, reason, message,
      lastTransitionTime: old && old.status === status ? old.lastTransitionTime : timestamp(),
      observedGeneration: sb.metadata.generation ?? 1,
    };
    const ips = (pod?.status?.podIPs ?? []).map((x) => x.ip).filter(Boolean);
    const next = {
      ...(sb.status ?? {}),
      conditions: [...(sb.status?.conditions ?? []).filter((c) => c.type !== "Ready"), ready],
      replicas: pod ? 1 : 0,
      selector: `${nameHashLabel}=${nameHash(sb.metadata.name)}`,
    };
    if (ips.length)
      next.podIPs = ips;
    else
      delete next.podIPs;
    try {
      // Fields the served version's schema lacks are dropped, not refused.
      this.emu.objects.update(r, sb.metadata.namespace, sb.metadata.name, { ...sb, status: next },
                              { status: true, fieldValidation: "Ignore" });
    } catch { /* changed or gone meanwhile: its event queues another pass */ }
  }

  arm(r, sb, at) {
    const uid = sb.metadata.uid;
    const cur = this.timers.get(uid);
    if (cur?.at === at)
      return;
    if (cur)
      clearTimeout(cur.timer);
    const { namespace, name } = sb.metadata;
    const timer = setTimeout(() => {
      this.timers.delete(uid);
      this.queue(r, namespace, name);
    }, Math.min(Math.max(0, at - Date.now()) + 5, maxDelayMs));
    timer.unref?.();
    this.timers.set(uid, { at, timer });
  }

  disarm(uid) {
    const cur = this.timers.get(uid);
    if (cur) {
      clearTimeout(cur.timer);
      this.timers.delete(uid);
    }
  }
}

/// The controller ownerReference of an object to a Sandbox, if any.
function controllerOf(obj) {
  return (obj.metadata.ownerReferences ?? []).find((o) => o.controller && o.kind === "Sandbox"
    && typeof o.apiVersion === "string" && o.apiVersion.startsWith(`${group}/`)) ?? null;
}

function ownedBy(pod, sb) {
  return (pod.metadata.ownerReferences ?? []).some((o) => o.uid === sb.metadata.uid);
}

/// The Ready condition from the pod, as the real controller computes it.
function readyOf(pod) {
  const phase = pod.status?.phase ?? "";
  if (pod.metadata.deletionTimestamp)
    return ["False", "DependenciesNotReady", `Pod exists with phase: ${phase}`];
  if (phase === "Succeeded")
    return ["False", "PodSucceeded", "Pod completed successfully"];
  if (phase === "Failed")
    return ["False", "PodFailed", "Pod failed"];
  if (phase !== "Running")
    return ["False", "DependenciesNotReady", `Pod exists with phase: ${phase}`];
  const ready = (pod.status?.conditions ?? []).find((c) => c.type === "Ready");
  if (ready?.status !== "True")
    return ["False", "DependenciesNotReady", "Pod is Running but not Ready"];
  if (!(pod.status?.podIPs ?? []).length)
    return ["False", "DependenciesNotReady", "Pod is Ready but has no podIPs yet"];
  return ["True", "DependenciesReady", "Pod is Ready"];
}
