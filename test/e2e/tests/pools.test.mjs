// Pools through the official SDK (docs/pools.md): a pool made with the
// seed's pool API, then Sandbox.create with `extensions: {poolRef}` and a
// command; the sandbox runs the pool's template with the claim's env.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { API_KEY, BUSYBOX_IMAGE, DOMAIN, createSandbox, killAll } from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };

async function call(method, path, body) {
  const res = await fetch(`http://${DOMAIN}/v1${path}`, {
    method,
    headers: { "Content-Type": "application/json", "OPEN-SANDBOX-API-KEY": API_KEY },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: await res.text() };
}

describe("pools", () => {
  const sandboxes = [];
  const pool = `e2e-pool-${Date.now()}`;
  after(async () => {
    await killAll(sandboxes);
    await call("DELETE", `/pools/${pool}`);
  });

  test("a create with extensions.poolRef runs the template; commands work", T, async () => {
    const made = await call("POST", "/pools", {
      name: pool,
      template: {
        image: { uri: BUSYBOX_IMAGE },
        entrypoint: ["tail", "-f", "/dev/null"],
        env: { FROM_TEMPLATE: "tmpl" },
        resourceLimits: { cpu: "500m", memory: "256Mi" },
      },
      capacitySpec: { bufferMax: 2, bufferMin: 1, poolMax: 4, poolMin: 0 },
    });
    assert.equal(made.status, 201, made.body);
    const sbx = await createSandbox(sandboxes, {
      image: BUSYBOX_IMAGE,
      env: { FROM_CLAIM: "claim" },
      extensions: { poolRef: pool },
    });
    const run = await sbx.commands.run("echo hi $FROM_TEMPLATE $FROM_CLAIM");
    assert.equal(run.logs.stdout.map((m) => m.text).join("").trim(), "hi tmpl claim");
    const info = await sbx.getInfo();
    assert.equal(info.status.state, "Running");
    assert.match(info.status.message ?? "", new RegExp(`Pool '${pool}'`));
    const unknown = await call("POST", "/sandboxes", { extensions: { poolRef: `${pool}-nope` } });
    assert.equal(unknown.status, 404, unknown.body);
  });
});
