#!/usr/bin/env bash
# Sets everything up (packages, dockerd, images, build with tests) and runs
# every test suite: unit, integration against the real Docker daemon.
# Usage: deploy/run-tests.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${OSB_BUILD_DIR:-$here/build}
"$here/deploy/setup.sh" --tests
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j 2 -L unit
ctest --output-on-failure --timeout 900 -L integration
# Nothing may be left behind by the suites.
# (Test servers use node names starting with "it-".)
leftover=$(docker ps -a --filter label=opensandbox.io/id \
  --format '{{.Label "opensandbox.io/node"}}' | grep -c '^it-' || true)
if [ "$leftover" -ne 0 ]; then
  echo "tests left $leftover containers behind" >&2
  exit 1
fi
