// Runs a container's `/bin/sh -c <script>` entrypoint (the DaemonSet's and
// the Kubernetes-runtime Deployment's) the way the pod would, with a stub in
// place of the server that keeps the config the script rendered.
// Used by validate.mjs and validate_runtime.mjs.

import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

/// Renders `template` with the container's entrypoint in directory `tmp`,
/// with `sample` as the downward-API and Service values (NODE_NAME, POD_IP,
/// PEER_SERVICE, ...) on top of the container's own `value:` variables.
/// Returns the rendered TOML; throws when the command is not /bin/sh -c.
export function renderConfig(container, template, tmp, sample) {
  const [shell, flag, script] = container.command ?? [];
  if (shell !== "/bin/sh" || flag !== "-c")
    throw new Error("command is not /bin/sh -c <script>");
  const env = Object.fromEntries((container.env ?? [])
    .filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
  const templateFile = path.join(tmp, path.basename(env.CONFIG_TEMPLATE ?? "config.toml.tmpl"));
  fs.writeFileSync(templateFile, template);
  // The script execs the server: stand in a stub that copies the config.
  const stub = path.join(tmp, "server-stub");
  fs.writeFileSync(stub, `#!/bin/sh\ncp "$2" "${tmp}/rendered.toml"\n`, { mode: 0o755 });
  execFileSync("/bin/sh", ["-c", script.replaceAll("/usr/local/bin/opensandbox-server", stub)], {
    env: {
      ...env, PATH: process.env.PATH, PEER_WAIT_SECONDS: "0", ...sample,
      CONFIG_TEMPLATE: templateFile, CONFIG: path.join(tmp, "config.toml"),
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return fs.readFileSync(path.join(tmp, "rendered.toml"), "utf8");
}

/// Starts the built server (${OSB_BUILD_DIR:-build}/opensandbox-server) on a
/// rendered Kubernetes-runtime config, made local: the store and the
/// cluster's certificates (made by deploy/make-cluster-certs.sh for the
/// files under `tlsDir`) in `tmp`, a kubeconfig that does not exist. A config
/// the server accepts stops at that kubeconfig with exit 2. Returns null
/// when the server is not built, else {ok, detail}.
export function serverReadsConfig(repo, rendered, tmp, tlsDir) {
  const server = path.resolve(repo, process.env.OSB_BUILD_DIR ?? "build", "opensandbox-server");
  if (!fs.existsSync(server))
    return null;
  const tls = path.join(tmp, "tls");
  execFileSync(path.join(repo, "deploy/make-cluster-certs.sh"), [tls, "node"],
               { stdio: ["ignore", "ignore", "pipe"] });
  const missing = path.join(tmp, "no-kubeconfig");
  const local = rendered
    .replaceAll(`${tlsDir}/`, `${tls}/`)
    .replace(/^path = ".*"$/m, `path = "${tmp}/store.db"`)
    .replace(/^\[kubernetes\]$/m, `[kubernetes]\nkubeconfig_path = "${missing}"`);
  fs.writeFileSync(path.join(tmp, "local.toml"), local);
  const r = spawnSync(server, ["--config", path.join(tmp, "local.toml")], {
    env: { ...process.env, OPENSANDBOX_SERVER_API_KEY: "validate" }, encoding: "utf8", timeout: 20000,
  });
  const ok = r.status === 2 && r.stderr.includes(`kubeconfig ${missing}`);
  return { ok, detail: ok ? "" : `; exit ${r.status}: ${
    (r.stderr ?? "").trim().split("\n").slice(-2).join(" | ")}` };
}
