#!/usr/bin/env bash
# Builds the node image opensandbox/server:latest locally, without any
# registry: a Debian 12 minbase rootfs from debootstrap (cached as a tarball
# under /var/cache/opensandbox/) plus the built binaries, then `docker import`.
#
# Usage: deploy/build-node-image.sh [--force | --check | --rootfs-only]
#   Idempotent: the image carries the sha256 of its inputs (rootfs tarball,
#   binaries, default config) as the label io.opensandbox.build-sha256 and is
#   only rebuilt when one of them changed (or with --force). --check builds
#   nothing and exits 1 unless the image is up to date; --rootfs-only only
#   caches the rootfs (needs no binary).
# Env:
#   OSB_BUILD_DIR         directory with opensandbox-server and, if built,
#                         opensandbox-execd (default: build)
#   OSB_NODE_IMAGE        image name (default: opensandbox/server:latest)
#   OSB_DEBIAN_MIRROR     default http://deb.debian.org/debian
#   OSB_IMAGE_CACHE_DIR   rootfs cache (default: /var/cache/opensandbox)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${OSB_BUILD_DIR:-build}
case $build_dir in /*) ;; *) build_dir=$here/$build_dir ;; esac
image=${OSB_NODE_IMAGE:-opensandbox/server:latest}
# shellcheck source=deploy/lib.sh
. "$here/deploy/lib.sh"
cache_dir=$osb_image_cache_dir
force=0
check=0
rootfs_only=0
[ "${1:-}" = "--force" ] && force=1
[ "${1:-}" = "--check" ] && check=1
[ "${1:-}" = "--rootfs-only" ] && rootfs_only=1

# The server is linked dynamically against these (see ldd); libstdc++6 and
# libgcc-s1 come with minbase.
packages=libcaf-core0.17,libcaf-io0.17,libcaf-openssl0.17,libtomlplusplus3,libsqlite3-0,libssl3,libyaml-0-2,ca-certificates
suite=bookworm
default_config=$here/deploy/image/config.toml
label=io.opensandbox.build-sha256

# The rootfs depends only on the suite, the mirror and the package list.
rootfs_key=$(printf '%s\n' "$suite" "$osb_debian_mirror" "$packages" "v2" | sha256sum | cut -c1-16)
rootfs_tar=$cache_dir/node-rootfs-$suite-$rootfs_key.tar

build_rootfs() {
  local root start
  mkdir -p "$cache_dir"
  start=$(date +%s)
  root=$(mktemp -d /tmp/osb-node-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "trap - RETURN INT TERM; remove_rootfs '$root'; rm -f '$rootfs_tar.tmp'" RETURN
  trap "remove_rootfs '$root'; rm -f '$rootfs_tar.tmp'; exit 130" INT TERM
  echo "build-node-image: building the rootfs"
  debootstrap_rootfs "$root" "$packages" || exit 1
  mkdir -p "$root"/etc/opensandbox "$root"/var/lib/opensandbox "$root"/usr/local/bin
  tar -C "$root" --numeric-owner -cf "$rootfs_tar.tmp" .
  sha256sum <"$rootfs_tar.tmp" | cut -d' ' -f1 >"$rootfs_tar.sha256"
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  echo "build-node-image: cached $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1)," \
    "$(($(date +%s) - start)) s)"
}

if [ "$check" = 1 ] && [ ! -s "$rootfs_tar" ]; then
  echo "build-node-image: $image is not built (no rootfs $rootfs_tar):" \
    "run deploy/setup.sh --tests or deploy/build-node-image.sh" >&2
  exit 1
fi
[ -s "$rootfs_tar" ] || build_rootfs
[ "$rootfs_only" = 0 ] || exit 0

server_bin=$build_dir/opensandbox-server
execd_bin=$build_dir/opensandbox-execd
if [ ! -x "$server_bin" ]; then
  echo "build-node-image: $server_bin not found; build first" \
    "(cmake --build $build_dir) or set OSB_BUILD_DIR" >&2
  exit 1
fi

# Inputs of the image: the rootfs, the binaries, the default config, this
# script (its ENTRYPOINT and layout).
# The rootfs hash is kept next to the tarball (hashing 86 MB on every run
# would be most of the time of a no-op run).
if [ ! -s "$rootfs_tar.sha256" ] || [ "$rootfs_tar" -nt "$rootfs_tar.sha256" ]; then
  sha256sum <"$rootfs_tar" | cut -d' ' -f1 >"$rootfs_tar.sha256"
fi
inputs=("$server_bin" "$default_config" "$0")
[ -x "$execd_bin" ] && inputs+=("$execd_bin")
want=$( (cat "$rootfs_tar.sha256"
  for f in "${inputs[@]}"; do basename "$f"; sha256sum <"$f"; done) | sha256sum | cut -d' ' -f1)
have=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)
if [ "$force" = 0 ] && [ "$have" = "$want" ]; then
  echo "build-node-image: $image is up to date ($label=${want:0:12})"
  exit 0
fi
if [ "$check" = 1 ]; then
  echo "build-node-image: $image is missing or stale:" \
    "run deploy/setup.sh --tests or deploy/build-node-image.sh" >&2
  exit 1
fi

old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
work=$(mktemp -d /tmp/osb-node-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/stage/usr/local/bin" "$work/stage/etc/opensandbox"
install -m 0755 "$server_bin" "$work/stage/usr/local/bin/opensandbox-server"
members=(./usr/local/bin/opensandbox-server ./etc/opensandbox/config.toml)
if [ -x "$execd_bin" ]; then
  install -m 0755 "$execd_bin" "$work/stage/usr/local/bin/opensandbox-execd"
  members+=(./usr/local/bin/opensandbox-execd)
else
  echo "build-node-image: no $execd_bin; the image has no execd" \
    "(sandboxes start without it)" >&2
fi
install -m 0644 "$default_config" "$work/stage/etc/opensandbox/config.toml"
[ -x "$execd_bin" ] || sed -i 's/^execd_inject = "archive"/execd_inject = "none"/' \
  "$work/stage/etc/opensandbox/config.toml"
# The cached rootfs plus the binaries appended: one tar stream for import.
cp "$rootfs_tar" "$work/rootfs.tar"
tar -C "$work/stage" --owner=0 --group=0 --numeric-owner \
  -rf "$work/rootfs.tar" "${members[@]}"
docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'EXPOSE 8080 7000' \
  -c 'WORKDIR /var/lib/opensandbox' \
  -c "LABEL $label=$want" \
  -c 'ENTRYPOINT ["/usr/local/bin/opensandbox-server", "--config", "/etc/opensandbox/config.toml"]' \
  "$work/rootfs.tar" "$image" >/dev/null
# Drop the previous build unless a container still uses it.
new_id=$(docker image inspect -f '{{.Id}}' "$image")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
# Smoke test: every shared library resolves inside the image.
if ! out=$(docker run --rm --entrypoint /usr/local/bin/opensandbox-server \
    "$image" --version 2>&1); then
  echo "build-node-image: $image does not start: $out" >&2
  exit 1
fi
echo "build-node-image: built $image ($out, $label=${want:0:12})"
