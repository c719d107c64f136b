#!/usr/bin/env bash
# Builds every local image the server, the tests, the benchmarks and the
# quickstart use (no registry access needed).
# Usage: deploy/build-images.sh [--base] [--tests]
#   Idempotent: an image is rebuilt only when missing or when its inputs
#   changed (the images holding our binaries carry their hash as a label).
#   --base   only what needs none of our binaries (runs during the compile)
#   --tests  also the node image of the docker-compose cluster test
#
#   opensandbox/busybox:latest      the host's busybox-static (a second)
#   opensandbox/debian:bookworm     debootstrap minbase + bash, coreutils,
#                                   curl, procps, python3 (about a minute)
#   opensandbox/code-interpreter:latest  Jupyter kernels for /code
#                                   (deploy/build-code-interpreter-image.sh,
#                                   a few minutes; rebuilt when its inputs
#                                   change)
#   opensandbox/egress:latest       the egress sidecar (deploy/build-egress-image.sh)
#   opensandbox/execd:latest        execd for the Kubernetes runtime's init
#                                   container (deploy/build-execd-image.sh)
#   opensandbox/server:latest       the node image (deploy/build-node-image.sh)
# Env: OSB_BUILD_DIR (binaries, default build), OSB_BUSYBOX_IMAGE,
#      OSB_DEBIAN_IMAGE (image names), OSB_DEBIAN_MIRROR (default
#      http://deb.debian.org/debian).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=deploy/lib.sh
. "$here/deploy/lib.sh"
build_dir=${OSB_BUILD_DIR:-$here/build}
case $build_dir in /*) ;; *) build_dir=$here/$build_dir ;; esac
busybox_image=${OSB_BUSYBOX_IMAGE:-opensandbox/busybox:latest}
debian_image=${OSB_DEBIAN_IMAGE:-opensandbox/debian:bookworm}
debian_packages=bash,coreutils,curl,ca-certificates,procps,python3
base_only=0
with_tests=0
for arg in "$@"; do
  case $arg in
    --base) base_only=1 ;;
    --tests) with_tests=1 ;;
    *) echo "usage: deploy/build-images.sh [--base] [--tests]" >&2; exit 2 ;;
  esac
done

build_busybox() {
  local bb root
  bb=$(command -v busybox || true)
  [ -x /bin/busybox ] && bb=/bin/busybox
  if [ -z "$bb" ] || ! file -L "$bb" 2>/dev/null | grep -q static; then
    echo "busybox-static is required (apt-get install busybox-static)" >&2
    exit 1
  fi
  root=$(mktemp -d)
  trap 'rm -rf "$root"' RETURN
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,proc,sys,dev,root,opt,workspace}
  chmod 1777 "$root/tmp"
  cp "$bb" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo 'root:x:0:' > "$root/etc/group"
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/sh"]' - "$busybox_image" >/dev/null
  echo "built $busybox_image"
}

build_debian() {
  local root start
  start=$(date +%s)
  root=$(mktemp -d /tmp/osb-debian-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "trap - RETURN INT TERM; remove_rootfs '$root'" RETURN
  trap "remove_rootfs '$root'; exit 130" INT TERM
  echo "building $debian_image"
  debootstrap_rootfs "$root" "$debian_packages" || exit 1
  mkdir -p "$root"/workspace "$root"/opt
  tar -C "$root" --numeric-owner -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' - "$debian_image" >/dev/null
  echo "built $debian_image in $(($(date +%s) - start)) s"
}

have_image "$busybox_image" || build_busybox
have_image "$debian_image" || build_debian
# Needs none of our binaries (execd is injected): built with the base
# images (a no-op when it is up to date).
"$here/deploy/build-code-interpreter-image.sh"
if [ "$base_only" = 1 ]; then
  "$here/deploy/build-egress-image.sh" --base-only
  [ "$with_tests" = 0 ] || "$here/deploy/build-node-image.sh" --rootfs-only
else
  "$here/deploy/build-egress-image.sh" "$build_dir/opensandbox-egress"
  "$here/deploy/build-execd-image.sh" "$build_dir/opensandbox-execd"
  [ "$with_tests" = 0 ] || OSB_BUILD_DIR=$build_dir "$here/deploy/build-node-image.sh"
fi
