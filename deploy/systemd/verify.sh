#!/usr/bin/env bash
# Checks the unit files offline: `systemd-analyze verify` (syntax, known
# options, dependencies) and `systemd-analyze security --offline=yes`
# (exposure score, must stay below 2.0). Works without systemd as PID 1.
# Then starts the built server once on each example config (config.toml,
# node1.toml) made local (fake runtime, free ports, temp store): the server
# rejects unknown keys at start, so this proves the examples load.
# verify insists that ExecStart= exists, so the copies checked here point it
# at the built binary (${OSB_BUILD_DIR:-build}/opensandbox-server).
# Usage: deploy/systemd/verify.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir=${OSB_BUILD_DIR:-build}
case $build_dir in /*) ;; *) build_dir=$repo/$build_dir ;; esac
bin=$build_dir/opensandbox-server
[ -x "$bin" ] || { echo "verify: $bin not found (build first)" >&2; exit 1; }
command -v systemd-analyze >/dev/null || {
  echo "verify: systemd-analyze is required (apt-get install systemd)" >&2
  exit 1
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for unit in opensandbox-server.service opensandbox-server@.service; do
  sed "s|/usr/local/bin/opensandbox-server|$bin|" "$here/$unit" >"$tmp/$unit"
done
cp "$tmp/opensandbox-server@.service" "$tmp/opensandbox-server@node1.service"
(cd "$tmp" && systemd-analyze verify ./opensandbox-server.service \
  ./opensandbox-server@.service ./opensandbox-server@node1.service)
echo "verify: systemd-analyze verify: OK"
for unit in opensandbox-server.service opensandbox-server@node1.service; do
  score=$(cd "$tmp" && systemd-analyze security --offline=yes --no-pager "./$unit" 2>&1 \
    | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
  [ -n "$score" ] || { echo "verify: no exposure score for $unit" >&2; exit 1; }
  awk -v s="$score" 'BEGIN { exit !(s < 2.0) }' || {
    echo "verify: $unit exposure $score >= 2.0" >&2
    exit 1
  }
  echo "verify: $unit exposure level $score (systemd-analyze security --offline)"
done

# The example configs load: run each, made local, until /health answers.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The certificates node1.toml names, made where the copies look for them.
"$repo/deploy/make-cluster-certs.sh" "$tmp/tls" node1 >/dev/null
for example in config.toml node1.toml; do
  http=$(free_port)
  peer=$(free_port)
  sed -e 's/^type = "docker"$/type = "fake"/' \
    -e "s/^port = [0-9]*$/port = $http/" \
    -e 's/^host = "0.0.0.0"$/host = "127.0.0.1"/' \
    -e "s|^path = .*|path = \"$tmp/$example.db\"|" \
    -e "s/^listen = .*/listen = \"127.0.0.1:$peer\"/" \
    -e 's/^seeds = .*/seeds = []/' \
    -e "s|/etc/opensandbox/tls/|$tmp/tls/|" \
    "$here/$example" >"$tmp/$example"
  OPENSANDBOX_SERVER_API_KEY=verify "$bin" --config "$tmp/$example" >"$tmp/$example.log" 2>&1 &
  pid=$!
  up=0
  for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$http/health" >/dev/null 2>&1; then
      up=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$up" != 1 ]; then
    echo "verify: the server does not start on $example:" >&2
    tail -n 5 "$tmp/$example.log" >&2
    exit 1
  fi
  echo "verify: $example loads (server started on it, made local)"
done
