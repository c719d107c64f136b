#!/usr/bin/env python3
"""GET latency of a sandbox owned by another node (one middleman hop) against
a sandbox owned by the node that answers, fake runtime, 2 nodes.

Node A starts alone and takes 100 creates (so it owns them); node B joins,
then takes 100 creates (least loaded, it owns those). The owners are checked
against each node's "sandbox accepted" log lines. Then one keep-alive
connection to B runs GETs in alternating blocks of local and remote ids
(2000 each, after a warm-up) and prints p50/p90/p99 of both and the
difference of the medians (target: <= 1 ms).

Usage: bench/cluster_get_latency.py [--n 2000] [--sandboxes 100]
Env:   OSB_SERVER_BIN (default build-deploy/opensandbox-server)
"""

import argparse
import sys
import time

from cluster_lib import Client, Fleet, install_sigterm_handler, log, ms, pct


def timed_gets(client, ids, n):
    out = []
    for i in range(n):
        sid = ids[i % len(ids)]
        t0 = time.perf_counter()
        client.get(sid)
        out.append(time.perf_counter() - t0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000, help="GETs per kind")
    ap.add_argument("--sandboxes", type=int, default=100)
    ap.add_argument("--block", type=int, default=100,
                    help="GETs per block; local and remote blocks alternate")
    args = ap.parse_args()
    install_sigterm_handler()
    with Fleet() as fleet:
        a = fleet.add("bench-a")
        ca = Client(a.port)
        remote_ids = [ca.create() for _ in range(args.sandboxes)]
        ca.close()
        b = fleet.add("bench-b", seeds=[a.address])
        fleet.wait_joined()
        fleet.wait_directory(args.sandboxes)
        cb = Client(b.port)
        local_ids = [cb.create() for _ in range(args.sandboxes)]
        fleet.wait_directory(2 * args.sandboxes)
        owned_a, owned_b = a.owned_ids(), b.owned_ids()
        remote = [s for s in remote_ids if s in owned_a]
        local = [s for s in local_ids if s in owned_b]
        if len(remote) != args.sandboxes or len(local) != args.sandboxes:
            log(f"placement: {len(remote)} of the first batch on A, "
                f"{len(local)} of the second on B (using those)")
        if not remote or not local:
            raise SystemExit("no sandbox of one kind; cannot compare")

        # Warm-up: connections, caches, the middleman path.
        timed_gets(cb, local, 200)
        timed_gets(cb, remote, 200)
        t_local, t_remote = [], []
        done = 0
        while done < args.n:
            k = min(args.block, args.n - done)
            t_local += timed_gets(cb, local[done % len(local):] + local, k)
            t_remote += timed_gets(cb, remote[done % len(remote):] + remote, k)
            done += k
        cb.close()

    p50_l, p50_r = pct(t_local, 50), pct(t_remote, 50)
    print(f"cluster GET latency, node B, {args.n} sequential GETs each on one "
          f"keep-alive connection, fake runtime")
    for name, xs in (("local ", t_local), ("remote", t_remote)):
        print(f"  {name} p50 {ms(pct(xs, 50))}  p90 {ms(pct(xs, 90))}  "
              f"p99 {ms(pct(xs, 99))}  ({len(xs)} GETs)")
    diff = p50_r - p50_l
    verdict = "OK" if diff <= 0.001 else "MISSED"
    print(f"  remote - local (p50): {ms(diff)}  target <= 1 ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
