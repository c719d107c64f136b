// Offline validation of kubernetes-runtime/ (the server with
// runtime.type = "kubernetes"), like validate.mjs does for the DaemonSet:
//  1. every object against the official schemas, no unknown fields;
//  2. cross references: the kustomization lists every file; the Deployment
//     runs one replica (Recreate) under the ServiceAccount, its selector
//     matches its pod, its volumes and Secret key exist; the Service selects
//     it by a named port; the Role is in the namespace the config names,
//     grants only the verbs the runtime uses and is bound to the
//     ServiceAccount; the config says runtime.type = "kubernetes";
//  3. when the server is built (${OSB_BUILD_DIR:-build}/opensandbox-server),
//     it reads the ConfigMap's config (with a kubeconfig that does not
//     exist, it must stop at the kubeconfig, not at the config).
// Usage: node validate_runtime.mjs   (deploy/k8s/validate.sh runs it)

import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { Deployment } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding }
  from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { record, unread } from "./schema_check.mjs";

const here = path.join(path.dirname(fileURLToPath(import.meta.url)), "kubernetes-runtime");
const repo = path.resolve(here, "../../..");
const kinds = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
  "rbac.authorization.k8s.io/v1/Role": Role,
  "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding,
  "rbac.authorization.k8s.io/v1/ClusterRole": ClusterRole,
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": ClusterRoleBinding,
};

const errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);
const ok = (msg) => console.log(`ok   kubernetes-runtime/${msg}`);
const check = (cond, where, msg) => (cond ? ok(`${where}: ${msg}`) : fail(where, msg));

const kustomization = YAML.parse(fs.readFileSync(path.join(here, "kustomization.yaml"), "utf8"));
const files = fs.readdirSync(here)
  .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
check(JSON.stringify(files) === JSON.stringify([...kustomization.resources].sort()),
      "kustomization.yaml", `lists all ${files.length} manifests`);

const objects = [];
for (const file of files)
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(here, file), "utf8"))) {
    if (doc.errors.length) {
      fail(file, `YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj != null)
      objects.push({ file, obj, where: `${file}: ${obj.kind}/${obj.metadata?.name}` });
  }

for (const { obj, where } of objects) {
  const Kind = kinds[`${obj.apiVersion}/${obj.kind}`];
  if (!Kind) {
    fail(where, `unexpected apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
    continue;
  }
  try {
    new Kind(obj).validate();
    const seen = new Map();
    Kind.prototype.validate.call(record(obj, seen));
    const unknown = unread(obj, seen, "", []);
    check(unknown.length === 0, where,
          unknown.length ? `fields unknown to the schema: ${unknown.join(", ")}`
                         : `matches the ${obj.kind} schema, no unknown fields`);
  } catch (e) {
    fail(where, `schema: ${e.message}`);
  }
}

const find = (kind, name) =>
  objects.find((o) => o.obj.kind === kind && (!name || o.obj.metadata.name === name))?.obj;
const all = (kind) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);

const dep = find("Deployment");
const pod = dep?.spec.template;
const labels = pod?.metadata?.labels ?? {};
const matches = (sel) => Object.keys(sel ?? {}).length > 0
  && Object.entries(sel).every(([k, v]) => labels[k] === v);
check(dep?.spec.replicas === 1 && dep.spec.strategy?.type === "Recreate",
      "Deployment", "one replica, Recreate (two servers never manage the same pods)");
check(matches(dep?.spec.selector.matchLabels), "Deployment", "selector matches its pod");
const sa = find("ServiceAccount", pod?.spec.serviceAccountName);
check(sa && sa.metadata.namespace === dep.metadata.namespace, "Deployment",
      `runs as ServiceAccount ${pod?.spec.serviceAccountName}`);
const [container] = pod?.spec.containers ?? [];
const volumes = new Map((pod?.spec.volumes ?? []).map((v) => [v.name, v]));
for (const m of container?.volumeMounts ?? [])
  check(volumes.has(m.name), "Deployment", `volumeMount ${m.name} has a volume`);
const portNames = new Set((container?.ports ?? []).map((p) => p.name));
const keyRef = container?.env?.find((e) => e.name === "OPENSANDBOX_SERVER_API_KEY")
  ?.valueFrom?.secretKeyRef;
const secret = keyRef && find("Secret", keyRef.name);
check(secret && keyRef.key in (secret.stringData ?? secret.data ?? {}), "Deployment",
      "OPENSANDBOX_SERVER_API_KEY comes from a defined Secret key");
for (const svc of all("Service")) {
  check(matches(svc.spec.selector), `Service/${svc.metadata.name}`, "selects the server's pod");
  for (const p of svc.spec.ports)
    check(portNames.has(p.targetPort), `Service/${svc.metadata.name}`,
          `targetPort ${p.targetPort} is a named container port`);
}

