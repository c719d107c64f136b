#!/usr/bin/env python3
"""Create-to-Running of a claim from a pool, against raw Engine API create+start.

floor: as in create_to_running.py (POST /containers/create + start on a
       keep-alive Engine API connection, the server's bridge-mode body).
ours:  POST /v1/sandboxes with extensions.poolRef of a pool made first
       (template: the benchmark image and entrypoint), then GET every 2 ms
       until Running.
Interleaved (raw, ours, ...); each sandbox/container is deleted after its run.
Before each claim (outside its timing) the pool is polled until a member is
idle, so every recorded claim is warm; claims the server still served cold
are counted and reported.
Target (issue 13): p50(ours)/p50(raw) <= 0.05.
"""

import argparse
import json
import subprocess
import time
import uuid

import benchlib as B


def members_left(node):
    """Number of this server's containers (members after the runs)."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter",
                          f"label=opensandbox.io/node={node}"],
                         capture_output=True, text=True).stdout
    return len(out.split())


def wait_idle(client, timeout_s=60.0):
    """Polls the pool until it has an idle member."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st, payload = client.call("GET", "/v1/pools/bench")
        if st == 200 and json.loads(payload)["status"]["available"] >= 1:
            return
        time.sleep(0.05)
    raise RuntimeError("pool 'bench' has no idle member after 60 s")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="runs of each (20)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()
    B.check_image()

    run_id = uuid.uuid4().hex[:12]
    server = B.Server(runtime="docker", name="bench-pool",
                      binary=args.server_bin)
    docker = B.Docker()
    raw, ours = [], []
    cold = [0]
    try:
        server.start()
        client = server.client()
        st, payload = client.call("POST", "/v1/pools", {
            "name": "bench",
            "template": {"image": {"uri": B.IMAGE},
                         "entrypoint": B.ENTRYPOINT, "resourceLimits": {}},
            "capacitySpec": {"bufferMax": 2, "bufferMin": 1, "poolMax": 60,
                             "poolMin": 0}})
        if st != 201:
            raise RuntimeError(f"POST /v1/pools: {st} {payload[:300]!r}")
        sid = client.create()
        client.wait_running(sid)
        floor = B.FloorBody().mirror(docker.inspect(f"sandbox-{sid}"))
        client.delete(sid)
        docker.wait_gone(f"sandbox-{sid}")
        total = args.warmup + args.n
        for i in range(total):
            record = i >= args.warmup
            ports = B.take_host_ports(2)
            try:
                dt, cid = docker.create_start(
                    f"osb-bench-raw-{run_id}-{i}", floor.body(run_id, ports))
            finally:
                B.give_back_host_ports(ports)
            docker.remove(cid)
            wait_idle(client)
            t0 = time.perf_counter()
            st, payload = client.call("POST", "/v1/sandboxes",
                                      {"extensions": {"poolRef": "bench"}})
            if st != 202:
                raise RuntimeError(f"claim: {st} {payload[:300]!r}")
            sid = json.loads(payload)["id"]
            t1 = client.wait_running(sid, poll_s=args.poll_ms / 1000.0)
            st, got = client.call("GET", f"/v1/sandboxes/{sid}")
            if b"no idle member" in got:
                cold[0] += 1
            client.delete(sid)
            docker.wait_gone(f"sandbox-{sid}")
            if record:
                raw.append(dt)
                ours.append(t1 - t0)
            B.log(f"run {i + 1}/{total}: raw {B.fmt_ms(dt)}  claim "
                  f"{B.fmt_ms(t1 - t0)}")
        # The pool's idle members go with it (the server removes them).
        client.call("DELETE", "/v1/pools/bench")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and members_left(server.node):
            time.sleep(0.1)
        client.close()
    finally:
        try:
            docker.close()
            B.remove_raw_containers(run_id)
        finally:
            server.stop()
    r50, o50 = B.pct(raw, 50), B.pct(ours, 50)
    ratio = o50 / r50
    print(f"pool_claim: n={args.n} (interleaved), docker {B.docker_version()}")
    print(f"  raw create+start (floor): p50 {B.fmt_ms(r50)}  p90 "
          f"{B.fmt_ms(B.pct(raw, 90))}")
    print(f"  claim POST -> Running:    p50 {B.fmt_ms(o50)}  p90 "
          f"{B.fmt_ms(B.pct(ours, 90))}")
    print(f"  claims served cold: {cold[0]} of {args.warmup + args.n}")
    print(f"  RATIO p50(claim)/p50(raw) = {ratio:.3f}  (target <= 0.05: "
          f"{'met' if ratio <= 0.05 else 'MISSED'})")


if __name__ == "__main__":
    main()
