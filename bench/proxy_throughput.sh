#!/usr/bin/env bash
# Server proxy throughput and added latency, against the upstream itself.
#
# Builds bench/proxy_backend.cpp (a one-thread epoll HTTP server answering a
# 13-byte body). MODE=bridge (default, what the issue measures: "a direct
# connection to the sandbox's mapped port"): the backend runs inside a
# busybox sandbox on port 8080, the floor is its host-mapped port at this
# machine's outward address (FLOOR=nat, the default: Docker's NAT forwards
# in the kernel, as for a client on another machine, and as the server's
# proxy connects) or at 127.0.0.1 (FLOOR=loopback: through docker-proxy, a
# slower floor), and the proxy targets the same mapped port. MODE=host: the
# server runs in host
# network mode and the backend on the host (the proxied port P of a sandbox
# is 127.0.0.1:P), a floor without Docker's port forwarding. Then it runs
#   wrk -t2 -c32 -d10s --latency URL
# alternately on the upstream directly (floor: http://127.0.0.1:P/), through
# the proxy (http://127.0.0.1:PORT/sandboxes/{id}/proxy/P/) and on the
# server's GET /health (same HTTP stack, nothing forwarded), ROUNDS times
# each (default 2). Prints requests/s and p50/p99 latency of each run, the
# medians, the server's CPU time per request (from /proc/PID/stat), the
# throughput ratio proxy/direct (target >= 0.7) and the added p50 latency
# (target < 1 ms), under load (-c32) and unloaded (-t1 -c1, 5 s).
#
# Reference proxies (REFS=auto, the default: those installed; apt-get install
# nginx-light haproxy): nginx and HAProxy, with as many workers/threads as
# the server has I/O threads and kept-alive upstream connections, forward to
# the same upstream as the server's proxy (bridge: the mapped port at the
# outward address; host: the backend). Each round runs them after the server
# proxy and prints their ratio to the same floor: what a mature userspace
# proxy reaches on this machine and path. REFS=none skips them.
#
# Env: OSB_SERVER_BIN (default build-bench/opensandbox-server), ROUNDS,
#      DURATION (wrk -d, default 10s), WRK_THREADS (2), WRK_CONNS (32),
#      IO_THREADS (server.io_threads, default 2), MODE (bridge | host),
#      FLOOR (nat | loopback; bridge mode only), REFS (auto | none | a
#      comma-separated subset of nginx,haproxy).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
BIN="${OSB_SERVER_BIN:-$REPO/build-bench/opensandbox-server}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10s}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNS="${WRK_CONNS:-32}"
IO_THREADS="${IO_THREADS:-2}"
MODE="${MODE:-bridge}"
FLOOR="${FLOOR:-nat}"
REFS="${REFS:-auto}"
KEY=bench
IMAGE=opensandbox/busybox:latest

[ -x "$BIN" ] || { echo "server binary not found: $BIN" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }
command -v g++ >/dev/null || { echo "g++ is not installed" >&2; exit 1; }

NODE="bench-proxy-$$-$RANDOM"
DIR="$(mktemp -d /tmp/osb-bench-XXXXXX)"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT="$(free_port)"
SERVER_PID=""
BACKEND_PID=""
WRK_PID=""
REF_PIDS=()

