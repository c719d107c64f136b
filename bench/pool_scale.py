#!/usr/bin/env python3
"""Pools at scale (issue 13): 50 concurrent claims, an idle member's cost,
GET latency during a refill.

idle:   one pool with one idle member; `docker stats --no-stream` of the
        member's container(s) --samples times, 2 s apart (memory, CPU %).
claims: a pool of 50 (bufferMin = bufferMax = poolMax = 50), filled; then
        50 threads, each with its own connection, POST /v1/sandboxes with
        poolRef at once and poll GET every --poll-ms until Running; wall =
        first POST sent -> last GET that shows Running. Floor: 50 threads,
        each with its own Engine API connection, create+start the server's
        bridge-mode body at once (raw, then ours, then raw again: the floor
        is the median of the two raw rounds). All must be Running; claims
        served cold are counted.
refill: one Running sandbox GET in a loop (own keep-alive connection, 1 ms
        pause): p99 while nothing happens (idle), against p99 during a
        refill of 20 members (POST /pools bufferMin = bufferMax = 20 ->
        available 20), then the pool is deleted and its members gone;
        --rounds rounds of (idle, refill), p99 over all samples of each
        kind. Target: p99(refill)/p99(idle) <= 2.
cluster: (--only cluster, not in the default run) claims/s through three
        nodes against one: 1 then 3 servers (plain TCP between them, one
        Docker daemon), a pool of --cluster-claims (bufferMin = bufferMax =
        poolMax) filled (each node its share), then --cluster-threads
        threads, each with its own connection to node i % nodes, claim it
        empty; claims/s = claims / (first POST sent -> last 202). Every 202
        must say Running (warm, served by the node or by a peer in one hop).
        A third run sends every claim to the first of three nodes: two
        thirds are forwarded to the peers (one hop each).
Everything the bench made is removed at the end (also on failure).
"""

import argparse
import json
import subprocess
import threading
import time
import uuid

import benchlib as B


def wait_pool(client, name, available, timeout_s=300.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st, payload = client.call("GET", f"/v1/pools/{name}")
        if st == 200 and json.loads(payload)["status"]["available"] \
                >= available:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"pool {name} has not {available} idle members")


def node_containers(node):
    out = subprocess.run(["docker", "ps", "-q", "--filter",
                          f"label=opensandbox.io/node={node}"],
                         capture_output=True, text=True).stdout
    return out.split()


