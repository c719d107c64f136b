#!/usr/bin/env node
// execd through the official JS SDK (the copy pinned in test/e2e; run
// `npm ci` there first). Starts its own server (free port, temp config and
// store, its own node name) and removes every container it made, also on
// failure and on Ctrl-C.
//
// 1. round trip: 200x commands.run("echo hi") on one sandbox -> p50/p90,
//    against `docker exec <container> sh -c "echo hi"` 50x -> p50 (floor),
//    interleaved with the same request as plain fetch on three paths.
// 2. create-to-ready as the SDK sees it: Sandbox.create (POST, endpoint
//    lookups 44772 + 18080, ping until 2xx), 10 runs with the SDK's default
//    200 ms ping interval and 10 with a 10 ms interval, against raw Engine API
//    create+start of the same container (body mirrored from one the server
//    made: image, execd mount, entrypoint, ports, HostConfig), and the same
//    raw container until its execd answers /proxy/44772/ping through the
//    published port; runs are interleaved. Breakdown from timing the SDK's
//    own fetch calls. A third series (what-if) uses the SDK's healthCheck
//    option to ping only after getInfo reports Running.
// 3. 100 MB of stdout streamed through the SDK to a handler that only counts
//    bytes, while a worker thread samples execd's VmRSS every 20 ms (host /proc of the
//    container process whose command is /opt/opensandbox/execd, found with
//    the Engine API's top).
//
// Usage: node bench/execd_roundtrip.mjs [--image IMG] [--runs 200]
//        [--exec-runs 50] [--create-runs 10] [--stream-mb 100] [--json]
//        [--trace]  (prints every HTTP call of each timed Sandbox.create)
// Env:   OSB_SERVER_BIN (default build-bench/opensandbox-server; execd is
//        taken from the same directory, see runtime.execd_path).
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

const execFileP = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.dirname(HERE);
const SDK_DIR = path.join(REPO, "test/e2e/node_modules/@alibaba-group/opensandbox");

// -- arguments -----------------------------------------------------------------
const args = { image: "opensandbox/debian:bookworm", runs: 200, execRuns: 50, createRuns: 10, streamMb: 100, json: false, trace: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => process.argv[++i];
  if (a === "--image") args.image = next();
  else if (a === "--runs") args.runs = Number(next());
  else if (a === "--exec-runs") args.execRuns = Number(next());
  else if (a === "--create-runs") args.createRuns = Number(next());
  else if (a === "--stream-mb") args.streamMb = Number(next());
  else if (a === "--json") args.json = true;
  else if (a === "--trace") args.trace = true;
  else {
    console.error(`unknown argument ${a}\n${fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\nimport ")[0]}`);
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
const f1 = (x) => (x == null || Number.isNaN(x) ? "n/a" : x.toFixed(x < 10 ? 2 : 1));

// -- the SDK (pinned in test/e2e), with the global fetch timed ------------------
if (!fs.existsSync(path.join(SDK_DIR, "package.json"))) {
  log(`SDK not installed: run (cd ${path.join(REPO, "test/e2e")} && npm ci)`);
  process.exit(2);
}
const sdkPkg = JSON.parse(fs.readFileSync(path.join(SDK_DIR, "package.json"), "utf8"));
const sdkEntry = path.join(SDK_DIR, sdkPkg.exports["."].import);

// The SDK captures the global fetch when a Sandbox is created, so wrapping it
// here times every HTTP call the SDK makes without changing the SDK.
let trace = null; // array of {method, url, t0, t1, status} while tracing
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  if (!trace) return realFetch(input, init);
  const url = typeof input === "string" ? input : input.url ?? String(input);
  const method = init?.method ?? (typeof input === "object" && input.method) ?? "GET";
  const rec = { method, url, t0: now(), t1: 0, status: 0 };
  trace.push(rec);
  try {
    const res = await realFetch(input, init);
    rec.t1 = now();
    rec.status = res.status;
    return res;
  } catch (err) {
    rec.t1 = now();
    rec.status = -1;
    throw err;
  }
};
const { ConnectionConfig, Sandbox } = await import(pathToFileURL(sdkEntry).href);

// -- Docker Engine API over the unix socket (keep-alive) ------------------------
const DOCKER_SOCK = process.env.OSB_DOCKER_SOCK ?? "/var/run/docker.sock";
const dockerAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function docker(method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath: DOCKER_SOCK,
        agent: dockerAgent,
        method,
        path: `/v1.41${p}`,
        headers: data ? { "Content-Type": "application/json", "Content-Length": data.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, text, json });
        });
      },
    );
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

