// Code interpreting through the SDK wire (tests/codes.mjs on the official
// base SDK), in sandboxes of opensandbox/code-interpreter:latest created the
// way the upstream code-interpreter e2e suite creates them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { CODE_IMAGE, createSandbox, E2E_ENV, killAll } from "./helpers.mjs";
import { codesOf } from "./codes.mjs";

const CODE_ENV = { ...E2E_ENV, GO_VERSION: "1.25", JAVA_VERSION: "21",
  NODE_VERSION: "22", PYTHON_VERSION: "3.12" };

describe("code interpreter", () => {
  const sandboxes = [];
  let sbx;
  let codes;

  before(async () => {
    sbx = await createSandbox(sandboxes, {
      image: CODE_IMAGE,
      entrypoint: ["/opt/code-interpreter/code-interpreter.sh"],
      env: CODE_ENV,
      resource: { cpu: "2", memory: "2Gi" },
    });
    codes = await codesOf(sbx);
  });
  after(() => killAll(sandboxes));

  test("print(1+1) with the default config", async () => {
    const ex = await codes.run("print(1+1)");
    assert.deepEqual(ex.logs.stdout.map((m) => m.text), ["2\n"]);
    assert.ok(ex.complete, "completed");
    assert.equal(ex.error, undefined);
    assert.ok(ex.id, "init gave the context id");
  });

  test("context management", async () => {
    const ctx = await codes.createContext("python");
    assert.equal(ctx.language, "python");
    assert.deepEqual(await codes.getContext(ctx.id), ctx);
    assert.ok((await codes.listContexts()).some((c) => c.id === ctx.id));
    assert.ok((await codes.listContexts("python")).some((c) => c.id === ctx.id));
    assert.equal((await codes.listContexts("bash")).some((c) => c.id === ctx.id), false);
    await codes.deleteContext(ctx.id);
    await assert.rejects(codes.getContext(ctx.id), (e) => {
      assert.equal(e.statusCode, 404);
      assert.equal(e.error.code, "CONTEXT_NOT_FOUND");
      return true;
    });
    await codes.createContext("python");
    await codes.deleteContexts("python");
    assert.deepEqual(await codes.listContexts("python"), []);
  });

  test("python: results, state in a context, errors", async () => {
    const r = await codes.run("2 + 2", { language: "python" });
    assert.equal(r.result[0].text, "4");
    assert.ok(r.executionCount >= 1);
    const ctx = await codes.createContext("python");
    await codes.run("x = 42", { context: ctx });
    const same = await codes.run("x", { context: ctx });
    assert.equal(same.result[0].text, "42");
    const other = await codes.createContext("python");
    const isolated = await codes.run("x", { context: other });
    assert.equal(isolated.error?.name, "NameError");
    assert.equal(isolated.complete, undefined);
    const tb = await codes.run("def f():\n    raise ValueError('bad')\nf()",
      { context: ctx });
    assert.equal(tb.error.name, "ValueError");
    assert.equal(tb.error.value, "bad");
    assert.ok(tb.error.traceback.length > 0);
  });

  test("streams stdout as it happens, and rich results", async () => {
    const seen = [];
    const ex = await codes.run(
      "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.4)\n"
        + "from IPython.display import HTML, display\ndisplay(HTML('<i>x</i>'))\n"
        + "import matplotlib.pyplot as plt\nplt.plot([3, 1, 2]); plt.show()",
      { handlers: { onStdout: (m) => seen.push([m.text, Date.now()]) } });
    assert.deepEqual(seen.map(([t]) => t), ["0\n", "1\n", "2\n"]);
    assert.ok(seen[2][1] - seen[0][1] >= 600, "lines arrived apart");
    assert.ok(ex.result.some((r) => r.raw?.["text/html"] === "<i>x</i>"), JSON.stringify(ex.result));
    assert.ok(ex.result.some((r) => (r.raw?.["image/png"] ?? "").startsWith("iVBORw0KGgo")));
  });

  test("bash, javascript, typescript and java kernels; go is refused clearly", async () => {
    const b = await codes.createContext("bash");
    await codes.run("N=6", { context: b });
    const bash = await codes.run("echo $((N*7))", { context: b });
    assert.deepEqual(bash.logs.stdout.map((m) => m.text), ["42\n"]);
    const js = await codes.run("[1, 2, 3].map((v) => v * 2)", { language: "javascript" });
    assert.ok(js.complete, JSON.stringify(js));
    const ts = await codes.run("const t: string = 'typed';\nconsole.log(t)", { language: "typescript" });
    assert.deepEqual(ts.logs.stdout.map((m) => m.text), ["typed\n"]);
    const j = await codes.createContext("java");
    await codes.run("int n = 6;", { context: j });
    const java = await codes.run("System.out.println(n * 7);\nn * 7", { context: j });
    assert.deepEqual(java.logs.stdout.map((m) => m.text), ["42\n"]);
    assert.equal(java.result[0]?.text, "42", JSON.stringify(java));
    await assert.rejects(codes.createContext("go"), (e) => {
      assert.equal(e.statusCode, 501);
      assert.match(e.message, /no Jupyter kernel for language go/);
      return true;
    });
  });

  test("concurrent runs in different contexts", async () => {
    const langs = ["python", "bash", "javascript"];
    const ctxs = await Promise.all(langs.map((l) => codes.createContext(l)));
    const code = { python: "print('py')", bash: "echo sh", javascript: "console.log('js')" };
    const runs = await Promise.all(ctxs.map((c) => codes.run(code[c.language], { context: c })));
    assert.deepEqual(runs.map((r) => r.logs.stdout[0]?.text), ["py\n", "sh\n", "js\n"]);
  });

  test("interrupt a running execution; a fake id is rejected", async () => {
    const ctx = await codes.createContext("python");
    let started;
    const gotInit = new Promise((resolve) => { started = resolve; });
    const running = codes.run("import time\nwhile True:\n    time.sleep(0.05)",
      { context: ctx, handlers: { onInit: () => started() } });
    await gotInit;
    await new Promise((r) => setTimeout(r, 300));
    await codes.interrupt(ctx.id);
    const ex = await running;
    assert.equal(ex.error?.name, "KeyboardInterrupt");
    await assert.rejects(codes.interrupt("fake-context-id"), (e) => e.statusCode === 404);
    const after = await codes.run("1 + 1", { context: ctx });
    assert.equal(after.result[0].text, "2");
  });
});
