#!/usr/bin/env python3
"""Claims per second from a pool on Kubernetes (issue 19), against the
API-server emulator in --docker mode: member pods really run execd
--await-claim, so every claim is execd's POST /bootstrap/claim at the pod
IP plus the PATCH that marks the pod claimed.

Starts test/k8s-emulator --docker and --replicas server replicas with
runtime.type = "kubernetes" (one CAF cluster when more than one, as
bench/cluster_lib.py starts it). One pool (bufferMin = bufferMax = poolMax =
--members) is created on the first replica and filled. Each round: --members
claims (POST /v1/sandboxes with extensions.poolRef, timeout 600), from
--threads threads each with its own keep-alive connection, spread round-robin
over the replicas, all sent at once; wall = first POST sent -> last 202
received. A claim served warm answers Running in its 202; cold ones (no
idle member where it landed) are counted and reported apart. Then the
claimed sandboxes are deleted and the pool refills before the next round.
Reported: claims/s over all rounds (warm claims / summed wall), p50/p99 of
one claim's 202 latency, and the number of cold claims.

Everything the bench made is removed at the end (the pool, the sandboxes;
the emulator removes its containers when it stops).
Usage: bench/k8s_pools.py [--replicas 1] [--members 20] [--rounds 3]
                          [--threads 10] [--bin build/opensandbox-server]
"""

import argparse
import json
import os
import sys
import threading
import time

import cluster_lib as C
from k8s_runtime import Emulator

POOL = "bench-kpool"
TEMPLATE = {"image": {"uri": "opensandbox/busybox:latest"},
            "entrypoint": ["sleep", "3600"],
            "resourceLimits": {"cpu": "100m", "memory": "64Mi"}}
CLAIM = json.dumps({"extensions": {"poolRef": POOL}, "timeout": 600,
                    "env": {"BENCH": "1"}}).encode()


def runtime_toml(kubeconfig):
    return f"""[runtime]
type = "kubernetes"
execd_image = "opensandbox/execd:latest"

[kubernetes]
kubeconfig_path = "{kubeconfig}"
sandbox_create_timeout_seconds = 60

[pool]
warm_concurrency = 4
"""


def available(client):
    st, data = client.call("GET", f"/v1/pools/{POOL}")
    if st != 200:
        raise RuntimeError(f"GET pool: {st} {data[:200]!r}")
    return json.loads(data)["status"]["available"]


def wait_available(client, n, timeout_s=300.0):
    """Until the pool shows `n` idle members (with pools spread over the
    cluster every replica shows the sum over the up replicas)."""
    deadline = time.monotonic() + timeout_s
    got = 0
    while time.monotonic() < deadline:
        got = available(client)
        if got >= n:
            return got
        time.sleep(0.2)
    raise RuntimeError(f"pool {POOL} has {got} idle members, not {n}")


def claim_round(ports, n, threads):
    """`n` claims at once from `threads` threads; returns (wall, latencies,
    ids, cold)."""
    barrier = threading.Barrier(threads + 1)
    lock = threading.Lock()
    lat, ids, cold, errors = [], [], [0], []
    per = [list(range(i, n, threads)) for i in range(threads)]

    def worker(k):
        clients = {p: C.Client(p) for p in ports}
        try:
            for c in clients.values():
                c.call("GET", "/health")
            barrier.wait()
            for i in per[k]:
                port = ports[i % len(ports)]
                t0 = time.perf_counter()
                st, data = clients[port].call("POST", "/v1/sandboxes", CLAIM)
                t1 = time.perf_counter()
                if st != 202:
                    with lock:
                        errors.append(f"{st} {data[:200]!r}")
                    continue
                doc = json.loads(data)
                with lock:
                    lat.append(t1 - t0)
                    ids.append((port, doc["id"]))
                    if doc["status"]["state"] != "Running":
                        cold[0] += 1
        finally:
            for c in clients.values():
                c.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} claims failed: {errors[:3]}")
    return wall, lat, ids, cold[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--members", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=10)
    ap.add_argument("--bin", default=os.environ.get(
        "OSB_SERVER_BIN", os.path.join(C.REPO, "build", "opensandbox-server")))
    args = ap.parse_args()
    C.install_sigterm_handler()
    emu = Emulator(["--docker"])
    fleet = C.Fleet()
    made = []
    try:
        seeds = []
        for r in range(args.replicas):
            node = fleet.add(f"bench-kp-{r}", seeds=seeds, binary=args.bin,
                             log_level="WARNING",
                             runtime_toml=runtime_toml(emu.kubeconfig))
            seeds = [fleet.nodes[0].address]
            del node
        if args.replicas > 1:
            fleet.wait_joined()
        ports = [n.port for n in fleet.nodes]
        clients = [C.Client(p) for p in ports]
        body = {"name": POOL, "template": TEMPLATE,
                "capacitySpec": {"bufferMin": args.members,
                                 "bufferMax": args.members,
                                 "poolMax": args.members * 2, "poolMin": 0}}
        st, data = clients[0].call("POST", "/v1/pools",
                                   json.dumps(body).encode())
        if st != 201:
            raise RuntimeError(f"POST /v1/pools: {st} {data[:300]!r}")
        t0 = time.perf_counter()
        wait_available(clients[0], args.members)
        C.log(f"pool of {args.members} filled in "
              f"{time.perf_counter() - t0:.1f} s")
        walls, lats, colds, warm = [], [], 0, 0
        for rnd in range(args.rounds):
            wall, lat, ids, cold = claim_round(ports, args.members,
                                               args.threads)
            made.extend(ids)
            walls.append(wall)
            lats.extend(lat)
            colds += cold
            warm += len(ids) - cold
            C.log(f"round {rnd + 1}: {len(ids)} claims in {wall * 1000:.0f} ms"
                  f" ({(len(ids) - cold) / wall:.1f} warm claims/s), {cold} cold")
            by_port = {}
            for port, sid in ids:
                by_port.setdefault(port, C.Client(port)).call(
                    "DELETE", f"/v1/sandboxes/{sid}")
            for c in by_port.values():
                c.close()
            made.clear()
            if rnd + 1 < args.rounds:
                wait_available(clients[0], args.members)
        print(json.dumps({
            "replicas": args.replicas, "members": args.members,
            "rounds": args.rounds, "threads": args.threads,
            "claims_per_s": round(warm / sum(walls), 1),
            "wall_ms": [round(w * 1000) for w in walls],
            "claim_p50_ms": round(C.pct(lats, 50) * 1000, 1),
            "claim_p99_ms": round(C.pct(lats, 99) * 1000, 1),
            "cold": colds}))
        clients[0].call("DELETE", f"/v1/pools/{POOL}")
        for c in clients:
            c.close()
    finally:
        for port, sid in made:
            try:
                C.Client(port).call("DELETE", f"/v1/sandboxes/{sid}")
            except OSError:
                pass
        fleet.stop()
        # The emulator removes its pods' containers and volumes as it exits.
        emu.proc.stdin.close()
        emu.proc.wait(180)


if __name__ == "__main__":
    sys.exit(main())