const RAW_LABEL = "opensandbox.io-bench/raw";
const MIRRORED_HOST_CONFIG = [
  "NetworkMode", "PidsLimit", "CapAdd", "CapDrop", "SecurityOpt", "Binds", "Mounts", "Memory",
  "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod", "Devices", "Privileged", "ReadonlyRootfs",
  "Tmpfs", "Init", "ExtraHosts", "Dns", "DnsOptions", "DnsSearch", "Sysctls", "Ulimits",
  "GroupAdd", "UsernsMode", "PidMode",
];

/** The create body of a container the server made, with our labels/ports. */
function mirrorBody(info, runId) {
  const cfg = info.Config;
  const hc = info.HostConfig;
  const body = { Image: cfg.Image };
  for (const k of ["Entrypoint", "Cmd", "Env", "ExposedPorts", "WorkingDir", "User"]) {
    if (cfg[k] != null && cfg[k] !== "") body[k] = cfg[k];
  }
  const host = {};
  for (const k of MIRRORED_HOST_CONFIG) {
    const v = hc[k];
    if (v == null || v === "" || v === 0 || v === false) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    host[k] = v;
  }
  const containerPorts = Object.keys(hc.PortBindings ?? {}).sort();
  return { body, host, containerPorts, runId };
}

async function hostPortFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "0.0.0.0", () => s.close(() => resolve(true)));
  });
}
async function takeHostPorts(n) {
  const out = [];
  while (out.length < n) {
    const p = 40000 + Math.floor(Math.random() * 20000);
    if (!out.includes(p) && (await hostPortFree(p))) out.push(p);
  }
  return out;
}

/** Raw floor: create + start; ms from sending create until start returned. */
async function rawCreateStart(m) {
  const ports = await takeHostPorts(m.containerPorts.length);
  const bindings = {};
  m.containerPorts.forEach((cp, i) => (bindings[cp] = [{ HostIp: "0.0.0.0", HostPort: String(ports[i]) }]));
  const body = {
    ...m.body,
    Labels: { [RAW_LABEL]: m.runId, "opensandbox.io/manual-cleanup": "true" },
    HostConfig: { ...m.host, PortBindings: bindings },
  };
  const name = `bench-execd-raw-${randomBytes(5).toString("hex")}`;
  const t0 = now();
  const c = await docker("POST", `/containers/create?name=${name}`, body);
  const t1 = now();
  if (c.status !== 201) throw new Error(`raw create: ${c.status} ${c.text.slice(0, 300)}`);
  const s = await docker("POST", `/containers/${c.json.Id}/start`);
  const t2 = now();
  if (s.status !== 204 && s.status !== 304) {
    await docker("DELETE", `/containers/${c.json.Id}?force=true`);
    throw new Error(`raw start: ${s.status} ${s.text.slice(0, 300)}`);
  }
  // Second floor: the same container until its execd answers a ping through
  // the published port (10 ms polling from the moment start returned).
  const execdIdx = m.containerPorts.indexOf("44772/tcp");
  let ready = NaN;
  let pings = 0;
  if (execdIdx >= 0) {
    const url = `http://127.0.0.1:${ports[execdIdx]}/proxy/44772/ping`;
    const end = now() + 30_000;
    while (now() < end) {
      pings++;
      try {
        const r = await realFetch(url, { signal: AbortSignal.timeout(5000) });
        await r.arrayBuffer();
        if (r.ok) {
          ready = now() - t0;
          break;
        }
      } catch {
        /* not yet */
      }
      await sleep(10);
    }
  }
  return { total: t2 - t0, create: t1 - t0, start: t2 - t1, ready, pings, id: c.json.Id };
}

