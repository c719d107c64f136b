// The listeners. ApiServer serves the Kubernetes API over HTTP/1.1 or
// HTTPS (client certificates of the emulator's CA and the bearer token
// authenticate) with the fault knobs applied in front of it: frozen
// (requests hang), down (connections refused), the next N requests of a
// verb failing with a status code, a QPS limit (429). AdminServer serves
// /_emulator/... on its own plain HTTP port, up even when the API is down.

import http from "node:http";
import https from "node:https";
import fs from "node:fs";
import { Admin } from "./admin.mjs";
import { sendError, sendJson } from "./api.mjs";
import { ApiError } from "./store.mjs";

const maxBody = 3 * 1024 * 1024;

/// Reads and parses a JSON request body (null when empty).
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > maxBody) {
        reject(new ApiError(413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      if (!text.trim())
        return resolve(null);
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new ApiError(400, "BadRequest", `the body of the request was in an unknown format - accepted media types include: application/json (${e.message})`));
      }
    });
    req.on("error", reject);
  });
}

class Listener {
  constructor(handler, tlsOptions) {
    this.server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 60000;
    this.sockets = new Set();
    this.server.on(tlsOptions ? "secureConnection" : "connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    this.port = 0;
  }

  listen(host, port) {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        this.port = this.server.address().port;
        this.listening = true;
        resolve(this.port);
      });
    });
  }

  /// Stops listening and drops every connection.
  close() {
    this.listening = false;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets)
        s.destroy();
      this.sockets.clear();
    });
  }
}

export class ApiServer {
  constructor(emu) {
    this.emu = emu;
    const o = emu.options;
    const tls = emu.pki ? {
      key: fs.readFileSync(emu.pki.serverKey), cert: fs.readFileSync(emu.pki.serverCert),
      ca: fs.readFileSync(emu.pki.ca), requestCert: true, rejectUnauthorized: false,
    } : null;
    this.listener = new Listener((req, res) => this.onRequest(req, res), tls);
    this.host = o.host;
    /// [{verb, resource, count, code, retryAfterSeconds, message}]
    this.faults = [];
    /// {qps, burst, tokens, last}
    this.throttle = null;
    /// "verb resource" -> count; and the latest requests
    this.counts = new Map();
    this.log = [];
    this.logLimit = 1000;
  }

  get port() {
    return this.listener.port;
  }

  listen(host, port) {
    return this.listener.listen(host, port);
  }

  close() {
    return this.listener.listening ? this.listener.close() : Promise.resolve();
  }

  /// Takes the API down: the port refuses connections, open ones drop.
  async down() {
    await this.close();
  }

  /// Brings the API back on the same port.
  async up() {
    if (!this.listener.listening)
      await this.listener.listen(this.host, this.port);
  }

  authenticated(req) {
    const o = this.emu.options;
    if (!o.requireAuth)
      return true;
    if (req.socket.authorized)
      return true;
    const m = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    return Boolean(o.token && m && m[1].trim() === o.token);
  }

  /// The fault that applies to this request, if any (consumes one).
  takeFault(verb, plural) {
    const f = this.faults.find((x) => (x.verb === "*" || x.verb === verb)
      && (!x.resource || x.resource === plural) && x.count > 0);
    if (!f)
      return null;
    if (--f.count === 0)
      this.faults.splice(this.faults.indexOf(f), 1);
    return f;
  }

  throttled() {
    const t = this.throttle;
    if (!t)
      return false;
    const now = Date.now();
    t.tokens = Math.min(t.burst, t.tokens + ((now - t.last) / 1000) * t.qps);
    t.last = now;
    if (t.tokens < 1)
      return true;
    t.tokens -= 1;
    return false;
  }

  onRequest(req, res) {
    const url = new URL(req.url, "http://emulator");
    const route = this.emu.api.classify(req.method, url);
    const plural = route.r?.plural ?? route.plural ?? "";
    const key = `${route.verb} ${plural}`.trim();
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.log.push({ time: Date.now(), method: req.method, path: url.pathname + url.search, verb: route.verb, resource: plural });
    if (this.log.length > this.logLimit * 2)
      this.log.splice(0, this.log.length - this.logLimit);
    this.emu.whenThawed(() => this.serve(req, res, url, route, plural).catch((e) => {
      if (!res.headersSent)
        sendError(res, e);
      else
        res.destroy();
    }));
  }

  async serve(req, res, url, route, plural) {
    if (!this.authenticated(req))
      return sendJson(res, 401, { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 });
    const fault = route.kind === "resource" ? this.takeFault(route.verb, plural) : null;
    if (fault) {
      const headers = fault.retryAfterSeconds !== undefined ? { "Retry-After": String(fault.retryAfterSeconds) } : {};
      const reasons = { 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout", 409: "Conflict", 403: "Forbidden", 401: "Unauthorized" };
      req.resume();
      return sendError(res, new ApiError(fault.code, reasons[fault.code] ?? "InternalError",
                                         fault.message ?? `injected fault (k8s-emulator): ${fault.code}`,
                                         fault.retryAfterSeconds !== undefined ? { retryAfterSeconds: fault.retryAfterSeconds } : undefined), headers);
    }
    if (route.kind === "resource" && this.throttled()) {
      req.resume();
      return sendError(res, new ApiError(429, "TooManyRequests", "Too many requests, please try again later.", { retryAfterSeconds: 1 }), { "Retry-After": "1" });
    }
    const body = ["POST", "PUT", "PATCH", "DELETE"].includes(req.method) ? await readBody(req) : (req.resume(), null);
    if (["create", "update", "patch"].includes(route.verb) && body === null)
      throw new ApiError(400, "BadRequest", "the body of the request was empty");
    // A request the emulator froze after reading its body waits too.
    await new Promise((resolve) => this.emu.whenThawed(resolve));
    this.emu.api.handle(req, res, url, route, body);
  }
}

export class AdminServer {
  constructor(emu) {
    this.admin = new Admin(emu);
    this.listener = new Listener((req, res) => this.admin.onRequest(req, res, readBody), null);
  }

  get port() {
    return this.listener.port;
  }

  listen(host, port) {
    return this.listener.listen(host, port);
  }

  close() {
    return this.listener.close();
  }
}
