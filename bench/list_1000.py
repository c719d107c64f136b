#!/usr/bin/env python3
"""GET /v1/sandboxes latency with 1000 sandboxes (runtime type "fake").

The server runs the in-memory "fake" runtime (no containers), so this measures
the control plane only. 1000 sandboxes are created (POST, --threads in
parallel), half of them with metadata {"k": "v"}; once all are Running, one
keep-alive connection sends, interleaved, --n times each:
  GET /health                                  (floor: same HTTP path, no list)
  GET /v1/sandboxes                            (default page: 1, pageSize 20)
  GET /v1/sandboxes?state=Running&metadata=k%3Dv   (500 match)
Prints p50/p90 in ms of each, and p50(list)/p50(health). Target: p50 < 2 ms.
"""

import argparse
import json
import sys
import threading
import time

import benchlib as B


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sandboxes", type=int, default=1000)
    ap.add_argument("--n", type=int, default=500,
                    help="requests of each kind (500)")
    ap.add_argument("--threads", type=int, default=8,
                    help="parallel POSTs while filling (8)")
    ap.add_argument("--server-bin", default=B.DEFAULT_BIN)
    args = ap.parse_args()
    B.install_sigterm_handler()

    server = B.Server(runtime="fake", name="bench-list",
                      binary=args.server_bin)
    try:
        server.start()
        rss0 = server.rss_kb()
        # -- fill
        t_fill = time.perf_counter()
        counter = iter(range(args.sandboxes))
        lock = threading.Lock()
        errs = []

        def filler():
            c = server.client()
            try:
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    c.create(metadata={"k": "v"} if i % 2 == 0
                             else {"k": "w"})
            except Exception as e:
                errs.append(e)
            finally:
                c.close()

        ts = [threading.Thread(target=filler) for _ in range(args.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errs:
            raise errs[0]
        t_posted = time.perf_counter()
        c = server.client()
        deadline = time.monotonic() + 120
        while True:
            st, body = c.call("GET", "/v1/sandboxes?state=Running&pageSize=1")
            running = json.loads(body)["pagination"]["totalItems"]
            if running == args.sandboxes:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {running} of {args.sandboxes} "
                                   "sandboxes are Running")
            time.sleep(0.01)
        t_running = time.perf_counter()
        rss1 = server.rss_kb()

        # -- sanity of what we measure
        st, body = c.call("GET", "/v1/sandboxes")
        page = json.loads(body)
        assert st == 200 and len(page["items"]) == 20 \
            and page["pagination"]["totalItems"] == args.sandboxes, body[:300]
        list_bytes = len(body)
        st, body = c.call("GET", "/v1/sandboxes?state=Running&metadata=k%3Dv")
        page = json.loads(body)
        assert st == 200 and len(page["items"]) == 20 \
            and page["pagination"]["totalItems"] == (args.sandboxes + 1) // 2, \
            body[:300]

        # -- measure, interleaved on one keep-alive connection
        kinds = [("health", "/health"),
                 ("list", "/v1/sandboxes"),
                 ("filtered", "/v1/sandboxes?state=Running&metadata=k%3Dv")]
        lat = {k: [] for k, _ in kinds}
        for i in range(50 + args.n):
            for k, path in kinds:
                t0 = time.perf_counter()
                st, _ = c.call("GET", path)
                dt = time.perf_counter() - t0
                if st != 200:
                    raise RuntimeError(f"GET {path}: {st}")
                if i >= 50:
                    lat[k].append(dt)
        c.close()
    finally:
        server.stop()

    print(f"list_1000: {args.sandboxes} sandboxes (runtime fake), {args.n} "
          "sequential GETs of each kind, interleaved, one keep-alive "
          "connection")
    print(f"  fill: {args.sandboxes} POSTs in "
          f"{t_posted - t_fill:.2f} s ({args.threads} threads), all Running "
          f"{(t_running - t_posted) * 1000:.0f} ms later; server RSS "
          f"{rss0} kB -> {rss1} kB")
    for k, path in kinds:
        xs = lat[k]
        print(f"  {path:<46} p50 {B.pct(xs, 50) * 1000:.3f} ms  p90 "
              f"{B.pct(xs, 90) * 1000:.3f} ms  max {max(xs) * 1000:.3f} ms")
    h50 = B.pct(lat["health"], 50)
    l50 = B.pct(lat["list"], 50)
    f50 = B.pct(lat["filtered"], 50)
    print(f"  list page body: {list_bytes} bytes")
    print(f"  RATIO p50(list)/p50(health) = {l50 / h50:.2f}   "
          f"p50(filtered)/p50(health) = {f50 / h50:.2f}")
    print(f"  target p50(list) < 2 ms: {'met' if l50 < 0.002 else 'MISSED'} "
          f"({l50 * 1000:.3f} ms)")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
