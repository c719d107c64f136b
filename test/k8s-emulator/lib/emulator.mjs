// The emulator: resources, store, write path, pod lifecycle, the API and
// admin listeners. `startEmulator(options)` returns a running instance;
// tests use it in-process, emulator.mjs is its command line.

import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Api } from "./api.mjs";
import { Lifecycle } from "./lifecycle.mjs";
import { Objects, timestamp } from "./objects.mjs";
import { builtinResources, customResource } from "./resources.mjs";
import { ApiServer, AdminServer } from "./server.mjs";
import { Store } from "./store.mjs";
import { makePki, writeKubeconfig } from "./tls.mjs";

/// The options and their defaults.
export const defaultOptions = {
  host: "127.0.0.1",
  port: 0, // 0: ephemeral
  adminPort: 0,
  tls: false, // HTTPS with the emulator's own CA
  token: null, // a bearer token the API accepts
  requireAuth: false, // refuse requests with neither the token nor a client certificate
  stateDir: null, // kubeconfig and certificates (default: a temporary directory)
  kubeconfigAuth: "cert", // cert | token | none: what the kubeconfig carries
  historyLimit: 100000, // watch events kept for watches from a resourceVersion
  bookmarkIntervalMs: 1000, // bookmarks on watches that allow them
  watchTimeoutSeconds: 1800, // watches without timeoutSeconds end after this
  fieldValidation: "Strict", // unknown fields: Strict (refused), Warn, Ignore
  events: true, // the scheduler and kubelet write core/v1 Events
  delays: {}, // lib/lifecycle.mjs defaultDelays
  nodeName: "emulator-node",
  version: "v1.30.0",
  customResources: [], // customResource() descriptions
  docker: false, // back pods with Docker containers (lib/docker.mjs)
  agentSandboxController: false, // make pods of agents.x-k8s.io Sandboxes (lib/agent-sandbox.mjs)
};

export class Emulator {
  constructor(options = {}) {
    this.options = { ...defaultOptions, ...options };
    this.store = new Store({ historyLimit: this.options.historyLimit });
    this.resources = [];
    for (const r of builtinResources())
      this.addResource(r);
    for (const d of this.options.customResources)
      this.addResource(customResource(d));
    this.objects = new Objects(this);
    this.api = new Api(this);
    this.frozen = false;
    this.thawWaiters = [];
    this.docker = null;
    this.lifecycle = null;
    let nextService = 10;
    this.allocators = { allocateServiceIP: () => `10.96.${(nextService >> 8) & 255}.${nextService++ & 255}` };
    const nsr = this.resource("", "v1", "namespaces");
    for (const name of ["default", "kube-system", "kube-public", "kube-node-lease"])
      this.objects.create(nsr, null, { metadata: { name } });
  }

  /// Adds a resource (a builtinResources() entry or a customResource()).
  addResource(r) {
    r.key = `${r.group}/${r.version}/${r.plural}`;
    r.returnDeletedObject ??= ["Pod", "Service", "Namespace"].includes(r.kind) || r.custom === true;
    this.resources.push(r);
    return r;
  }

  /// Adds a CRD-like resource at run time (see customResource()).
  addCustomResource(description) {
    return this.addResource(customResource(description));
  }

  resource(group, version, plural) {
    return this.resources.find((r) => r.group === group && r.version === version
      && (r.plural === plural)) ?? null;
  }

  resourcesOf(group, version) {
    return this.resources.filter((r) => r.group === group && r.version === version);
  }

  /// The API groups (without the core group), for /apis.
  groups() {
    const out = [];
    for (const r of this.resources) {
      if (!r.group)
        continue;
      let g = out.find((x) => x.name === r.group);
      if (!g)
        out.push((g = { name: r.group, versions: [] }));
      if (!g.versions.includes(r.version))
        g.versions.push(r.version);
    }
    return out;
  }

  version() {
    const v = this.options.version;
    const [, major, minor] = /^v(\d+)\.(\d+)/.exec(v) ?? [null, "1", "30"];
    return {
      major, minor, gitVersion: v, gitCommit: "k8s-emulator", gitTreeState: "clean",
      buildDate: "2024-01-01T00:00:00Z", goVersion: "node", compiler: "gc",
      platform: `${process.platform}/${process.arch === "x64" ? "amd64" : process.arch}`,
    };
  }

  // ---- freezing -------------------------------------------------------------------

  /// Holds every request, watch event and kubelet write until thaw().
  freeze() {
    this.frozen = true;
  }

  thaw() {
    this.frozen = false;
    const waiters = this.thawWaiters;
    this.thawWaiters = [];
    for (const fn of waiters)
      fn();
  }

  whenThawed(fn) {
    if (this.frozen)
      this.thawWaiters.push(fn);
    else
      fn();
  }

  // ---- hooks of the write path ---------------------------------------------------------

  onCreate(r, obj) {
    if (r.kind === "Pod")
      this.lifecycle?.onCreate(obj);
  }

  onUpdate(r, old, obj) {
    if (r.kind === "Pod" && !this.store.get(r, obj.metadata.namespace, obj.metadata.name))
      this.lifecycle?.onRemoved(obj);
  }

