// Test helpers: an emulator per test file, a small JSON client, a watch
// reader that waits for events (no sleeps: every wait is for an event,
// bounded by a timeout that fails the test).

import http from "node:http";
import https from "node:https";
import { startEmulator } from "../lib/emulator.mjs";

/// Fast lifecycle delays for tests.
export const fastDelays = { scheduleMs: 5, startMs: 5, pullMs: 2, initMs: 5, terminateMs: 10, backoffMs: 30, restartMs: 10 };

export async function start(options = {}) {
  return startEmulator({ delays: fastDelays, bookmarkIntervalMs: 0, ...options });
}

/// A request to `base` + `path`; resolves {status, headers, body} (body
/// parsed as JSON when it is JSON).
export function request(base, method, path, body, { headers = {}, agentOptions = {}, contentType } = {}) {
  const url = new URL(path, base);
  const mod = url.protocol === "https:" ? https : http;
  const payload = body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = mod.request(url, {
      method,
      headers: {
        Accept: "application/json",
        ...(payload !== null ? { "Content-Type": contentType ?? "application/json", "Content-Length": Buffer.byteLength(payload) } : {}),
        ...headers,
      },
      ...agentOptions,
    }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode, headers: res.headers, body: parsed });
      });
    });
    req.on("error", reject);
    if (payload !== null)
      req.write(payload);
    req.end();
  });
}

/// A client bound to one emulator's API and admin URLs.
export function client(emu) {
  const api = (method, path, body, opts) => request(emu.url, method, path, body, opts);
  const admin = async (method, path, body) => {
    const r = await request(emu.adminUrl, method, `/_emulator${path}`, body);
    if (r.status !== 200)
      throw new Error(`admin ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { api, admin };
}

/// A pod manifest.
export function pod(name, { labels, image = "busybox:1.36", ...spec } = {}) {
  return {
    apiVersion: "v1", kind: "Pod",
    metadata: { name, ...(labels ? { labels } : {}) },
    spec: { containers: [{ name: "main", image, command: ["sleep", "3600"] }], ...spec },
  };
}

/// Opens a watch (`path` with its query); `events` fills as lines arrive.
/// `next(pred)` resolves with the first event (after the ones already
/// taken) that matches `pred`, and rejects after `timeoutMs`.
export function watch(base, path, { headers = {}, timeoutMs = 5000 } = {}) {
  const url = new URL(path, base);
  const events = [];
  const waiters = [];
  let taken = 0;
  let ended = false;
  let res = null;
  let buf = "";
  const check = () => {
    for (const w of [...waiters]) {
      for (let i = w.from; i < events.length; ++i) {
        if (w.pred(events[i])) {
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(w.timer);
          w.resolve(events[i]);
          break;
        }
      }
      if (ended && waiters.includes(w)) {
        waiters.splice(waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.reject(new Error(`watch ended before the event came; got ${JSON.stringify(events.map((e) => e.type))}`));
      }
    }
  };
  const req = http.get(url, { headers: { Accept: "application/json", ...headers } }, (r) => {
    res = r;
    r.setEncoding("utf8");
    r.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim())
          events.push(JSON.parse(line));
      }
      check();
    });
    // "close" also comes when the server drops the connection mid-stream.
    r.on("error", () => {});
    r.on("close", () => {
      ended = true;
      check();
    });
  });
  req.on("error", () => {
    ended = true;
    check();
  });
  const w = {
    events,
    get ended() {
      return ended;
    },
    status: () => res?.statusCode,
    /// The next event matching `pred` after those taken so far.
    next(pred = () => true) {
      return new Promise((resolve, reject) => {
        const waiter = {
          from: taken, pred,
          resolve: (ev) => {
            taken = events.indexOf(ev) + 1;
            resolve(ev);
          },
          reject,
        };
        waiter.timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching watch event in ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => [e.type, e.object?.metadata?.name, e.object?.status?.phase]))}`));
        }, timeoutMs);
        waiters.push(waiter);
        check();
      });
    },
    /// Resolves when the server ends the stream.
    end() {
      return new Promise((resolve, reject) => {
        if (ended)
          return resolve();
        const t = setTimeout(() => reject(new Error("watch did not end")), timeoutMs);
        const poll = setInterval(() => {
          if (ended) {
            clearInterval(poll);
            clearTimeout(t);
            resolve();
          }
        }, 5);
      });
    },
    close() {
      req.destroy();
    },
  };
  return w;
}

/// Waits (by watching) until pod `name` in `ns` satisfies `pred`.
export async function waitForPod(emu, ns, name, pred, timeoutMs = 5000) {
  const w = watch(emu.url, `/api/v1/namespaces/${ns}/pods?watch=1&fieldSelector=metadata.name%3D${name}`, { timeoutMs });
  try {
    return (await w.next((e) => e.type !== "DELETED" && pred(e.object))).object;
  } finally {
    w.close();
  }
}
