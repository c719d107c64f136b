// Shared helpers of the e2e tests: connection settings from the environment
// (set by test/e2e/run.sh) and sandbox creation with guaranteed cleanup.
import assert from "node:assert/strict";

import { ConnectionConfig, Sandbox } from "@alibaba-group/opensandbox";

export const DOMAIN = process.env.OSB_E2E_DOMAIN ?? "127.0.0.1:8080";
export const API_KEY = process.env.OSB_E2E_API_KEY ?? "";
export const IMAGE = process.env.OSB_E2E_IMAGE ?? "opensandbox/debian:bookworm";
export const BUSYBOX_IMAGE =
  process.env.OSB_E2E_BUSYBOX_IMAGE ?? "opensandbox/busybox:latest";
export const CODE_IMAGE =
  process.env.OSB_E2E_CODE_IMAGE ?? "opensandbox/code-interpreter:latest";
/** The server's [secure_runtime] type ("" = none; run.sh sets it). */
export const SECURE_RUNTIME = process.env.OSB_E2E_SECURE_RUNTIME ?? "";
/**
 * How much longer latency bounds are: gVisor's ptrace platform starts
 * processes several times slower (docs/gvisor.md).
 */
export const SLOWDOWN = SECURE_RUNTIME === "gvisor" ? 3 : 1;

/** The environment every upstream E2E sandbox gets. */
export const E2E_ENV = {
  E2E_TEST: "true",
  EXECD_API_GRACE_SHUTDOWN: "3s",
  EXECD_JUPYTER_IDLE_POLL_INTERVAL: "200ms",
};

export function connectionConfig(extra = {}) {
  return new ConnectionConfig({
    domain: DOMAIN,
    protocol: "http",
    apiKey: API_KEY,
    requestTimeoutSeconds: 180,
    ...extra,
  });
}

/**
 * Creates a sandbox with the upstream test defaults; `track` (an array) gets
 * it so that the caller's finally/after can kill it.
 */
export async function createSandbox(track, opts = {}) {
  const sbx = await Sandbox.create({
    connectionConfig: connectionConfig(),
    image: IMAGE,
    timeoutSeconds: 10 * 60,
    readyTimeoutSeconds: 60,
    healthCheckPollingInterval: 200,
    entrypoint: ["tail", "-f", "/dev/null"],
    resource: { cpu: "1", memory: "1Gi" },
    env: E2E_ENV,
    ...opts,
  });
  track?.push(sbx);
  return sbx;
}

/** Kills and closes every sandbox in `list` (best effort, never throws). */
export async function killAll(list) {
  for (const sbx of list.splice(0)) {
    try {
      await sbx.kill();
    } catch {
      // already gone
    }
    try {
      await sbx.close();
    } catch {
      // ignore
    }
  }
}

export function assertRecentTimestampMs(ts, toleranceMs = 60_000) {
  assert.equal(typeof ts, "number", `timestamp ${ts} is not a number`);
  const delta = Math.abs(Date.now() - ts);
  assert.ok(delta <= toleranceMs, `timestamp ${ts} is ${delta} ms away from now`);
}

/** Mirrors the upstream helper: "host:port" with the same port, or ".../port". */
export function assertEndpointHasPort(endpoint, port) {
  assert.ok(!endpoint.includes("://"), `endpoint has a scheme: ${endpoint}`);
  if (endpoint.includes("/")) {
    assert.ok(endpoint.endsWith(`/${port}`), `endpoint ${endpoint} must end with /${port}`);
  } else {
    const [host, p] = endpoint.split(":");
    assert.ok(host, `endpoint ${endpoint} has no host`);
    assert.equal(Number(p), port, `endpoint ${endpoint} must use port ${port}`);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually(fn, { timeoutMs = 20_000, intervalMs = 200, what = "condition" } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not reached in ${timeoutMs} ms${last ? `: ${last.message ?? last}` : ""}`);
    }
    await sleep(intervalMs);
  }
}

export function stdoutText(execution) {
  return execution.logs.stdout.map((m) => m.text).join("\n");
}

/** Collects every handler callback of one run. */
export function recordingHandlers() {
  const rec = { stdout: [], stderr: [], init: [], complete: [], errors: [], events: [], results: [] };
  rec.handlers = {
    onStdout: (m) => void rec.stdout.push({ ...m, at: Date.now() }),
    onStderr: (m) => void rec.stderr.push({ ...m, at: Date.now() }),
    onInit: (i) => void rec.init.push(i),
    onExecutionComplete: (c) => void rec.complete.push(c),
    onError: (e) => void rec.errors.push(e),
    onResult: (r) => void rec.results.push(r),
    onEvent: (ev) => void rec.events.push(ev),
  };
  return rec;
}
