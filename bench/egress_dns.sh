#!/usr/bin/env bash
# Egress sidecar: DNS latency added by its filtering proxy, and its memory.
#
# Starts test/e2e/dns-server.mjs on the Docker bridge's gateway (names under
# .e2e.test resolve) and an opensandbox/egress sidecar in dns+nft mode whose
# policy allows *.e2e.test, with that server as upstream. Then, from inside
# the sidecar's network namespace (nsenter, where a sandbox's queries start),
# bench/egress_dns_probe.py sends N queries alternately to the sidecar's
# proxy (127.0.0.1:53) and straight to the upstream (the floor), then N/2
# queries for names with a new address each (the proxy also admits the
# address into the nftables set before it answers). Prints p50/p99 of both,
# the added p50 (target < 1 ms) and the sidecar's VmRSS/VmHWM (target
# < 16 MB). Needs root, Docker, node, the egress image
# (deploy/build-egress-image.sh).
# Env: N (default 2000), OSB_EGRESS_IMAGE (default opensandbox/egress:latest).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
N="${N:-2000}"
IMAGE="${OSB_EGRESS_IMAGE:-opensandbox/egress:latest}"
NAME="osb-bench-egress-$$"
DIR="$(mktemp -d /tmp/osb-bench-egress-XXXXXX)"
DNS_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  [ -z "$DNS_PID" ] || kill "$DNS_PID" 2>/dev/null || true
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

[ "$(id -u)" = 0 ] || { echo "needs root (nsenter)" >&2; exit 1; }
docker image inspect "$IMAGE" >/dev/null 2>&1 \
  || { echo "image $IMAGE missing (deploy/build-egress-image.sh)" >&2; exit 1; }

bridge_dev=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}')
gateway=$(ip -4 -o addr show dev "$bridge_dev" | awk '{print $4}' | cut -d/ -f1 | head -n1)
node "$REPO/test/e2e/dns-server.mjs" "$gateway" >"$DIR/dns.port" &
DNS_PID=$!
for _ in $(seq 1 50); do [ -s "$DIR/dns.port" ] && break; sleep 0.1; done
dns_port="$(head -1 "$DIR/dns.port")"
[ -n "$dns_port" ] || { echo "the DNS server did not start" >&2; exit 1; }

docker run -d --name "$NAME" --cap-add NET_ADMIN \
  --sysctl net.ipv6.conf.all.disable_ipv6=1 \
  --sysctl net.ipv6.conf.default.disable_ipv6=1 \
  --sysctl net.ipv6.conf.lo.disable_ipv6=1 \
  -e OPENSANDBOX_EGRESS_MODE=dns+nft -e OPENSANDBOX_EGRESS_TOKEN=bench \
  -e "OPENSANDBOX_EGRESS_UPSTREAM_DNS=$gateway:$dns_port" \
  -e 'OPENSANDBOX_EGRESS_RULES={"defaultAction":"deny","egress":[{"action":"allow","target":"*.e2e.test"}]}' \
  "$IMAGE" >/dev/null
pid="$(docker inspect -f '{{.State.Pid}}' "$NAME")"
for _ in $(seq 1 100); do
  nsenter -t "$pid" -n python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18080), 1)' \
    2>/dev/null && break
  sleep 0.1
done

out="$(nsenter -t "$pid" -n python3 "$HERE/egress_dns_probe.py" \
  "127.0.0.1:53" "$gateway:$dns_port" "$N")"
mem="$(grep -E '^Vm(RSS|HWM):' "/proc/$pid/status" | awk '{printf "%s %s kB  ", $1, $2}')"
rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
admitted="$(docker exec "$NAME" nft list set inet opensandbox dyn_allow_v4 \
  | grep -o '10\.99\.[0-9]*\.[0-9]*' | sort -u | wc -l)"
python3 - "$out" "$mem" "$rss_kb" "$admitted" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
added = (r["via_p50"] - r["direct_p50"]) / 1000
rss_mb = int(sys.argv[3]) / 1024
print(f"egress_dns: {r['n']} queries each way, alternating, from the sidecar's network namespace; "
      f"{r['failed']} failed")
print(f"  direct to the upstream (floor): p50 {r['direct_p50']:.0f} us   p99 {r['direct_p99']:.0f} us")
print(f"  through the sidecar's proxy:    p50 {r['via_p50']:.0f} us   p99 {r['via_p99']:.0f} us   "
      f"(ratio {r['via_p50'] / r['direct_p50']:.2f})")
print(f"  new address per answer (nftables insert): p50 {r['fresh_p50']:.0f} us   "
      f"({sys.argv[4]} addresses admitted)")
print(f"  sidecar memory: {sys.argv[2]}")
print(f"  ADDED p50 = {added:.3f} ms (target < 1 ms: {'met' if added < 1 else 'MISSED'})   "
      f"RSS = {rss_mb:.1f} MB (target < 16 MB: {'met' if rss_mb < 16 else 'MISSED'})")
EOF