stop_pid() { # pid
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill -TERM "$1" 2>/dev/null || true
  for _ in $(seq 1 150); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  [ -z "$WRK_PID" ] || stop_pid "$WRK_PID"
  for pid in "${REF_PIDS[@]}"; do stop_pid "$pid"; done
  stop_pid "$SERVER_PID"
  stop_pid "$BACKEND_PID"
  local ids
  ids="$(docker ps -aq --filter "label=opensandbox.io/node=$NODE" || true)"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$DIR/server.log" ]; then
    echo "--- server log (tail) ---" >&2
    tail -n 30 "$DIR/server.log" >&2
  fi
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

if [ "$MODE" = host ]; then
  g++ -O2 -std=c++17 -o "$DIR/proxy_backend" "$HERE/proxy_backend.cpp"
  "$DIR/proxy_backend" 0 >"$DIR/backend.port" &
  BACKEND_PID=$!
  for _ in $(seq 1 50); do
    [ -s "$DIR/backend.port" ] && break
    sleep 0.1
  done
  UP="$(head -1 "$DIR/backend.port")"
  [ -n "$UP" ] || { echo "backend did not start" >&2; exit 1; }
  NETWORK_MODE=host
else
  # Static, so that it runs in the busybox image from a read-only bind.
  g++ -O2 -static -std=c++17 -o "$DIR/proxy_backend" "$HERE/proxy_backend.cpp"
  UP=8080
  NETWORK_MODE=bridge
fi

cat >"$DIR/config.toml" <<EOF
[server]
host = "127.0.0.1"
port = $PORT
api_key = "$KEY"
io_threads = $IO_THREADS

[log]
level = "WARNING"

[runtime]
type = "docker"

[docker]
network_mode = "$NETWORK_MODE"
# Ports on the outward address (what server.host = "0.0.0.0" gives by
# default), so that the floor and the proxy take Docker's NAT.
publish_address = "$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("192.0.2.1", 9)); print(s.getsockname()[0])')"

[storage]
allowed_host_paths = ["$DIR"]

[store]
path = "$DIR/store.db"

[cluster]
node_name = "$NODE"
EOF

"$BIN" --config "$DIR/config.toml" >"$DIR/server.log" 2>&1 </dev/null &
SERVER_PID=$!

BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "$BASE/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.1
done

if [ "$MODE" = host ]; then
  BODY="{\"image\":{\"uri\":\"$IMAGE\"},\"entrypoint\":[\"sleep\",\"3600\"],\"resourceLimits\":{}}"
else
  BODY="{\"image\":{\"uri\":\"$IMAGE\"},\"entrypoint\":[\"/bench/proxy_backend\",\"8080\",\"any\"],\"resourceLimits\":{},\"volumes\":[{\"name\":\"bench\",\"host\":{\"path\":\"$DIR\"},\"mountPath\":\"/bench\",\"readOnly\":true}]}"
fi
SID="$(curl -fsS -X POST "$BASE/v1/sandboxes" \
  -H "OPEN-SANDBOX-API-KEY: $KEY" -H 'Content-Type: application/json' \
  -d "$BODY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
STATE=""
for _ in $(seq 1 600); do
  STATE="$(curl -fsS "$BASE/v1/sandboxes/$SID" -H "OPEN-SANDBOX-API-KEY: $KEY" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["state"])')"
  [ "$STATE" = Running ] && break
  sleep 0.1
done
[ "$STATE" = Running ] || { echo "sandbox $SID is $STATE, not Running" >&2; exit 1; }

if [ "$MODE" = host ]; then
  DIRECT_URL="http://127.0.0.1:$UP/"
  REF_UPSTREAM="127.0.0.1:$UP"
else
  EP="$(curl -fsS "$BASE/v1/sandboxes/$SID/endpoints/8080" -H "OPEN-SANDBOX-API-KEY: $KEY" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["endpoint"])')"
  # The address of the default route (no packet is sent); the server's
  # proxy (docker.proxy_host = auto) reaches the mapped port there.
  OUTWARD="$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(("192.0.2.1", 9)); print(s.getsockname()[0])')"
  REF_UPSTREAM="$OUTWARD:${EP##*:}"
  if [ "$FLOOR" = loopback ]; then
    DIRECT_URL="http://127.0.0.1:${EP##*:}/"
  else
    DIRECT_URL="http://$OUTWARD:${EP##*:}/"
  fi
  echo "floor: $DIRECT_URL (FLOOR=$FLOOR)" >&2
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null "$DIRECT_URL" 2>/dev/null && break
    sleep 0.1
  done
fi
PROXY_URL="$BASE/sandboxes/$SID/proxy/$UP/"
curl -fsS -H "OPEN-SANDBOX-API-KEY: $KEY" "$PROXY_URL" | grep -q 'hello, world' \
  || { echo "the proxy does not reach the backend" >&2; exit 1; }

# Reference proxies: NAME:URL pairs in REF_URLS.
REF_URLS=()
wait_url() { # url pid
  for _ in $(seq 1 50); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "reference proxy at $1 does not answer" >&2
  exit 1
}
start_nginx() {
  local port
  port="$(free_port)"
  mkdir -p "$DIR/nginx"
  cat >"$DIR/nginx/nginx.conf" <<NGX
worker_processes $IO_THREADS;
daemon off;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $DIR/nginx/body;
  proxy_temp_path $DIR/nginx/proxy;
  upstream sandbox { server $REF_UPSTREAM; keepalive 64; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://sandbox;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
NGX
  nginx -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" \
    >"$DIR/nginx/out.log" 2>&1 &
  REF_PIDS+=("$!")
  wait_url "http://127.0.0.1:$port/" "$!"
  REF_URLS+=("nginx:http://127.0.0.1:$port/")
}
start_haproxy() {
  local port
  port="$(free_port)"
  cat >"$DIR/haproxy.cfg" <<HAP
global
  nbthread $IO_THREADS
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen sandbox
  bind 127.0.0.1:$port
  http-reuse always
  server s1 $REF_UPSTREAM
HAP
  haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
  REF_PIDS+=("$!")
  wait_url "http://127.0.0.1:$port/" "$!"
  REF_URLS+=("haproxy:http://127.0.0.1:$port/")
}
if [ "$REFS" = auto ]; then
  REFS=""
  for r in nginx haproxy; do
    command -v "$r" >/dev/null && REFS="$REFS,$r"
  done
  [ -n "$REFS" ] || echo "no reference proxy installed (apt-get install nginx-light haproxy)" >&2
fi
for r in ${REFS//,/ }; do
  case "$r" in
    none) ;;
    nginx) start_nginx ;;
    haproxy) start_haproxy ;;
    *) echo "unknown reference proxy: $r" >&2; exit 1 ;;
  esac
