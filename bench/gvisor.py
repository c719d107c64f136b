#!/usr/bin/env python3
"""Sandboxes under gVisor (runsc) against runc, in the same run.

Two servers of this build run side by side: one with the daemon's default
runtime (runc), one with [secure_runtime] type = "gvisor" (runsc, registered
as deploy/setup.sh does: --platform=ptrace --network=host). Same image
(busybox), entrypoint (sleep) and execd (bind-mounted) in both.

1. create -> Running: POST /v1/sandboxes, then GET every 2 ms until Running;
   and create -> execd ready: the same, then GET /ping on the sandbox's execd
   endpoint every 2 ms until it answers 200. Runs interleaved (runc, gvisor,
   runc, ...); each sandbox deleted after its run (not timed).
2. execd round trip: POST /command {"command":"echo hi"} on one sandbox of
   each, through its published execd port with its token, on a keep-alive
   connection; interleaved; p50/p90.
3. memory per idle sandbox: K idle sandboxes of each kind, then, after a
   settle time: the PSS (proportional set size, /proc/<pid>/smaps_rollup)
   summed over each container's containerd shim and every process below it
   (runc: the shim, execd, sleep; gVisor: the shim, runsc-gofer,
   runsc-sandbox with the Sentry and the sandbox's memory), and the
   container's memory cgroup usage (what `docker stats` shows), per sandbox.

ptrace is slow: the figures are for users to choose by, not a target.
Usage: bench/gvisor.py [--n 10] [--roundtrips 100] [--idle 10]
Env: OSB_SERVER_BIN (default build-bench/opensandbox-server; execd from the
same directory).
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import time

import benchlib as B


def runsc_registered():
    d = B.Docker()
    try:
        st, payload = d.call("GET", "/info")
        return st == 200 and "runsc" in (json.loads(payload).get("Runtimes")
                                         or {})
    finally:
        d.close()


class Execd:
    """Keep-alive connection to one sandbox's execd (endpoint 44772)."""

    def __init__(self, client, sid):
        st, payload = client.call("GET",
                                  f"/v1/sandboxes/{sid}/endpoints/44772")
        if st != 200:
            raise RuntimeError(f"endpoint: {st} {payload[:200]!r}")
        ep = json.loads(payload)
        hostport, _, prefix = ep["endpoint"].partition("/")
        host, _, port = hostport.rpartition(":")
        self.prefix = "/" + prefix if prefix else ""
        self.headers = dict(ep.get("headers") or {})
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, method, path, body=None):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            self.conn.request(method, self.prefix + path, body=data,
                              headers=headers)
            r = self.conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b""

    def wait_ready(self, poll_s=0.002, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.call("GET", "/ping")[0] == 200:
                return time.perf_counter()
            time.sleep(poll_s)
        raise RuntimeError("execd did not answer /ping")

    def close(self):
        self.conn.close()


def children_of():
    """ppid -> [pid] over the whole process table."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        out.setdefault(ppid, []).append(int(name))
    return out


def shim_of(cid):
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and b"containerd-shim" in args[0] and cid.encode() in args:
            return int(name)
    return None


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_pss_kb(root, kids):
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += pss_kb(pid)
        todo.extend(kids.get(pid, []))
    return total


def cgroup_usage_kb(cid):
    for path in (f"/sys/fs/cgroup/memory/docker/{cid}/memory.usage_in_bytes",
                 f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/"
                 "memory.current",
                 f"/sys/fs/cgroup/docker/{cid}/memory.current"):
        try:
            with open(path) as f:
                return int(f.read()) // 1024
        except OSError:
            continue
    return None


def summary(xs):
    return f"p50 {B.fmt_ms(B.pct(xs, 50))}  p90 {B.fmt_ms(B.pct(xs, 90))}"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=10,
                    help="create runs of each (10)")
    ap.add_argument("--roundtrips", type=int, default=100,
                    help="execd round trips of each (100)")
    ap.add_argument("--idle", type=int, default=10,
                    help="idle sandboxes of each for memory (10)")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds before memory is read (5)")
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()
    B.check_image()
    if not runsc_registered():
        sys.exit("dockerd does not list runsc: apt-get install runsc, then "
                 "deploy/setup.sh (docs/gvisor.md)")
    # The server injects the execd next to its binary.
    execd = os.path.join(os.path.dirname(os.path.abspath(args.server_bin)),
                         "opensandbox-execd")
    if not os.access(execd, os.X_OK):
        sys.exit(f"execd not found at {execd}")
    kinds = {
        "runc": "",
        "gvisor": '[secure_runtime]\ntype = "gvisor"\n'
                  'docker_runtime = "runsc"\n',
    }
    servers = {}
    try:
        for kind, extra in kinds.items():
            s = B.Server(runtime="docker", name=f"bench-gv-{kind}",
                         binary=args.server_bin, extra_config=extra)
            servers[kind] = s.start()
        clients = {k: s.client() for k, s in servers.items()}
        print(f"gVisor vs runc, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, "
              f"{os.cpu_count()} cores, load average "
              f"{open('/proc/loadavg').read().split()[:3]}, Docker "
              f"{B.docker_version()}, image {B.IMAGE}")

        # 1. create -> Running, create -> execd ready.
        running = {k: [] for k in kinds}
        ready = {k: [] for k in kinds}
        for i in range(args.n + 1):
            for kind in kinds:
                c = clients[kind]
                t0 = time.perf_counter()
                sid = c.create()
                t1 = c.wait_running(sid)
                e = Execd(c, sid)
                t2 = e.wait_ready()
                e.close()
                if i > 0:  # the first of each is a warm-up
                    running[kind].append(t1 - t0)
                    ready[kind].append(t2 - t0)
                c.delete(sid)
        print(f"\n1. create -> Running ({args.n} runs each, interleaved)")
        for kind in kinds:
            print(f"   {kind:7s} {summary(running[kind])}")
        print(f"   RATIO gvisor/runc p50 "
              f"{B.pct(running['gvisor'], 50) / B.pct(running['runc'], 50):.2f}")
        print("   create -> execd answers /ping")
        for kind in kinds:
            print(f"   {kind:7s} {summary(ready[kind])}")
        print(f"   RATIO gvisor/runc p50 "
              f"{B.pct(ready['gvisor'], 50) / B.pct(ready['runc'], 50):.2f}")

        # 2. execd echo round trip.
        execds, sids = {}, {}
        for kind in kinds:
            sids[kind] = clients[kind].create()
            clients[kind].wait_running(sids[kind])
            execds[kind] = Execd(clients[kind], sids[kind])
            execds[kind].wait_ready()
        rtt = {k: [] for k in kinds}
        for i in range(args.roundtrips + 5):
            for kind in kinds:
                t0 = time.perf_counter()
                st, body = execds[kind].call("POST", "/command",
                                             {"command": "echo hi"})
                dt = time.perf_counter() - t0
                if st != 200 or b"hi" not in body:
                    raise RuntimeError(f"{kind} echo: {st} {body[:200]!r}")
                if i >= 5:
                    rtt[kind].append(dt)
        print(f"\n2. execd round trip, POST /command echo hi "
              f"({args.roundtrips} each, keep-alive, interleaved)")
        for kind in kinds:
            print(f"   {kind:7s} {summary(rtt[kind])}")
        print(f"   RATIO gvisor/runc p50 "
              f"{B.pct(rtt['gvisor'], 50) / B.pct(rtt['runc'], 50):.2f}")
        for kind in kinds:
            execds[kind].close()
            clients[kind].delete(sids[kind])

        # 3. memory per idle sandbox.
        idle = {k: [] for k in kinds}
        for kind in kinds:
            for _ in range(args.idle):
                sid = clients[kind].create()
                clients[kind].wait_running(sid)
                e = Execd(clients[kind], sid)
                e.wait_ready()
                e.close()
                idle[kind].append(sid)
        time.sleep(args.settle)
        kids = children_of()
        d = B.Docker()
        print(f"\n3. memory per idle sandbox ({args.idle} idle of each, "
              f"{args.settle:.0f} s after start; sleep + execd)")
        per = {}
        for kind in kinds:
            pss, cg = [], []
            for sid in idle[kind]:
                cid = d.inspect(f"sandbox-{sid}")["Id"]
                shim = shim_of(cid)
                if shim is None:
                    raise RuntimeError(f"no containerd shim for {cid}")
                pss.append(tree_pss_kb(shim, kids))
                usage = cgroup_usage_kb(cid)
                if usage is not None:
                    cg.append(usage)
            per[kind] = statistics.mean(pss)
            cg_text = (f", memory cgroup {statistics.mean(cg) / 1024:.1f} MiB"
                       if cg else "")
            print(f"   {kind:7s} PSS of shim + processes "
                  f"{per[kind] / 1024:.1f} MiB (min {min(pss) / 1024:.1f}, "
                  f"max {max(pss) / 1024:.1f}){cg_text}")
        d.close()
        print(f"   RATIO gvisor/runc PSS {per['gvisor'] / per['runc']:.2f}")
        for kind in kinds:
            for sid in idle[kind]:
                clients[kind].delete(sid)
    finally:
        for s in servers.values():
            s.stop()


if __name__ == "__main__":
    main()