async function removeLabelled(label, value) {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${label}=${value}`] }));
  const r = await docker("GET", `/containers/json?all=1&filters=${filters}`);
  let n = 0;
  for (const c of r.json ?? []) {
    await docker("DELETE", `/containers/${c.Id}?force=true`);
    n++;
  }
  return n;
}

// -- the server under test ------------------------------------------------------
const serverBin = process.env.OSB_SERVER_BIN ?? path.join(REPO, "build-bench", "opensandbox-server");
if (!fs.existsSync(serverBin)) {
  log(`server binary not found: ${serverBin} (build it: cmake -S ${REPO} -B ${REPO}/build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DOSB_BUILD_TESTS=OFF && cmake --build ${REPO}/build-bench -j2)`);
  process.exit(2);
}
const runId = randomBytes(6).toString("hex");
const node = `bench-execd-${process.pid}-${runId.slice(0, 6)}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "osb-bench-execd-"));
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

[docker]
network_mode = "bridge"

[store]
path = "${dir}/store.db"

[cluster]
node_name = "${node}"
`,
);
const { spawn } = await import("node:child_process");
const logFd = fs.openSync(path.join(dir, "server.log"), "w");
const server = spawn(serverBin, ["--config", path.join(dir, "config.toml")], { stdio: ["ignore", logFd, logFd] });

let cleaning = null;
async function cleanup() {
  cleaning ??= (async () => {
    for (const s of live.splice(0)) {
      try {
        await s.kill();
      } catch {
        /* gone */
      }
      try {
        await s.close();
      } catch {
        /* ignore */
      }
    }
    if (server.exitCode == null) {
      server.kill("SIGTERM");
      await Promise.race([new Promise((r) => server.once("exit", r)), sleep(5000)]);
      if (server.exitCode == null) server.kill("SIGKILL");
    }
    try {
      const a = await removeLabelled("opensandbox.io/node", node);
      const b = await removeLabelled(RAW_LABEL, runId);
      if (a + b) log(`removed ${a + b} leftover container(s)`);
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
    dockerAgent.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
const live = [];
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, async () => {
    log(`\n${sig}: cleaning up`);
    await cleanup();
    process.exit(130);
  });
}

async function waitHealth() {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    if (server.exitCode != null) throw new Error(`server exited: ${fs.readFileSync(path.join(dir, "server.log"), "utf8").slice(-3000)}`);
    try {
      const r = await realFetch(`http://127.0.0.1:${port}/health`);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error("server did not answer /health");
}

const conn = () =>
  new ConnectionConfig({ domain: `127.0.0.1:${port}`, protocol: "http", apiKey, requestTimeoutSeconds: 120 });
const createOpts = (extra = {}) => ({
  connectionConfig: conn(),
  image: args.image,
  timeoutSeconds: 30 * 60,
  readyTimeoutSeconds: 60,
  entrypoint: ["tail", "-f", "/dev/null"],
  resource: { cpu: "2", memory: "1Gi" },
  ...extra,
});

