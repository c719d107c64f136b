// commands.run through the SDK: streamed stdout/stderr events and handlers,
// exit codes and errors, working directory, env, timeouts, background
// commands with status and cursor-read logs, interrupt.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  assertRecentTimestampMs,
  createSandbox,
  eventually,
  killAll,
  recordingHandlers,
  sleep,
  SLOWDOWN,
  stdoutText,
} from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };

describe("commands", () => {
  const sandboxes = [];
  let sandbox;

  before(async () => {
    sandbox = await createSandbox(sandboxes, { metadata: { tag: "e2e-commands" } });
  });
  after(() => killAll(sandboxes));

  test("success: one stdout line, init and complete handlers, exit code 0", T, async () => {
    const rec = recordingHandlers();
    const ok = await sandbox.commands.run("echo 'Hello OpenSandbox E2E'", undefined, rec.handlers);
    assert.ok(ok.id, "execution id");
    assert.equal(ok.error, undefined);
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.logs.stdout.length, 1);
    assert.equal(ok.logs.stdout[0].text, "Hello OpenSandbox E2E");
    assert.equal(ok.logs.stderr.length, 0);
    assertRecentTimestampMs(ok.logs.stdout[0].timestamp);
    assert.equal(rec.init.length, 1);
    assert.equal(rec.init[0].id, ok.id);
    assert.equal(rec.complete.length, 1);
    assert.ok(rec.complete[0].executionTimeMs >= 0);
    assert.equal(rec.errors.length, 0);
    assert.equal(rec.stdout.length, 1);
    assert.equal(rec.events[0].type, "init");
    assert.equal(rec.events.at(-1).type, "execution_complete");
    for (const ev of rec.events) assert.equal(typeof ev.timestamp, "number", JSON.stringify(ev));
  });

  test("stdout and stderr are streamed line by line while the command runs", T, async () => {
    const rec = recordingHandlers();
    const start = Date.now();
    const r = await sandbox.commands.run(
      "for i in 1 2 3; do echo out-$i; echo err-$i >&2; sleep 0.4; done",
      undefined,
      rec.handlers,
    );
    const end = Date.now();
    assert.equal(r.error, undefined);
    assert.deepEqual(r.logs.stdout.map((m) => m.text), ["out-1", "out-2", "out-3"]);
    assert.deepEqual(r.logs.stderr.map((m) => m.text), ["err-1", "err-2", "err-3"]);
    assert.ok(r.logs.stderr.every((m) => m.isError === true));
    assert.deepEqual(rec.stdout.map((m) => m.text), ["out-1", "out-2", "out-3"]);
    assert.deepEqual(rec.stderr.map((m) => m.text), ["err-1", "err-2", "err-3"]);
    // Streaming, not buffering: the first line reached the handler long
    // before the command ended (it runs ~1.2 s).
    assert.ok(end - rec.stdout[0].at >= 600, `first line ${end - rec.stdout[0].at} ms before the end`);
    assert.ok(rec.stdout[0].at - start < 1000 * SLOWDOWN,
      `first line late (${rec.stdout[0].at - start} ms)`);
  });

  test("many lines and a partial last line", T, async () => {
    const r = await sandbox.commands.run("seq 1 2000; printf tail-without-newline");
    assert.equal(r.error, undefined);
    assert.equal(r.logs.stdout.length, 2001);
    assert.equal(r.logs.stdout[0].text, "1");
    assert.equal(r.logs.stdout[1999].text, "2000");
    assert.equal(r.logs.stdout[2000].text, "tail-without-newline");
  });

  test("non-zero exit: error with value = exit code, no completion", T, async () => {
    const rec = recordingHandlers();
    const r = await sandbox.commands.run("echo before; echo oops >&2; exit 3", undefined, rec.handlers);
    assert.ok(r.id);
    assert.equal(r.error?.name, "CommandExecError");
    assert.equal(r.error?.value, "3");
    assert.equal(r.exitCode, 3);
    assert.equal(Number(r.error.value), r.exitCode);
    assert.equal(r.complete, undefined);
    assert.equal(rec.complete.length, 0);
    assert.equal(rec.errors.length, 1);
    assert.deepEqual(r.logs.stdout.map((m) => m.text), ["before"]);
    assert.deepEqual(r.logs.stderr.map((m) => m.text), ["oops"]);
  });

  test("unknown command: CommandExecError 127, stderr names it", T, async () => {
    const rec = recordingHandlers();
    const fail = await sandbox.commands.run("nonexistent-command-that-does-not-exist", undefined, rec.handlers);
    assert.ok(fail.id);
    assert.equal(fail.error?.name, "CommandExecError");
    assert.equal(fail.exitCode, 127);
    assert.equal(fail.exitCode, Number(fail.error.value));
    assert.ok(fail.logs.stderr.length > 0);
    assert.ok(fail.logs.stderr.some((m) => m.text.includes("nonexistent-command-that-does-not-exist")));
    assert.equal(rec.complete.length, 0);
  });

  test("working directory", T, async () => {
    const pwd = await sandbox.commands.run("pwd", { workingDirectory: "/tmp" });
    assert.equal(pwd.error, undefined);
    assert.equal(pwd.logs.stdout[0]?.text, "/tmp");
    const pwd2 = await sandbox.commands.run("pwd", { workingDirectory: "/usr/share" });
    assert.equal(pwd2.logs.stdout[0]?.text, "/usr/share");
    // A missing directory is refused before the command starts.
    await assert.rejects(
      sandbox.commands.run("pwd", { workingDirectory: "/does/not/exist" }),
    );
  });

  test("env injection: absent by default, present with envs", T, async () => {
    const envKey = "OPEN_SANDBOX_E2E_CMD_ENV";
    const envValue = `env-ok-${Date.now()}`;
    const probe = `sh -c 'if [ -z "\${${envKey}:-}" ]; then echo "__EMPTY__"; else echo "\${${envKey}}"; fi'`;
    const baseline = await sandbox.commands.run(probe);
    assert.equal(baseline.error, undefined);
    assert.equal(stdoutText(baseline).trim(), "__EMPTY__");
    const injected = await sandbox.commands.run(probe, {
      envs: { [envKey]: envValue, OPEN_SANDBOX_E2E_SECOND_ENV: "second-ok" },
    });
    assert.equal(injected.error, undefined);
    assert.equal(stdoutText(injected).trim(), envValue);
    const second = await sandbox.commands.run("echo $OPEN_SANDBOX_E2E_SECOND_ENV", {
      envs: { OPEN_SANDBOX_E2E_SECOND_ENV: "second-ok" },
    });
    assert.equal(second.logs.stdout[0]?.text, "second-ok");
    // The container env given at create reaches commands.
    const fromCreate = await sandbox.commands.run("echo $E2E_TEST");
    assert.equal(fromCreate.logs.stdout[0]?.text, "true");
  });

  test("uid/gid: run as nobody", T, async () => {
    const r = await sandbox.commands.run("id -u; id -g", { uid: 65534, gid: 65534 });
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.deepEqual(r.logs.stdout.map((m) => m.text), ["65534", "65534"]);
  });

  test("timeout kills the command and reports an error", T, async () => {
    const rec = recordingHandlers();
    const start = Date.now();
    const r = await sandbox.commands.run("echo started; sleep 30; echo never", { timeoutSeconds: 1 }, rec.handlers);
    const elapsed = Date.now() - start;
    assert.ok(elapsed < 10_000, `timeout took ${elapsed} ms`);
    assert.ok(elapsed >= 900, `returned after ${elapsed} ms, before the timeout`);
    assert.ok(r.error, "an error event");
    assert.equal(r.complete, undefined);
    assert.notEqual(r.exitCode, 0);
    assert.deepEqual(r.logs.stdout.map((m) => m.text), ["started"]);
  });

  test("background command returns at once with no exit code", T, async () => {
    const start = Date.now();
    const bg = await sandbox.commands.run("sleep 30", { background: true });
    assert.ok(Date.now() - start < 10_000);
    assert.ok(bg.id);
    assert.ok(bg.exitCode === undefined || bg.exitCode === null, `exitCode ${bg.exitCode}`);
    const st = await sandbox.commands.getCommandStatus(bg.id);
    assert.equal(st.id, bg.id);
    assert.equal(st.running, true);
    assert.equal(st.exitCode, null);
    assert.ok(st.startedAt instanceof Date);
    await sandbox.commands.interrupt(bg.id);
    const done = await eventually(
      async () => {
        const s = await sandbox.commands.getCommandStatus(bg.id);
        return s.running === false ? s : null;
      },
      { what: "interrupted background command stops", timeoutMs: 15_000 },
    );
    assert.ok(done.finishedAt instanceof Date);
    assert.notEqual(done.exitCode, 0);
  });

  test("background command: status and logs read by cursor", T, async () => {
    const exec = await sandbox.commands.run(
      "sh -c 'for i in 1 2 3 4 5; do echo log-line-$i; sleep 0.3; done; echo err-line >&2; exit 2'",
      { background: true },
    );
    assert.ok(exec.id);
    const status = await sandbox.commands.getCommandStatus(exec.id);
    assert.equal(status.id, exec.id);
    assert.equal(typeof status.running, "boolean");
    assert.ok(status.content?.includes("log-line"), `content ${status.content}`);

    let text = "";
    let cursor;
    const cursors = [];
    for (let i = 0; i < 60; i++) {
      const logs = await sandbox.commands.getBackgroundCommandLogs(exec.id, cursor);
      text += logs.content;
      assert.equal(typeof logs.cursor, "number", "EXECD-COMMANDS-TAIL-CURSOR header");
      cursor = logs.cursor ?? cursor;
      cursors.push(cursor);
      const st = await sandbox.commands.getCommandStatus(exec.id);
      if (!st.running && text.includes("err-line")) break;
      await sleep(250);
    }
    // Every line exactly once: the cursor never re-reads.
    for (let i = 1; i <= 5; i++) {
      assert.equal(text.split(`log-line-${i}\n`).length - 1, 1, `log-line-${i} in ${JSON.stringify(text)}`);
    }
    assert.ok(text.includes("err-line"));
    for (let i = 1; i < cursors.length; i++) assert.ok(cursors[i] >= cursors[i - 1]);
    // Re-reading from 0 returns everything.
    const all = await sandbox.commands.getBackgroundCommandLogs(exec.id, 0);
    assert.equal(all.content, text);
    const final = await sandbox.commands.getCommandStatus(exec.id);
    assert.equal(final.running, false);
    assert.equal(final.exitCode, 2);
    assert.ok(final.finishedAt instanceof Date);
    assert.ok(final.finishedAt.getTime() >= final.startedAt.getTime());
  });

  test("unknown command id: status and logs reject", T, async () => {
    await assert.rejects(sandbox.commands.getCommandStatus("0123456789abcdef0123456789abcdef"));
    await assert.rejects(sandbox.commands.getBackgroundCommandLogs("0123456789abcdef0123456789abcdef"));
    await assert.rejects(sandbox.commands.interrupt("0123456789abcdef0123456789abcdef"));
  });

  test("interrupt a foreground command", T, async () => {
    const rec = recordingHandlers();
    let initResolve;
    const initSeen = new Promise((r) => (initResolve = r));
    rec.handlers.onInit = (i) => {
      rec.init.push(i);
      initResolve(i);
    };
    const start = Date.now();
    const task = sandbox.commands.run("sleep 30", undefined, rec.handlers);
    const init = await initSeen;
    assert.ok(init.id);
    assertRecentTimestampMs(init.timestamp);
    await sandbox.commands.interrupt(init.id);
    const exec = await Promise.race([
      task,
      sleep(20_000).then(() => {
        throw new Error("interrupted run did not finish in 20 s");
      }),
    ]);
    assert.ok(Date.now() - start < 20_000);
    assert.equal(exec.id, init.id);
    assert.ok(exec.error, "interrupted run ends with an error event");
    assert.ok(exec.error.name && exec.error.value);
    assert.equal(rec.complete.length, 0);
    const follow = await sandbox.commands.run("echo interrupt-ok");
    assert.equal(follow.logs.stdout[0]?.text, "interrupt-ok");
  });

  test("several commands in parallel", T, async () => {
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => sandbox.commands.run(`sleep 0.5; echo par-${i}`)),
    );
    runs.forEach((r, i) => {
      assert.equal(r.error, undefined);
      assert.equal(r.logs.stdout[0]?.text, `par-${i}`);
    });
  });
});
