#!/usr/bin/env python3
"""Create throughput of 1 node against 3 nodes, fake runtime (control plane
only: validation, placement, the durable row, the directory replication).

Each run starts fresh nodes, then N creates (default 3000) go out over 32
keep-alive connections spread round robin over the nodes' HTTP ports, driven
by 4 client processes (the GIL of one process is slower than the server).
Prints creates/s of both and their ratio (target >= 2x), plus where the
sandboxes were placed and the CPU seconds each node used.

Usage: bench/cluster_create_throughput.py [--n 3000] [--threads 32] [--procs 4]
Env:   OSB_SERVER_BIN (default build-deploy/opensandbox-server)
"""

import argparse
import os
import sys

from cluster_lib import Fleet, create_many, install_sigterm_handler, log


def run(nodes, args):
    with Fleet() as fleet:
        first = fleet.add("bench-1")
        for i in range(2, nodes + 1):
            fleet.add(f"bench-{i}", seeds=[first.address])
        if nodes > 1:
            fleet.wait_joined()
        ports = [n.port for n in fleet.nodes]
        # Warm-up (connections, SQLite, the middleman), not counted.
        create_many(ports, min(300, args.n), threads=args.threads, procs=args.procs)
        cpu0 = [n.cpu_seconds() for n in fleet.nodes]
        pairs, secs = create_many(ports, args.n, threads=args.threads, procs=args.procs)
        cpu = [n.cpu_seconds() - c for n, c in zip(fleet.nodes, cpu0)]
        if len({sid for _, sid in pairs}) != args.n:
            raise SystemExit(f"{len(pairs)} distinct ids for {args.n} creates")
        total = args.n + min(300, args.n)
        fleet.wait_directory(total)
        owned = {n.port: n.owned_ids() for n in fleet.nodes}
        placed = [len(owned[n.port]) for n in fleet.nodes]
        forwarded = sum(1 for port, sid in pairs if sid not in owned[port])
    rate = args.n / secs
    print(f"  {nodes} node(s): {args.n} creates in {secs:.2f} s = {rate:.0f}/s; "
          f"placed {placed} (incl. warm-up); {forwarded} of {args.n} placed on "
          f"another node than the one asked; node CPU "
          f"{', '.join(f'{c:.2f}' for c in cpu)} s = {1000 * sum(cpu) / args.n:.2f} ms "
          f"per create")
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=32)
    ap.add_argument("--procs", type=int, default=4)
    args = ap.parse_args()
    install_sigterm_handler()
    print(f"cluster create throughput: {args.n} creates, {args.threads} keep-alive "
          f"connections in {args.procs} client processes, fake runtime, "
          f"{os.cpu_count()} cores")
    one = run(1, args)
    three = run(3, args)
    ratio = three / one
    verdict = "OK" if ratio >= 2 else "MISSED"
    print(f"  ratio 3 nodes / 1 node: {ratio:.2f}x  target >= 2x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
