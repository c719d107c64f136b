#!/usr/bin/env bash
# Sets everything up (packages, dockerd, images, build with tests) and runs
# every test suite: unit, integration against the real Docker daemon,
# end-to-end through the official JS SDK.
# Usage: deploy/run-tests.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${OSB_BUILD_DIR:-$here/build}
"$here/deploy/setup.sh" --tests
cd "$build_dir"
ctest --output-on-failure --timeout 600 -j 2 -L unit
# Every parser of outside input under libFuzzer (ASan+UBSan), briefly: the
# harnesses of test/fuzz/ build in their own dir (clang-14) and run 15 s
# each, two at a time, on their seed corpora (bench/fuzz.sh: 10 minutes).
"$here/test/fuzz/run.sh" "${OSB_FUZZ_SECONDS:-15}" 2
ctest --output-on-failure --timeout 900 -L integration
# End-to-end: the official JS SDK against the real server and execd
# (test/e2e, needs Node >= 20 and npm; Debian 12's own nodejs is 18).
if node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  OSB_BUILD_DIR="$build_dir" "$here/test/e2e/run.sh"
else
  echo "run-tests: e2e SKIPPED: Node >= 20 not found (test/e2e/run.sh)" >&2
  if [ "${OSB_REQUIRE_E2E:-0}" = 1 ]; then exit 1; fi
fi
# gVisor ([secure_runtime] type = "gvisor", docs/gvisor.md; the setup
# registered runsc): the suites that reach execd, egress, the proxy,
# snapshots and volumes through real sandboxes again, with every sandbox of
# their servers under runsc. (test/integration/gvisor_test.cpp ran above.)
gvisor_start=$(date +%s)
OSB_TEST_SECURE_RUNTIME=gvisor ctest --output-on-failure --timeout 900 \
  -L integration -R "$(grep -v '^#' "$here/test/integration/gvisor-subset.txt" \
    | paste -sd '|')"
if node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null; then
  OSB_BUILD_DIR="$build_dir" OSB_E2E_SECURE_RUNTIME=gvisor \
    OSB_E2E_FILES="tests/commands.test.mjs tests/files.test.mjs tests/sessions.test.mjs tests/egress.test.mjs tests/snapshots.test.mjs" \
    "$here/test/e2e/run.sh"
fi
echo "run-tests: the gVisor runs took $(($(date +%s) - gvisor_start)) s"
# Deployment artifacts: the 3-node docker-compose cluster for real, the
# Kubernetes manifests against the official schemas (offline), the systemd
# units with systemd-analyze.
OSB_BUILD_DIR="$build_dir" "$here/deploy/compose/test-compose.sh"
OSB_BUILD_DIR="$build_dir" "$here/deploy/k8s/validate.sh"
OSB_BUILD_DIR="$build_dir" "$here/deploy/systemd/verify.sh"
# The Kubernetes API-server emulator the Kubernetes runtime is tested
# against: Debian's kubectl 1.20 against it, then its own unit tests.
"$here/test/k8s-emulator/selftest.sh"
# Nothing may be left behind by the suites.
# (Test servers use node names starting with "it-".)
leftover=$(docker ps -a --filter label=opensandbox.io/id \
  --format '{{.Label "opensandbox.io/node"}}' | grep -c '^it-' || true)
if [ "$leftover" -ne 0 ]; then
  echo "tests left $leftover containers behind:" >&2
  docker ps -a --filter label=opensandbox.io/id --format \
    '{{.Names}} node={{.Label "opensandbox.io/node"}} {{.Status}} created {{.CreatedAt}}' >&2
  exit 1
fi
# Snapshot images carry their source container's labels.
leftover=$(docker images --filter reference='opensandbox-snapshots' \
  --format '{{.Tag}} {{.ID}}' | while read -r tag id; do
    docker image inspect -f '{{index .Config.Labels "opensandbox.io/node"}}' \
      "$id"; done | grep -c '^it-' || true)
if [ "$leftover" -ne 0 ]; then
  echo "tests left $leftover snapshot images behind" >&2
  exit 1
fi
