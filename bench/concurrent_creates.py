#!/usr/bin/env python3
"""10 concurrent creates: wall time against raw Engine API, and GET latency
of an existing sandbox while the creates are in flight.

floor: 10 threads, each with its own Engine API connection, do create+start
       (the server's bridge-mode body) at once; wall time = first create sent
       -> last start returned.
ours:  10 threads, each with its own connection, POST /v1/sandboxes at once,
       then poll GET /v1/sandboxes/{id} every --poll-ms until Running;
       wall time = first POST sent -> last GET that shows Running.
Each round runs raw then ours; --rounds rounds (default 3); the ratio is
median(ours wall)/median(raw wall) (target < 1.5).

GET latency: one more thread GETs a Running sandbox (made before the rounds)
on its own keep-alive connection, 1 ms pause between GETs, (a) while nothing
else happens ("idle"), (b) while the 10 raw creates are in flight (the server
is idle but dockerd loads the 2 cores: the floor for "busy machine"), and
(c) while our 10 creates are in flight. Only GETs sent inside the in-flight
window count. Prints p50/max of each and the ratios against idle.
"""

import argparse
import statistics
import sys
import threading
import time
import uuid

import benchlib as B


class Prober(threading.Thread):
    """GETs one sandbox in a loop; keeps (send time, latency)."""

    def __init__(self, port, sid, pause_s=0.001):
        super().__init__(daemon=True)
        self.client = B.Client(port)
        self.client.conn.connect()
        self.sid = sid
        self.pause_s = pause_s
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
                time.sleep(self.pause_s)
        except Exception as e:  # reported by the main thread
            self.error = e
        finally:
            self.client.close()

    def stop(self):
        self.stop_ev.set()
        self.join()
        if self.error:
            raise self.error

    def window(self, a, b):
        return [dt for (t, dt) in self.samples if a <= t <= b]


WORKERS = []  # every worker thread, joined before the final cleanup
BARRIERS = []  # aborted on the way out, so that no worker waits forever