done

# wrk prints latencies as 123.45us / 1.23ms / 1.00s; normalize to ms.
to_ms() {
  awk '{v=$1; if (v ~ /us$/) {sub(/us$/,"",v); print v/1000}
        else if (v ~ /ms$/) {sub(/ms$/,"",v); print v+0}
        else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000}}'
}

CLK_TCK="$(getconf CLK_TCK)"
# CPU ticks (user + system) of the process measured (CPU_PID, the server by
# default) and of its children (nginx's workers).
CPU_PID=""
server_ticks() {
  local pid="${CPU_PID:-$SERVER_PID}"
  # shellcheck disable=SC2046
  cat "/proc/$pid/stat" $(pgrep -P "$pid" | sed 's|.*|/proc/&/stat|') 2>/dev/null \
    | awk '{t += $14 + $15} END {print t}'
}

run_wrk() { # name url [threads conns duration] -> sets RPS P50 P99 CPU_US
  local t0
  t0="$(server_ticks)"
  # The proxy's credential; the other targets ignore it.
  wrk -t"${3:-$WRK_THREADS}" -c"${4:-$WRK_CONNS}" -d"${5:-$DURATION}" \
    -H "OPEN-SANDBOX-API-KEY: $KEY" --latency "$2" >"$DIR/wrk.out" &
  WRK_PID=$!
  wait "$WRK_PID"
  WRK_PID=""
  local out
  out="$(cat "$DIR/wrk.out")"
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
    echo "warning: $(grep 'Non-2xx\|Socket errors' <<<"$out" | tr '\n' ' ') for $2" >&2
  fi
  RPS="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  local total
  total="$(awk '/requests in/ {print $1}' <<<"$out")"
  CPU_US="$(awk -v a="$t0" -v b="$(server_ticks)" -v hz="$CLK_TCK" -v n="$total" \
    'BEGIN {printf "%.1f", (b - a) * 1e6 / hz / n}')"
  P50="$(awk '$1 == "50%" {print $2}' <<<"$out" | to_ms)"
  P99="$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)"
  [ -n "$RPS" ] && [ -n "$P50" ] || { echo "wrk failed: $out" >&2; exit 1; }
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.4f\n", (a[NR/2]+a[NR/2+1])/2}'; }

D_RPS=(); D_P50=(); D_P99=()
P_RPS=(); P_P50=(); P_P99=(); P_CPU=()
H_RPS=(); H_CPU=()
REF_RPS=(); REF_P50=(); REF_CPU=()
for r in $(seq 1 "$ROUNDS"); do
  run_wrk direct "$DIRECT_URL"
  D_RPS+=("$RPS"); D_P50+=("$P50"); D_P99+=("$P99")
  d="$RPS req/s p50 ${P50}ms p99 ${P99}ms"
  run_wrk proxy "$PROXY_URL"
  P_RPS+=("$RPS"); P_P50+=("$P50"); P_P99+=("$P99"); P_CPU+=("$CPU_US")
  p="$RPS req/s p50 ${P50}ms p99 ${P99}ms, server ${CPU_US} us CPU/req"
  run_wrk health "$BASE/health"
  H_RPS+=("$RPS"); H_CPU+=("$CPU_US")
  h="$RPS req/s, server ${CPU_US} us CPU/req"
  refs=""
  for i in "${!REF_URLS[@]}"; do
    CPU_PID="${REF_PIDS[$i]}"
    run_wrk "${REF_URLS[$i]%%:*}" "${REF_URLS[$i]#*:}"
    CPU_PID=""
    REF_RPS[$i]="${REF_RPS[$i]:-} $RPS"
    REF_P50[$i]="${REF_P50[$i]:-} $P50"
    REF_CPU[$i]="${REF_CPU[$i]:-} $CPU_US"
    refs="$refs   ${REF_URLS[$i]%%:*} $RPS req/s p50 ${P50}ms, ${CPU_US} us CPU/req"
  done
  echo "round $r/$ROUNDS: direct $d   proxy $p   /health $h$refs" >&2
done
# Unloaded: one connection, one request at a time.
run_wrk direct1 "$DIRECT_URL" 1 1 5s
U_D50="$P50"
run_wrk proxy1 "$PROXY_URL" 1 1 5s
U_P50="$P50"
U_ADDED="$(awk -v p="$U_P50" -v d="$U_D50" 'BEGIN {printf "%.3f", p - d}')"
DR="$(printf '%s\n' "${D_RPS[@]}" | median)"
PR="$(printf '%s\n' "${P_RPS[@]}" | median)"
D50="$(printf '%s\n' "${D_P50[@]}" | median)"
P50M="$(printf '%s\n' "${P_P50[@]}" | median)"
D99="$(printf '%s\n' "${D_P99[@]}" | median)"
P99M="$(printf '%s\n' "${P_P99[@]}" | median)"
HR="$(printf '%s\n' "${H_RPS[@]}" | median)"
P_CPU_M="$(printf '%s\n' "${P_CPU[@]}" | median)"
H_CPU_M="$(printf '%s\n' "${H_CPU[@]}" | median)"
RATIO="$(awk -v p="$PR" -v d="$DR" 'BEGIN {printf "%.3f", p / d}')"
ADDED="$(awk -v p="$P50M" -v d="$D50" 'BEGIN {printf "%.3f", p - d}')"
V_RATIO="$(awk -v x="$RATIO" 'BEGIN {print (x >= 0.7) ? "met" : "MISSED"}')"
V_LAT="$(awk -v x="$ADDED" 'BEGIN {print (x < 1.0) ? "met" : "MISSED"}')"
RSS="$(awk '/^VmRSS:/ {print $2 " kB"}' "/proc/$SERVER_PID/status" 2>/dev/null || echo '?')"

echo "proxy_throughput ($MODE mode): wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION --latency, $ROUNDS rounds (alternating), $(nproc) cores, server io_threads $IO_THREADS, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  direct  GET the mapped port (floor):        median $DR req/s   p50 ${D50} ms   p99 ${D99} ms   runs: ${D_RPS[*]}"
echo "  proxied GET /sandboxes/{id}/proxy/P/:    median $PR req/s   p50 ${P50M} ms   p99 ${P99M} ms   runs: ${P_RPS[*]}"
echo "  server GET /health (same stack): median $HR req/s   runs: ${H_RPS[*]}"
echo "  server CPU per request: proxied ${P_CPU_M} us, /health ${H_CPU_M} us"
echo "  unloaded (-t1 -c1 -d5s) p50: direct ${U_D50} ms, proxied ${U_P50} ms, added ${U_ADDED} ms"
echo "  server RSS after the runs: $RSS"
for i in "${!REF_URLS[@]}"; do
  # shellcheck disable=SC2086
  rr="$(printf '%s\n' ${REF_RPS[$i]} | median)"
  # shellcheck disable=SC2086
  r50="$(printf '%s\n' ${REF_P50[$i]} | median)"
  # shellcheck disable=SC2086
  rcpu="$(printf '%s\n' ${REF_CPU[$i]} | median)"
  printf '  reference %-8s same upstream:       median %s req/s   p50 %s ms   %s us CPU/req   runs:%s   ratio to the floor %s\n' \
    "${REF_URLS[$i]%%:*}" "$rr" "$r50" "$rcpu" "${REF_RPS[$i]}" \
    "$(awk -v p="$rr" -v d="$DR" 'BEGIN {printf "%.3f", p / d}')"
done
echo "  RATIO proxy/direct = $RATIO (target >= 0.7: $V_RATIO)   added p50 = ${ADDED} ms (target < 1 ms: $V_LAT)"