  /// A core/v1 Event about `obj`, as the scheduler or kubelet writes it.
  recordEvent(obj, type, reason, message, component, fieldPath) {
    if (!this.options.events)
      return;
    const ns = obj.metadata.namespace;
    const nsObj = this.store.get(this.resource("", "v1", "namespaces"), null, ns);
    if (!nsObj || nsObj.metadata.deletionTimestamp)
      return;
    const now = timestamp();
    this.store.create(this.resource("", "v1", "events"), {
      kind: "Event", apiVersion: "v1",
      metadata: {
        name: `${obj.metadata.name}.${crypto.randomBytes(8).toString("hex")}`, namespace: ns,
        uid: crypto.randomUUID(), creationTimestamp: now,
      },
      involvedObject: {
        kind: obj.kind, namespace: ns, name: obj.metadata.name, uid: obj.metadata.uid,
        apiVersion: obj.apiVersion, resourceVersion: obj.metadata.resourceVersion,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason, message, source: { component, ...(component === "kubelet" ? { host: this.options.nodeName } : {}) },
      firstTimestamp: now, lastTimestamp: now, count: 1, type, eventTime: null,
      reportingComponent: component, reportingInstance: component === "kubelet" ? this.options.nodeName : "",
    });
  }

  /// DELETE of a namespace: Terminating, its contents deleted, then gone.
  deleteNamespace(ns) {
    const name = ns.metadata.name;
    if (["default", "kube-system", "kube-public"].includes(name))
      throw Object.assign(new Error(`namespace ${name} is protected and may not be deleted`), { code: 403, reason: "Forbidden" });
    if (ns.metadata.deletionTimestamp)
      return ns;
    const nsr = this.resource("", "v1", "namespaces");
    const terminating = this.store.replace(nsr, ns, {
      ...ns,
      metadata: { ...ns.metadata, deletionTimestamp: timestamp(), deletionGracePeriodSeconds: 0 },
      status: { phase: "Terminating" },
    });
    const sweep = () => {
      for (const r of this.resources.filter((x) => x.namespaced)) {
        for (const obj of [...this.store.objects(r, name)]) {
          if (!obj.metadata.deletionTimestamp) {
            if (r.kind === "Pod")
              this.lifecycle.delete(obj);
            else
              this.store.remove(r, obj);
          } else if (r.kind !== "Pod" || !this.lifecycle.owns(r, obj)) {
            // Finalizers do not hold a namespace's deletion here.
            this.store.remove(r, obj);
            if (r.kind === "Pod")
              this.lifecycle.onRemoved(obj);
          }
        }
      }
      let left = 0;
      for (const r of this.resources.filter((x) => x.namespaced))
        for (const _ of this.store.objects(r, name))
          ++left;
      const current = this.store.get(nsr, null, name);
      if (!current || current.metadata.uid !== ns.metadata.uid)
        return;
      if (left === 0)
        this.store.remove(nsr, current);
      else
        setTimeout(() => this.whenThawed(sweep), 20);
    };
    sweep();
    return this.store.get(nsr, null, name) ?? terminating;
  }

  /// Sends a bookmark on every watch that allows them.
  bookmarkAll() {
    let n = 0;
    for (const set of this.store.watches.values())
      for (const w of set)
        if (w.bookmarks) {
          w.bookmark();
          ++n;
        }
    return n;
  }

  /// Ends every open watch stream (as a restarting API server would).
  closeWatches() {
    let n = 0;
    for (const set of this.store.watches.values())
      for (const w of [...set]) {
        w.end();
        ++n;
      }
    return n;
  }

  // ---- listeners ------------------------------------------------------------------

  async start() {
    const o = this.options;
    this.stateDir = o.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "k8s-emulator-"));
    this.ownStateDir = !o.stateDir;
    fs.mkdirSync(this.stateDir, { recursive: true });
    this.pki = o.tls ? makePki(path.join(this.stateDir, "pki")) : null;
    if (o.docker) {
      const { DockerBacking } = await import("./docker.mjs");
      this.docker = new DockerBacking({ instance: crypto.randomBytes(4).toString("hex") });
      await this.docker.init();
    }
    this.lifecycle = new Lifecycle(this, { delays: o.delays, nodeName: o.nodeName, docker: this.docker });
    if (o.agentSandboxController) {
      const { AgentSandboxController } = await import("./agent-sandbox.mjs");
      this.agentSandbox = new AgentSandboxController(this);
    }
    this.apiServer = new ApiServer(this);
    await this.apiServer.listen(o.host, o.port);
    this.adminServer = new AdminServer(this);
    await this.adminServer.listen(o.host, o.adminPort);
    const host = o.host.includes(":") ? `[${o.host}]` : o.host;
    this.url = `${o.tls ? "https" : "http"}://${host}:${this.apiServer.port}`;
    this.adminUrl = `http://${host}:${this.adminServer.port}`;
    const auth = {
      ca: this.pki?.ca,
      ...(o.kubeconfigAuth === "cert" && this.pki ? { clientCert: this.pki.clientCert, clientKey: this.pki.clientKey } : {}),
      ...(o.kubeconfigAuth === "token" || (o.token && !this.pki) ? { token: o.token } : {}),
    };
    if (o.kubeconfigAuth === "token" && !o.token)
      throw new Error("kubeconfigAuth token needs a token");
    this.kubeconfig = writeKubeconfig(path.join(this.stateDir, "kubeconfig"), this.url, auth);
    return this;
  }

  /// What the command line prints as its first line.
  info() {
    return {
      url: this.url, admin: this.adminUrl, kubeconfig: this.kubeconfig, stateDir: this.stateDir,
      ...(this.pki ? { ca: this.pki.ca, clientCert: this.pki.clientCert, clientKey: this.pki.clientKey } : {}),
      ...(this.options.token ? { token: this.options.token } : {}),
      pid: process.pid,
    };
  }

  async stop() {
    this.thaw();
    this.closeWatches();
    this.agentSandbox?.stop();
    this.lifecycle?.stop();
    await this.apiServer?.close();
    await this.adminServer?.close();
    await this.docker?.cleanup();
    if (this.ownStateDir)
      fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

/// Starts an emulator; resolves once both listeners are up.
export async function startEmulator(options = {}) {
  return new Emulator(options).start();
}
