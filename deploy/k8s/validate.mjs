// Offline validation of the manifests in this directory (no cluster needed):
//  1. every object against the official Kubernetes schemas
//     (kubernetes-models: `new Kind(obj).validate()`);
//  2. no unknown fields: the same compiled schema validator runs over a
//     recording proxy, and every key it never looked at is unknown to the
//     schema (a typo such as `hostNetwrok` would be dropped by the API
//     server in silence);
//  3. cross references: kustomization lists every file, namespaces, the
//     DaemonSet selector against its pod labels, Service selectors and
//     target ports, volumes, the ConfigMap and Secret keys in use, the peers
//     Service name the entrypoint resolves, the cluster's TLS: the template
//     names the certificate files of the Secret the kustomization generates
//     from tls/ (what deploy/make-cluster-certs.sh makes) where the
//     DaemonSet mounts it, and never plain TCP;
//  4. the entrypoint: its shell script renders the ConfigMap template (with
//     sample node name, address and a resolvable peers name) and, when the
//     server binary is built (${OSB_BUILD_DIR:-build}/opensandbox-server),
//     the rendered TOML starts a real server (runtime switched to "fake",
//     ports and store made local, certificates made by the script) whose
//     /v1/cluster/nodes names the node.
// Usage: node validate.mjs   (deploy/k8s/validate.sh runs npm ci first)

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { record, unread } from "./schema_check.mjs";
import { renderConfig } from "./entrypoint.mjs";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const kinds = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/DaemonSet": DaemonSet,
};

const errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);
const ok = (msg) => console.log(`ok   ${msg}`);

// ---- load ------------------------------------------------------------------

const kustomization = YAML.parse(
  fs.readFileSync(path.join(here, "kustomization.yaml"), "utf8"));
const files = fs.readdirSync(here)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .sort();
const listed = [...kustomization.resources].sort();
if (JSON.stringify(files) !== JSON.stringify(listed))
  fail("kustomization.yaml", `resources ${listed} != manifests ${files}`);
else ok(`kustomization.yaml lists all ${files.length} manifests`);

const objects = [];
for (const file of files) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(path.join(here, file), "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      fail(file, `YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj == null)
      continue;
    objects.push({ file, obj, where: `${file}: ${obj.kind}/${obj.metadata?.name}` });
  }
}

// ---- 1 + 2: schemas and unknown fields ---------------------------------------

