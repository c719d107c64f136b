#!/usr/bin/env node
// The official JS SDK's create + first commands.run("echo hi") from a pool,
// against the same through a cold create (issue 13, target <= 0.1x).
//
// Starts its own server (free port, temp config and store, its own node
// name; execd from the server's directory) and removes every container it
// made, also on failure and on Ctrl-C. The SDK is the copy pinned in
// test/e2e (run `npm ci` there first).
//
// pool: Sandbox.create({..., extensions: {poolRef}}) then
//       commands.run("echo hi"); the pool (bufferMin 1, bufferMax 2) is
//       polled until a member is idle before each run, outside its timing.
// cold: the same Sandbox.create options without poolRef, then
//       commands.run("echo hi").
// Interleaved (cold, pool, ...), --runs of each after one warm-up of each;
// each sandbox is killed after its run (outside the timing). Both use the
// SDK's ping interval (--poll-ms, default the SDK's 200 ms).
//
// Usage: node bench/pool_sdk.mjs [--runs 10] [--poll-ms 200]
//        [--image opensandbox/busybox:latest]
// Env:   OSB_SERVER_BIN (default build/opensandbox-server)
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(HERE);
const SDK_DIR = path.join(REPO, "test/e2e/node_modules/@alibaba-group/opensandbox");

const args = { runs: 10, pollMs: 200, image: "opensandbox/busybox:latest" };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === "--runs") args.runs = Number(process.argv[++i]);
  else if (a === "--poll-ms") args.pollMs = Number(process.argv[++i]);
  else if (a === "--image") args.image = process.argv[++i];
  else {
    console.error(`unknown argument ${a}`);
    process.exit(2);
  }
}

const log = (...m) => console.error(...m);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();
function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  const k = Math.max(0, Math.min(s.length - 1, Math.round((p / 100) * s.length + 0.5) - 1));
  return s[k];
}

if (!fs.existsSync(path.join(SDK_DIR, "package.json"))) {
  log(`SDK not installed: run (cd ${path.join(REPO, "test/e2e")} && npm ci)`);
  process.exit(2);
}
const sdkPkg = JSON.parse(fs.readFileSync(path.join(SDK_DIR, "package.json"), "utf8"));
const { ConnectionConfig, Sandbox } = await import(
  pathToFileURL(path.join(SDK_DIR, sdkPkg.exports["."].import)).href
);

const serverBin = process.env.OSB_SERVER_BIN ?? path.join(REPO, "build", "opensandbox-server");
if (!fs.existsSync(serverBin)) {
  log(`server binary not found: ${serverBin}`);
  process.exit(2);
}
const runId = randomBytes(6).toString("hex");
const node = `bench-poolsdk-${process.pid}-${runId.slice(0, 6)}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "osb-bench-poolsdk-"));
const apiKey = "bench";
const port = await new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
fs.writeFileSync(
  path.join(dir, "config.toml"),
  `[server]
host = "127.0.0.1"
port = ${port}
api_key = "${apiKey}"

[log]
level = "INFO"

[runtime]
type = "docker"

[store]
path = "${dir}/store.db"

[cluster]
node_name = "${node}"
`,
);
const logFd = fs.openSync(path.join(dir, "server.log"), "w");
const server = spawn(serverBin, ["--config", path.join(dir, "config.toml")], {
  stdio: ["ignore", logFd, logFd],
});

const live = [];
let cleaning = null;
async function cleanup() {
  cleaning ??= (async () => {
    for (const s of live.splice(0)) {
      try {
        await s.kill();
      } catch {
        /* gone */
      }
    }
    if (server.exitCode == null) {
      server.kill("SIGTERM");
      await Promise.race([new Promise((r) => server.once("exit", r)), sleep(5000)]);
      if (server.exitCode == null) server.kill("SIGKILL");
    }
    try {
      const ids = execFileSync("docker", ["ps", "-aq", "--filter", `label=opensandbox.io/node=${node}`])
        .toString()
        .split(/\s+/)
        .filter(Boolean);
      if (ids.length) {
        execFileSync("docker", ["rm", "-f", ...ids], { stdio: "ignore" });
        log(`removed ${ids.length} leftover container(s)`);
      }
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    await cleanup();
    process.exit(130);
  });
}

async function api(method, p, body) {
  const res = await fetch(`http://127.0.0.1:${port}/v1${p}`, {
    method,
    headers: { "Content-Type": "application/json", "OPEN-SANDBOX-API-KEY": apiKey },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