// -- 1. round trip ---------------------------------------------------------------
// Interleaved so that every series sees the same machine noise: each of the
// `runs` rounds does one SDK commands.run("echo hi") and the same POST
// /command with plain fetch on three paths -- (a) the SDK's (host port ->
// docker-proxy -> execd -> its /proxy/44772 loop back into itself), (b) the
// host port without the loop back, (c) the container's IP (no docker-proxy);
// every (runs / execRuns)-th round also one `docker exec`.
async function roundTrip(sbx, container) {
  const endpoint = await sbx.getEndpoint(44772);
  const ep = endpoint.endpoint; // host:port/proxy/44772
  const hostPort = ep.split("/")[0];
  const ip = (await docker("GET", `/containers/${container}/json`)).json.NetworkSettings.IPAddress;
  const paths = { via_loopback: `http://${ep}/command`, host_port: `http://${hostPort}/command` };
  if (ip) paths.container_ip = `http://${ip}:44772/command`;
  const plain = async (url) => {
    const r = await realFetch(url, {
      method: "POST",
      // The endpoint's headers carry execd's access token.
      headers: { "content-type": "application/json", accept: "text/event-stream", ...endpoint.headers },
      body: JSON.stringify({ command: "echo hi", background: false }),
    });
    const body = await r.text();
    if (!body.includes('"hi"')) throw new Error(`bad reply from ${url}: ${r.status} ${body.slice(0, 200)}`);
  };
  const sdkRun = async () => {
    const r = await sbx.commands.run("echo hi");
    if (r.logs.stdout[0]?.text !== "hi" || r.error) throw new Error(`bad echo: ${JSON.stringify(r)}`);
  };
  const dockerExec = async () => {
    const { stdout } = await execFileP("docker", ["exec", container, "sh", "-c", "echo hi"]);
    if (stdout !== "hi\n") throw new Error(`bad docker exec output ${JSON.stringify(stdout)}`);
  };
  // Warm-up.
  for (let i = 0; i < 20; i++) {
    await sdkRun();
    for (const url of Object.values(paths)) await plain(url);
  }
  for (let i = 0; i < 3; i++) await dockerExec();

  const sdk = [];
  const dexec = [];
  const raw = Object.fromEntries(Object.keys(paths).map((k) => [k, []]));
  const every = Math.max(1, Math.floor(args.runs / Math.max(1, args.execRuns)));
  for (let i = 0; i < args.runs; i++) {
    let t0 = now();
    await sdkRun();
    sdk.push(now() - t0);
    for (const [k, url] of Object.entries(paths)) {
      t0 = now();
      await plain(url);
      raw[k].push(now() - t0);
    }
    if (i % every === 0 && dexec.length < args.execRuns) {
      t0 = now();
      await dockerExec();
      dexec.push(now() - t0);
    }
  }
  while (dexec.length < args.execRuns) {
    const t0 = now();
    await dockerExec();
    dexec.push(now() - t0);
  }
  return {
    raw_fetch_p50: Object.fromEntries(Object.entries(raw).map(([k, xs]) => [k, pct(xs, 50)])),
    sdk_p50: pct(sdk, 50), sdk_p90: pct(sdk, 90), sdk_p99: pct(sdk, 99), sdk_min: Math.min(...sdk),
    docker_exec_p50: pct(dexec, 50), docker_exec_p90: pct(dexec, 90), docker_exec_n: dexec.length,
    speedup: pct(dexec, 50) / pct(sdk, 50),
  };
}

// -- 2. create-to-ready ------------------------------------------------------------
function breakdown(t) {
  const post = t.find((r) => r.method === "POST" && /\/sandboxes$/.test(r.url));
  const eps = t.filter((r) => /\/endpoints\/\d+/.test(r.url));
  const pings = t.filter((r) => /\/ping$/.test(r.url));
  const ok = pings.find((r) => r.status >= 200 && r.status < 300);
  const t0 = post.t0;
  return {
    post: post.t1 - post.t0,
    endpoints: eps.length ? Math.max(...eps.map((r) => r.t1)) - Math.min(...eps.map((r) => r.t0)) : 0,
    to_first_ping_ok: ok ? ok.t1 - (eps.length ? Math.max(...eps.map((r) => r.t1)) : post.t1) : NaN,
    pings: pings.length,
    total_http: ok ? ok.t1 - t0 : NaN,
  };
}

// What-if for the server: the same SDK call with a readiness check that pings
// only once the lifecycle API reports Running (i.e. after Docker's start
// returned) -- what the SDK would see if the server held the 44772 endpoint
// lookup of a Pending sandbox until its container started.
const runningThenPing = async (sbx) =>
  (await sbx.getInfo()).status.state === "Running" && (await sbx.health.ping());

