"""Shared helpers of the benchmarks in bench/ (Python 3 standard library only).

Every benchmark script imports this module from its own directory, starts its
own server (free port, temp config, temp store, a node name of its own) and
removes every container it created on the way out, also on failure and on
Ctrl-C / SIGTERM.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import shutil
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_BIN = os.environ.get(
    "OSB_SERVER_BIN", os.path.join(REPO, "build-bench", "opensandbox-server"))
API_KEY = "bench"
IMAGE = "opensandbox/busybox:latest"
ENTRYPOINT = ["sleep", "3600"]
DOCKER_SOCK = os.environ.get("OSB_DOCKER_SOCK", "/var/run/docker.sock")
DOCKER_API = "/v1.41"
# Label put on every container that a benchmark creates directly through the
# Engine API (the raw floors); its value is the run id.
RAW_LABEL = "opensandbox.io-bench/raw"
# What the server drops by default (config.hpp), for the raw floor.
CAP_DROP = ["AUDIT_WRITE", "MKNOD", "NET_ADMIN", "NET_RAW", "SYS_ADMIN",
            "SYS_MODULE", "SYS_PTRACE", "SYS_TIME", "SYS_TTY_CONFIG"]


# Set on the way out (Ctrl-C, failure): worker threads stop polling.
STOP = threading.Event()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


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


def host_port_is_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


_port_lock = threading.Lock()
_ports_in_use = set()


def take_host_ports(n=2):
    """n free host ports in 40000-60000 (the server's range), as it does."""
    with _port_lock:
        out = []
        while len(out) < n:
            p = random.randint(40000, 60000)
            if p not in _ports_in_use and p not in out and host_port_is_free(p):
                out.append(p)
        _ports_in_use.update(out)
        return out


def give_back_host_ports(ports):
    with _port_lock:
        _ports_in_use.difference_update(ports)


def pct(xs, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def fmt_ms(x):
    return f"{x * 1000:.1f} ms" if x >= 0.01 else f"{x * 1000:.3f} ms"


# -- Docker Engine API ---------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Docker:
    """One keep-alive connection to the Engine API."""

    def __init__(self, sock=DOCKER_SOCK):
        self.conn = UnixHTTPConnection(sock)

    def call(self, method, path, body=None):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, DOCKER_API + path, body=data,
                                  headers=headers)
                r = self.conn.getresponse()
                payload = r.read()
                return r.status, payload
            except (http.client.HTTPException, ConnectionError):
                # Also a connection left mid-request by an interruption.
                self.conn.close()
                if attempt:
                    raise

    def close(self):
        self.conn.close()

    def create_start(self, name, body):
        """Raw create+start; returns (seconds from sending create to start
        returning, container id)."""
        t0 = time.perf_counter()
        st, payload = self.call("POST", f"/containers/create?name={name}", body)
        if st != 201:
            raise RuntimeError(f"raw create: {st} {payload[:300]!r}")
        cid = json.loads(payload)["Id"]
        st, payload = self.call("POST", f"/containers/{cid}/start")
        t1 = time.perf_counter()
        if st not in (204, 304):
            self.call("DELETE", f"/containers/{cid}?force=true")
            raise RuntimeError(f"raw start: {st} {payload[:300]!r}")
        return t1 - t0, cid

    def remove(self, cid):
        st, payload = self.call("DELETE", f"/containers/{cid}?force=true")
        if st == 409 and b"already in progress" in payload:
            # An earlier (interrupted) removal is still under way.
            if self.wait_gone(cid):
                return
        if st not in (200, 204, 404):
            log(f"warning: removing {cid}: {st} {payload[:200]!r}")

    def exists(self, name_or_id):
        st, _ = self.call("GET", f"/containers/{name_or_id}/json")
        return st == 200

    def wait_gone(self, name_or_id, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if not self.exists(name_or_id):
                return True
            time.sleep(0.01)
        return False

    def inspect(self, name_or_id):
        st, payload = self.call("GET", f"/containers/{name_or_id}/json")
        return json.loads(payload) if st == 200 else None

    def list_labelled(self, label, value):
        filters = json.dumps({"label": [f"{label}={value}"]})
        st, payload = self.call(
            "GET", "/containers/json?all=1&filters="
            + urlquote(filters))
        if st != 200:
            raise RuntimeError(f"list containers: {st} {payload[:200]!r}")
        return [c["Id"] for c in json.loads(payload)]

    def remove_labelled(self, label, value):
        n = 0
        for cid in self.list_labelled(label, value):
            self.remove(cid)
            n += 1
        return n


def remove_raw_containers(run_id):
    """Removes the raw-floor containers of a run (fresh connection: the
    benchmark's own may have been left mid-request by Ctrl-C)."""
    d = Docker()
    try:
        n = d.remove_labelled(RAW_LABEL, run_id)
        if n:
            log(f"removed {n} leftover raw container(s)")
    finally:
        d.close()


def urlquote(s):
    from urllib.parse import quote
    return quote(s, safe="")


# HostConfig fields copied from the server's container when set there (the
# port bindings are ours, with other host ports).
MIRRORED_HOST_CONFIG = [
    "NetworkMode", "PidsLimit", "CapAdd", "CapDrop", "SecurityOpt", "Binds",
    "Mounts", "Memory", "NanoCpus", "CpuShares", "CpuQuota", "CpuPeriod",
    "DeviceRequests", "Devices", "Privileged", "ReadonlyRootfs", "Tmpfs",
    "Init", "Runtime", "ExtraHosts", "Dns", "DnsOptions", "DnsSearch",
    "Sysctls", "Ulimits", "GroupAdd", "UsernsMode", "IpcMode", "PidMode",
]


class FloorBody:
    """The create body of the raw floor.

    Default: the body the server sends in bridge mode (runtimes/docker/
    docker_api.cpp create_body + actors/sandbox.cpp make_container_spec).
    mirror(): takes Entrypoint, Cmd, Env, ExposedPorts and the HostConfig
    fields above from a container the server made (inspect), so that the
    floor keeps doing the same Docker work if the server's container changes
    (e.g. an injected execd bind mount)."""

    def __init__(self):
        self.config = {"Image": IMAGE, "Entrypoint": ENTRYPOINT,
                       "ExposedPorts": {"44772/tcp": {}, "8080/tcp": {}}}
        self.host_config = {
            "NetworkMode": "bridge",
            "PidsLimit": 4096,
            "CapDrop": CAP_DROP,
            "SecurityOpt": ["no-new-privileges:true"],
        }
        self.container_ports = ["44772/tcp", "8080/tcp"]
        self.source = "built-in copy of the server's bridge-mode body"

    def mirror(self, info):
        cfg, hc = info["Config"], info["HostConfig"]
        self.config = {"Image": cfg["Image"]}
        for k in ("Entrypoint", "Cmd", "Env", "ExposedPorts", "WorkingDir",
                  "User"):
            if cfg.get(k):
                self.config[k] = cfg[k]
        self.host_config = {k: hc[k] for k in MIRRORED_HOST_CONFIG
                            if hc.get(k) not in (None, "", 0, [], {}, False)}
        # The daemon's own defaults, which it would fill in anyway.
        if self.host_config.get("IpcMode") in ("private", "shareable"):
            del self.host_config["IpcMode"]
        if self.host_config.get("Runtime") == "runc":
            del self.host_config["Runtime"]
        self.container_ports = sorted((hc.get("PortBindings") or {}).keys())
        self.source = f"mirrored from the server's container {info['Name']}"
        return self

    def describe(self):
        return (f"Entrypoint {self.config.get('Entrypoint')} Cmd "
                f"{self.config.get('Cmd')}, published "
                f"{', '.join(self.container_ports)}, HostConfig "
                + json.dumps(self.host_config, sort_keys=True))

    def body(self, run_id, ports):
        body = dict(self.config)
        labels = {RAW_LABEL: run_id,
                  "opensandbox.io-bench/id": str(uuid.uuid4()),
                  "opensandbox.io/manual-cleanup": "true"}
        hc = dict(self.host_config)
        bindings = {}
        for i, cport in enumerate(self.container_ports):
            bindings[cport] = [{"HostIp": "0.0.0.0",
                                "HostPort": str(ports[i % len(ports)])}]
            labels[f"opensandbox.io-bench/port-{i}"] = str(ports[i % len(ports)])
        hc["PortBindings"] = bindings
        body["Labels"] = labels
        body["HostConfig"] = hc
        return body


def container_differences(a, b):
    """Config/HostConfig fields in which two inspected containers differ,
    ignoring identity, labels and host port numbers."""
    skip = {"Hostname", "Labels", "PortBindings"}
    out = []
    for part in ("Config", "HostConfig"):
        x, y = a.get(part) or {}, b.get(part) or {}
        for k in sorted(set(x) | set(y)):
            if k in skip:
                continue
            if x.get(k) != y.get(k):
                out.append(f"{part}.{k}: {x.get(k)!r} vs {y.get(k)!r}")
    pa = sorted((a["HostConfig"].get("PortBindings") or {}).keys())
    pb = sorted((b["HostConfig"].get("PortBindings") or {}).keys())
    if pa != pb:
        out.append(f"published ports: {pa} vs {pb}")
    return out


def check_image():
    d = Docker()
    try:
        st, _ = d.call("GET", f"/images/{IMAGE}/json")
        if st != 200:
            sys.exit(f"image {IMAGE} is missing: run deploy/build-images.sh")
    finally:
        d.close()


# -- the server under test -----------------------------------------------------

class Server:
    """Starts opensandbox-server on a free port with a temp config and store;
    stop() ends it and removes the containers labelled with its node name."""

    def __init__(self, runtime="docker", name="bench", binary=DEFAULT_BIN,
                 extra_config="", log_level="INFO"):
        if not os.access(binary, os.X_OK):
            sys.exit(f"server binary not found: {binary} (build it: cmake -S "
                     f"{REPO} -B {REPO}/build-bench -G Ninja "
                     "-DCMAKE_BUILD_TYPE=Release -DOSB_BUILD_TESTS=OFF && "
                     f"cmake --build {REPO}/build-bench -j2)")
        self.runtime = runtime
        self.binary = binary
        self.node = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.dir = tempfile.mkdtemp(prefix="osb-bench-")
        self.port = free_port()
        self.config = os.path.join(self.dir, "config.toml")
        self.log_path = os.path.join(self.dir, "server.log")
        with open(self.config, "w") as f:
            f.write(f"""[server]
host = "127.0.0.1"
port = {self.port}
api_key = "{API_KEY}"

[log]
level = "{log_level}"

[runtime]
type = "{runtime}"

[store]
path = "{self.dir}/store.db"

[cluster]
node_name = "{self.node}"
{extra_config}
""")
        self.proc = None
        self.log_file = None

    def start(self, timeout=30):
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([self.binary, "--config", self.config],
                                     stdout=self.log_file,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n"
                    + self.read_log()[-3000:])
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port,
                                               timeout=2)
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not answer /health in time:\n"
                           + self.read_log()[-3000:])

    def read_log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def running_after_ms(self):
        """{sandbox id: N} from the log lines 'sandbox is running after N ms'."""
        out = {}
        for line in self.read_log().splitlines():
            m = re.search(r"\[([0-9a-f-]{36})\] sandbox: sandbox is running "
                          r"after (\d+) ms", line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def rss_kb(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def cpu_seconds(self):
        """User+system CPU time the server process has used so far."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def client(self):
        return Client(self.port)

    def stop(self, keep_dir=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log("server did not stop on SIGTERM; killing it")
                self.proc.kill()
                self.proc.wait()
        if self.log_file:
            self.log_file.close()
        if self.runtime == "docker":
            d = Docker()
            try:
                n = d.remove_labelled("opensandbox.io/node", self.node)
                if n:
                    log(f"removed {n} leftover sandbox container(s) of node "
                        f"{self.node}")
            finally:
                d.close()
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, port, timeout=120):
        self.port = port
        self.timeout = timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port,
                                               timeout=timeout)
        self.headers = {"OPEN-SANDBOX-API-KEY": API_KEY}

    def call(self, method, path, body=None):
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                self.conn.close()
                if attempt:
                    raise

    def create(self, metadata=None):
        body = {"image": {"uri": IMAGE}, "entrypoint": ENTRYPOINT,
                "resourceLimits": {}}
        if metadata:
            body["metadata"] = metadata
        st, payload = self.call("POST", "/v1/sandboxes", body)
        if st != 202:
            raise RuntimeError(f"POST /v1/sandboxes: {st} {payload[:300]!r}")
        return json.loads(payload)["id"]

    def state(self, sid):
        st, payload = self.call("GET", f"/v1/sandboxes/{sid}")
        if st != 200:
            raise RuntimeError(f"GET /v1/sandboxes/{sid}: {st} "
                               f"{payload[:300]!r}")
        return json.loads(payload)["status"]

    def wait_running(self, sid, poll_s=0.002, timeout=120):
        """Polls GET until Running; returns the perf_counter() of the GET
        that showed it."""
        end = time.monotonic() + timeout
        while True:
            if STOP.is_set():
                raise RuntimeError("benchmark is stopping")
            s = self.state(sid)
            if s["state"] == "Running":
                return time.perf_counter()
            if s["state"] not in ("Pending",):
                raise RuntimeError(f"sandbox {sid} became {s}")
            if time.monotonic() > end:
                raise RuntimeError(f"sandbox {sid} not Running after "
                                   f"{timeout}s: {s}")
            time.sleep(poll_s)

    def delete(self, sid):
        st, payload = self.call("DELETE", f"/v1/sandboxes/{sid}")
        if st != 204:
            raise RuntimeError(f"DELETE /v1/sandboxes/{sid}: {st} "
                               f"{payload[:300]!r}")

    def close(self):
        self.conn.close()


def docker_version():
    d = Docker()
    try:
        st, payload = d.call("GET", "/version")
        return json.loads(payload).get("Version", "?") if st == 200 else "?"
    finally:
        d.close()
