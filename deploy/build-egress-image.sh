#!/usr/bin/env bash
# Builds the egress sidecar image locally (no registry access needed).
# Usage: deploy/build-egress-image.sh [BINARY]
#   BINARY  the static opensandbox-egress (default: build/opensandbox-egress)
#
# Two images:
#   opensandbox/egress-base:bookworm  debootstrap minbase + nftables from the
#                                     Debian mirror (about a minute, once)
#   opensandbox/egress:latest         the base + the binary at
#                                     /usr/local/bin/opensandbox-egress
# Idempotent: the sidecar image carries the binary's sha256 as the label
# opensandbox.io/egress-binary-sha256 and is rebuilt only when it differs
# (a second, no download); the base is built only when missing.
# Env: OSB_EGRESS_IMAGE, OSB_EGRESS_BASE_IMAGE (image names),
#      OSB_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
binary=${1:-$here/build/opensandbox-egress}
image=${OSB_EGRESS_IMAGE:-opensandbox/egress:latest}
base_image=${OSB_EGRESS_BASE_IMAGE:-opensandbox/egress-base:bookworm}
debian_mirror=${OSB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
label=opensandbox.io/egress-binary-sha256

if [ ! -x "$binary" ]; then
  echo "no sidecar binary at $binary (cmake --build <dir> --target" \
    "opensandbox-egress)" >&2
  exit 1
fi
if ! file -L "$binary" | grep -q 'statically linked'; then
  echo "$binary is not statically linked" >&2
  exit 1
fi

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

sha=$(sha256sum "$binary" | cut -d' ' -f1)
current=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" \
  "$image" 2>/dev/null || true)
if [ "$current" = "$sha" ]; then
  echo "$image is up to date"
  exit 0
fi

# Unmounts whatever debootstrap left mounted under $1, then removes $1
# without crossing into other file systems.
remove_rootfs() {
  local root=$1 m
  [ -d "$root" ] || return 0
  for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts \
      | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$root"
}

build_base() {
  local root
  if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is required (apt-get install debootstrap)" >&2
    exit 1
  fi
  root=$(mktemp -d /tmp/osb-egress-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "trap - RETURN INT TERM; remove_rootfs '$root'" RETURN
  trap "remove_rootfs '$root'; exit 130" INT TERM
  echo "building $base_image with debootstrap from $debian_mirror"
  if ! debootstrap --variant=minbase --include=nftables \
      bookworm "$root" "$debian_mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    echo "debootstrap failed" >&2
    exit 1
  fi
  rm -f "$root.log"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
    "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/tmp/*
  # Docker provides these.
  rm -f "$root"/etc/hostname "$root"/etc/resolv.conf "$root"/etc/hosts
  mkdir -p "$root"/var/egress/rules
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$base_image" >/dev/null
  echo "built $base_image"
}

have_image "$base_image" || build_base

ctx=$(mktemp -d /tmp/osb-egress-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
strip -o "$ctx/opensandbox-egress" "$binary" 2>/dev/null \
  || cp "$binary" "$ctx/opensandbox-egress"
chmod 0755 "$ctx/opensandbox-egress"
cat >"$ctx/Dockerfile" <<EOF
FROM $base_image
COPY opensandbox-egress /usr/local/bin/opensandbox-egress
LABEL $label=$sha
EXPOSE 18080
ENTRYPOINT ["/usr/local/bin/opensandbox-egress"]
EOF
# The classic builder uses the local base image and never contacts a
# registry for it.
if ! out=$(DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" 2>&1); then
  echo "$out" >&2
  exit 1
fi
echo "built $image (binary sha256 $sha)"