async function sdkCreate(pollMs, healthCheck) {
  trace = [];
  const t0 = now();
  const sbx = await Sandbox.create(createOpts({ healthCheckPollingInterval: pollMs, healthCheck }));
  const total = now() - t0;
  const t = trace;
  trace = null;
  live.push(sbx);
  const b = breakdown(t);
  if (args.trace) {
    const base = t[0].t0;
    log(`Sandbox.create (ping interval ${pollMs} ms) ${total.toFixed(1)} ms:`);
    for (const r of t) log(`  +${(r.t0 - base).toFixed(1).padStart(7)} .. +${(r.t1 - base).toFixed(1).padStart(7)} ms  ${r.status}  ${r.method} ${r.url}`);
  }
  await sbx.kill();
  await sbx.close();
  live.splice(live.indexOf(sbx), 1);
  return { total, ...b };
}

async function createToReady(mirror) {
  const series = { raw: [], sdk200: [], sdk10: [], sdkgate: [] };
  const rawIds = [];
  for (let i = 0; i < args.createRuns + 1; i++) {
    const record = i > 0; // first round is warm-up
    const raw = await rawCreateStart(mirror);
    rawIds.push(raw.id);
    await docker("DELETE", `/containers/${raw.id}?force=true`);
    const a = await sdkCreate(200);
    const b = await sdkCreate(10);
    const c = await sdkCreate(10, runningThenPing);
    if (record) {
      series.raw.push(raw);
      series.sdk200.push(a);
      series.sdk10.push(b);
      series.sdkgate.push(c);
    }
    await sleep(200);
  }
  const med = (xs, k) => pct(xs.map((x) => x[k]), 50);
  const out = {
    raw_p50: med(series.raw, "total"), raw_create_p50: med(series.raw, "create"), raw_start_p50: med(series.raw, "start"),
    raw_ready_p50: med(series.raw, "ready"), raw_ready_pings_p50: med(series.raw, "pings"),
  };
  for (const k of ["sdk200", "sdk10", "sdkgate"]) {
    out[k] = {
      p50: med(series[k], "total"), p90: pct(series[k].map((x) => x.total), 90),
      post_p50: med(series[k], "post"), endpoints_p50: med(series[k], "endpoints"),
      to_first_ping_ok_p50: med(series[k], "to_first_ping_ok"), pings_p50: med(series[k], "pings"),
      ratio: med(series[k], "total") / out.raw_p50,
      ratio_ready: med(series[k], "total") / out.raw_ready_p50,
    };
  }
  return out;
}

// -- 3. streaming ------------------------------------------------------------------
function readRssKb(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = s.match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
}
function readCpuTicks(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
}

