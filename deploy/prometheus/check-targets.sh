#!/usr/bin/env bash
# Scrapes opensandbox nodes with a real Prometheus (Debian's `prometheus`)
# and checks that every target is up, and that `promtool check metrics`
# accepts every node's /metrics. Used by deploy/compose/test-compose.sh;
# runs on its own against any nodes:
#
#   deploy/prometheus/check-targets.sh API_KEY PORT [PORT...]
#
# Prometheus runs on a free loopback port with a temporary TSDB, scraping
# 127.0.0.1:PORT/metrics every second with the key as a Bearer token, and is
# stopped on the way out. Exit 0 when every target was up within 30 s.
set -euo pipefail

[ $# -ge 2 ] || { echo "usage: $0 API_KEY PORT [PORT...]" >&2; exit 2; }
key=$1
shift
command -v prometheus >/dev/null || { echo "prometheus is not installed (apt-get install prometheus)" >&2; exit 1; }

dir=$(mktemp -d /tmp/osb-prometheus-XXXXXX)
pid=""
cleanup() {
  local rc=$?
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [ "$rc" -ne 0 ] && [ -f "$dir/prometheus.log" ] && tail -n 20 "$dir/prometheus.log" >&2
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT

for p in "$@"; do
  curl -sS --max-time 10 -H "Authorization: Bearer $key" "http://127.0.0.1:$p/metrics" >"$dir/m.txt"
  promtool check metrics <"$dir/m.txt" || { echo "promtool rejects /metrics of :$p" >&2; exit 1; }
done

targets=$(printf '"127.0.0.1:%s",' "$@")
cat >"$dir/prometheus.yml" <<CFG
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: opensandbox
    authorization:
      type: Bearer
      credentials: "$key"
    static_configs:
      - targets: [${targets%,}]
CFG
promtool check config "$dir/prometheus.yml" >/dev/null
web=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address="127.0.0.1:$web" >"$dir/prometheus.log" 2>&1 &
pid=$!

want=$#
for _ in $(seq 1 60); do
  up=$(curl -sS --max-time 2 "http://127.0.0.1:$web/api/v1/targets?state=active" 2>/dev/null \
    | jq '[.data.activeTargets[] | select(.health == "up")] | length' 2>/dev/null || echo 0)
  if [ "$up" = "$want" ]; then
    echo "prometheus: $up of $want targets up"
    exit 0
  fi
  sleep 0.5
done
echo "prometheus: only ${up:-0} of $want targets up after 30 s:" >&2
curl -sS "http://127.0.0.1:$web/api/v1/targets" | jq -c '.data.activeTargets[] | {scrapeUrl, health, lastError}' >&2 || true
exit 1
