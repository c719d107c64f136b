// The API-level knobs: injected faults, a QPS limit, freeze, down/up,
// request counters, state dump; and the HTTPS listener with client
// certificates and bearer tokens.

import assert from "node:assert/strict";
import fs from "node:fs";
import { after, before, test } from "node:test";
import { client, request, start, watch } from "./helpers.mjs";

let emu;
let api;
let admin;
before(async () => {
  emu = await start();
  ({ api, admin } = client(emu));
});
after(() => emu.stop());

const cms = "/api/v1/namespaces/default/configmaps";

test("the next N requests of a verb fail with the given code", async () => {
  await admin("POST", "/faults", { verb: "list", resource: "configmaps", count: 2, code: 500 });
  assert.equal((await api("GET", cms)).status, 500);
  assert.equal((await api("GET", "/api/v1/namespaces/default/secrets")).status, 200, "another resource");
  assert.equal((await api("GET", `${cms}/x`)).status, 404, "another verb");
  const second = await api("GET", cms);
  assert.equal(second.status, 500);
  assert.equal(second.body.reason, "InternalError");
  assert.equal((await api("GET", cms)).status, 200, "only two");
  await admin("POST", "/faults", { verb: "create", count: 1, code: 429, retryAfterSeconds: 2 });
  const r = await api("POST", cms, { metadata: { name: "x" } });
  assert.equal(r.status, 429);
  assert.equal(r.headers["retry-after"], "2");
  assert.equal(r.body.reason, "TooManyRequests");
  assert.equal(r.body.details.retryAfterSeconds, 2);
  assert.equal((await api("POST", cms, { metadata: { name: "x" } })).status, 201);
  await admin("POST", "/faults", { verb: "*", count: 5, code: 503 });
  assert.equal((await admin("DELETE", "/faults")).faults.length, 0);
  assert.equal((await api("GET", cms)).status, 200);
});

test("a QPS limit answers 429 with Retry-After beyond the burst", async () => {
  // A refill too slow to matter however slow the machine is.
  await admin("POST", "/throttle", { qps: 0.01, burst: 3 });
  const codes = [];
  for (let i = 0; i < 5; ++i)
    codes.push((await api("GET", cms)).status);
  await admin("DELETE", "/throttle");
  assert.deepEqual(codes, [200, 200, 200, 429, 429]);
});

test("frozen: requests hang until the thaw, then complete", async () => {
  await admin("POST", "/freeze");
  await admin("DELETE", "/requests");
  let done = false;
  const pending = api("GET", cms).then((r) => {
    done = true;
    return r;
  });
  // The request reached the emulator (counted) yet has no answer.
  for (let i = 0; i < 5000 && !(await admin("GET", "/requests")).counts["list configmaps"]; ++i)
    await new Promise((r) => setImmediate(r));
  assert.equal((await admin("GET", "/requests")).counts["list configmaps"], 1);
  assert.equal(done, false);
  await admin("POST", "/unfreeze");
  assert.equal((await pending).status, 200);
});

test("frozen: watch events wait for the thaw", async () => {
  const w = watch(emu.url, `${cms}?watch=1&resourceVersion=${emu.store.rv}`);
  await api("POST", cms, { metadata: { name: "before-freeze" } });
  await w.next();
  await admin("POST", "/freeze");
  emu.objects.create(emu.resource("", "v1", "configmaps"), "default", { metadata: { name: "while-frozen" } });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(w.events.length, 1, "nothing delivered while frozen");
  await admin("POST", "/unfreeze");
  assert.equal((await w.next()).object.metadata.name, "while-frozen");
  w.close();
});

test("down refuses connections and drops watches; up serves again on the same port", async () => {
  const w = watch(emu.url, `${cms}?watch=1&resourceVersion=${emu.store.rv}`);
  for (let i = 0; i < 5000 && emu.store.watchCount() === 0; ++i)
    await new Promise((r) => setImmediate(r));
  await admin("POST", "/down");
  await w.end();
  await assert.rejects(api("GET", cms), /ECONNREFUSED/);
  const up = await admin("POST", "/up");
  assert.equal(up.port, emu.apiServer.port);
  assert.equal((await api("GET", cms)).status, 200);
});

test("request counters and the state dump", async () => {
  await admin("DELETE", "/requests");
  await api("GET", cms);
  await api("GET", `${cms}/nope`);
  const r = await admin("GET", "/requests");
  assert.equal(r.counts["list configmaps"], 1);
  assert.equal(r.counts["get configmaps"], 1);
  assert.equal(r.recent.length, 2);
  const s = await admin("GET", "/state?resource=namespaces");
  assert.deepEqual(s.objects.namespaces.map((n) => n.metadata.name).sort(), ["default", "kube-node-lease", "kube-public", "kube-system"]);
  assert.equal(s.resourceVersion, String(emu.store.rv));
  const closed = await admin("POST", "/close-watches");
  assert.equal(typeof closed.closed, "number");
});

test("HTTPS: the emulator's CA, client certificates and bearer tokens; 401 without either", async () => {
  const tls = await start({ tls: true, token: "s3cret", requireAuth: true });
  try {
    assert.match(tls.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = fs.readFileSync(tls.pki.ca);
    const get = (opts) => request(tls.url, "GET", "/api/v1/namespaces/default/pods", undefined, opts);
    const anon = await get({ agentOptions: { ca } });
    assert.equal(anon.status, 401);
    assert.equal(anon.body.reason, "Unauthorized");
    const cert = await get({ agentOptions: { ca, cert: fs.readFileSync(tls.pki.clientCert), key: fs.readFileSync(tls.pki.clientKey) } });
    assert.equal(cert.status, 200);
    const token = await get({ agentOptions: { ca }, headers: { Authorization: "Bearer s3cret" } });
    assert.equal(token.status, 200);
    const wrong = await get({ agentOptions: { ca }, headers: { Authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    await assert.rejects(get({}), /self.signed|unable to verify|certificate/i, "an unknown CA is refused by the client");
    const kc = fs.readFileSync(tls.kubeconfig, "utf8");
    assert.match(kc, new RegExp(`server: ${tls.url}`));
    assert.match(kc, /certificate-authority-data: [A-Za-z0-9+/=]+/);
    assert.match(kc, /client-certificate-data: /);
    assert.match(kc, /client-key-data: /);
  } finally {
    await tls.stop();
  }
});

test("bulk creation of pods (benchmark setup), validated like POST", async () => {
  const template = { apiVersion: "v1", kind: "Pod", metadata: { labels: { app: "bulk" } }, spec: { containers: [{ name: "main", image: "busybox:1.36" }] } };
  const r = await admin("POST", "/pods/bulk", { count: 50, prefix: "bulk-", labelIndex: "idx", template });
  assert.equal(r.created, 50);
  const list = await api("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dbulk,idx%3D7");
  assert.deepEqual(list.body.items.map((p) => p.metadata.name), ["bulk-7"]);
  const bad = await request(emu.adminUrl, "POST", "/_emulator/pods/bulk", { count: 1, template: { spec: { containers: [{ name: "x" }] } } });
  assert.equal(bad.status, 422);
});
