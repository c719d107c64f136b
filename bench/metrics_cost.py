#!/usr/bin/env python3
"""What metrics cost (issue 15): metrics on vs off in the same run, and the
render time of GET /metrics on a node holding 10,000 sandboxes.

Two single-node servers with the fake runtime run side by side, one with
`[metrics] enabled = true`, one with `false`; only one is loaded at a time,
in alternating order, ROUNDS times:
  - GET /v1/sandboxes/{id} throughput: wrk -t2 -c32 -d<duration>;
  - create latency: --creates sequential POST /v1/sandboxes on one
    keep-alive connection (control plane only: the fake runtime).
Prints every round, the medians and the ratio on/off (target: within 5%).
Then creates --sandboxes sandboxes on the metrics node and times
--n sequential GET /metrics on one keep-alive connection (target: p50
under 5 ms), with GET /health on the same connection as the floor.

Usage: bench/metrics_cost.py [--rounds 5] [--duration 5s] [--creates 200]
                             [--sandboxes 10000] [--n 200]
Env:   OSB_SERVER_BIN (default build-deploy/opensandbox-server)
"""

import argparse
import re
import statistics
import subprocess
import sys
import time

from cluster_lib import (API_KEY, Client, Fleet, create_many,
                         install_sigterm_handler, ms, pct)


# Host network: no host ports to reserve, so that one node holds 10,000
# sandboxes (the port range has room for 10,000 pairs only).
HOST_NET = '[docker]\nnetwork_mode = "host"\n'


def wrk_rps(port, path, duration):
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{duration}", "-H",
         f"OPEN-SANDBOX-API-KEY: {API_KEY}", f"http://127.0.0.1:{port}{path}"],
        check=True, capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not m or "Non-2xx" in out:
        raise RuntimeError(f"wrk on {path}: {out}")
    return float(m.group(1))


def create_latencies(port, n):
    c = Client(port)
    c.call("GET", "/health")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.create()
        out.append(time.perf_counter() - t0)
    c.close()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--creates", type=int, default=200)
    ap.add_argument("--sandboxes", type=int, default=10000)
    ap.add_argument("--n", type=int, default=200)
    args = ap.parse_args()
    install_sigterm_handler()
    with Fleet() as fleet:
        on = fleet.add("bench-metrics-on",
                       extra_toml=HOST_NET + "[metrics]\nenabled = true\n")
        off = fleet.add("bench-metrics-off",
                        extra_toml=HOST_NET + "[metrics]\nenabled = false\n")
        ids = {n.name: Client(n.port).create() for n in (on, off)}
        time.sleep(0.5)
        rps = {on.name: [], off.name: []}
        lat = {on.name: [], off.name: []}
        for r in range(args.rounds):
            order = (on, off) if r % 2 == 0 else (off, on)
            for node in order:
                rps[node.name].append(wrk_rps(
                    node.port, f"/v1/sandboxes/{ids[node.name]}",
                    args.duration))
            for node in order:
                lat[node.name].append(statistics.median(
                    create_latencies(node.port, args.creates)))
            print(f"round {r + 1}: GET rps on {rps[on.name][-1]:.0f} "
                  f"off {rps[off.name][-1]:.0f}; create p50 on "
                  f"{ms(lat[on.name][-1])} off {ms(lat[off.name][-1])}",
                  flush=True)
        g_on, g_off = (statistics.median(rps[n.name]) for n in (on, off))
        c_on, c_off = (statistics.median(lat[n.name]) for n in (on, off))
        paired = statistics.median(
            a / b for a, b in zip(rps[on.name], rps[off.name]))
        print(f"GET /v1/sandboxes/{{id}} (wrk -t2 -c32 -d{args.duration}), "
              f"median of {args.rounds}: on {g_on:.0f} req/s, off "
              f"{g_off:.0f} req/s, on/off {g_on / g_off:.3f} (median of the "
              f"per-round ratios {paired:.3f})")
        print(f"create (fake runtime, {args.creates} sequential), median of "
              f"round medians: on {ms(c_on)}, off {ms(c_off)}, on/off "
              f"{c_on / c_off:.3f}")

        existing = args.rounds * args.creates + 1
        _, secs = create_many([on.port], max(0, args.sandboxes - existing),
                              threads=16, procs=2)
        c = Client(on.port)
        status, body = c.call("GET", "/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics: {status} {body[:200]!r}")
        m = re.search(rb'opensandbox_sandboxes\{state="Running"\} (\d+)', body)
        running = int(m.group(1)) if m else -1
        for _ in range(20):  # warm-up
            c.call("GET", "/metrics")
        t_metrics = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            c.call("GET", "/metrics")
            t_metrics.append(time.perf_counter() - t0)
        t_health = []
        for _ in range(args.n):
            t0 = time.perf_counter()
            c.call("GET", "/health")
            t_health.append(time.perf_counter() - t0)
        # The server's own view: its duration histogram of the route.
        _, text = c.call("GET", "/metrics")
        c.close()
        def sample(name):
            m = re.search(rb"\n" + re.escape(name.encode()) + rb" ([0-9.e+-]+)",
                          text)
            return float(m.group(1)) if m else float("nan")
        srv_sum = sample('opensandbox_http_request_duration_seconds_sum'
                         '{route="/metrics"}')
        srv_n = sample('opensandbox_http_request_duration_seconds_count'
                       '{route="/metrics"}')
    print(f"GET /metrics server-side (its own duration histogram, arrival to "
          f"answer incl. render): mean {ms(srv_sum / srv_n)} over {srv_n:.0f}")
    print(f"GET /metrics with {running} Running sandboxes ({len(body)} bytes, "
          f"{args.n} sequential, one keep-alive connection): p50 "
          f"{ms(pct(t_metrics, 50))} p90 {ms(pct(t_metrics, 90))} p99 "
          f"{ms(pct(t_metrics, 99))}; floor GET /health p50 "
          f"{ms(pct(t_health, 50))}")
    ok = (pct(t_metrics, 50) < 0.005 and abs(g_on / g_off - 1) <= 0.05
          and abs(c_on / c_off - 1) <= 0.05)
    print(f"targets (render p50 < 5 ms, on/off within 5%): "
          f"{'OK' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
