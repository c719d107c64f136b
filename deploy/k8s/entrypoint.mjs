// Runs a container's `/bin/sh -c <script>` entrypoint (the DaemonSet's and
// the Kubernetes-runtime Deployment's) the way the pod would, with a stub in
// place of the server that keeps the config the script rendered.
// Used by validate.mjs and validate_runtime.mjs.

import { execFileSync } from "node:child_process";
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
