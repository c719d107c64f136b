// Lifecycle through the SDK: create (ready), connect, isHealthy, getInfo,
// getEndpoint, getMetrics, renew, kill; manual cleanup; the busybox image;
// X-Request-ID passthrough on a server error.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  DEFAULT_EXECD_PORT,
  Sandbox,
  SandboxApiException,
  SandboxManager,
} from "@alibaba-group/opensandbox";

import {
  API_KEY,
  BUSYBOX_IMAGE,
  IMAGE,
  assertEndpointHasPort,
  assertRecentTimestampMs,
  connectionConfig,
  createSandbox,
  eventually,
  killAll,
} from "./helpers.mjs";

const T = { timeout: 5 * 60_000 };

describe("lifecycle (debian)", () => {
  const sandboxes = [];
  let sandbox;

  before(async () => {
    const t0 = Date.now();
    sandbox = await createSandbox(sandboxes, {
      timeoutSeconds: 20 * 60,
      metadata: { tag: "e2e-test" },
    });
    console.log(`Sandbox.create ready in ${Date.now() - t0} ms (${IMAGE})`);
  });
  after(() => killAll(sandboxes));

  test("create returns a ready sandbox: health, info, endpoint", T, async () => {
    assert.equal(typeof sandbox.id, "string");
    assert.ok(sandbox.id.length > 0);
    assert.equal(await sandbox.isHealthy(), true);

    const info = await sandbox.getInfo();
    assert.equal(info.id, sandbox.id);
    assert.equal(info.status.state, "Running");
    assert.deepEqual(info.entrypoint, ["tail", "-f", "/dev/null"]);
    assert.equal(info.metadata?.tag, "e2e-test");
    assert.ok(info.createdAt instanceof Date);
    assert.ok(info.expiresAt instanceof Date);
    const ttl = info.expiresAt.getTime() - info.createdAt.getTime();
    assert.ok(ttl > 19 * 60_000 && ttl < 21 * 60_000, `ttl ${ttl} ms`);

    const ep = await sandbox.getEndpoint(DEFAULT_EXECD_PORT);
    assert.equal(typeof ep.endpoint, "string");
    assertEndpointHasPort(ep.endpoint, DEFAULT_EXECD_PORT);
    const url = await sandbox.getEndpointUrl(DEFAULT_EXECD_PORT);
    assert.equal(url, `http://${ep.endpoint}`);
  });

  test("getMetrics returns real numbers", T, async () => {
    const m = await sandbox.getMetrics();
    assert.ok(m.cpuCount > 0, `cpuCount ${m.cpuCount}`);
    assert.ok(m.cpuUsedPercentage >= 0 && m.cpuUsedPercentage <= 100, `cpu ${m.cpuUsedPercentage}`);
    assert.ok(m.memoryTotalMiB > 0, `memoryTotalMiB ${m.memoryTotalMiB}`);
    assert.ok(m.memoryUsedMiB >= 0, `memoryUsedMiB ${m.memoryUsedMiB}`);
    assert.ok(m.memoryUsedMiB <= m.memoryTotalMiB, `used ${m.memoryUsedMiB} > total ${m.memoryTotalMiB}`);
    assertRecentTimestampMs(m.timestamp, 120_000);
  });

  test("renew moves expiresAt and getInfo agrees", T, async () => {
    const before = (await sandbox.getInfo()).expiresAt;
    const renewed = await sandbox.renew(30 * 60);
    assert.ok(renewed.expiresAt instanceof Date);
    assert.ok(renewed.expiresAt.getTime() > before.getTime(), "renew did not extend");
    const remaining = renewed.expiresAt.getTime() - Date.now();
    assert.ok(remaining > 28 * 60_000 && remaining < 32 * 60_000, `remaining ${remaining} ms`);
    const info = await sandbox.getInfo();
    assert.ok(Math.abs(info.expiresAt.getTime() - renewed.expiresAt.getTime()) < 10_000);
  });

  test("Sandbox.connect reaches the same sandbox", T, async () => {
    const sbx2 = await Sandbox.connect({
      sandboxId: sandbox.id,
      connectionConfig: connectionConfig(),
    });
    try {
      assert.equal(sbx2.id, sandbox.id);
      assert.equal(await sbx2.isHealthy(), true);
      const r = await sbx2.commands.run("echo connect-ok");
      assert.equal(r.error, undefined);
      assert.equal(r.logs.stdout[0]?.text, "connect-ok");
    } finally {
      await sbx2.close();
    }
  });

  test("SandboxManager lists and gets it", T, async () => {
    const manager = SandboxManager.create({ connectionConfig: connectionConfig() });
    try {
      const list = await manager.listSandboxInfos({
        states: ["Running"],
        metadata: { tag: "e2e-test" },
        pageSize: 50,
      });
      assert.ok(list.items.some((s) => s.id === sandbox.id));
      const info = await manager.getSandboxInfo(sandbox.id);
      assert.equal(info.metadata?.tag, "e2e-test");
    } finally {
      await manager.close();
    }
  });

  test("kill removes the sandbox", T, async () => {
    const victim = await createSandbox(sandboxes, { metadata: { tag: "e2e-kill" } });
    assert.equal(await victim.isHealthy(), true);
    await victim.kill();
    await eventually(
      async () => {
        try {
          await victim.getInfo();
          return false;
        } catch (err) {
          assert.ok(err instanceof SandboxApiException, `unexpected ${err}`);
          return err.statusCode === 404;
        }
      },
      { what: "getInfo 404 after kill" },
    );
    await eventually(async () => !(await victim.isHealthy()), { what: "execd gone after kill" });
  });
});