def wait_containers(node, n, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if len(node_containers(node)) == n:
            return
        time.sleep(0.2)
    raise RuntimeError(f"node {node} has not {n} containers")


def pool_body(name, size, image=B.IMAGE):
    return {"name": name,
            "template": {"image": {"uri": image}, "entrypoint": B.ENTRYPOINT,
                         "resourceLimits": {}},
            "capacitySpec": {"bufferMax": size, "bufferMin": size,
                             "poolMax": size, "poolMin": 0}}


def parallel(n, work):
    """Runs work(i) in n threads released together; (first, last, results)."""
    barrier = threading.Barrier(n + 1)
    res = [None] * n
    errs = []

    def run(i):
        try:
            barrier.wait()
            res[i] = work(i)
        except Exception as e:  # reported below
            errs.append(e)

    ts = [threading.Thread(target=run, args=(i,), daemon=True)
          for i in range(n)]
    for t in ts:
        t.start()
    barrier.wait()
    for t in ts:
        t.join()
    if errs:
        raise errs[0]
    return res


def bench_idle(server, client, samples):
    st, payload = client.call("POST", "/v1/pools", pool_body("idle", 1))
    if st != 201:
        raise RuntimeError(f"POST /v1/pools: {st} {payload[:300]!r}")
    wait_pool(client, "idle", 1)
    time.sleep(2)  # past the member's start
    names = node_containers(server.node)
    rows = []
    for _ in range(samples):
        out = subprocess.run(
            ["docker", "stats", "--no-stream", "--format",
             "{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.PIDs}}"] + names,
            capture_output=True, text=True).stdout
        rows.extend(line.split("\t") for line in out.splitlines())
        time.sleep(2)
    client.call("DELETE", "/v1/pools/idle")
    wait_containers(server.node, 0)
    return rows


def bench_claims(server, client, docker, floor, run_id, n, poll_s):
    st, payload = client.call("POST", "/v1/pools", pool_body("fifty", n))
    if st != 201:
        raise RuntimeError(f"POST /v1/pools: {st} {payload[:300]!r}")
    t0 = time.monotonic()
    wait_pool(client, "fifty", n, timeout_s=600)
    fill_s = time.monotonic() - t0
    B.log(f"pool of {n} filled in {fill_s:.1f} s")

    def raw_round(tag):
        ports = [B.take_host_ports(2) for _ in range(n)]
        dockers = [B.Docker() for _ in range(n)]
        try:
            def work(i):
                t = time.perf_counter()
                dt, cid = dockers[i].create_start(
                    f"osb-bench-raw-{run_id}-{tag}-{i}",
                    floor.body(run_id, ports[i]))
                return t, t + dt, cid
            res = parallel(n, work)
        finally:
            for p in ports:
                B.give_back_host_ports(p)
        wall = max(r[1] for r in res) - min(r[0] for r in res)
        for d, r in zip(dockers, res):
            d.remove(r[2])
            d.close()
        return wall

    raw1 = raw_round("a")
    B.log(f"raw round 1: {B.fmt_ms(raw1)}")
    clients = [B.Client(server.port) for _ in range(n)]
    for c in clients:
        c.conn.connect()

    def claim(i):
        c = clients[i]
        t = time.perf_counter()
        st, payload = c.call("POST", "/v1/sandboxes",
                             {"extensions": {"poolRef": "fifty"},
                              "timeout": 600})
        if st != 202:
            raise RuntimeError(f"claim: {st} {payload[:300]!r}")
        doc = json.loads(payload)
        end = c.wait_running(doc["id"], poll_s=poll_s)
        return t, end, doc["id"], doc["status"]["message"]

    res = parallel(n, claim)
    ours = max(r[1] for r in res) - min(r[0] for r in res)
    running = sum(1 for r in res if client.state(r[2])["state"] == "Running")
    cold = sum(1 for r in res if "no idle member" in r[3])
    st, payload = client.call("GET", "/v1/pools/fifty")
    status = json.loads(payload)["status"]
    B.log(f"50 claims: {B.fmt_ms(ours)}, {running} Running, {cold} cold, "
          f"pool status {status}")
    for r in res:
        client.delete(r[2])
    for c in clients:
        c.close()
    client.call("DELETE", "/v1/pools/fifty")
    wait_containers(server.node, 0, timeout_s=300)
    raw2 = raw_round("b")
    B.log(f"raw round 2: {B.fmt_ms(raw2)}")
    return {"raw": [raw1, raw2], "ours": ours, "running": running,
            "cold": cold, "fill_s": fill_s, "status": status}


class Prober(threading.Thread):
    def __init__(self, port, sid):
        super().__init__(daemon=True)
        self.client = B.Client(port)
        self.client.conn.connect()
        self.sid = sid
        self.samples = []
        self.stop_ev = threading.Event()
        self.error = None

    def run(self):
        try:
            while not self.stop_ev.is_set():
                t0 = time.perf_counter()
                st, _ = self.client.call("GET", f"/v1/sandboxes/{self.sid}")
                t1 = time.perf_counter()
                if st != 200:
                    raise RuntimeError(f"probe GET answered {st}")
                self.samples.append((t0, t1 - t0))
                time.sleep(0.001)
        except Exception as e:
            self.error = e
        finally:
            self.client.close()

    def window(self, a, b):
        return [dt for (t, dt) in self.samples if a <= t <= b]

    def stop(self):
        self.stop_ev.set()
        self.join()
        if self.error:
            raise self.error


def bench_refill(server, client, rounds, size, idle_s):
    sid = client.create()
    client.wait_running(sid)
    prober = Prober(server.port, sid)
    prober.start()
    idle, busy, durations = [], [], []
    try:
        for k in range(rounds):
            a = time.perf_counter()
            time.sleep(idle_s)
            idle.extend(prober.window(a, time.perf_counter()))
            a = time.perf_counter()
            st, payload = client.call("POST", "/v1/pools",
                                      pool_body(f"refill{k}", size))
            if st != 201:
                raise RuntimeError(f"POST /v1/pools: {st} {payload[:300]!r}")
            b = wait_pool(client, f"refill{k}", size)
            busy.extend(prober.window(a, b))
            durations.append(b - a)
            B.log(f"refill {k + 1}/{rounds}: {size} members in {b - a:.1f} s")
            client.call("DELETE", f"/v1/pools/refill{k}")
            wait_containers(server.node, 1)
    finally:
        prober.stop()
        client.delete(sid)
    return idle, busy, durations


def cluster_up(servers, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ok = True
        for srv in servers:
            st, payload = srv.client().call("GET", "/v1/cluster/nodes")
            up = [m for m in json.loads(payload)["nodes"]
                  if m["state"] in ("up", "self")] if st == 200 else []
            ok = ok and len(up) == len(servers)
        if ok:
            return
        time.sleep(0.1)
    raise RuntimeError("the nodes did not join")


def bench_cluster(binary, nodes, claims, threads, through_one=False):
    cports = [B.free_port() for _ in range(nodes)]
    seeds = ", ".join(f'"127.0.0.1:{p}"' for p in cports)
    servers = [B.Server(runtime="docker", name=f"bench-poolc{i}",
                        binary=binary,
                        extra_config=f'listen = "127.0.0.1:{cports[i]}"\n'
                                     f"seeds = [{seeds}]\nplaintext = true\n"
                                     if nodes > 1 else "")
               for i in range(nodes)]
    ids = []
    try:
        for srv in servers:
            srv.start()
        if nodes > 1:
            cluster_up(servers)
        client = servers[0].client()
        st, payload = client.call("POST", "/v1/pools",
                                  pool_body("spread", claims))
        if st != 201:
            raise RuntimeError(f"POST /v1/pools: {st} {payload[:300]!r}")
        wait_pool(client, "spread", claims, timeout_s=600)
        per = [claims // threads + (1 if i < claims % threads else 0)
               for i in range(threads)]
        clients = [B.Client(servers[0 if through_one else i % nodes].port)
                   for i in range(threads)]
        for c in clients:
            c.conn.connect()

        def work(i):
            out = []
            for _ in range(per[i]):
                t = time.perf_counter()
                st, payload = clients[i].call(
                    "POST", "/v1/sandboxes",
                    {"extensions": {"poolRef": "spread"}, "timeout": 600})
                if st != 202:
                    raise RuntimeError(f"claim: {st} {payload[:300]!r}")
                doc = json.loads(payload)
                out.append((t, time.perf_counter(), doc["id"],
                            doc["status"]["state"]))
            return out

        res = [x for xs in parallel(threads, work) for x in xs]
        ids = [r[2] for r in res]
        wall = max(r[1] for r in res) - min(r[0] for r in res)
        running = sum(1 for r in res if r[3] == "Running")
        owners = {}
        for srv in servers:
            owners[srv.node] = sum(1 for sid in ids
                                   if node_containers_named(srv.node, sid))
        for c in clients:
            c.close()
        B.log(f"{nodes} node(s): {claims} claims in {B.fmt_ms(wall)}, "
              f"{running} Running in their 202, served by {owners}")
        return claims / wall, running, owners
    finally:
        for sid in ids:
            servers[0].client().delete(sid)
        if servers and servers[0].proc is not None:
            servers[0].client().call("DELETE", "/v1/pools/spread")
        for srv in servers:
            srv.stop()


def node_containers_named(node, sid):
    out = subprocess.run(["docker", "ps", "-q", "--filter",
                          f"label=opensandbox.io/node={node}", "--filter",
                          f"name=sandbox-{sid}"],
                         capture_output=True, text=True).stdout
    return bool(out.split())


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    ap.add_argument("--only", choices=["idle", "claims", "refill", "cluster"])
    ap.add_argument("--cluster-claims", type=int, default=30)
    ap.add_argument("--cluster-threads", type=int, default=6)
    ap.add_argument("--claims", type=int, default=50)
    ap.add_argument("--refill", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=5.0)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--poll-ms", type=float, default=10.0)
    args = ap.parse_args()
    B.install_sigterm_handler()
    B.check_image()
    if args.only == "cluster":
        one = bench_cluster(args.server_bin, 1, args.cluster_claims,
                            args.cluster_threads)
        three = bench_cluster(args.server_bin, 3, args.cluster_claims,
                              args.cluster_threads)
        hop = bench_cluster(args.server_bin, 3, args.cluster_claims,
                            args.cluster_threads, through_one=True)
        print(f"pool_scale: docker {B.docker_version()}")
        print(f"{args.cluster_claims} claims over {args.cluster_threads} "
              "connections, a pool of as many (filled):")
        for name, (rate, running, owners) in (
                ("1 node", one), ("3 nodes", three),
                ("3 nodes, all through the first", hop)):
            print(f"  {name}: {rate:.1f} claims/s, {running}/"
                  f"{args.cluster_claims} Running in the 202, served by "
                  + ", ".join(str(v) for v in owners.values()))
        print(f"  RATIO claims/s 3 nodes / 1 node = {three[0] / one[0]:.2f}"
              f"; all through one of 3 / 1 node = {hop[0] / one[0]:.2f}")
        return
    run_id = uuid.uuid4().hex[:12]
    server = B.Server(runtime="docker", name="bench-poolscale",
                      binary=args.server_bin)
    docker = B.Docker()
    report = []
    try:
        server.start()
        client = server.client()
        if args.only in (None, "idle"):
            rows = bench_idle(server, client, args.samples)
            report.append("idle member (docker stats --no-stream, "
                          f"{args.samples} samples 2 s apart):")
            for r in rows:
                report.append("  " + "  ".join(r))
        if args.only in (None, "claims"):
            sid = client.create()
            client.wait_running(sid)
            floor = B.FloorBody().mirror(docker.inspect(f"sandbox-{sid}"))
            client.delete(sid)
            docker.wait_gone(f"sandbox-{sid}")
            c = bench_claims(server, client, docker, floor, run_id,
                             args.claims, args.poll_ms / 1000.0)
            raw = sorted(c["raw"])[len(c["raw"]) // 2] if len(c["raw"]) == 1 \
                else sum(c["raw"]) / len(c["raw"])
            report.append(f"{args.claims} concurrent claims on a pool of "
                          f"{args.claims} (filled in {c['fill_s']:.1f} s):")
            report.append(f"  raw create+start x{args.claims} at once: "
                          f"{B.fmt_ms(c['raw'][0])}, {B.fmt_ms(c['raw'][1])}"
                          f" (mean {B.fmt_ms(raw)})")
            report.append(f"  claims POST -> all Running: {B.fmt_ms(c['ours'])}"
                          f"  ({c['running']}/{args.claims} Running, "
                          f"{c['cold']} served cold)")
            report.append(f"  RATIO wall(claims)/wall(raw) = "
                          f"{c['ours'] / raw:.3f}")
        if args.only in (None, "refill"):
            idle, busy, durations = bench_refill(
                server, client, args.rounds, args.refill, args.idle_s)
            i99, b99 = B.pct(idle, 99), B.pct(busy, 99)
            report.append(f"GET /v1/sandboxes/{{id}} during a refill of "
                          f"{args.refill} ({args.rounds} rounds, refills took "
                          + ", ".join(f"{d:.1f} s" for d in durations) + "):")
            report.append(f"  idle:   n={len(idle)} p50 "
                          f"{B.fmt_ms(B.pct(idle, 50))} p99 {B.fmt_ms(i99)}")
            report.append(f"  refill: n={len(busy)} p50 "
                          f"{B.fmt_ms(B.pct(busy, 50))} p99 {B.fmt_ms(b99)}")
            ratio = b99 / i99
            report.append(f"  RATIO p99(refill)/p99(idle) = {ratio:.2f}  "
                          f"(target <= 2: {'met' if ratio <= 2 else 'MISSED'})")
        client.close()
    finally:
        try:
            docker.close()
            B.remove_raw_containers(run_id)
        finally:
            server.stop()
    print(f"pool_scale: docker {B.docker_version()}")
    for line in report:
        print(line)


if __name__ == "__main__":
    main()
