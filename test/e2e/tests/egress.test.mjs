// Egress policy and the server proxy through the SDK: a sandbox created with
// networkPolicy and useServerProxy (every execd and egress call goes through
// {server}/sandboxes/{id}/proxy/{port}): allowed names resolve and connect,
// denied names do not, an IP literal cannot bypass the deny, and
// getEgressPolicy / patchEgressRules / deleteEgressRules change the policy of
// the running sandbox within a second. Names come from test/e2e/dns-server.mjs
// (*.e2e.test -> the bridge's gateway, OSB_E2E_GATEWAY); no internet needed.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";

import {
  BUSYBOX_IMAGE,
  connectionConfig,
  createSandbox,
  eventually,
  killAll,
  stdoutText,
} from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };
const GATEWAY = process.env.OSB_E2E_GATEWAY ?? "172.17.0.1";

const RESOLVE = `import socket, sys
print(socket.gethostbyname(sys.argv[1]))`;
const FETCH = `import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode().strip())`;

/** Runs a python snippet with arguments in `sbx`; exit code and stdout. */
async function py(sbx, code, ...args) {
  const quoted = [code, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`);
  const r = await sbx.commands.run(`python3 -c ${quoted.join(" ")}`);
  return { exitCode: r.exitCode, out: stdoutText(r).trim() };
}

describe("egress policy through the server proxy", () => {
  const sandboxes = [];
  let web;
  let webPort;
  let sbx;

  before(async () => {
    web = http.createServer((_, res) => res.end("hello-egress\n"));
    await new Promise((resolve) => web.listen(0, "0.0.0.0", resolve));
    webPort = web.address().port;
    sbx = await createSandbox(sandboxes, {
      connectionConfig: connectionConfig({ useServerProxy: true }),
      networkPolicy: {
        defaultAction: "deny",
        egress: [
          { action: "allow", target: "allowed.e2e.test" },
          { action: "allow", target: "*.wild.e2e.test" },
        ],
      },
    });
  });

  after(async () => {
    await killAll(sandboxes);
    web?.close();
  });

  test("execd and egress endpoints are the server's proxy routes", T, async () => {
    for (const port of [44772, 18080]) {
      const ep = await sbx.getEndpoint(port);
      assert.ok(ep.endpoint.endsWith(`/sandboxes/${sbx.id}/proxy/${port}`), ep.endpoint);
    }
  });

  test("commands and files work through the server proxy", T, async () => {
    const r = await sbx.commands.run("for i in 1 2 3; do echo line-$i; done");
    assert.equal(r.exitCode, 0);
    assert.equal(stdoutText(r), "line-1\nline-2\nline-3");
    const data = "x".repeat(300_000);
    await sbx.files.writeFiles([{ path: "/tmp/through-proxy.txt", data }]);
    assert.equal(await sbx.files.readFile("/tmp/through-proxy.txt"), data);
  });

  test("allowed names resolve and connect, denied names do not", T, async () => {
    let r = await py(sbx, RESOLVE, "allowed.e2e.test");
    assert.equal(r.exitCode, 0, r.out);
    assert.equal(r.out, GATEWAY);
    r = await py(sbx, FETCH, `http://allowed.e2e.test:${webPort}/`);
    assert.equal(r.out, "hello-egress");
    r = await py(sbx, RESOLVE, "a.wild.e2e.test");
    assert.equal(r.exitCode, 0, r.out);
    r = await py(sbx, RESOLVE, "denied.e2e.test");
    assert.notEqual(r.exitCode, 0, r.out);
  });

  test("an IP literal cannot bypass the deny policy", T, async () => {
    // A reachable target that no allowed name resolves to: another sandbox.
    const target = await createSandbox(sandboxes, {
      image: BUSYBOX_IMAGE,
      entrypoint: [
        "sh",
        "-c",
        "mkdir -p /www && echo literal-ok > /www/index.html && exec httpd -f -p 8000 -h /www",
      ],
    });
    const ip = stdoutText(await target.commands.run("hostname -i")).trim().split(/\s+/)[0];
    assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
    const url = `http://${ip}:8000/`;
    // It answers from here...
    await eventually(async () => (await fetch(url)).ok, { what: `GET ${url} from the host` });
    // ...but not from the sandbox under the deny policy.
    const r = await py(sbx, FETCH, url);
    assert.notEqual(r.exitCode, 0, r.out);
    assert.ok(!r.out.includes("literal-ok"), r.out);
  });

  test("getEgressPolicy, patchEgressRules and deleteEgressRules take effect within a second", T, async () => {
    const policy = await sbx.getEgressPolicy();
    assert.equal(policy.defaultAction, "deny");
    const targets = (policy.egress ?? []).map((rule) => rule.target);
    assert.ok(targets.includes("allowed.e2e.test"), JSON.stringify(policy));
    assert.ok(targets.includes("*.wild.e2e.test"), JSON.stringify(policy));

    let r = await py(sbx, RESOLVE, "later.e2e.test");
    assert.notEqual(r.exitCode, 0, r.out);
    await sbx.patchEgressRules([{ action: "allow", target: "later.e2e.test" }]);
    await eventually(async () => (await py(sbx, RESOLVE, "later.e2e.test")).exitCode === 0, {
      timeoutMs: 1000,
      intervalMs: 100,
      what: "later.e2e.test resolving after the patch",
    });
    r = await py(sbx, FETCH, `http://later.e2e.test:${webPort}/`);
    assert.equal(r.out, "hello-egress");
    const patched = await sbx.getEgressPolicy();
    assert.ok((patched.egress ?? []).some((rule) => rule.target === "later.e2e.test"), JSON.stringify(patched));

    await sbx.deleteEgressRules(["later.e2e.test"]);
    await eventually(async () => (await py(sbx, RESOLVE, "later.e2e.test")).exitCode !== 0, {
      timeoutMs: 1000,
      intervalMs: 100,
      what: "later.e2e.test refused after the delete",
    });
    // The other rules stay.
    r = await py(sbx, RESOLVE, "allowed.e2e.test");
    assert.equal(r.exitCode, 0, r.out);
  });
});
