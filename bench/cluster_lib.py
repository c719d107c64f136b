"""Helpers of the cluster benchmarks (bench/cluster_*.py), Python 3 stdlib only.

Each benchmark starts its own nodes of the real server binary on 127.0.0.1
(free ports, a temp directory per node holding its config, SQLite store and
log) with the in-memory "fake" runtime: no Docker, no containers, only the
control plane. Every process started here is stopped on the way out (also on
failure, Ctrl-C and SIGTERM) and the temp directories are removed.
"""

import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_BIN = os.environ.get(
    "OSB_SERVER_BIN", os.path.join(REPO, "build-deploy", "opensandbox-server"))
API_KEY = "bench"
HEADERS = {"OPEN-SANDBOX-API-KEY": API_KEY, "Content-Type": "application/json"}
CREATE_BODY = json.dumps({
    "image": {"uri": "opensandbox/busybox:latest"},
    "entrypoint": ["sleep", "600"],
    "resourceLimits": {"cpu": "100m", "memory": "64Mi"},
}).encode()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


_certs = None


def cluster_certs():
    """The certificates of the benchmark clusters (TLS between the nodes, as
    deployed): one CA and one certificate all nodes share, made once per
    run by deploy/make-cluster-certs.sh; removed at exit."""
    global _certs
    if _certs is None:
        _certs = tempfile.mkdtemp(prefix="osb-cluster-bench-certs-")
        subprocess.run([os.path.join(REPO, "deploy", "make-cluster-certs.sh"),
                        _certs, "node"], check=True, stdout=subprocess.DEVNULL)
        import atexit
        atexit.register(shutil.rmtree, _certs, True)
    return _certs