describe("lifecycle (other cases)", () => {
  const sandboxes = [];
  after(() => killAll(sandboxes));

  test("manual cleanup sandbox has expiresAt null", T, async () => {
    const sbx = await createSandbox(sandboxes, {
      timeoutSeconds: null,
      metadata: { tag: "manual-e2e-test" },
    });
    const info = await sbx.getInfo();
    assert.equal(info.expiresAt, null);
    assert.equal(info.metadata?.tag, "manual-e2e-test");
  });

  test(`busybox image (${BUSYBOX_IMAGE}) gets a working execd`, T, async () => {
    const sbx = await createSandbox(sandboxes, { image: BUSYBOX_IMAGE });
    assert.equal(await sbx.isHealthy(), true);
    const r = await sbx.commands.run("echo busybox-ok; ls /bin/busybox");
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.deepEqual(r.logs.stdout.map((m) => m.text), ["busybox-ok", "/bin/busybox"]);
    const fail = await sbx.commands.run("exit 4");
    assert.equal(fail.error?.name, "CommandExecError");
    assert.equal(fail.error?.value, "4");
    assert.equal(fail.exitCode, 4);
    await sbx.files.writeFiles([{ path: "/tmp/bb.txt", data: "busybox file" }]);
    assert.equal(await sbx.files.readFile("/tmp/bb.txt"), "busybox file");
    const m = await sbx.getMetrics();
    assert.ok(m.cpuCount > 0 && m.memoryTotalMiB > 0);
  });

  test("X-Request-ID is passed through on a server error", T, async () => {
    const requestId = `e2e-js-server-${Date.now()}`;
    await assert.rejects(
      Sandbox.connect({
        sandboxId: `missing-${requestId}`,
        connectionConfig: connectionConfig({ headers: { "X-Request-ID": requestId } }),
      }),
      (err) => {
        assert.ok(err instanceof SandboxApiException, `unexpected ${err}`);
        assert.equal(err.requestId, requestId);
        assert.equal(err.statusCode, 404);
        return true;
      },
    );
  });

  test("a wrong API key is rejected", T, async () => {
    await assert.rejects(
      Sandbox.create({
        connectionConfig: connectionConfig({ apiKey: `${API_KEY}-wrong` }),
        image: IMAGE,
      }),
      (err) => err instanceof SandboxApiException && err.statusCode === 401,
    );
  });
});