// The sampler runs in a worker thread so that a busy event loop (the SDK
// parsing a million events) does not thin out the samples.
const SAMPLER = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const stop = new Int32Array(workerData.stop);
let max = 0, samples = 0;
while (Atomics.load(stop, 0) === 0) {
  try {
    const m = fs.readFileSync("/proc/" + workerData.pid + "/status", "utf8").match(/VmRSS:\\s+(\\d+) kB/);
    if (m) { max = Math.max(max, Number(m[1])); samples++; }
  } catch {}
  Atomics.wait(stop, 0, 0, workerData.intervalMs);
}
parentPort.postMessage({ max, samples });
`;

/** Host pids of the docker-proxy processes that forward `hostPort`. */
function dockerProxyPids(hostPort) {
  const out = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const a = fs.readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      const i = a.indexOf("-host-port");
      if (a[0].endsWith("docker-proxy") && i >= 0 && a[i + 1] === String(hostPort)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}
const sumTicks = (pids) => pids.reduce((acc, p) => {
  try {
    return acc + readCpuTicks(p);
  } catch {
    return acc;
  }
}, 0);

async function stream(sbx, execdPid) {
  const execdHostPort = Number((await sbx.getEndpoint(44772)).endpoint.split("/")[0].split(":")[1]);
  const proxyPids = dockerProxyPids(execdHostPort);
  const proxy0 = sumTicks(proxyPids);
  const { Worker } = await import("node:worker_threads");
  const bytesWanted = args.streamMb * 1_000_000;
  const cmd = `head -c ${bytesWanted} /dev/zero | tr '\\0' 'a' | fold -w 100`;
  const rssBefore = readRssKb(execdPid);
  const stop = new SharedArrayBuffer(4);
  const worker = new Worker(SAMPLER, { eval: true, workerData: { pid: execdPid, intervalMs: 20, stop } });
  const sampled = new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  let bytes = 0;
  let lines = 0;
  const cpu0 = readCpuTicks(execdPid);
  const client0 = process.cpuUsage();
  const t0 = now();
  const r = await sbx.commands.run(cmd, undefined, {
    skipAccumulation: true,
    onStdout: (m) => {
      bytes += m.text.length + 1; // the line and its newline
      lines++;
    },
  });
  const secs = (now() - t0) / 1000;
  const client = process.cpuUsage(client0);
  const cpuSecs = (readCpuTicks(execdPid) - cpu0) / 100;
  const proxySecs = proxyPids.length ? (sumTicks(proxyPids) - proxy0) / 100 : NaN;
  Atomics.store(new Int32Array(stop), 0, 1);
  Atomics.notify(new Int32Array(stop), 0);
  const { max, samples } = await sampled;
  await worker.terminate();
  if (r.error) throw new Error(`stream command failed: ${JSON.stringify(r.error)}`);
  const expectBytes = bytesWanted + bytesWanted / 100;
  return {
    bytes, lines, expect_bytes: expectBytes, seconds: secs, mb_per_s: bytes / 1e6 / secs,
    rss_before_kb: rssBefore, rss_max_kb: Math.max(max, rssBefore), rss_after_kb: readRssKb(execdPid), samples,
    execd_cpu_seconds: cpuSecs, client_cpu_seconds: (client.user + client.system) / 1e6,
    docker_proxy_cpu_seconds: proxySecs, docker_proxy_processes: proxyPids.length,
  };
}

// -- main ------------------------------------------------------------------------------
const started = new Date().toISOString();
let exitCode = 0;
try {
  await waitHealth();
  log(`server pid ${server.pid} on 127.0.0.1:${port}, node ${node}, image ${args.image}`);
  const sbx = await Sandbox.create(createOpts());
  live.push(sbx);
  const container = `sandbox-${sbx.id}`;
  const info = (await docker("GET", `/containers/${container}/json`)).json;
  const top = (await docker("GET", `/containers/${container}/top?ps_args=${encodeURIComponent("-eo pid,args")}`)).json;
  const execdRow = top.Processes.find((p) => /opensandbox\/execd/.test(p[1]));
  if (!execdRow) throw new Error(`no execd process in ${container}: ${JSON.stringify(top.Processes)}`);
  const execdPid = Number(execdRow[0]);
  const execdCmd = execdRow[1];
  log(`sandbox ${sbx.id}: execd is host pid ${execdPid} (${execdCmd}); processes: ${top.Processes.map((p) => p[1]).join(" | ")}`);

  log(`round trip: ${args.runs}x commands.run("echo hi"), ${args.execRuns}x docker exec ...`);
  const rt = await roundTrip(sbx, container);

  log(`streaming ${args.streamMb} MB of stdout ...`);
  const st = await stream(sbx, execdPid);
  await sbx.kill();
  await sbx.close();
  live.splice(live.indexOf(sbx), 1);

  log(`create-to-ready: ${args.createRuns} runs each (+1 warm-up) ...`);
  const mirror = mirrorBody(info, runId);
  const ctr = await createToReady(mirror);

  const result = { started, cores: os.cpus().length, load: os.loadavg(), image: args.image, sdk: sdkPkg.version, execd: execdCmd, round_trip: rt, create_to_ready: ctr, stream: st };
  if (args.json) console.log(JSON.stringify(result, null, 2));
  const pass = (b) => (b ? "ok" : "MISSED");
  console.log(`execd benchmarks, ${started}, ${os.cpus().length} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}, image ${args.image}, SDK ${sdkPkg.version}`);
  console.log(`round trip  commands.run("echo hi") x${args.runs}: p50 ${f1(rt.sdk_p50)} ms, p90 ${f1(rt.sdk_p90)} ms, p99 ${f1(rt.sdk_p99)} ms, min ${f1(rt.sdk_min)} ms`);
  console.log(`            same POST /command with plain fetch, p50: SDK's path (host port + /proxy/44772) ${f1(rt.raw_fetch_p50.via_loopback)} ms, host port without /proxy ${f1(rt.raw_fetch_p50.host_port)} ms, container IP ${f1(rt.raw_fetch_p50.container_ip)} ms`);
  console.log(`            docker exec sh -c "echo hi" x${rt.docker_exec_n}: p50 ${f1(rt.docker_exec_p50)} ms, p90 ${f1(rt.docker_exec_p90)} ms`);
  console.log(`            RATIO docker exec p50 / SDK p50 = ${f1(rt.speedup)}x (target >= 5x: ${pass(rt.speedup >= 5)}); SDK p50 target <= 10 ms: ${pass(rt.sdk_p50 <= 10)}`);
  console.log(`create-to-ready x${args.createRuns}: raw Engine API create+start p50 ${f1(ctr.raw_p50)} ms (create ${f1(ctr.raw_create_p50)}, start ${f1(ctr.raw_start_p50)})`);
  console.log(`            raw create+start, then ping through the published port every 10 ms until 2xx: p50 ${f1(ctr.raw_ready_p50)} ms (${ctr.raw_ready_pings_p50} pings)`);
  for (const [k, label] of [
    ["sdk200", "SDK, 200 ms ping interval (default)"],
    ["sdk10", "SDK, 10 ms ping interval"],
    ["sdkgate", "what-if, SDK pinging only once getInfo says Running (10 ms)"],
  ]) {
    const s = ctr[k];
    console.log(`            ${label}: p50 ${f1(s.p50)} ms, p90 ${f1(s.p90)} ms = POST ${f1(s.post_p50)} + endpoints ${f1(s.endpoints_p50)} + to first ping ok ${f1(s.to_first_ping_ok_p50)} (${s.pings_p50} pings) [p50 each]`);
    console.log(`            RATIO ${k} p50 / raw create+start p50 = ${s.ratio.toFixed(2)} (target <= 1.15: ${pass(s.ratio <= 1.15)}); / raw create+start+ping p50 = ${s.ratio_ready.toFixed(2)}`);
  }
  console.log(`stream      ${f1(st.bytes / 1e6)} MB in ${st.lines} lines (expected ${f1(st.expect_bytes / 1e6)} MB): ${f1(st.seconds)} s, ${f1(st.mb_per_s)} MB/s; CPU: execd ${f1(st.execd_cpu_seconds)} s, this Node client (SDK parsing + handler) ${f1(st.client_cpu_seconds)} s, docker-proxy of the execd port (${st.docker_proxy_processes} processes) ${f1(st.docker_proxy_cpu_seconds)} s`);
  console.log(`            execd VmRSS before ${f1(st.rss_before_kb / 1024)} MiB, max ${f1(st.rss_max_kb / 1024)} MiB (${st.samples} samples), after ${f1(st.rss_after_kb / 1024)} MiB (target max < 32 MiB: ${pass(st.rss_max_kb < 32 * 1024)})`);
  if (st.bytes !== st.expect_bytes) {
    console.log(`            WARNING: received ${st.bytes} bytes, expected ${st.expect_bytes}`);
    exitCode = 1;
  }
} catch (err) {
  log(`failed: ${err.stack ?? err}`);
  try {
    log(fs.readFileSync(path.join(dir, "server.log"), "utf8").split("\n").slice(-30).join("\n"));
  } catch {
    /* ignore */
  }
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
