#!/usr/bin/env bash
# GET /v1/sandboxes/{id} throughput with wrk, against GET /health as floor.
#
# Starts the server (docker runtime, free port, temp config + store, node name
# of its own), creates one sandbox, waits until it is Running, then runs
#   wrk -t2 -c32 -d10s -H 'OPEN-SANDBOX-API-KEY: bench' URL
# alternately on /health (floor: same server, same HTTP stack, no sandbox
# lookup) and on /v1/sandboxes/{id}, ROUNDS times each (default 2), and prints
# requests/s of each run, the medians, and the ratio get/health.
# Target: >= 15000 requests/s for the sandbox GET.
#
# Env: OSB_SERVER_BIN (default build-bench/opensandbox-server), ROUNDS,
#      DURATION (wrk -d, default 10s), WRK_THREADS (2), WRK_CONNS (32).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
BIN="${OSB_SERVER_BIN:-$REPO/build-bench/opensandbox-server}"
ROUNDS="${ROUNDS:-2}"
DURATION="${DURATION:-10s}"
WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNS="${WRK_CONNS:-32}"
KEY=bench
IMAGE=opensandbox/busybox:latest

[ -x "$BIN" ] || { echo "server binary not found: $BIN" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

NODE="bench-tput-$$-$RANDOM"
DIR="$(mktemp -d /tmp/osb-bench-XXXXXX)"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
SERVER_PID=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if [ -n "$WRK_PID" ]; then
    kill "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
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

cat >"$DIR/config.toml" <<EOF
[server]
host = "127.0.0.1"
port = $PORT
api_key = "$KEY"

[runtime]
type = "docker"

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

SID="$(curl -fsS -X POST "$BASE/v1/sandboxes" \
  -H "OPEN-SANDBOX-API-KEY: $KEY" -H 'Content-Type: application/json' \
  -d "{\"image\":{\"uri\":\"$IMAGE\"},\"entrypoint\":[\"sleep\",\"3600\"],\"resourceLimits\":{}}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
for _ in $(seq 1 600); do
  STATE="$(curl -fsS "$BASE/v1/sandboxes/$SID" -H "OPEN-SANDBOX-API-KEY: $KEY" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"]["state"])')"
  [ "$STATE" = Running ] && break
  sleep 0.1
done
[ "$STATE" = Running ] || { echo "sandbox $SID is $STATE, not Running" >&2; exit 1; }
BODY_BYTES="$(curl -fsS "$BASE/v1/sandboxes/$SID" -H "OPEN-SANDBOX-API-KEY: $KEY" | wc -c)"

WRK_PID=""
run_wrk() { # name url -> sets RPS; complains about non-2xx answers
  # In the background + wait, so that a signal is handled at once.
  wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$DURATION" \
    -H "OPEN-SANDBOX-API-KEY: $KEY" "$2" >"$DIR/wrk.out" &
  WRK_PID=$!
  wait "$WRK_PID"
  WRK_PID=""
  local out
  out="$(cat "$DIR/wrk.out")"
  # wrk's latency line: avg stdev max +/-stdev
  awk '/^ *Latency/ {print "avg " $2 ", stdev " $3 ", max " $4}' <<<"$out" >>"$DIR/lat_$1"
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "warning: $(grep 'Non-2xx' <<<"$out") for $2" >&2
  fi
  RPS="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  [ -n "$RPS" ] || { echo "wrk failed: $out" >&2; exit 1; }
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

RSS0="$(awk '/^VmRSS:/ {print $2 " kB"}' "/proc/$SERVER_PID/status" 2>/dev/null || echo '?')"
HEALTH=()
GET=()
for r in $(seq 1 "$ROUNDS"); do
  run_wrk health "$BASE/health"
  h="$RPS"
  run_wrk get "$BASE/v1/sandboxes/$SID"
  g="$RPS"
  echo "round $r/$ROUNDS: /health $h req/s   /v1/sandboxes/{id} $g req/s" >&2
  HEALTH+=("$h")
  GET+=("$g")
done
H_MED="$(printf '%s\n' "${HEALTH[@]}" | median)"
G_MED="$(printf '%s\n' "${GET[@]}" | median)"
RATIO="$(awk -v g="$G_MED" -v h="$H_MED" 'BEGIN {printf "%.3f", g / h}')"
VERDICT="$(awk -v g="$G_MED" 'BEGIN {print (g >= 15000) ? "met" : "MISSED"}')"
RSS="$(awk '/^VmRSS:/ {print $2 " kB"}' "/proc/$SERVER_PID/status" 2>/dev/null || echo '?')"

echo "get_throughput: wrk -t$WRK_THREADS -c$WRK_CONNS -d$DURATION, $ROUNDS rounds (alternating), $(nproc) cores"
echo "  GET /health (floor):         median $H_MED req/s   runs: ${HEALTH[*]}"
echo "  GET /v1/sandboxes/{id}:      median $G_MED req/s   runs: ${GET[*]}   (body $BODY_BYTES bytes)"
echo "  server RSS: $RSS0 before the wrk runs, $RSS after"
echo "  wrk latency /health:         $(paste -sd';' "$DIR/lat_health" | sed 's/;/; /g')"
echo "  wrk latency /v1/sandboxes/id: $(paste -sd';' "$DIR/lat_get" | sed 's/;/; /g')"
echo "  RATIO get/health = $RATIO   (target >= 15000 req/s: $VERDICT)"
