// Access to a sandbox through the official SDK (docs/security.md): execd
// requires the sandbox's own token, which the SDK gets in the endpoint's
// headers and sends unchanged; getSignedEndpoint(port, expires) returns a
// URL of the server proxy that works without any header until it expires.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { BUSYBOX_IMAGE, createSandbox, killAll } from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };
const EXECD_PORT = 44772;

async function post(url, body, headers = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  return { status: res.status, body: await res.text() };
}

describe("sandbox access", () => {
  const sandboxes = [];
  after(() => killAll(sandboxes));

  test("execd needs the sandbox's token; the SDK sends it", T, async () => {
    const a = await createSandbox(sandboxes, { image: BUSYBOX_IMAGE, metadata: { tag: "e2e-access-a" } });
    const b = await createSandbox(sandboxes, { image: BUSYBOX_IMAGE, metadata: { tag: "e2e-access-b" } });
    // The SDK itself works unchanged (it sends the endpoint's headers).
    const run = await a.commands.run("echo via-sdk");
    assert.equal(run.logs.stdout.map((m) => m.text).join("").trim(), "via-sdk");

    const epA = await a.getEndpoint(EXECD_PORT);
    const epB = await b.getEndpoint(EXECD_PORT);
    const tokenA = epA.headers?.["X-EXECD-ACCESS-TOKEN"];
    assert.ok(tokenA, JSON.stringify(epA));
    assert.notEqual(tokenA, epB.headers?.["X-EXECD-ACCESS-TOKEN"]);
    const url = await a.getEndpointUrl(EXECD_PORT);
    const cmd = { command: "echo raw-ok" };
    assert.equal((await post(`${url}/command`, cmd)).status, 401);
    assert.equal((await post(`${url}/command`, cmd, epB.headers)).status, 401);
    const ok = await post(`${url}/command`, cmd, epA.headers);
    assert.equal(ok.status, 200);
    assert.ok(ok.body.includes("raw-ok"), ok.body);
  });

  test("getSignedEndpoint: a proxy URL that needs no header until it expires", T, async () => {
    const sbx = await createSandbox(sandboxes, { image: BUSYBOX_IMAGE, metadata: { tag: "e2e-access-signed" } });
    const now = Math.floor(Date.now() / 1000);
    const ep = await sbx.getSignedEndpoint(EXECD_PORT, now + 300);
    assert.match(ep.endpoint, new RegExp(`/signed/${sbx.id}-${EXECD_PORT}-[0-9a-z]+-[0-9a-f]{8}[0-9a-z]$`));
    const ok = await post(`http://${ep.endpoint}/command`, { command: "echo signed-ok" });
    assert.equal(ok.status, 200, ok.body);
    assert.ok(ok.body.includes("signed-ok"), ok.body);

    // Two seconds ahead, taken now: a second boundary before the server's
    // check must not make it "in the past" already.
    const t0 = Math.floor(Date.now() / 1000);
    const soon = await sbx.getSignedEndpoint(EXECD_PORT, t0 + 2);
    await new Promise((r) => setTimeout(r, (t0 + 4) * 1000 - Date.now()));
    const late = await post(`http://${soon.endpoint}/command`, { command: "echo late" });
    assert.equal(late.status, 401);
    assert.ok(late.body.includes("expired"), late.body);
  });
});
