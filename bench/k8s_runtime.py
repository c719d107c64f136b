#!/usr/bin/env python3
"""The Kubernetes runtime's control plane against the API-server emulator.

Starts test/k8s-emulator (--no-events) and the server with
runtime.type = "kubernetes", then measures:
  1. create -> Running: --creates sandboxes one after the other, each from
     its POST to the server's own `running` phase (createPhases), against the
     floor of the same run: a pod POSTed straight to the emulator, from the
     POST to Ready seen on a watch (the emulator's own pod start). The
     overhead is p50(server) - p50(floor).
  2. CPU per create: the server's utime+stime (/proc) over a second batch
     of --creates POSTs until all are Running (one count every 100 ms).
  3. list of --sandboxes sandboxes: that many pods are made in the emulator
     at once (POST /_emulator/pods/bulk, our labels and annotations), the
     server restarts with an empty store and adopts them, then --n
     GET /v1/sandboxes (default page) on one keep-alive connection: p50/p90.
     Target: p50 < 10 ms.
  4. watch connections the emulator sees open for the server: 1 expected.
Also the create's answer: POST -> 202 of the creates of 1, p50/p90 (the 202
waits for the pod's POST since issue 19). --ack-only stops after 1.
Usage: bench/k8s_runtime.py [--creates 30] [--sandboxes 10000] [--n 300]
                            [--ack-only]
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib as B

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CREATE = {"image": {"uri": "python:3.12"}, "entrypoint": ["sleep", "infinity"],
          "timeout": 3600, "resourceLimits": {"cpu": "100m"}}


def parse_time(ts):
    """RFC 3339 with Z and optional fraction -> seconds."""
    from datetime import datetime, timezone
    ts = ts.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in ts else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(ts, fmt).replace(tzinfo=timezone.utc).timestamp()


class Emulator:
    def __init__(self, extra=()):
        self.proc = subprocess.Popen(
            ["node", os.path.join(REPO, "test/k8s-emulator/emulator.mjs"),
             "--no-events", "--exit-on-stdin-close", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        info = json.loads(self.proc.stdout.readline())
        self.url, self.kubeconfig = info["url"], info["kubeconfig"]
        self.api_port = int(self.url.rsplit(":", 1)[1])
        self.admin_port = int(info["admin"].rsplit(":", 1)[1])

    def call(self, port, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request(method, path, body=None if body is None else json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def admin(self, method, path, body=None):
        return self.call(self.admin_port, method, path, body)

    def pod_start_floor(self, name):
        """Seconds from POSTing a plain pod to seeing it Ready on a watch."""
        w = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        st, data = self.call(self.api_port, "GET",
                             "/api/v1/namespaces/default/pods?limit=1")
        rv = json.loads(data)["metadata"]["resourceVersion"]
        w.request("GET", "/api/v1/namespaces/default/pods?watch=1"
                  f"&resourceVersion={rv}&fieldSelector=metadata.name%3D{name}")
        resp = w.getresponse()
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"restartPolicy": "Never",
                        "initContainers": [{"name": "init", "image": "busybox:1"}],
                        "containers": [{"name": "main", "image": "python:3.12"}]}}
        t0 = time.perf_counter()
        st, _ = self.call(self.api_port, "POST", "/api/v1/namespaces/default/pods",
                          pod)
        assert st == 201, st
        while True:
            line = resp.readline()
            if not line:
                raise RuntimeError("watch ended")
            ev = json.loads(line)
            conds = ev["object"].get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                t1 = time.perf_counter()
                break
        w.close()
        self.call(self.api_port, "DELETE",
                  f"/api/v1/namespaces/default/pods/{name}?gracePeriodSeconds=0")
        return t1 - t0

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


class Server:
    def __init__(self, binary, kubeconfig):
        self.dir = tempfile.mkdtemp(prefix="osb-bench-k8s-")
        self.port = B.free_port()
        self.binary = binary
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(f"""[server]
host = "127.0.0.1"
port = {self.port}
api_key = "bench"
[log]
level = "WARNING"
[runtime]
type = "kubernetes"
[kubernetes]
kubeconfig_path = "{kubeconfig}"
[store]
path = "{self.dir}/store.db"
[cluster]
node_name = "bench-k8s"
""")
        self.proc = None
        self.conn = None

    def start(self):
        self.proc = subprocess.Popen(
            [self.binary, "--config", os.path.join(self.dir, "config.toml")],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "server.log"), "a"))
        for _ in range(600):
            try:
                if self.get("/ready")[0] == 200:
                    return
            except OSError:
                self.conn = None
            time.sleep(0.05)
        raise RuntimeError("server not ready")

    def call(self, method, path, body=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=60)
        self.conn.request(method, path,
                          body=None if body is None else json.dumps(body),
                          headers={"OPEN-SANDBOX-API-KEY": "bench",
                                   "Content-Type": "application/json"})
        r = self.conn.getresponse()
        return r.status, r.read()

    def get(self, path):
        return self.call("GET", path)

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, wipe_store=False):
        self.proc.kill()
        self.proc.wait()
        self.conn = None
        if wipe_store:
            for s in ("", "-wal", "-shm"):
                p = os.path.join(self.dir, "store.db" + s)
                if os.path.exists(p):
                    os.remove(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--creates", type=int, default=30)
    ap.add_argument("--sandboxes", type=int, default=10000)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    ap.add_argument("--ack-only", action="store_true")
    args = ap.parse_args()
    B.install_sigterm_handler()
    emu = Emulator()
    srv = Server(args.server_bin, emu.kubeconfig)
    try:
        srv.start()
        # -- 1 + 2: create -> Running, against the emulator's own pod start
        floor, ours, ids, acks = [], [], [], []
        for i in range(args.creates):
            floor.append(emu.pod_start_floor(f"floor-{i}"))
            t0 = time.perf_counter()
            st, data = srv.call("POST", "/v1/sandboxes", CREATE)
            acks.append(time.perf_counter() - t0)
            assert st == 202, (st, data[:300])
            sid = json.loads(data)["id"]
            ids.append(sid)
            while True:
                st, data = srv.get(f"/v1/sandboxes/{sid}")
                doc = json.loads(data)
                if doc["status"]["state"] == "Running":
                    break
                assert doc["status"]["state"] == "Pending", doc["status"]
                time.sleep(0.005)
            phases = doc["createPhases"]
            ours.append(parse_time(phases["running"])
                        - parse_time(phases["accepted"]))
        for sid in ids:
            srv.call("DELETE", f"/v1/sandboxes/{sid}")
        B.log(f"create POST -> 202 ({args.creates} sequential): p50 "
              f"{B.fmt_ms(B.pct(acks, 50))} p90 {B.fmt_ms(B.pct(acks, 90))}")
        if args.ack_only:
            return
        # CPU: a batch of creates without per-sandbox polling (one count
        # every 100 ms), from the first POST until all are Running.
        time.sleep(1)
        cpu0 = srv.cpu_seconds()
        ids = []
        for i in range(args.creates):
            st, data = srv.call("POST", "/v1/sandboxes", CREATE)
            assert st == 202, (st, data[:300])
            ids.append(json.loads(data)["id"])
        while True:
            st, data = srv.get("/v1/sandboxes?state=Running&pageSize=1")
            if json.loads(data)["pagination"]["totalItems"] >= args.creates:
                break
            time.sleep(0.1)
        cpu = srv.cpu_seconds() - cpu0
        for sid in ids:
            srv.call("DELETE", f"/v1/sandboxes/{sid}")
        p50f, p50o = B.pct(floor, 50), B.pct(ours, 50)
        B.log(f"create -> Running ({args.creates} sequential): server p50 "
              f"{B.fmt_ms(p50o)} p90 {B.fmt_ms(B.pct(ours, 90))}; emulator pod "
              f"start p50 {B.fmt_ms(p50f)} p90 {B.fmt_ms(B.pct(floor, 90))}; "
              f"overhead p50 {B.fmt_ms(p50o - p50f)}")
        B.log(f"server CPU per create ({args.creates} POSTs, then Running; "
              f"utime+stime): {cpu / args.creates * 1000:.2f} ms")
        # -- 3: list of many sandboxes, adopted from their pods
        srv.stop(wipe_store=True)
        st, pod = emu.call(emu.api_port, "GET", "/api/v1/namespaces/default/pods")
        template = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "labels": {"opensandbox.io/node": "bench-k8s",
                           "opensandbox.io/runtime-host": "default"},
                "annotations": {}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "sandbox", "image": "python:3.12"}]}}
        # The annotations the runtime writes (spec and its hash from a real
        # sandbox of this run would do; a fresh one is made the same way).
        srv.start()
        st, data = srv.call("POST", "/v1/sandboxes", CREATE)
        sid = json.loads(data)["id"]
        while json.loads(srv.get(f"/v1/sandboxes/{sid}")[1])["status"]["state"] != "Running":
            time.sleep(0.01)
        st, data = emu.call(emu.api_port, "GET",
                            f"/api/v1/namespaces/default/pods/sandbox-{sid}")
        annotations = json.loads(data)["metadata"]["annotations"]
        srv.call("DELETE", f"/v1/sandboxes/{sid}")
        srv.stop(wipe_store=True)
        template["metadata"]["annotations"] = annotations
        t0 = time.perf_counter()
        st, data = emu.admin("POST", "/_emulator/pods/bulk",
                             {"namespace": "default", "count": args.sandboxes,
                              "prefix": "sandbox-bench-", "template": template,
                              "labelIndex": "opensandbox.io/id"})
        assert st == 200, (st, data[:300])
        B.log(f"{args.sandboxes} pods made in the emulator in "
              f"{time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        srv.start()
        while True:
            st, data = srv.get("/v1/sandboxes?pageSize=1")
            if st == 200 and json.loads(data)["pagination"]["totalItems"] >= args.sandboxes:
                break
            time.sleep(0.1)
        B.log(f"server restarted with an empty store and adopted "
              f"{args.sandboxes} sandboxes in {time.perf_counter() - t0:.1f} s "
              f"(RSS {srv_rss(srv)} MiB)")
        health, lists = [], []
        for _ in range(args.n):
            t = time.perf_counter()
            srv.get("/health")
            health.append(time.perf_counter() - t)
            t = time.perf_counter()
            st, data = srv.get("/v1/sandboxes")
            lists.append(time.perf_counter() - t)
            assert st == 200
        B.log(f"GET /v1/sandboxes ({args.sandboxes} sandboxes, default page): "
              f"p50 {B.fmt_ms(B.pct(lists, 50))} p90 {B.fmt_ms(B.pct(lists, 90))}"
              f" (GET /health p50 {B.fmt_ms(B.pct(health, 50))}); target p50 < 10 ms")
        # -- 4: watches
        st, data = emu.admin("GET", "/_emulator/watches")
        watches = json.loads(data)
        watches = watches.get("watches", watches) if isinstance(watches, dict) else watches
        pods = [w for w in watches if isinstance(w, dict) and w.get("resource") == "pods"]
        B.log(f"watch connections open on the emulator: {len(watches)}, "
              f"{len(pods)} of pods (for {args.sandboxes} sandboxes; the other "
              f"watches the replicas' leases)")
    finally:
        try:
            srv.stop()
        except Exception:
            pass
        shutil.rmtree(srv.dir, ignore_errors=True)
        emu.stop()


def srv_rss(srv):
    with open(f"/proc/{srv.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


if __name__ == "__main__":
    sys.exit(main())
