#!/usr/bin/env bash
# Installs what the server and its tests need on a fresh Debian 12 machine
# (idempotent): apt packages, a running dockerd, local images, the build.
# Usage: deploy/setup.sh [--tests]   (--tests also builds the test suites)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${OSB_BUILD_DIR:-$here/build}
with_tests=OFF
[ "${1:-}" = "--tests" ] && with_tests=ON

packages=(build-essential cmake ninja-build pkg-config libcaf-dev
  libboost1.81-dev libboost-system1.81-dev rapidjson-dev libtomlplusplus-dev
  libsqlite3-dev libgtest-dev libgmock-dev docker.io busybox-static file
  curl jq wrk iproute2 debootstrap docker-compose openssh-client
  openssh-server docker-registry apache2-utils)

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

# dockerd: start it in the background when nothing answers on the socket.
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  (setsid nohup dockerd >/var/log/opensandbox-dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || {
    echo "setup: dockerd did not start; see /var/log/opensandbox-dockerd.log" >&2
    exit 1
  }
fi

"$here/deploy/build-images.sh"

cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DOSB_BUILD_TESTS=$with_tests >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
