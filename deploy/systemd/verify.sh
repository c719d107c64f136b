#!/usr/bin/env bash
# Checks the unit files offline: `systemd-analyze verify` (syntax, known
# options, dependencies) and `systemd-analyze security --offline=yes`
# (exposure score, must stay below 2.0). Works without systemd as PID 1.
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
