// Bash sessions through the SDK: cwd and exported variables persist between
// runs, per-run cwd override, failures carry the exit code, sessions are
// independent and can be deleted.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { createSandbox, killAll, recordingHandlers, stdoutText } from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };

describe("bash sessions", () => {
  const sandboxes = [];
  let sandbox;

  before(async () => {
    sandbox = await createSandbox(sandboxes, { metadata: { tag: "e2e-sessions" } });
  });
  after(() => killAll(sandboxes));

  test("session keeps cwd and exported variables; exit code on failure", T, async () => {
    const sid = await sandbox.commands.createSession({ workingDirectory: "/tmp" });
    assert.equal(typeof sid, "string");
    assert.ok(sid.length > 0);
    let sid2;
    try {
      const rec = recordingHandlers();
      const r1 = await sandbox.commands.runInSession(sid, "pwd", undefined, rec.handlers);
      assert.equal(r1.error, undefined);
      assert.equal(r1.exitCode, 0);
      assert.equal(r1.logs.stdout[0]?.text, "/tmp");
      assert.equal(rec.init.length, 1);
      assert.equal(rec.complete.length, 1);

      // Per-run cwd override.
      const r2 = await sandbox.commands.runInSession(sid, "pwd", { workingDirectory: "/var" });
      assert.equal(r2.logs.stdout[0]?.text, "/var");

      // Exported variables persist.
      const r3 = await sandbox.commands.runInSession(sid, "export E2E_SESSION_VAR=persisted-42");
      assert.equal(r3.error, undefined);
      const r4 = await sandbox.commands.runInSession(sid, "echo $E2E_SESSION_VAR");
      assert.equal(r4.logs.stdout[0]?.text, "persisted-42");

      // cd persists.
      await sandbox.commands.runInSession(sid, "mkdir -p /tmp/e2e-sess-dir && cd /tmp/e2e-sess-dir");
      const r5 = await sandbox.commands.runInSession(sid, "pwd");
      assert.equal(r5.logs.stdout[0]?.text, "/tmp/e2e-sess-dir");

      // Multi-line output, one event per line.
      const r6 = await sandbox.commands.runInSession(sid, "echo a; echo b; echo c");
      assert.deepEqual(r6.logs.stdout.map((m) => m.text), ["a", "b", "c"]);

      // Failure: error event with the exit code, no completion.
      const recFail = recordingHandlers();
      const bad = await sandbox.commands.runInSession(sid, "echo before-fail; exit 7", undefined, recFail.handlers);
      assert.ok(bad.error, "error event");
      assert.equal(bad.error.name, "CommandExecError");
      assert.equal(bad.error.value, "7");
      assert.equal(bad.exitCode, 7);
      assert.equal(recFail.complete.length, 0);
      assert.ok(stdoutText(bad).includes("before-fail"));

      // The session survives a failed run.
      const after = await sandbox.commands.runInSession(sid, "echo $E2E_SESSION_VAR");
      assert.equal(after.logs.stdout[0]?.text, "persisted-42");

      // A second session is independent.
      sid2 = await sandbox.commands.createSession({ workingDirectory: "/var" });
      assert.notEqual(sid2, sid);
      const o1 = await sandbox.commands.runInSession(sid2, "pwd");
      assert.equal(o1.logs.stdout[0]?.text, "/var");
      const o2 = await sandbox.commands.runInSession(sid2, 'echo "[${E2E_SESSION_VAR:-unset}]"');
      assert.equal(o2.logs.stdout[0]?.text, "[unset]");

      // Session timeout.
      const start = Date.now();
      const slow = await sandbox.commands.runInSession(sid2, "sleep 30", { timeoutSeconds: 1 });
      assert.ok(Date.now() - start < 10_000, "session run timeout");
      assert.ok(slow.error, "timeout reported as error");
    } finally {
      await sandbox.commands.deleteSession(sid);
      if (sid2) await sandbox.commands.deleteSession(sid2);
    }
    // Deleted sessions are gone.
    await assert.rejects(sandbox.commands.runInSession(sid, "pwd"));
    await assert.rejects(sandbox.commands.deleteSession(sid));
  });

  test("session created without a directory", T, async () => {
    const sid = await sandbox.commands.createSession();
    try {
      const r = await sandbox.commands.runInSession(sid, "echo no-cwd-ok");
      assert.equal(r.logs.stdout[0]?.text, "no-cwd-ok");
    } finally {
      await sandbox.commands.deleteSession(sid);
    }
  });
});
