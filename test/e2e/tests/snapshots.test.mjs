// Snapshots through the SDK: SandboxManager.createSnapshot / getSnapshot /
// listSnapshots / deleteSnapshot, and Sandbox.create({ snapshotId }) with the
// files of the source at snapshot time.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { SandboxApiException, SandboxManager } from "@alibaba-group/opensandbox";

import { connectionConfig, createSandbox, eventually, killAll } from "./helpers.mjs";

const T = { timeout: 5 * 60_000 };

describe("snapshots", () => {
  const sandboxes = [];
  const manager = SandboxManager.create({ connectionConfig: connectionConfig() });
  after(async () => {
    await killAll(sandboxes);
    await manager.close();
  });

  test("snapshot, restore with the files, list, delete", T, async () => {
    const src = await createSandbox(sandboxes);
    await src.files.writeFiles([{ path: "/tmp/snap/state.txt", data: "before" }]);

    const snap = await manager.createSnapshot(src.id, { name: "e2e-snap" });
    assert.equal(snap.status.state, "Creating");
    assert.equal(snap.sandboxId, src.id);
    assert.equal(snap.name, "e2e-snap");
    assert.ok(snap.createdAt instanceof Date);
    const ready = await eventually(
      async () => {
        const s = await manager.getSnapshot(snap.id);
        return s.status.state === "Ready" ? s : null;
      },
      { timeoutMs: 120_000, what: "snapshot Ready" },
    );
    assert.equal(ready.status.reason, "snapshot_runtime_ready");

    // Changes after the snapshot do not reach it.
    await src.files.writeFiles([{ path: "/tmp/snap/state.txt", data: "after" }]);
    const restored = await createSandbox(sandboxes, { image: undefined, snapshotId: snap.id });
    assert.equal(await restored.files.readFile("/tmp/snap/state.txt"), "before");
    const info = await restored.getInfo();
    assert.equal(info.status.state, "Running");

    const byName = await manager.listSnapshots({ sandboxId: src.id, name: "e2e-snap", states: ["Ready"] });
    assert.deepEqual(byName.items.map((s) => s.id), [snap.id]);
    assert.equal(byName.pagination.totalItems, 1);
    const none = await manager.listSnapshots({ sandboxId: src.id, states: ["Failed"] });
    assert.equal(none.items.length, 0);

    // In use by the restored sandbox: a conflict until that one is gone.
    await assert.rejects(manager.deleteSnapshot(snap.id), (err) => {
      assert.ok(err instanceof SandboxApiException, `${err}`);
      assert.equal(err.statusCode, 409);
      return true;
    });
    await restored.kill();
    await manager.deleteSnapshot(snap.id);
    await assert.rejects(manager.getSnapshot(snap.id), (err) => err.statusCode === 404);
  });

  test("a paused sandbox cannot be snapshotted", T, async () => {
    const src = await createSandbox(sandboxes);
    await manager.pauseSandbox(src.id);
    await eventually(async () => (await manager.getSandboxInfo(src.id)).status.state === "Paused", {
      what: "Paused",
    });
    await assert.rejects(manager.createSnapshot(src.id), (err) => {
      assert.equal(err.statusCode, 409);
      return true;
    });
    await manager.resumeSandbox(src.id);
  });
});
