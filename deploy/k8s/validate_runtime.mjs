// Offline validation of kubernetes-runtime/ (the server with
// runtime.type = "kubernetes"), like validate.mjs does for the DaemonSet:
//  1. every object against the official schemas, no unknown fields;
//  2. cross references: the kustomization lists every file; the Deployment
//     runs several replicas (a rolling update) under the ServiceAccount,
//     each named after its pod, its selector matches its pod, its volumes
//     and Secret key exist; the Services select it by named ports, the
//     headless one lists replicas before they are ready and is the one the
//     entrypoint resolves; the cluster's TLS Secret is generated where the
//     template looks for it; the Role is in the namespace the config names,
//     grants only the verbs the runtime uses (leases included) and is bound
//     to the ServiceAccount; the config says runtime.type = "kubernetes";
//  3. the entrypoint renders the template (entrypoint.mjs) and, when the
//     server is built (${OSB_BUILD_DIR:-build}/opensandbox-server), the
//     server reads the rendered config (with a kubeconfig that does not
//     exist, it must stop at the kubeconfig, not at the config).
// Usage: node validate_runtime.mjs   (deploy/k8s/validate.sh runs it)

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
import { renderConfig, serverReadsConfig } from "./entrypoint.mjs";

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
check(dep?.spec.replicas > 1 && dep.spec.strategy?.type === "RollingUpdate",
      "Deployment", `${dep?.spec.replicas} replicas, rolling update (leases keep one owner per sandbox)`);
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
const headless = all("Service").find((s) => s.spec.clusterIP === "None");
check(headless?.spec.publishNotReadyAddresses === true, "Service (headless)",
      "lists replicas before they are ready (starting replicas find each other)");
const env = new Map((container?.env ?? []).map((e) => [e.name, e]));
check(env.get("NODE_NAME")?.valueFrom?.fieldRef?.fieldPath === "metadata.name",
      "Deployment", "NODE_NAME is the pod's name (one cluster node name per replica)");
check(env.get("POD_IP")?.valueFrom?.fieldRef?.fieldPath === "status.podIP",
      "Deployment", "POD_IP from the downward API (status.podIP)");
check(env.get("PEER_SERVICE")?.value
        === `${headless?.metadata.name}.${headless?.metadata.namespace}.svc.cluster.local`,
      "Deployment", "PEER_SERVICE names the headless Service");

const byPath = (p) => (container?.volumeMounts ?? []).find((m) => m.mountPath === p);
const templatePath = env.get("CONFIG_TEMPLATE")?.value ?? "";
const cmVolume = volumes.get(byPath(path.dirname(templatePath))?.name);
const cm = cmVolume?.configMap && find("ConfigMap", cmVolume.configMap.name);
const config = cm?.data?.[path.basename(templatePath)] ?? "";
check(config, "Deployment", `CONFIG_TEMPLATE is a key of ConfigMap ${cm?.metadata.name}`);
check(volumes.get(byPath(path.dirname(env.get("CONFIG")?.value ?? "/"))?.name)?.emptyDir,
      "Deployment", "CONFIG is written to a writable emptyDir; the image is read-only");
for (const marker of ["@NODE_NAME@", "@POD_IP@", "@SEEDS@"])
  check(config.includes(marker), "ConfigMap", `template has ${marker}`);
const tlsGen = (kustomization.secretGenerator ?? [])
  .find((g) => volumes.get("cluster-tls")?.secret?.secretName === g.name);
check(tlsGen && tlsGen.namespace === dep?.metadata.namespace
        && kustomization.generatorOptions?.disableNameSuffixHash === true,
      "kustomization.yaml", "generates the TLS Secret the Deployment mounts (fixed name)");
const tlsMount = byPath("/etc/opensandbox/tls");
check(tlsMount?.name === "cluster-tls" && tlsMount.readOnly === true,
      "Deployment", "mounts the cluster's TLS Secret read-only at /etc/opensandbox/tls");
const genFiles = new Map((tlsGen?.files ?? []).map((f) => f.split("=")));
for (const key of ["tls_ca_file", "tls_cert_file", "tls_key_file"]) {
  const file = config.match(new RegExp(`^${key} = "(.*)"$`, "m"))?.[1] ?? "";
  check(path.dirname(file) === tlsMount?.mountPath && genFiles.has(path.basename(file)),
        "ConfigMap", `${key} names key ${path.basename(file)} of the generated Secret`);
}
check(!/^plaintext\s*=\s*true/m.test(config), "ConfigMap", "the cluster port never speaks plain TCP");
check(/^\[runtime\]\ntype = "kubernetes"$/m.test(config), "ConfigMap", 'runtime.type = "kubernetes"');
check(!/^kubeconfig_path/m.test(config), "ConfigMap",
      "no kubeconfig: the service account reaches the API server in-cluster");
const sandboxNs = config.match(/^namespace = "(.*)"$/m)?.[1];
check(find("Namespace", sandboxNs), "ConfigMap", `kubernetes.namespace ${sandboxNs} is a Namespace here`);

// The verbs the runtime uses (runtimes/kubernetes/kubernetes_runtime.cpp).
const wanted = {
  pods: ["create", "delete", "get", "list", "patch", "watch"],
  "pods/log": ["get"],
  events: ["list"],
  secrets: ["create", "delete"],
  leases: ["create", "delete", "list", "update", "watch"],
};
const role = find("Role");
check(role?.metadata.namespace === sandboxNs, "Role", `lives in the sandboxes' namespace ${sandboxNs}`);
const granted = {};
for (const rule of role?.rules ?? []) {
  const group = rule.resources.includes("leases") ? "coordination.k8s.io" : "";
  check(JSON.stringify(rule.apiGroups) === JSON.stringify([group]), "Role",
        `rule on ${rule.resources} is in API group '${group}' only`);
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

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "osb-k8s-runtime-validate-"));
try {
  const rendered = renderConfig(container, config, tmp, {
    NODE_NAME: "opensandbox-server-7d9f-abcde", POD_IP: "10.0.0.11", PEER_SERVICE: "localhost",
  });
  check(rendered.includes('node_name = "opensandbox-server-7d9f-abcde"')
          && rendered.includes('seeds = ["127.0.0.1:7000"]') && !rendered.includes("@"),
        "entrypoint", "renders node_name, listen and seeds into the template");
  const read = serverReadsConfig(repo, rendered, tmp, tlsMount?.mountPath);
  if (read === null)
    console.log("skip the config was not read by a server: the server is not built");
  else
    check(read.ok, "ConfigMap",
          `the server accepts the rendered config (it stops at the missing kubeconfig${read.detail})`);
} catch (e) {
  fail("entrypoint", e.message);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

if (errors.length) {
  for (const e of errors)
    console.error(`FAIL kubernetes-runtime/${e}`);
  console.error(`validate_runtime: ${errors.length} problem(s)`);
  process.exit(1);
}
console.log(`validate_runtime: ${objects.length} objects OK`);