const cmVolume = [...volumes.values()].find((v) => v.configMap);
const cm = cmVolume && find("ConfigMap", cmVolume.configMap.name);
const config = cm?.data?.["config.toml"] ?? "";
const mount = (container?.volumeMounts ?? []).find((m) => m.name === cmVolume?.name);
check(mount?.mountPath === "/etc/opensandbox" && config,
      "Deployment", "mounts config.toml at /etc/opensandbox/config.toml (the image's --config)");
check(/^\[runtime\]\ntype = "kubernetes"$/m.test(config), "ConfigMap", 'runtime.type = "kubernetes"');
check(!/^kubeconfig_path/m.test(config), "ConfigMap",
      "no kubeconfig: the service account reaches the API server in-cluster");
const sandboxNs = config.match(/^namespace = "(.*)"$/m)?.[1];
check(find("Namespace", sandboxNs), "ConfigMap", `kubernetes.namespace ${sandboxNs} is a Namespace here`);

// The verbs the runtime uses (runtimes/kubernetes/kubernetes_runtime.cpp).
const wanted = {
  pods: ["create", "delete", "list", "patch", "watch"],
  "pods/log": ["get"],
  events: ["list"],
  secrets: ["create", "delete"],
};
const role = find("Role");
check(role?.metadata.namespace === sandboxNs, "Role", `lives in the sandboxes' namespace ${sandboxNs}`);
const granted = {};
for (const rule of role?.rules ?? []) {
  check(JSON.stringify(rule.apiGroups) === '[""]', "Role", `rule on ${rule.resources} is core only`);
  for (const r of rule.resources)
    granted[r] = [...(granted[r] ?? []), ...rule.verbs].sort();
}
check(JSON.stringify(Object.fromEntries(Object.entries(granted).sort())) === JSON.stringify(
        Object.fromEntries(Object.entries(wanted).sort())), "Role",
      `grants exactly the verbs in use: ${JSON.stringify(granted)}`);
const bound = (binding, roleKind, roleName) =>
  binding?.roleRef.kind === roleKind && binding.roleRef.name === roleName
  && binding.subjects?.length === 1 && binding.subjects[0].kind === "ServiceAccount"
  && binding.subjects[0].name === sa?.metadata.name
  && binding.subjects[0].namespace === sa?.metadata.namespace;
const rb = find("RoleBinding");
check(bound(rb, "Role", role?.metadata.name) && rb.metadata.namespace === sandboxNs,
      "RoleBinding", "binds the Role to the ServiceAccount only");
const cr = find("ClusterRole");
check(cr?.rules?.length === 1 && JSON.stringify(cr.rules[0].resources) === '["namespaces"]'
        && JSON.stringify(cr.rules[0].verbs) === '["get"]'
        && JSON.stringify(cr.rules[0].resourceNames) === JSON.stringify([sandboxNs]),
      "ClusterRole", `only get on namespace ${sandboxNs} (the start-up check)`);
check(bound(find("ClusterRoleBinding"), "ClusterRole", cr?.metadata.name),
      "ClusterRoleBinding", "binds it to the ServiceAccount only");

const server = path.resolve(repo, process.env.OSB_BUILD_DIR ?? "build", "opensandbox-server");
if (!fs.existsSync(server)) {
  console.log(`skip the config was not read by a server: no ${server}`);
} else {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "osb-k8s-runtime-validate-"));
  try {
    const missing = path.join(tmp, "no-kubeconfig");
    const local = config
      .replace(/^path = ".*"$/m, `path = "${tmp}/store.db"`)
      .replace(/^\[kubernetes\]$/m, `[kubernetes]\nkubeconfig_path = "${missing}"`);
    fs.writeFileSync(path.join(tmp, "config.toml"), local);
    const r = spawnSync(server, ["--config", path.join(tmp, "config.toml")], {
      env: { ...process.env, OPENSANDBOX_SERVER_API_KEY: "validate" },
      encoding: "utf8", timeout: 20000,
    });
    check(r.status === 2 && r.stderr.includes(`kubeconfig ${missing}`),
          "ConfigMap", `the server accepts config.toml (it stops at the missing kubeconfig${
            r.status === 2 ? "" : `; exit ${r.status}: ${(r.stderr ?? "").trim().split("\n").slice(-2).join(" | ")}`})`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (errors.length) {
  for (const e of errors)
    console.error(`FAIL kubernetes-runtime/${e}`);
  console.error(`validate_runtime: ${errors.length} problem(s)`);
  process.exit(1);
}
console.log(`validate_runtime: ${objects.length} objects OK`);