async function waitHealth() {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    if (server.exitCode != null) throw new Error("server exited");
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error("server did not answer /health");
}

async function waitIdle(pool) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    const r = await api("GET", `/pools/${pool}`);
    if (r.status === 200 && JSON.parse(r.body).status.available >= 1) return;
    await sleep(50);
  }
  throw new Error(`pool ${pool} has no idle member after 60 s`);
}

const opts = (extra = {}) => ({
  connectionConfig: new ConnectionConfig({
    domain: `127.0.0.1:${port}`,
    protocol: "http",
    apiKey,
    requestTimeoutSeconds: 120,
  }),
  image: args.image,
  timeoutSeconds: 10 * 60,
  readyTimeoutSeconds: 60,
  healthCheckPollingInterval: args.pollMs,
  entrypoint: ["tail", "-f", "/dev/null"],
  resource: { cpu: "1", memory: "1Gi" },
  ...extra,
});

/** Sandbox.create + commands.run("echo hi"): ms, and whether warm. */
async function once(extra) {
  const t0 = now();
  const sbx = await Sandbox.create(opts(extra));
  live.push(sbx);
  const run = await sbx.commands.run("echo hi");
  const dt = now() - t0;
  const out = run.logs.stdout.map((m) => m.text).join("").trim();
  if (out !== "hi") throw new Error(`echo hi printed ${JSON.stringify(out)}`);
  const info = await sbx.getInfo();
  const warm = /served it from an idle member/.test(info.status.message ?? "");
  await sbx.kill();
  live.splice(live.indexOf(sbx), 1);
  return { dt, warm };
}

try {
  await waitHealth();
  const pool = "sdk";
  const made = await api("POST", "/pools", {
    name: pool,
    template: {
      image: { uri: args.image },
      entrypoint: ["tail", "-f", "/dev/null"],
      resourceLimits: { cpu: "1", memory: "1Gi" },
    },
    capacitySpec: { bufferMax: 2, bufferMin: 1, poolMax: 100, poolMin: 0 },
  });
  if (made.status !== 201) throw new Error(`POST /pools: ${made.status} ${made.body}`);
  const cold = [];
  const warm = [];
  let servedCold = 0;
  for (let i = 0; i <= args.runs; i++) {
    const c = await once({});
    await waitIdle(pool);
    const w = await once({ extensions: { poolRef: pool } });
    if (!w.warm) servedCold++;
    if (i > 0) {
      cold.push(c.dt);
      warm.push(w.dt);
    }
    log(`run ${i}/${args.runs}${i ? "" : " (warm-up)"}: cold ${c.dt.toFixed(1)} ms  pool ${w.dt.toFixed(1)} ms${w.warm ? "" : " (served cold)"}`);
  }
  await api("DELETE", `/pools/${pool}`);
  const c50 = pct(cold, 50);
  const w50 = pct(warm, 50);
  const ratio = w50 / c50;
  console.log(`pool_sdk: runs=${args.runs} (interleaved), SDK ${sdkPkg.version}, image ${args.image}, ping interval ${args.pollMs} ms`);
  console.log(`  cold create + echo hi: p50 ${c50.toFixed(1)} ms  p90 ${pct(cold, 90).toFixed(1)} ms`);
  console.log(`  pool create + echo hi: p50 ${w50.toFixed(1)} ms  p90 ${pct(warm, 90).toFixed(1)} ms`);
  console.log(`  pooled runs served cold: ${servedCold} of ${args.runs + 1}`);
  console.log(`  RATIO p50(pool)/p50(cold) = ${ratio.toFixed(3)}  (target <= 0.1: ${ratio <= 0.1 ? "met" : "MISSED"})`);
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  log(fs.readFileSync(path.join(dir, "server.log"), "utf8").slice(-2000));
  process.exitCode = 1;
} finally {
  await cleanup();
}
