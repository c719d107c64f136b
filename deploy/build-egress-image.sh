#!/usr/bin/env bash
# Builds the egress sidecar image locally (no registry access needed).
# Usage: deploy/build-egress-image.sh [--check | --base-only] [BINARY]
#   BINARY       the static opensandbox-egress (default: build/opensandbox-egress)
#   --check      build nothing; exit 1 unless the image holds this binary
#   --base-only  build only the base image (needs no binary)
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
# shellcheck source=deploy/lib.sh
. "$here/deploy/lib.sh"
mode=build
case ${1:-} in
  --check) mode=check; shift ;;
  --base-only) mode=base; shift ;;
esac
binary=${1:-$here/build/opensandbox-egress}
image=${OSB_EGRESS_IMAGE:-opensandbox/egress:latest}
base_image=${OSB_EGRESS_BASE_IMAGE:-opensandbox/egress-base:bookworm}
label=opensandbox.io/egress-binary-sha256

build_base() {
  local root
  root=$(mktemp -d /tmp/osb-egress-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "trap - RETURN INT TERM; remove_rootfs '$root'" RETURN
  trap "remove_rootfs '$root'; exit 130" INT TERM
  echo "building $base_image"
  debootstrap_rootfs "$root" nftables || exit 1
  mkdir -p "$root"/var/egress/rules
  tar -C "$root" --numeric-owner -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$base_image" >/dev/null
  echo "built $base_image"
}

if [ "$mode" = base ]; then
  have_image "$base_image" || build_base
  exit 0
fi

require_static_binary "$binary" sidecar opensandbox-egress
if image_holds_binary "$image" "$label" "$binary"; then
  echo "$image is up to date"
  exit 0
fi
sha=$binary_sha
if [ "$mode" = check ]; then
  echo "$image does not hold $binary (missing or stale):" \
    "run deploy/setup.sh or deploy/build-egress-image.sh" >&2
  exit 1
fi

have_image "$base_image" || build_base

ctx=$(mktemp -d /tmp/osb-egress-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
strip -o "$ctx/opensandbox-egress" "$binary" 2>/dev/null \
  || cp "$binary" "$ctx/opensandbox-egress"
chmod 0755 "$ctx/opensandbox-egress"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base_image
COPY opensandbox-egress /usr/local/bin/opensandbox-egress
LABEL $label=$sha
EXPOSE 18080
ENTRYPOINT ["/usr/local/bin/opensandbox-egress"]
DOCKERFILE
old_id=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
# The classic builder uses the local base image and never contacts a
# registry for it.
if ! out=$(DOCKER_BUILDKIT=0 docker build -q -t "$image" "$ctx" 2>&1); then
  echo "$out" >&2
  exit 1
fi
# Drop the previous build unless a container still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$image")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "built $image (binary sha256 $sha)"
