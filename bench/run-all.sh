#!/usr/bin/env bash
# Runs the four benchmarks in sequence and prints a summary of their figures.
# Each benchmark starts its own server and cleans up after itself.
# Env: OSB_SERVER_BIN (default build-bench/opensandbox-server); the variables
# of get_throughput.sh (ROUNDS, DURATION, ...). Extra args: none.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mktemp -d /tmp/osb-bench-all-XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
trap 'exit 130' INT TERM HUP

echo "opensandbox-server benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "binary: ${OSB_SERVER_BIN:-$(dirname "$HERE")/build-bench/opensandbox-server}; repo HEAD: $(git -C "$HERE" log -1 --format='%h %s' 2>/dev/null | cut -c1-72)"

FAILED=()
run() { # name command...
  local name="$1"
  shift
  echo
  echo "=== $name: $*"
  "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  local rc=$?
  cat "$OUT/$name.out"
  if [ "$rc" -ne 0 ]; then
    echo "!!! $name failed with exit code $rc; its stderr:"
    tail -n 30 "$OUT/$name.err"
    FAILED+=("$name")
  fi
  [ "$rc" -ne 130 ] || exit 130
}

run create_to_running python3 "$HERE/create_to_running.py"
run concurrent_creates python3 "$HERE/concurrent_creates.py"
run get_throughput "$HERE/get_throughput.sh"
run list_1000 python3 "$HERE/list_1000.py"

echo
echo "=== summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), load average: $(cut -d' ' -f1-3 /proc/loadavg))"
for n in create_to_running concurrent_creates get_throughput list_1000; do
  grep -E 'RATIO|target' "$OUT/$n.out" 2>/dev/null | sed "s/^ */  $n: /"
done
if [ "${#FAILED[@]}" -ne 0 ]; then
  echo "FAILED: ${FAILED[*]}"
  exit 1
fi
