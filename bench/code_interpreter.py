#!/usr/bin/env python3
"""Code interpreting through execd, in sandboxes of
opensandbox/code-interpreter:latest (deploy/build-images.sh).

1. Warm round trip: run("1+1") in a warm Python context through execd
   (POST /code on a keep-alive connection, to the stream's end) against the
   floor, the same execute_request sent straight to the same kernel over
   ZeroMQ; RUNS interleaved pairs, both from inside the sandbox's network
   namespace (bench/code_bench.cpp under nsenter), so neither path pays
   Docker's port publishing.
2. First run in fresh sandboxes (kernel start included), with its
   breakdown: create -> Running, -> execd answers, first run("print(1+1)")
   (execd's log splits the kernel start into spawn, listening, kernel_info),
   second run.
3. execd's memory (VmRSS, sampled every 20 ms from the host) while a kernel
   streams 100 MB of output to a client reading at full speed, and 20 MB to
   a client reading at 2 MB/s.

Usage: bench/code_interpreter.py [--runs 500] [--fresh 5] [--stream-mb 100]
Env:   OSB_SERVER_BIN (default build-bench/opensandbox-server; execd is
       taken from the same directory), OSB_CODE_BENCH (default: code_bench
       next to the server binary, built with `cmake --build <dir> --target
       code_bench`).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import log, pct  # noqa: E402

IMAGE = "opensandbox/code-interpreter:latest"
BODY = {
    "image": {"uri": IMAGE},
    "entrypoint": ["/opt/code-interpreter/code-interpreter.sh"],
    "timeout": 1800,
    "resourceLimits": {"cpu": "2", "memory": "2Gi"},
}


def call(client, method, path, body=None):
    status, payload = client.call(method, path, body)
    return status, (json.loads(payload) if payload else None)


def sh(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout


class Sandbox:
    def __init__(self, client):
        self.client = client
        t0 = time.monotonic()
        s, r = call(client, "POST", "/v1/sandboxes", BODY)
        if s != 202:
            raise RuntimeError(f"create: {s} {r}")
        self.id = r["id"]
        while True:
            s, r = call(client, "GET", f"/v1/sandboxes/{self.id}")
            if s == 200 and r["status"]["state"] == "Running":
                break
            if time.monotonic() - t0 > 60:
                raise RuntimeError(f"not running: {r}")
            time.sleep(0.005)
        self.running_s = time.monotonic() - t0
        s, r = call(client, "GET",
                    f"/v1/sandboxes/{self.id}/endpoints/44772")
        self.port = int(r["endpoint"].split(":")[1].split("/")[0])
        self.token = r["headers"]["X-EXECD-ACCESS-TOKEN"]
        import http.client
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=2)
                c.request("GET", "/ping")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.005)
        self.ready_s = time.monotonic() - t0
        self.container = f"sandbox-{self.id}"
        self.pid = int(sh("docker", "inspect", "-f", "{{.State.Pid}}",
                          self.container).strip())

    def execd(self, method, path, body=None):
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        headers = {"X-EXECD-ACCESS-TOKEN": self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        out = r.read().decode()
        c.close()
        return r.status, out

    def run(self, code, **ctx):
        s, body = self.execd("POST", "/code", {"code": code, "context": ctx})
        if s != 200 or "execution_complete" not in body:
            raise RuntimeError(f"run: {s} {body[:500]}")
        return body

    def execd_pid(self):
        for line in sh("docker", "top", self.container, "-eo",
                       "pid,args").splitlines()[1:]:
            pid, args = line.strip().split(None, 1)
            if args.startswith("/opt/opensandbox/execd"):
                return int(pid)
        raise RuntimeError("execd not found in the sandbox")

    def kernel_times(self):
        logs = subprocess.run(["docker", "logs", self.container],
                              capture_output=True, text=True)
        m = re.findall(r"ready in (\d+) ms \(spawn (\d+) ms, listening (\d+) "
                       r"ms, kernel_info (\d+) ms\)", logs.stdout + logs.stderr)
        return [int(x) for x in m[-1]] if m else None

    def connection_file(self):
        d = f"/proc/{self.pid}/root/tmp/.opensandbox-execd/kernels"
        files = [os.path.join(d, f) for f in os.listdir(d)
                 if f.endswith(".json")]
        return max(files, key=os.path.getmtime)

    def bench_tool(self, tool, *args):
        # The tool runs in the sandbox's network namespace.
        out = sh("nsenter", "-t", str(self.pid), "-n", "--", tool,
                 *[str(a) for a in args])
        return json.loads(out)


def rss_sampler(pid, out, stop):
    while not stop.is_set():
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out.append(int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--fresh", type=int, default=5)
    ap.add_argument("--stream-mb", type=int, default=100)
    args = ap.parse_args()
    benchlib.install_sigterm_handler()
    tool = os.environ.get("OSB_CODE_BENCH", os.path.join(
        os.path.dirname(benchlib.DEFAULT_BIN), "code_bench"))
    if not os.access(tool, os.X_OK):
        sys.exit(f"{tool} not found: cmake --build <dir> --target code_bench")
    if subprocess.run(["docker", "image", "inspect", IMAGE],
                      capture_output=True).returncode != 0:
        sys.exit(f"{IMAGE} is missing: deploy/build-images.sh")
    srv = benchlib.Server(name="bench-code").start()
    try:
        client = srv.client()
        # 2. First runs in fresh sandboxes.
        fresh = []
        for i in range(args.fresh):
            sb = Sandbox(client)
            t = time.monotonic()
            body = sb.run("print(1+1)", language="python")
            first = time.monotonic() - t
            assert '"text":"2\\n"' in body, body
            t = time.monotonic()
            sb.run("print(1+1)", language="python")
            second = time.monotonic() - t
            k = sb.kernel_times()
            fresh.append((sb.running_s, sb.ready_s, first, second, k))
            client.call("DELETE", f"/v1/sandboxes/{sb.id}")
        print(f"first run in a fresh sandbox ({args.fresh} sandboxes, "
              "medians):")
        med = lambda i: statistics.median(f[i] for f in fresh)  # noqa: E731
        kmed = lambda j: statistics.median(f[4][j] for f in fresh if f[4])  # noqa: E731,E501
        print(f"  create -> Running        {med(0) * 1000:8.0f} ms")
        print(f"  create -> execd answers  {med(1) * 1000:8.0f} ms")
        print(f"  first run('print(1+1)')  {med(2) * 1000:8.0f} ms, of which "
              f"kernel start {kmed(0)} ms (spawn {kmed(1)}, until it "
              f"listens {kmed(2)}, kernel_info {kmed(3)})")
        print(f"  second run               {med(3) * 1000:8.1f} ms")
        print(f"  create -> first result   {(med(1) + med(2)) * 1000:8.0f} ms")

        # 1. Warm round trip against the kernel itself.
        sb = Sandbox(client)
        s, body = sb.execd("POST", "/code/context", {"language": "python"})
        ctx = json.loads(body)["id"]
        sb.run("1+1", id=ctx)
        r = sb.bench_tool(tool, "roundtrip", 44772, sb.token, ctx,
                          sb.connection_file(), args.runs)
        e, d = r["execd_ms"], r["direct_ms"]
        print(f"\nwarm run('1+1'), {args.runs} interleaved pairs, from the "
              "sandbox's network namespace:")
        print(f"  through execd   p50 {pct(e, 50):6.2f} ms  p90 "
              f"{pct(e, 90):6.2f} ms  p99 {pct(e, 99):6.2f} ms")
        print(f"  kernel (floor)  p50 {pct(d, 50):6.2f} ms  p90 "
              f"{pct(d, 90):6.2f} ms  p99 {pct(d, 99):6.2f} ms")
        print(f"  ratio p50 {pct(e, 50) / pct(d, 50):.2f}x  (goal: <= 1.5x "
              "and < 10 ms)")

        # 3. Memory while streaming.
        pid = sb.execd_pid()
        for mb, kbps in ((args.stream_mb, 0), (20, 2048)):
            samples, stop = [], threading.Event()
            th = threading.Thread(target=rss_sampler,
                                  args=(pid, samples, stop))
            base = None
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        base = int(line.split()[1])
            th.start()
            try:
                out = sb.bench_tool(tool, "stream", 44772, sb.token, ctx, mb,
                                    *([kbps] if kbps else []))
            finally:
                stop.set()
                th.join()
            rate = f"at {kbps // 1024} MB/s" if kbps else "at full speed"
            print(f"\n{mb} MB of output read {rate}: {out['bytes'] / 1e6:.0f} "
                  f"MB of stream in {out['seconds']:.1f} s; execd VmRSS "
                  f"before {base / 1024:.1f} MiB, max {max(samples) / 1024:.1f}"
                  f" MiB over {len(samples)} samples (goal: < 32 MiB)")
        client.call("DELETE", f"/v1/sandboxes/{sb.id}")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
