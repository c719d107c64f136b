#!/usr/bin/env bash
# Installs what the server and its tests need on a fresh Debian 12 machine
# (idempotent): apt packages, a running dockerd with gVisor's runsc
# registered, the build, every local image.
# Usage: deploy/setup.sh [--tests]   (--tests also builds the test suites and
#                                     the images only the tests use)
# Env: OSB_SETUP_GVISOR=0 leaves runsc out (docs/gvisor.md)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=deploy/lib.sh
. "$here/deploy/lib.sh"
build_dir=${OSB_BUILD_DIR:-$here/build}
with_tests=OFF
image_flags=()
if [ "${1:-}" = "--tests" ]; then
  with_tests=ON
  image_flags=(--tests)
fi

packages=(build-essential cmake ninja-build pkg-config libcaf-dev
  libboost1.81-dev libboost-system1.81-dev rapidjson-dev libtomlplusplus-dev
  libsqlite3-dev libssl-dev libyaml-dev openssl libgtest-dev libgmock-dev
  docker.io busybox-static file
  curl jq wrk iproute2 debootstrap docker-compose openssh-client
  openssh-server docker-registry apache2-utils clang-14 libfuzzer-14-dev
  prometheus)
with_gvisor=${OSB_SETUP_GVISOR:-1}
[ "$with_gvisor" = 0 ] || packages+=(runsc)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The registry tests run their own registry on a free loopback port; the
  # package's service (on :5000) is not wanted.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
fi

# Debian's kubectl 1.20 (package kubernetes-client) for the Kubernetes
# API-server emulator's selftest: installed, or unpacked beside an image's
# own /usr/bin/kubectl of another package (see the script).
if [ "$with_tests" = ON ]; then
  "$here/test/k8s-emulator/find-kubectl.sh" --install >/dev/null
fi

ensure_dockerd
# gVisor for [secure_runtime] type = "gvisor": runsc registered with dockerd
# (daemon.json "runtimes", SIGHUP; nothing restarts).
[ "$with_gvisor" = 0 ] || register_runsc

# The images that need none of our binaries (debootstrap: network-bound)
# build while the compiler uses the CPUs.
images_log=$(mktemp /tmp/osb-setup-images.XXXXXX)
trap 'rm -f "$images_log"' EXIT
echo "setup: building the base images in the background (log $images_log)"
OSB_BUILD_DIR=$build_dir "$here/deploy/build-images.sh" --base \
  "${image_flags[@]}" >"$images_log" 2>&1 &
images_pid=$!

cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DOSB_BUILD_TESTS=$with_tests >/dev/null
if ! cmake --build "$build_dir" -j "$(nproc)"; then
  wait "$images_pid" || true
  exit 1
fi

if ! wait "$images_pid"; then
  cat "$images_log" >&2
  echo "setup: building the base images failed" >&2
  exit 1
fi
sed 's/^/setup: /' "$images_log"
# The images holding our binaries (rebuilt only when a binary changed).
OSB_BUILD_DIR=$build_dir "$here/deploy/build-images.sh" "${image_flags[@]}" \
  | sed 's/^/setup: /'
