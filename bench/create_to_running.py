#!/usr/bin/env python3
"""Create-to-Running latency of one sandbox, against raw Engine API create+start.

floor: POST /containers/create + POST /containers/{id}/start on a keep-alive
       Engine API connection, with the body the server sends in bridge mode
       (same image, entrypoint, two published ports, PidsLimit, CapDrop,
       SecurityOpt); timed from sending create until start returned.
ours:  POST /v1/sandboxes, then GET /v1/sandboxes/{id} every 2 ms on the same
       keep-alive connection; timed from sending the POST until the first GET
       that shows Running.
Runs are interleaved (raw, ours, raw, ours, ...) so that both see the same
noise; each container/sandbox is deleted right after its run (not timed).
Prints p50/p90 of both and p50(ours)/p50(raw) (target <= 1.10).
"""

import argparse
import sys
import time
import uuid

import benchlib as B


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="runs of each (20)")
    ap.add_argument("--warmup", type=int, default=2,
                    help="unrecorded runs of each first (2)")
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()
    B.check_image()

    run_id = uuid.uuid4().hex[:12]
    server = B.Server(runtime="docker", name="bench-c2r",
                      binary=args.server_bin)
    docker = B.Docker()
    raw, ours, ours_ids = [], [], []
    cpu_ours = 0.0
    try:
        server.start()
        client = server.client()
        # One sandbox first: its container is the model of the floor's body.
        sid = client.create()
        client.wait_running(sid)
        model = docker.inspect(f"sandbox-{sid}")
        floor = B.FloorBody().mirror(model)
        client.delete(sid)
        docker.wait_gone(f"sandbox-{sid}")
        differences = None
        total = args.warmup + args.n
        for i in range(total):
            record = i >= args.warmup
            # -- raw floor
            ports = B.take_host_ports(2)
            try:
                dt, cid = docker.create_start(
                    f"osb-bench-raw-{run_id}-{i}", floor.body(run_id, ports))
            finally:
                B.give_back_host_ports(ports)
            if differences is None:
                differences = B.container_differences(docker.inspect(cid),
                                                      model)
            docker.remove(cid)
            # -- ours
            c0 = server.cpu_seconds()
            t0 = time.perf_counter()
            sid = client.create()
            t1 = client.wait_running(sid, poll_s=args.poll_ms / 1000.0)
            c1 = server.cpu_seconds()
            client.delete(sid)
            # DELETE answers once the container is removed; make sure.
            docker.wait_gone(f"sandbox-{sid}")
            if record:
                raw.append(dt)
                ours.append(t1 - t0)
                ours_ids.append(sid)
                cpu_ours += c1 - c0
            B.log(f"run {i + 1}/{total}{'' if record else ' (warm-up)'}: "
                  f"raw {B.fmt_ms(dt)}  ours {B.fmt_ms(t1 - t0)}")
        client.close()
        # Breakdown from the server log: created_us -> start returned.
        running_after = server.running_after_ms()
        logged = [running_after[s] for s in ours_ids if s in running_after]
    finally:
        try:
            docker.close()
            B.remove_raw_containers(run_id)
        finally:
            server.stop()

    r50, r90 = B.pct(raw, 50), B.pct(raw, 90)
    o50, o90 = B.pct(ours, 50), B.pct(ours, 90)
    ratio = o50 / r50
    print(f"create_to_running: n={args.n} (interleaved, {args.warmup} warm-up "
          f"each), poll every {args.poll_ms:g} ms, docker "
          f"{B.docker_version()}")
    print(f"  floor body {floor.source}: {floor.describe()}")
    print("  floor container vs server container: "
          + ("same Config and HostConfig (except labels, host ports)"
             if not differences else "DIFFERENT: " + "; ".join(differences)))
    print(f"  raw create+start (floor):  p50 {B.fmt_ms(r50)}  p90 "
          f"{B.fmt_ms(r90)}  min {B.fmt_ms(min(raw))}")
    print(f"  POST -> GET shows Running: p50 {B.fmt_ms(o50)}  p90 "
          f"{B.fmt_ms(o90)}  min {B.fmt_ms(min(ours))}")
    if logged:
        print(f"  server log 'sandbox is running after N ms' (accepted -> "
              f"start returned): p50 {B.pct(logged, 50)} ms  p90 "
              f"{B.pct(logged, 90)} ms")
    print(f"  server CPU (user+sys) per sandbox, POST -> Running incl. the "
          f"polling GETs: {cpu_ours / args.n * 1000:.0f} ms")
    diffs = sorted(o - r for o, r in zip(ours, raw))
    print(f"  paired difference ours-raw: p50 {B.fmt_ms(B.pct(diffs, 50))}")
    print(f"  RATIO p50(ours)/p50(raw) = {ratio:.3f}  (target <= 1.10: "
          f"{'met' if ratio <= 1.10 else 'MISSED'})")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