def install_sigterm_handler():
    """SIGTERM/SIGHUP unwind like Ctrl-C so that `finally` blocks clean up."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def ms(seconds):
    return f"{seconds * 1000:.3f} ms"


class Client:
    """One keep-alive HTTP/1.1 connection to one node: a minimal client on a
    raw socket (requests pre-formatted, responses framed by Content-Length),
    because http.client costs about as much CPU per request as the server on
    these 2 cores and would dominate what is measured."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _read_response(self):
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected here")
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            rest += chunk
        body, self.buf = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body

    def call(self, method, path, body=None):
        req = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"OPEN-SANDBOX-API-KEY: {API_KEY}\r\n").encode()
        if body is not None:
            req += (b"Content-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode() + b"\r\n\r\n" + body)
        else:
            req += b"\r\n"
        for attempt in (0, 1):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(req)
                return self._read_response()
            except (ConnectionError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect.
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def create(self):
        status, data = self.call("POST", "/v1/sandboxes", CREATE_BODY)
        if status != 202:
            raise RuntimeError(f"create on :{self.port}: {status} {data[:300]!r}")
        return json.loads(data)["id"]

    def get(self, sid):
        status, data = self.call("GET", f"/v1/sandboxes/{sid}")
        if status != 200:
            raise RuntimeError(f"GET {sid} on :{self.port}: {status} {data[:300]!r}")
        return data

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class Node:
    """One server process, with the fake runtime unless `runtime_toml` says
    otherwise (its [runtime] and further tables, e.g. [kubernetes])."""

    ACCEPTED = re.compile(r"\[([0-9a-f-]{36})\] sandbox: sandbox accepted")

    def __init__(self, name, seeds=(), binary=DEFAULT_BIN, io_threads=0,
                 log_level="INFO", extra_toml="",
                 runtime_toml='[runtime]\ntype = "fake"\n'):
        if not os.access(binary, os.X_OK):
            raise SystemExit(
                f"{binary} not found: build it (cmake --build build-deploy) "
                "or set OSB_SERVER_BIN")
        self.name = name
        self.binary = binary
        self.port = free_port()
        self.cluster_port = free_port()
        self.address = f"127.0.0.1:{self.cluster_port}"
        self.dir = tempfile.mkdtemp(prefix=f"osb-cluster-bench-{name}-")
        self.log_path = os.path.join(self.dir, "server.log")
        seeds_toml = ", ".join(f'"{s}"' for s in seeds)
        certs = cluster_certs()
        threads = f"io_threads = {io_threads}\n" if io_threads else ""
        with open(os.path.join(self.dir, "config.toml"), "w") as f:
            f.write(f"""[server]
host = "127.0.0.1"
port = {self.port}
api_key = "{API_KEY}"
{threads}
[log]
level = "{log_level}"

{runtime_toml}
[store]
path = "{self.dir}/store.db"

[cluster]
node_name = "{name}"
listen = "{self.address}"
seeds = [{seeds_toml}]
tls_ca_file = "{certs}/ca.pem"
tls_cert_file = "{certs}/node.pem"
tls_key_file = "{certs}/node.key"
{extra_toml}
""")
        self.proc = None
        self._log = None

    def start(self, timeout=30):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.binary, "--config", os.path.join(self.dir, "config.toml")],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   + self.read_log()[-2000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    c.close()
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer /health in {timeout} s")

    def read_log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def owned_ids(self):
        """Ids of the sandboxes this node accepted (it owns them)."""
        return set(self.ACCEPTED.findall(self.read_log()))

    def members(self):
        c = Client(self.port)
        try:
            status, data = c.call("GET", "/v1/cluster/nodes")
            if status != 200:
                raise RuntimeError(f"/v1/cluster/nodes on {self.name}: {status}")
            return json.loads(data)["nodes"]
        finally:
            c.close()

    def total_items(self):
        c = Client(self.port)
        try:
            status, data = c.call("GET", "/v1/sandboxes?pageSize=1")
            return json.loads(data)["pagination"]["totalItems"]
        finally:
            c.close()

    def cpu_seconds(self):
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
        if os.environ.get("OSB_KEEP_BENCH_DIRS"):
            log(f"kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Fleet:
    """Starts nodes, waits until they form one cluster, stops them all."""

    def __init__(self):
        self.nodes = []

    def add(self, name, seeds=(), **kw):
        node = Node(name, seeds=seeds, **kw)
        self.nodes.append(node)
        return node.start()

    def wait_joined(self, timeout=30):
        """Every node sees every other node up."""
        want = len(self.nodes) - 1
        deadline = time.time() + timeout
        while True:
            ok = all(sum(1 for m in n.members() if m["state"] == "up") == want
                     for n in self.nodes)
            if ok:
                return
            if time.time() > deadline:
                raise RuntimeError("the nodes did not join: "
                                   + "; ".join(f"{n.name}: {n.members()}" for n in self.nodes))
            time.sleep(0.1)

    def wait_directory(self, total, timeout=120):
        """Every node lists `total` sandboxes (replication caught up)."""
        deadline = time.time() + timeout
        while True:
            counts = [n.total_items() for n in self.nodes]
            if all(c == total for c in counts):
                return
            if time.time() > deadline:
                raise RuntimeError(f"directories at {counts}, want {total}")
            time.sleep(0.1)

    def stop(self):
        for n in self.nodes:
            try:
                n.stop()
            except Exception as e:  # keep stopping the others
                log(f"stopping {n.name}: {e}")
        self.nodes = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _create_threads(ports, n, threads, offset, barrier=None):
    """Runs `threads` keep-alive clients (thread i talks to
    ports[(offset + i) % len(ports)]) that create `n` sandboxes in all.
    Returns ([(port, id)], seconds from the start gate to the last reply)."""
    lock = threading.Lock()
    todo = [n]
    ids = []
    errors = []
    gate = threading.Barrier(threads + 1)

    def worker(i):
        c = Client(ports[(offset + i) % len(ports)])
        mine = []
        try:
            c.call("GET", "/health")  # connect before the clock starts
            gate.wait()
            while True:
                with lock:
                    if todo[0] == 0 or errors:
                        break
                    todo[0] -= 1
                mine.append((c.port, c.create()))
        except Exception as e:
            with lock:
                errors.append(e)
        finally:
            c.close()
            with lock:
                ids.extend(mine)

    ts = [threading.Thread(target=worker, args=(i,), daemon=True)
          for i in range(threads)]
    for t in ts:
        t.start()
    gate.wait()
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return ids, elapsed


def _create_proc(conn, barrier, ports, n, threads, offset):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    try:
        ids, _ = _create_threads(ports, n, threads, offset, barrier)
        conn.send(("ok", ids))
    except BaseException as e:  # report, never hang the parent
        conn.send(("error", repr(e)))
    finally:
        conn.close()


def create_many(ports, n, threads=32, procs=1):
    """Creates `n` sandboxes with `threads` keep-alive connections spread
    over `ports` (round robin). With procs > 1 the connections are split over
    that many client processes (one Python process cannot drive 32
    connections fast enough: the GIL). Returns ([(port, id)], seconds):
    which node's API took each create."""
    if procs <= 1:
        return _create_threads(ports, n, threads, 0)
    import multiprocessing as mp
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(procs + 1)
    per_threads = [threads // procs + (1 if i < threads % procs else 0)
                   for i in range(procs)]
    per_n = [n // procs + (1 if i < n % procs else 0) for i in range(procs)]
    children = []
    offset = 0
    for i in range(procs):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_create_proc, daemon=True,
                        args=(child, barrier, ports, per_n[i], per_threads[i], offset))
        offset += per_threads[i]
        p.start()
        child.close()
        children.append((p, parent))
    ids = []
    finished = False
    try:
        barrier.wait(timeout=60)
        t0 = time.perf_counter()
        errors = []
        for p, conn in children:
            kind, payload = conn.recv()
            if kind == "ok":
                ids.extend(payload)
            else:
                errors.append(payload)
        elapsed = time.perf_counter() - t0
        finished = True
    finally:
        for p, conn in children:
            if not finished:  # interrupted: stop the clients now
                p.kill()
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join()
    if errors:
        raise RuntimeError(f"client process failed: {errors[0]}")
    return ids, elapsed


def median(xs):
    return statistics.median(xs) if xs else float("nan")
