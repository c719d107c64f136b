#!/usr/bin/env python3
"""Times DNS queries from inside a network namespace (run under nsenter):
alternately through the egress sidecar's DNS proxy and straight to its
upstream, so that both see the same machine load. Prints JSON.
Usage: egress_dns_probe.py PROXY_IP:PORT UPSTREAM_IP:PORT N"""
import json
import socket
import struct
import sys
import time


def query(sock, addr, qid, name):
    labels = b"".join(bytes([len(l)]) + l.encode() for l in name.split("."))
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack(">HH", 1, 1)
    t = time.perf_counter()
    sock.sendto(packet, addr)
    while True:
        data = sock.recv(2048)
        if len(data) >= 4 and struct.unpack(">H", data[:2])[0] == qid:
            break
    elapsed = (time.perf_counter() - t) * 1e6
    rcode = data[3] & 0x0F
    return elapsed if rcode == 0 else None


def endpoint(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    proxy, upstream, n = endpoint(sys.argv[1]), endpoint(sys.argv[2]), int(sys.argv[3])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(2)
    qid = 1
    via, direct, fresh, failed = [], [], [], 0
    for i in range(n + 50):
        for addr, out in ((proxy, via), (upstream, direct)):
            qid = (qid + 1) & 0xFFFF
            try:
                t = query(sock, addr, qid, "allowed.e2e.test")
            except socket.timeout:
                t = None
            if t is None:
                failed += 1
            elif i >= 50:  # the first 50 rounds warm up
                out.append(t)
    # A new name, hence a new address to admit, every time.
    for i in range(n // 2):
        qid = (qid + 1) & 0xFFFF
        try:
            t = query(sock, proxy, qid, "ip-10-99-%d-%d.fresh.e2e.test" % (i // 250, i % 250 + 1))
        except socket.timeout:
            t = None
        if t is None:
            failed += 1
        else:
            fresh.append(t)
    print(json.dumps({
        "n": len(via), "failed": failed,
        "via_p50": pct(via, 0.5), "via_p99": pct(via, 0.99),
        "direct_p50": pct(direct, 0.5), "direct_p99": pct(direct, 0.99),
        "fresh_p50": pct(fresh, 0.5),
    }))


if __name__ == "__main__":
    main()
