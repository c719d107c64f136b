#!/usr/bin/env python3
"""Snapshot and restore times, against docker commit and create from image.

Each round creates a sandbox through the server and writes --mb MB of
random data into it (docker exec dd, not timed). Then, in alternating order:
  floor:  POST /commit?container=..&pause=true on the Engine API (what
          `docker commit` does), timed until it returns;
  ours:   POST /v1/sandboxes/{id}/snapshots, then GET /v1/snapshots/{sid}
          every 2 ms; timed from sending the POST until the first GET that
          shows Ready.
Both commit the same container with the same changes. Then, also in
alternating order:
  floor:  POST /v1/sandboxes from the base image, timed until GET shows
          Running (create from image, through the same server);
  ours:   POST /v1/sandboxes with snapshotId, timed until GET shows Running.
Prints p50 of each and the ratios (targets: snapshot <= 1.2x docker commit,
restore-to-Running <= 1.1x create from image). Everything is removed at the
end: sandboxes, snapshot images, floor images.
"""

import argparse
import json
import subprocess
import sys
import time
import uuid

import benchlib as B

FLOOR_REPO = "osb-bench-commit"


def wait_ready(client, snap_id, poll_s, timeout=600):
    end = time.monotonic() + timeout
    while True:
        st, payload = client.call("GET", f"/v1/snapshots/{snap_id}")
        if st != 200:
            raise RuntimeError(f"GET /v1/snapshots/{snap_id}: {st} {payload!r}")
        state = json.loads(payload)["status"]
        if state["state"] == "Ready":
            return time.perf_counter()
        if state["state"] != "Creating":
            raise RuntimeError(f"snapshot {snap_id} became {state}")
        if time.monotonic() > end:
            raise RuntimeError(f"snapshot {snap_id} not Ready after {timeout}s")
        time.sleep(poll_s)


def snapshot(client, sid, poll_s):
    t0 = time.perf_counter()
    st, payload = client.call("POST", f"/v1/sandboxes/{sid}/snapshots", {})
    if st != 202:
        raise RuntimeError(f"POST snapshots: {st} {payload[:300]!r}")
    snap_id = json.loads(payload)["id"]
    return wait_ready(client, snap_id, poll_s) - t0, snap_id


def wait_state(client, sid, want="Running", timeout=30):
    """Waits (untimed) until the sandbox shows `want`: the server mirrors
    the pause of a `docker commit` it did not make until its next
    reconciliation (every 5 s) sees the container running again."""
    end = time.monotonic() + timeout
    while client.state(sid)["state"] != want:
        if time.monotonic() > end:
            raise RuntimeError(f"sandbox {sid} not {want} after {timeout}s")
        time.sleep(0.05)


def raw_commit(docker, container, tag):
    t0 = time.perf_counter()
    st, payload = docker.call(
        "POST", f"/commit?container={container}&repo={FLOOR_REPO}&tag={tag}"
                "&pause=true")
    dt = time.perf_counter() - t0
    if st != 201:
        raise RuntimeError(f"docker commit: {st} {payload[:300]!r}")
    return dt


