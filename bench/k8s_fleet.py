#!/usr/bin/env python3
"""Replica loss on Kubernetes: time from a replica's kill -9 until its
sandboxes are served again, against the API-server emulator.

Starts test/k8s-emulator (--no-events: pods become Ready by its emulated
kubelet) and two server replicas (runtime.type = "kubernetes", one CAF
cluster on 127.0.0.1, plaintext, each its own store and Lease). Each round:
--per-kill sandboxes are created until the victim owns at least two (the pod
label opensandbox.io/node says which replica owns one), the victim is
killed -9, and the survivor is polled every 20 ms until every sandbox the
victim owned answers GET 200 and its pod is labelled with the survivor (the
owner moved). The victim then comes back under a new name with a fresh
store, as a Deployment's replacement pod would, and the next round kills
it. Printed: p50 and p99 over --kills rounds of the time served again after
the kill, with the lease duration as the floor (the lease runs out at most
one duration after the kill), and the ratio
(served - death - lease) against the target of 5 s.
Usage: bench/k8s_fleet.py [--kills 10] [--lease 3] [--renew 1]
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time

import benchlib as B
from k8s_runtime import CREATE, Emulator


class Replica:
    def __init__(self, binary, kubeconfig, name, listen, seeds, lease, renew):
        self.dir = tempfile.mkdtemp(prefix="osb-bench-fleet-")
        self.port = B.free_port()
        self.binary = binary
        self.name = name
        seeds_toml = ", ".join(f'"127.0.0.1:{p}"' for p in seeds)
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(f"""[server]
host = "127.0.0.1"
port = {self.port}
api_key = "bench"
[log]
level = "INFO"
[runtime]
type = "kubernetes"
[kubernetes]
kubeconfig_path = "{kubeconfig}"
lease_duration_seconds = {lease}
lease_renew_seconds = {renew}
[store]
path = "{self.dir}/store.db"
[cluster]
node_name = "{name}"
plaintext = true
listen = "127.0.0.1:{listen}"
seeds = [{seeds_toml}]
""")
        self.proc = subprocess.Popen(
            [binary, "--config", os.path.join(self.dir, "config.toml")],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "server.log"), "a"))

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request(method, path,
                      body=None if body is None else json.dumps(body),
                      headers={"OPEN-SANDBOX-API-KEY": "bench",
                               "Content-Type": "application/json"})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def wait_up(self, members, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                st, data = self.call("GET", "/v1/cluster/nodes")
                if st == 200:
                    up = {n["name"] for n in json.loads(data)["nodes"]
                          if n["state"] in ("up", "self")}
                    if set(members) <= up:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not see {members} up")

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def wipe(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def owners(emu):
    st, data = emu.admin("GET", "/_emulator/state?resource=pods")
    result = {}
    for p in json.loads(data)["objects"]["pods"]:
        labels = p["metadata"].get("labels", {})
        if "opensandbox.io/id" in labels:
            result[labels["opensandbox.io/id"]] = labels["opensandbox.io/node"]
    return result


def lease_held(emu, node):
    st, data = emu.admin("GET", "/_emulator/state?resource=leases")
    for xs in json.loads(data)["objects"].values():
        for lease in xs:
            if lease["metadata"]["name"] == f"opensandbox-{node}":
                return lease["spec"].get("holderIdentity", "").startswith(node + "/")
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--per-kill", type=int, default=4)
    ap.add_argument("--lease", type=int, default=3)
    ap.add_argument("--renew", type=int, default=1)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()
    emu = Emulator()
    run = f"{os.getpid()}"
    p0, p1 = B.free_port(), B.free_port()
    survivor = Replica(args.server_bin, emu.kubeconfig, f"bench-fleet-{run}-s",
                       p0, [p1], args.lease, args.renew)
    victim = None
    served, lost_counts = [], []
    try:
        for k in range(args.kills):
            victim = Replica(args.server_bin, emu.kubeconfig,
                             f"bench-fleet-{run}-v{k}", p1, [p0],
                             args.lease, args.renew)
            victim.wait_up([survivor.name, victim.name])
            survivor.wait_up([survivor.name, victim.name])
            while not lease_held(emu, victim.name):
                time.sleep(0.05)
            ids = []
            while sum(1 for i in ids if owners(emu).get(i) == victim.name) < 2:
                for _ in range(args.per_kill):
                    st, data = victim.call("POST", "/v1/sandboxes", CREATE)
                    assert st == 202, (st, data[:300])
                    ids.append(json.loads(data)["id"])
                for i in ids:
                    while True:
                        st, data = survivor.call("GET", f"/v1/sandboxes/{i}")
                        if st == 200 and json.loads(data)["status"]["state"] == "Running":
                            break
                        time.sleep(0.02)
            lost = [i for i, n in owners(emu).items() if n == victim.name]
            death = time.perf_counter()
            victim.kill()
            while True:
                now = owners(emu)
                if all(now.get(i) == survivor.name for i in lost) and all(
                        survivor.call("GET", f"/v1/sandboxes/{i}")[0] == 200
                        for i in lost):
                    break
                time.sleep(0.02)
            t = time.perf_counter() - death
            served.append(t)
            lost_counts.append(len(lost))
            B.log(f"kill {k + 1}: {len(lost)} sandboxes of {victim.name} served "
                  f"again by {survivor.name} after {t * 1000:.0f} ms")
            victim.wipe()
            victim = None
        lease = float(args.lease)
        p50, p99 = B.pct(served, 50), B.pct(served, 99)
        B.log(f"served again after a kill -9 ({args.kills} kills, "
              f"{sum(lost_counts)} sandboxes): p50 {p50 * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms; floor = lease duration {lease:.0f} s "
              f"(renewed every {args.renew} s)")
        B.log(f"beyond the lease: p50 {(p50 - lease) * 1000:.0f} ms, "
              f"p99 {(p99 - lease) * 1000:.0f} ms; ratio to the 5 s target: "
              f"p50 {(p50 - lease) / 5:.3f}, p99 {(p99 - lease) / 5:.3f}")
    finally:
        for r in (victim, survivor):
            if r is not None:
                try:
                    r.kill()
                except Exception:
                    pass
                r.wipe()
        emu.stop()


if __name__ == "__main__":
    main()
