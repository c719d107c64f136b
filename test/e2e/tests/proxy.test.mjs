// A service started inside the sandbox is reachable through getEndpoint(port)
// (bridge mode: host:<mapped execd port>/proxy/<port>, through execd's
// reverse proxy; port 8080 has its own published host port). The endpoint's
// headers go with every request to it (execd's access token), as the
// endpoint contract says.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";

import { BUSYBOX_IMAGE, createSandbox, eventually, killAll } from "./helpers.mjs";

const T = { timeout: 3 * 60_000 };

async function fetchText(url, init) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** URL and headers of a sandbox port, from the endpoint API. */
async function service(sbx, port) {
  const ep = await sbx.getEndpoint(port);
  return { ep, url: await sbx.getEndpointUrl(port), headers: ep.headers ?? {} };
}

describe("service endpoints", () => {
  const sandboxes = [];
  after(() => killAll(sandboxes));

  test("python3 -m http.server 8000 via getEndpoint(8000)", T, async () => {
    const sbx = await createSandbox(sandboxes, { metadata: { tag: "e2e-proxy" } });
    const marker = `served-from-sandbox-${Date.now()}`;
    await sbx.files.writeFiles([
      { path: "/srv/www/hello.txt", data: marker },
      { path: "/srv/www/big.bin", data: new Uint8Array(2 * 1024 * 1024).fill(97) },
    ]);
    const bg = await sbx.commands.run("python3 -m http.server 8000 --bind 127.0.0.1 --directory /srv/www", {
      background: true,
    });
    assert.ok(bg.id);

    const { ep, url, headers } = await service(sbx, 8000);
    assert.ok(!ep.endpoint.includes("://"));
    assert.ok(ep.endpoint.endsWith("/8000") || ep.endpoint.endsWith(":8000"), ep.endpoint);
    assert.ok(headers["X-EXECD-ACCESS-TOKEN"], JSON.stringify(ep));

    const r = await eventually(
      async () => {
        const x = await fetchText(`${url}/hello.txt`, { headers });
        return x.status === 200 ? x : null;
      },
      { what: `GET ${url}/hello.txt`, timeoutMs: 20_000 },
    );
    assert.equal(r.body, marker);

    // Query strings and bigger bodies pass through.
    const big = await fetch(`${url}/big.bin?x=1&y=2`, { headers });
    assert.equal(big.status, 200);
    const buf = new Uint8Array(await big.arrayBuffer());
    assert.equal(buf.length, 2 * 1024 * 1024);
    assert.ok(buf.every((b) => b === 97));

    const missing = await fetchText(`${url}/nope.txt`, { headers });
    assert.equal(missing.status, 404);
    // Without the endpoint's headers execd refuses.
    assert.equal((await fetchText(`${url}/hello.txt`)).status, 401);

    // The request reached the server in the sandbox (its access log).
    const logs = await sbx.commands.getBackgroundCommandLogs(bg.id);
    assert.ok(logs.content.includes("GET /hello.txt"), logs.content);

    // A port nobody listens on gives a 502 from the proxy.
    const port8001 = await service(sbx, 8001);
    const closed = await fetchText(port8001.url, { headers: port8001.headers });
    assert.equal(closed.status, 502);
  });

  test("a POST with a body through the proxy (python echo server)", T, async () => {
    const sbx = await createSandbox(sandboxes, { metadata: { tag: "e2e-proxy-post" } });
    const server = [
      "import http.server",
      "class H(http.server.BaseHTTPRequestHandler):",
      "    def do_POST(self):",
      "        n = int(self.headers.get('Content-Length', 0))",
      "        body = self.rfile.read(n)",
      "        out = (self.path + '|' + self.headers.get('X-Forwarded-For', '') + '|').encode() + body",
      "        self.send_response(201)",
      "        self.send_header('Content-Type', 'text/plain')",
      "        self.send_header('Content-Length', str(len(out)))",
      "        self.end_headers()",
      "        self.wfile.write(out)",
      "http.server.ThreadingHTTPServer(('127.0.0.1', 9000), H).serve_forever()",
    ].join("\n");
    await sbx.files.writeFiles([{ path: "/opt/echo.py", data: server }]);
    await sbx.commands.run("python3 /opt/echo.py", { background: true });
    const { url, headers } = await service(sbx, 9000);
    const r = await eventually(
      async () => {
        const x = await fetchText(`${url}/echo/path?q=1`, { method: "POST", body: "payload-123", headers });
        return x.status === 201 ? x : null;
      },
      { what: "POST through the proxy", timeoutMs: 20_000 },
    );
    const [path, xff, body] = r.body.split("|");
    assert.equal(path, "/echo/path?q=1");
    assert.ok(xff.length > 0, "X-Forwarded-For set by the proxy");
    assert.equal(body, "payload-123");
  });

  test("port 8080 is published directly", T, async () => {
    const sbx = await createSandbox(sandboxes, { metadata: { tag: "e2e-proxy-8080" } });
    await sbx.files.writeFiles([{ path: "/srv/p/index.txt", data: "port-8080-ok" }]);
    await sbx.commands.run("python3 -m http.server 8080 --directory /srv/p", { background: true });
    const ep = await sbx.getEndpoint(8080);
    assert.match(ep.endpoint, /^[^/]+:\d+$/);
    const url = await sbx.getEndpointUrl(8080);
    const r = await eventually(
      async () => {
        const x = await fetchText(`${url}/index.txt`);
        return x.status === 200 ? x : null;
      },
      { what: `GET ${url}/index.txt`, timeoutMs: 20_000 },
    );
    assert.equal(r.body, "port-8080-ok");
  });

  test(`busybox httpd via getEndpoint(8000) (${BUSYBOX_IMAGE})`, T, async () => {
    const sbx = await createSandbox(sandboxes, { image: BUSYBOX_IMAGE, metadata: { tag: "e2e-proxy-bb" } });
    await sbx.files.writeFiles([{ path: "/www/index.html", data: "busybox-httpd-ok" }]);
    await sbx.commands.run("httpd -f -p 127.0.0.1:8000 -h /www", { background: true });
    const { url, headers } = await service(sbx, 8000);
    const r = await eventually(
      async () => {
        const x = await fetchText(`${url}/index.html`, { headers });
        return x.status === 200 ? x : null;
      },
      { what: `GET ${url}/index.html`, timeoutMs: 20_000 },
    );
    assert.equal(r.body, "busybox-httpd-ok");
  });
});