def create_running(client, body, poll_s):
    t0 = time.perf_counter()
    st, payload = client.call("POST", "/v1/sandboxes", body)
    if st != 202:
        raise RuntimeError(f"POST /v1/sandboxes: {st} {payload[:300]!r}")
    sid = json.loads(payload)["id"]
    return client.wait_running(sid, poll_s=poll_s) - t0, sid


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=5, help="rounds (5)")
    ap.add_argument("--mb", type=int, default=100,
                    help="MB of changed files per sandbox (100)")
    ap.add_argument("--poll-ms", type=float, default=2.0)
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()
    B.check_image()
    poll_s = args.poll_ms / 1000.0
    run_id = uuid.uuid4().hex[:12]
    server = B.Server(runtime="docker", name="bench-snap",
                      binary=args.server_bin)
    docker = B.Docker()
    commits, snaps, creates, restores = [], [], [], []
    snap_ids, floor_tags = [], []
    try:
        server.start()
        client = server.client()
        base = {"image": {"uri": B.IMAGE}, "entrypoint": B.ENTRYPOINT,
                "resourceLimits": {}}
        for i in range(args.n):
            sid = client.create()
            client.wait_running(sid)
            subprocess.run(
                ["docker", "exec", f"sandbox-{sid}", "dd", "if=/dev/urandom",
                 f"of=/changed-{i}.bin", "bs=1M", f"count={args.mb}"],
                check=True, capture_output=True)
            subprocess.run(["sync"], check=True)
            tag = f"{run_id}-{i}"
            floor_tags.append(tag)
            if i % 2 == 0:
                dt_ours, snap_id = snapshot(client, sid, poll_s)
                dt_raw = raw_commit(docker, f"sandbox-{sid}", tag)
            else:
                dt_raw = raw_commit(docker, f"sandbox-{sid}", tag)
                wait_state(client, sid)
                dt_ours, snap_id = snapshot(client, sid, poll_s)
            snap_ids.append(snap_id)
            commits.append(dt_raw)
            snaps.append(dt_ours)
            client.delete(sid)
            # The commits left ~2x the changes as dirty pages; their
            # write-back would land on whichever create runs first.
            subprocess.run(["sync"], check=True)
            restore = {"snapshotId": snap_id, "entrypoint": B.ENTRYPOINT,
                       "resourceLimits": {}}
            order = [("create", base), ("restore", restore)]
            if i % 2:
                order.reverse()
            for kind, body in order:
                dt, new_sid = create_running(client, body, poll_s)
                (creates if kind == "create" else restores).append(dt)
                client.delete(new_sid)
            B.log(f"round {i + 1}/{args.n}: docker commit {B.fmt_ms(dt_raw)} "
                  f"snapshot {B.fmt_ms(dt_ours)}  create {B.fmt_ms(creates[-1])}"
                  f" restore {B.fmt_ms(restores[-1])}")
        for snap_id in snap_ids:
            st, payload = client.call("DELETE", f"/v1/snapshots/{snap_id}")
            if st != 204:
                B.log(f"DELETE snapshot {snap_id}: {st} {payload[:200]!r}")
        client.close()
    finally:
        for tag in floor_tags:
            docker.call("DELETE", f"/images/{FLOOR_REPO}:{tag}?force=true")
        # Snapshot images of an interrupted run (they carry the node label).
        filters = B.urlquote(json.dumps({
            "reference": ["opensandbox-snapshots"],
            "label": [f"opensandbox.io/node={server.node}"]}))
        st, payload = docker.call("GET", f"/images/json?filters={filters}")
        for img in json.loads(payload) if st == 200 else []:
            docker.call("DELETE", f"/images/{img['Id']}?force=true")
            B.log(f"removed leftover snapshot image {img['Id'][:19]}")
        docker.close()
        server.stop()

    c50, s50 = B.pct(commits, 50), B.pct(snaps, 50)
    i50, r50 = B.pct(creates, 50), B.pct(restores, 50)
    snap_ratio, restore_ratio = s50 / c50, r50 / i50
    print(f"snapshot: n={args.n} rounds, {args.mb} MB of changed files each, "
          f"alternating order, docker {B.docker_version()}")
    print(f"  docker commit (floor):          p50 {B.fmt_ms(c50)}  "
          f"min {B.fmt_ms(min(commits))}")
    print(f"  POST snapshot -> GET Ready:     p50 {B.fmt_ms(s50)}  "
          f"min {B.fmt_ms(min(snaps))}")
    print(f"  create from image -> Running:   p50 {B.fmt_ms(i50)}  "
          f"min {B.fmt_ms(min(creates))}")
    print(f"  restore from snapshot -> Running: p50 {B.fmt_ms(r50)}  "
          f"min {B.fmt_ms(min(restores))}")
    print(f"  RATIO snapshot/commit = {snap_ratio:.3f}  (target <= 1.2: "
          f"{'met' if snap_ratio <= 1.2 else 'MISSED'})")
    print(f"  RATIO restore/create  = {restore_ratio:.3f}  (target <= 1.1: "
          f"{'met' if restore_ratio <= 1.1 else 'MISSED'})")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
