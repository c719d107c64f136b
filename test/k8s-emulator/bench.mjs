#!/usr/bin/env node
// Measures what the runtime's "list of 10,000 sandboxes" benchmarks need
// from the emulator: creating N pods over HTTP (keep-alive, C requests in
// flight) while a watch is open, until the watch has seen every pod
// Running; then one full list and one watch from resourceVersion 0.
// The emulator runs as its own process (emulator.mjs), as for the
// runtime's tests; extra arguments go to it (e.g. --no-events).
// Usage: node bench.mjs [N=10000] [C=16] [emulator args...]

import { spawn } from "node:child_process";
import http from "node:http";
import readline from "node:readline";

const n = Number(process.argv[2] ?? 10000);
const concurrency = Number(process.argv[3] ?? 16);
const child = spawn(process.execPath, [new URL("emulator.mjs", import.meta.url).pathname, "--bookmark-interval-ms", "0", ...process.argv.slice(4)],
                    { stdio: ["ignore", "pipe", "inherit"] });
const info = JSON.parse(await new Promise((resolve) => readline.createInterface({ input: child.stdout }).once("line", resolve)));
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const url = new URL(info.url);
const startRv = (await (await fetch(`${info.url}/api/v1/namespaces/default/pods`)).json()).metadata.resourceVersion;

function post(i) {
  const body = JSON.stringify({
    apiVersion: "v1", kind: "Pod",
    metadata: { name: `sb-${i}`, labels: { "opensandbox.io/id": `sb-${i}`, app: "bench" }, annotations: { "opensandbox.io/spec": "{}" } },
    spec: { containers: [{ name: "main", image: "busybox:1.36", command: ["sleep", "3600"], env: [{ name: "A", value: "1" }] }] },
  });
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: "/api/v1/namespaces/default/pods", method: "POST", agent,
                               headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 201 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(body);
  });
}

function timedGet(path) {
  const t = performance.now();
  return new Promise((resolve, reject) => {
    http.get({ host: url.hostname, port: url.port, path, agent }, (res) => {
      let size = 0;
      res.on("data", (c) => (size += c.length));
      res.on("end", () => resolve({ ms: performance.now() - t, size }));
    }).on("error", reject);
  });
}

// A watch counting pods that reached Running.
let running = 0;
let events = 0;
const seen = new Set();
let allRunning;
const done = new Promise((r) => (allRunning = r));
http.get({ host: url.hostname, port: url.port, path: `/api/v1/namespaces/default/pods?watch=1&resourceVersion=${startRv}` }, (res) => {
  let buf = "";
  res.setEncoding("utf8");
  res.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const ev = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      ++events;
      if (ev.object.status?.phase === "Running" && !seen.has(ev.object.metadata.name)) {
        seen.add(ev.object.metadata.name);
        if (++running === n)
          allRunning();
      }
    }
  });
});

const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: concurrency }, async () => {
  while (next < n)
    await post(next++);
}));
const created = performance.now() - t0;
await done;
const allUp = performance.now() - t0;
const list = await timedGet("/api/v1/namespaces/default/pods");
const listSel = await timedGet("/api/v1/namespaces/default/pods?labelSelector=app%3Dbench&limit=500");
const mem = Number(/VmRSS:\s+(\d+)/.exec((await import("node:fs")).readFileSync(`/proc/${child.pid}/status`, "utf8"))[1]) / 1024;
console.log(JSON.stringify({
  pods: n, concurrency,
  createMs: Math.round(created), createPerSecond: Math.round(n / (created / 1000)),
  allRunningMs: Math.round(allUp), watchEvents: events,
  fullListMs: Math.round(list.ms), fullListMiB: +(list.size / 2 ** 20).toFixed(1),
  firstPage500Ms: Math.round(listSel.ms), rssMiB: Math.round(mem),
}));
agent.destroy();
child.kill("SIGTERM");
await new Promise((r) => child.on("exit", r));
process.exit(0);
