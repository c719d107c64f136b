#!/usr/bin/env python3
"""List latency on a 3-node fleet holding 10,000 sandboxes, fake runtime.

Creates 10,000 sandboxes over the 3 nodes (32 keep-alive connections, round
robin), waits until every node's directory lists all of them, then runs 300
sequential GET /v1/sandboxes (default page) on one keep-alive connection to
one node and prints p50/p90/p99 (target: p50 < 10 ms). Also a filtered
list (metadata that matches nothing, so the whole directory is scanned) and
the floor: GET /health (no actors) on the same connection.

Usage: bench/cluster_list_10k.py [--sandboxes 10000] [--n 300]
Env:   OSB_SERVER_BIN (default build-deploy/opensandbox-server)
"""

import argparse
import json
import sys
import time

from cluster_lib import (Client, Fleet, create_many, install_sigterm_handler,
                         ms, pct)


def timed(client, path, n):
    out = []
    body = b""
    for _ in range(n):
        t0 = time.perf_counter()
        status, body = client.call("GET", path)
        out.append(time.perf_counter() - t0)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return out, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandboxes", type=int, default=10000)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--node", type=int, default=3, help="which node to list on")
    args = ap.parse_args()
    install_sigterm_handler()
    with Fleet() as fleet:
        first = fleet.add("bench-1")
        fleet.add("bench-2", seeds=[first.address])
        fleet.add("bench-3", seeds=[first.address])
        fleet.wait_joined()
        ports = [n.port for n in fleet.nodes]
        _, secs = create_many(ports, args.sandboxes, threads=32, procs=4)
        t0 = time.perf_counter()
        fleet.wait_directory(args.sandboxes)
        settle = time.perf_counter() - t0
        placed = [len(n.owned_ids()) for n in fleet.nodes]
        node = fleet.nodes[args.node - 1]
        c = Client(node.port)
        timed(c, "/v1/sandboxes", 30)  # warm-up
        t_list, body = timed(c, "/v1/sandboxes", args.n)
        page = json.loads(body)
        t_filter, _ = timed(c, "/v1/sandboxes?metadata=bench%3Dnone", args.n)
        t_health, _ = timed(c, "/health", args.n)  # floor: HTTP only
        c.close()
    print(f"cluster list: 3 nodes, {args.sandboxes} sandboxes (created in "
          f"{secs:.1f} s, directories complete {settle:.2f} s later, placed "
          f"{placed}), fake runtime")
    print(f"  GET /v1/sandboxes on {node.name}, {args.n} sequential requests, one "
          f"keep-alive connection, page of {len(page['items'])} of "
          f"{page['pagination']['totalItems']}:")
    print(f"    p50 {ms(pct(t_list, 50))}  p90 {ms(pct(t_list, 90))}  "
          f"p99 {ms(pct(t_list, 99))}")
    print(f"  GET /v1/sandboxes?metadata=bench=none (matches nothing, scans all): "
          f"p50 {ms(pct(t_filter, 50))}  p90 {ms(pct(t_filter, 90))}")
    print(f"  floor GET /health on the same connection: p50 {ms(pct(t_health, 50))}; "
          f"list - floor (p50): {ms(pct(t_list, 50) - pct(t_health, 50))}")
    verdict = "OK" if pct(t_list, 50) < 0.010 else "MISSED"
    print(f"  target p50 < 10 ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
