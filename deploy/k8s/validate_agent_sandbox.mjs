// Offline validation of kubernetes-runtime-agent-sandbox/ (the overlay with
// kubernetes.workload_provider = "agent-sandbox"):
//  1. its objects against the official schemas, no unknown fields;
//  2. the kustomization builds on ../kubernetes-runtime and lists every
//     file; the Role is in the sandboxes' namespace, grants exactly the
//     agents.x-k8s.io sandboxes verbs the provider uses and is bound to the
//     base's ServiceAccount; the ConfigMap patch is the base's config but for
//     workload_provider and [agent_sandbox];
//  3. when the server is built, it reads that config (it stops at the
//     kubeconfig that does not exist, not at the config).
// Usage: node validate_agent_sandbox.mjs   (deploy/k8s/validate.sh runs it)

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { ConfigMap } from "kubernetes-models/v1";
import { Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import { record, unread } from "./schema_check.mjs";
import { renderConfig, serverReadsConfig } from "./entrypoint.mjs";

const k8s = path.dirname(fileURLToPath(import.meta.url));
const here = path.join(k8s, "kubernetes-runtime-agent-sandbox");
const base = path.join(k8s, "kubernetes-runtime");
const repo = path.resolve(k8s, "../..");
const kinds = { "v1/ConfigMap": ConfigMap, "rbac.authorization.k8s.io/v1/Role": Role,
                "rbac.authorization.k8s.io/v1/RoleBinding": RoleBinding };

const errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);
const ok = (msg) => console.log(`ok   kubernetes-runtime-agent-sandbox/${msg}`);
const check = (cond, where, msg) => (cond ? ok(`${where}: ${msg}`) : fail(where, msg));

const docs = (file) => YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
const kustomization = YAML.parse(fs.readFileSync(path.join(here, "kustomization.yaml"), "utf8"));
const files = fs.readdirSync(here).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort();
const listed = [...kustomization.resources.filter((r) => r.endsWith(".yaml")),
                ...(kustomization.patches ?? []).map((p) => p.path)].sort();
check(kustomization.resources.includes("../kubernetes-runtime"), "kustomization.yaml",
      "builds on ../kubernetes-runtime");
check(JSON.stringify(files) === JSON.stringify(listed), "kustomization.yaml",
      `lists all ${files.length} files (resources and patches)`);

const objects = files.flatMap((f) => docs(path.join(here, f)).map((obj) => ({ obj, where: `${f}: ${obj.kind}/${obj.metadata?.name}` })));
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
    check(unknown.length === 0, where, unknown.length ? `fields unknown to the schema: ${unknown.join(", ")}`
                                                      : `matches the ${obj.kind} schema, no unknown fields`);
  } catch (e) {
    fail(where, `schema: ${e.message}`);
  }
}
const find = (kind) => objects.find((o) => o.obj.kind === kind)?.obj;

const baseObjects = fs.readdirSync(base).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
  .flatMap((f) => docs(path.join(base, f)));
const baseCm = baseObjects.find((o) => o.kind === "ConfigMap");
const sa = baseObjects.find((o) => o.kind === "ServiceAccount");
const cm = find("ConfigMap");
const config = cm?.data?.["config.toml.tmpl"] ?? "";
check(cm?.metadata.name === baseCm?.metadata.name && cm?.metadata.namespace === baseCm?.metadata.namespace,
      "configmap.yaml", `patches the base's ConfigMap ${baseCm?.metadata.name}`);
const expected = (baseCm?.data?.["config.toml.tmpl"] ?? "")
  .replace('workload_provider = "pod"', 'workload_provider = "agent-sandbox"');
const withoutSection = config.replace(/\n\[agent_sandbox\]\n(?:(?!\[).*\n)*/, "\n");
check(/^workload_provider = "agent-sandbox"$/m.test(config) && /^\[agent_sandbox\]$/m.test(config)
        && withoutSection === expected,
      "configmap.yaml", "the base's config but for workload_provider and [agent_sandbox]");
const sandboxNs = config.match(/^namespace = "(.*)"$/m)?.[1];

const role = find("Role");
check(role?.metadata.namespace === sandboxNs, "Role", `lives in the sandboxes' namespace ${sandboxNs}`);
// The verbs the provider uses (runtimes/kubernetes/agent_sandbox_runtime.cpp).
check(JSON.stringify(role?.rules) === JSON.stringify([{ apiGroups: ["agents.x-k8s.io"], resources: ["sandboxes"],
                                                        verbs: ["create", "delete", "list", "patch", "watch"] }]),
      "Role", "grants exactly create, delete, list, patch, watch on agents.x-k8s.io sandboxes");
const rb = find("RoleBinding");
check(rb?.roleRef.kind === "Role" && rb.roleRef.name === role?.metadata.name
        && rb.metadata.namespace === sandboxNs && rb.subjects?.length === 1
        && rb.subjects[0].kind === "ServiceAccount" && rb.subjects[0].name === sa?.metadata.name
        && rb.subjects[0].namespace === sa?.metadata.namespace,
      "RoleBinding", "binds the Role to the base's ServiceAccount only");

const baseContainer = baseObjects.find((o) => o.kind === "Deployment")?.spec.template.spec.containers[0];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "osb-k8s-agent-sandbox-validate-"));
try {
  const rendered = renderConfig(baseContainer, config, tmp, {
    NODE_NAME: "opensandbox-server-7d9f-abcde", POD_IP: "10.0.0.11", PEER_SERVICE: "localhost",
  });
  const read = serverReadsConfig(repo, rendered, tmp, "/etc/opensandbox/tls");
  if (read === null)
    console.log("skip the config was not read by a server: the server is not built");
  else
    check(read.ok, "configmap.yaml",
          `the server accepts its rendered config (it stops at the missing kubeconfig${read.detail})`);
} catch (e) {
  fail("configmap.yaml", e.message);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}

if (errors.length) {
  for (const e of errors)
    console.error(`FAIL kubernetes-runtime-agent-sandbox/${e}`);
  console.error(`validate_agent_sandbox: ${errors.length} problem(s)`);
  process.exit(1);
}
console.log(`validate_agent_sandbox: ${objects.length} objects OK`);