def run_parallel(n, prepare, work):
    """Runs work(i, ctx) in n threads released together; returns
    (first start, last end, per-thread (start, end) list)."""
    ctxs = [prepare(i) for i in range(n)]
    barrier = threading.Barrier(n + 1)
    BARRIERS.append(barrier)
    res = [None] * n
    errs = []

    def body(i):
        try:
            barrier.wait()
            if B.STOP.is_set():
                return
            t0 = time.perf_counter()
            out = work(i, ctxs[i])
            res[i] = (t0, time.perf_counter(), out)
        except Exception as e:
            errs.append(e)

    ts = [threading.Thread(target=body, args=(i,), daemon=True)
          for i in range(n)]
    WORKERS.extend(ts)
    for t in ts:
        t.start()
    barrier.wait()
    for t in ts:
        t.join()
    return ctxs, res, errs


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="concurrent creates (10)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--poll-ms", type=float, default=5.0,
                    help="GET poll interval of each of the n threads (5)")
    ap.add_argument("--idle-gets", type=int, default=1000)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()
    B.check_image()

    run_id = uuid.uuid4().hex[:12]
    server = B.Server(runtime="docker", name="bench-conc",
                      binary=args.server_bin)
    docker = B.Docker()
    raw_walls, ours_walls, ours_each = [], [], []
    lat_idle, lat_raw, lat_ours = [], [], []
    cpu_raw = cpu_ours = 0.0
    try:
        server.start()
        c = server.client()
        probe_sid = c.create()
        c.wait_running(probe_sid)
        c.close()
        # The probe's container is the model of the floor's body.
        model = docker.inspect(f"sandbox-{probe_sid}")
        floor = B.FloorBody().mirror(model)

        # Idle GET latency, same loop as under load.
        p = Prober(server.port, probe_sid)
        p.start()
        while len(p.samples) < args.idle_gets:
            time.sleep(0.05)
        p.stop()
        lat_idle = [dt for _, dt in p.samples]

        for rnd in range(args.rounds):
            # -- raw: n concurrent create+start
            def prep_raw(i):
                d = B.Docker()
                d.conn.connect()
                return d, B.take_host_ports(2)

            def work_raw(i, ctx):
                d, ports = ctx
                return d.create_start(f"osb-bench-raw-{run_id}-{rnd}-{i}",
                                      floor.body(run_id, ports))[1]

            p = Prober(server.port, probe_sid)
            p.start()
            c0 = server.cpu_seconds()
            ctxs, res, errs = run_parallel(args.n, prep_raw, work_raw)
            cpu_raw += server.cpu_seconds() - c0
            p.stop()
            for d, ports in ctxs:
                B.give_back_host_ports(ports)
                d.close()
            if errs:
                raise errs[0]
            a = min(r[0] for r in res)
            b = max(r[1] for r in res)
            raw_walls.append(b - a)
            lat_raw += p.window(a, b)
            if rnd == 0:
                differences = B.container_differences(
                    docker.inspect(res[0][2]), model)
            for r in res:
                docker.remove(r[2])

            # -- ours: n concurrent POST, each polls until Running
            def prep_ours(i):
                cl = server.client()
                cl.conn.connect()
                return cl

            def work_ours(i, cl):
                t0 = time.perf_counter()
                sid = cl.create()
                t1 = cl.wait_running(sid, poll_s=args.poll_ms / 1000.0)
                return sid, t1 - t0

            p = Prober(server.port, probe_sid)
            p.start()
            c0 = server.cpu_seconds()
            ctxs, res, errs = run_parallel(args.n, prep_ours, work_ours)
            cpu_ours += server.cpu_seconds() - c0
            p.stop()
            if errs:
                for cl in ctxs:
                    cl.close()
                raise errs[0]
            a = min(r[0] for r in res)
            b = max(r[1] for r in res)
            ours_walls.append(b - a)
            ours_each += [r[2][1] for r in res]
            lat_ours += p.window(a, b)
            # Delete (not timed), in parallel, and wait until gone.
            _, _, derrs = run_parallel(
                args.n, lambda i: ctxs[i],
                lambda i, cl: cl.delete(res[i][2][0]))
            for cl in ctxs:
                cl.close()
            if derrs:
                raise derrs[0]
            for r in res:
                docker.wait_gone(f"sandbox-{r[2][0]}")
            B.log(f"round {rnd + 1}/{args.rounds}: raw wall "
                  f"{B.fmt_ms(raw_walls[-1])}  ours wall "
                  f"{B.fmt_ms(ours_walls[-1])}")
        running_after = server.running_after_ms()
        c = server.client()
        c.delete(probe_sid)
        c.close()
    finally:
        # Let in-flight creates land before removing what they made.
        B.STOP.set()
        for b in BARRIERS:
            b.abort()
        for t in WORKERS:
            t.join(timeout=60)
        try:
            docker.close()
            B.remove_raw_containers(run_id)
        finally:
            server.stop()

    rw = statistics.median(raw_walls)
    ow = statistics.median(ours_walls)
    print(f"concurrent_creates: {args.n} concurrent, {args.rounds} rounds, "
          f"poll every {args.poll_ms:g} ms, docker {B.docker_version()}")
    print(f"  floor body {floor.source}: {floor.describe()}")
    print("  floor container vs server container: "
          + ("same Config and HostConfig (except labels, host ports)"
             if not differences else "DIFFERENT: " + "; ".join(differences)))
    print("  raw wall (floor):  median " + B.fmt_ms(rw) + "   rounds: "
          + ", ".join(B.fmt_ms(x) for x in raw_walls))
    print("  ours wall:         median " + B.fmt_ms(ow) + "   rounds: "
          + ", ".join(B.fmt_ms(x) for x in ours_walls))
    print(f"  ours per-sandbox POST->Running: p50 "
          f"{B.fmt_ms(B.pct(ours_each, 50))}  max {B.fmt_ms(max(ours_each))}")
    logged = [v for k, v in running_after.items() if k != probe_sid]
    if logged:
        print(f"  server log 'sandbox is running after N ms': p50 "
              f"{B.pct(logged, 50)} ms  max {max(logged)} ms")
    print(f"  server CPU (user+sys) per round: during raw creates (probe GETs "
          f"only) {cpu_raw / args.rounds * 1000:.0f} ms, during our creates "
          f"{cpu_ours / args.rounds * 1000:.0f} ms")
    ratio = ow / rw
    print(f"  RATIO wall ours/raw = {ratio:.3f}  (target < 1.5: "
          f"{'met' if ratio < 1.5 else 'MISSED'})")

    def show(name, xs):
        print(f"  GET /v1/sandboxes/{{id}} {name}: n={len(xs)}  p50 "
              f"{B.fmt_ms(B.pct(xs, 50))}  p99 {B.fmt_ms(B.pct(xs, 99))}  "
              f"max {B.fmt_ms(max(xs))}")
    show("idle                     ", lat_idle)
    show("during raw creates (floor)", lat_raw)
    show("during our creates       ", lat_ours)
    i50, i_max = B.pct(lat_idle, 50), max(lat_idle)
    r50, r_max = B.pct(lat_raw, 50), max(lat_raw)
    o50, o_max = B.pct(lat_ours, 50), max(lat_ours)
    print(f"  RATIO GET during our creates / idle: p50 {o50 / i50:.2f}  "
          f"max {o_max / i_max:.2f}")
    print(f"  RATIO GET during our creates / during raw creates: p50 "
          f"{o50 / r50:.2f}  max {o_max / r_max:.2f}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