for (const { obj, where } of objects) {
  const Kind = kinds[`${obj.apiVersion}/${obj.kind}`];
  if (!Kind) {
    fail(where, `unexpected apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
    continue;
  }
  try {
    new Kind(obj).validate();
  } catch (e) {
    fail(where, `schema: ${e.message}`);
    continue;
  }
  const seen = new Map();
  try {
    Kind.prototype.validate.call(record(obj, seen));
  } catch (e) {
    fail(where, `schema (recorded run): ${e.message}`);
    continue;
  }
  const unknown = unread(obj, seen, "", []);
  if (unknown.length)
    fail(where, `fields unknown to the ${obj.kind} schema: ${unknown.join(", ")}`);
  else
    ok(`${where} matches the ${obj.apiVersion} ${obj.kind} schema, no unknown fields`);
}

// ---- 3: cross references -----------------------------------------------------

const find = (kind, name) =>
  objects.find((o) => o.obj.kind === kind && (!name || o.obj.metadata.name === name))?.obj;
const all = (kind) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const check = (cond, where, msg) => (cond ? ok(`${where}: ${msg}`) : fail(where, msg));

const ns = find("Namespace");
check(ns, "Namespace", "present");
for (const { obj, where } of objects)
  if (obj.kind !== "Namespace")
    check(obj.metadata.namespace === ns?.metadata.name, where,
          `in namespace ${ns?.metadata.name}`);

const ds = find("DaemonSet");
const pod = ds?.spec.template;
const podLabels = pod?.metadata?.labels ?? {};
const matches = (selector) =>
  Object.entries(selector ?? {}).every(([k, v]) => podLabels[k] === v);
check(ds && matches(ds.spec.selector.matchLabels)
        && !ds.spec.selector.matchExpressions,
      "DaemonSet", "selector matches its pod template labels");
const [container] = pod?.spec.containers ?? [];
const portNames = new Map((container?.ports ?? []).map((p) => [p.name, p]));
check(pod?.spec.hostNetwork === true
        && pod.spec.dnsPolicy === "ClusterFirstWithHostNet",
      "DaemonSet", "hostNetwork with ClusterFirstWithHostNet (cluster DNS for the peers)");
for (const p of container?.ports ?? [])
  check(!pod.spec.hostNetwork || p.hostPort === p.containerPort, "DaemonSet",
        `port ${p.name}: hostPort equals containerPort under hostNetwork`);

for (const svc of all("Service")) {
  const where = `Service/${svc.metadata.name}`;
  check(Object.keys(svc.spec.selector ?? {}).length > 0 && matches(svc.spec.selector),
        where, "selector matches the DaemonSet pods");
  for (const p of svc.spec.ports)
    check(portNames.has(p.targetPort), where,
          `targetPort ${p.targetPort} is a named container port`);
}
const headless = all("Service").find((s) => s.spec.clusterIP === "None");
check(headless?.spec.publishNotReadyAddresses === true, "Service (headless)",
      "lists pods before they are ready (starting nodes find each other)");

const volumes = new Map((pod?.spec.volumes ?? []).map((v) => [v.name, v]));
for (const m of container?.volumeMounts ?? [])
  check(volumes.has(m.name), "DaemonSet", `volumeMount ${m.name} has a volume`);
const byPath = (p) => (container?.volumeMounts ?? []).find((m) => m.mountPath === p);
const sock = volumes.get(byPath("/var/run/docker.sock")?.name);
check(sock?.hostPath?.path === "/var/run/docker.sock", "DaemonSet",
      "mounts the host's /var/run/docker.sock");
const store = volumes.get(byPath("/var/lib/opensandbox")?.name);
check(store?.hostPath, "DaemonSet", "keeps the store on the host (hostPath)");

const env = new Map((container?.env ?? []).map((e) => [e.name, e]));
check(env.get("NODE_NAME")?.valueFrom?.fieldRef?.fieldPath === "spec.nodeName",
      "DaemonSet", "NODE_NAME from the downward API (spec.nodeName)");
check(env.get("POD_IP")?.valueFrom?.fieldRef?.fieldPath === "status.podIP",
      "DaemonSet", "POD_IP from the downward API (status.podIP)");
check(env.get("PEER_SERVICE")?.value
        === `${headless?.metadata.name}.${ns?.metadata.name}.svc.cluster.local`,
      "DaemonSet", "PEER_SERVICE names the headless Service");
const keyRef = env.get("OPENSANDBOX_SERVER_API_KEY")?.valueFrom?.secretKeyRef;
const secret = keyRef && find("Secret", keyRef.name);
check(secret && keyRef.key in (secret.stringData ?? secret.data ?? {}),
      "DaemonSet", "OPENSANDBOX_SERVER_API_KEY comes from a defined Secret key");

const cmVolume = volumes.get(byPath(path.dirname(env.get("CONFIG_TEMPLATE")?.value ?? ""))?.name);
const cm = cmVolume?.configMap && find("ConfigMap", cmVolume.configMap.name);
const templateKey = path.basename(env.get("CONFIG_TEMPLATE")?.value ?? "");
const template = cm?.data?.[templateKey];
check(template, "DaemonSet", `CONFIG_TEMPLATE is key ${templateKey} of ConfigMap ${cm?.metadata.name}`);
const configDir = path.dirname(env.get("CONFIG")?.value ?? "/");
check(volumes.get(byPath(configDir)?.name)?.emptyDir, "DaemonSet",
      `CONFIG is written to a writable emptyDir (${configDir}); the image is read-only`);
for (const marker of ["@NODE_NAME@", "@POD_IP@", "@SEEDS@"])
  check(template?.includes(marker), "ConfigMap", `template has ${marker}`);

// TLS between the nodes: the template's files are keys of the generated
// Secret, mounted where the template looks for them.
const tlsGen = (kustomization.secretGenerator ?? [])
  .find((g) => volumes.get("cluster-tls")?.secret?.secretName === g.name);
check(tlsGen && tlsGen.namespace === ns?.metadata.name
        && kustomization.generatorOptions?.disableNameSuffixHash === true,
      "kustomization.yaml",
      "generates the Secret the DaemonSet mounts (fixed name, our namespace)");
const tlsMount = byPath("/etc/opensandbox/tls");
check(tlsMount?.name === "cluster-tls" && tlsMount.readOnly === true,
      "DaemonSet", "mounts the cluster's TLS Secret read-only at /etc/opensandbox/tls");
const genFiles = new Map((tlsGen?.files ?? []).map((f) => f.split("=")));
for (const key of ["tls_ca_file", "tls_cert_file", "tls_key_file"]) {
  const file = template?.match(new RegExp(`^${key} = "(.*)"$`, "m"))?.[1] ?? "";
  check(path.dirname(file) === tlsMount?.mountPath && genFiles.has(path.basename(file)),
        "ConfigMap", `${key} names key ${path.basename(file)} of the generated Secret`);
}
check(!/^plaintext\s*=\s*true/m.test(template ?? ""), "ConfigMap",
      "the cluster port never speaks plain TCP");

// ---- 4: the entrypoint renders a config the server accepts -------------------

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function checkEntrypoint() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "osb-k8s-validate-"));
  try {
    let rendered;
    try {
      rendered = renderConfig(container, template, tmp, {
        NODE_NAME: "k8s-node-a",
        POD_IP: "10.0.0.11",
        PEER_SERVICE: "localhost", // resolves to 127.0.0.1: one "peer"
      });
    } catch (e) {
      fail("DaemonSet", e.message);
      return;
    }
    check(rendered.includes('node_name = "k8s-node-a"')
            && rendered.includes('listen = "10.0.0.11:7000"')
            && rendered.includes('seeds = ["127.0.0.1:7000"]')
            && !rendered.includes("@"),
          "entrypoint", "renders node_name, listen and seeds into the template");

    const server = path.resolve(repo, process.env.OSB_BUILD_DIR ?? "build", "opensandbox-server");
    if (!fs.existsSync(server)) {
      console.log(`skip the rendered config was not started: no ${server}`);
      return;
    }
    // The certificates the kustomization expects in tls/, made by the
    // script into a temporary directory.
    const tls = path.join(tmp, "tls");
    execFileSync(path.join(repo, "deploy/make-cluster-certs.sh"), [tls, "node"],
                 { stdio: ["ignore", "ignore", "pipe"] });
    check([...genFiles.values()].every((f) => fs.existsSync(path.join(tmp, f))),
          "make-cluster-certs.sh", `makes the files the kustomization reads (${
            [...genFiles.values()].join(", ")})`);
    // The rendered file, made local: fake runtime, free ports, temp store,
    // the certificates just made.
    const http = await freePort();
    const cluster = await freePort();
    const local = rendered
      .replace(/^type = "docker"$/m, 'type = "fake"')
      .replace(/^port = 8080$/m, `port = ${http}`)
      .replace(/^host = "0\.0\.0\.0"$/m, 'host = "127.0.0.1"')
      .replace(/^path = ".*"$/m, `path = "${tmp}/store.db"`)
      .replace(/^listen = ".*"$/m, `listen = "127.0.0.1:${cluster}"`)
      .replace(/^seeds = .*$/m, "seeds = []")
      .replaceAll(`${tlsMount.mountPath}/`, `${tls}/`);
    fs.writeFileSync(path.join(tmp, "local.toml"), local);
    const proc = spawn(server, ["--config", path.join(tmp, "local.toml")], {
      env: { ...process.env, OPENSANDBOX_SERVER_API_KEY: "validate" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let log = "";
    proc.stderr.on("data", (d) => (log += d));
    let exited = null;
    proc.on("exit", (code) => (exited = code));
    try {
      let nodes = null;
      for (let i = 0; i < 100 && exited === null && !nodes; ++i) {
        await new Promise((r) => setTimeout(r, 100));
        try {
          const res = await fetch(`http://127.0.0.1:${http}/v1/cluster/nodes`,
                                  { headers: { "OPEN-SANDBOX-API-KEY": "validate" } });
          if (res.ok)
            nodes = await res.json();
        } catch {
          // not listening yet
        }
      }
      check(nodes?.nodes?.some((n) => n.name === "k8s-node-a" && n.state === "self"),
            "entrypoint", `the server accepts the rendered config and runs as node k8s-node-a${
              nodes ? "" : ` (exit ${exited}; log: ${log.trim().split("\n").slice(-3).join(" | ")})`}`);
    } finally {
      proc.kill("SIGTERM");
      await new Promise((r) => (exited !== null ? r() : proc.on("exit", r)));
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (container && template && env.get("CLUSTER_PORT"))
  await checkEntrypoint();

if (errors.length) {
  for (const e of errors)
    console.error(`FAIL ${e}`);
  console.error(`validate: ${errors.length} problem(s)`);
  process.exit(1);
}
console.log(`validate: ${objects.length} objects OK`);
