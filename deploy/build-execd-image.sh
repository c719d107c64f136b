#!/usr/bin/env bash
# Builds the execd image of the Kubernetes runtime locally (no registry
# access needed): an init container of every sandbox pod copies /execd from
# it into the pod (runtime.execd_image; docs/runtimes.md).
# Usage: deploy/build-execd-image.sh [--check] [BINARY]
#   BINARY   the static opensandbox-execd (default: build/opensandbox-execd)
#   --check  build nothing; exit 1 unless the image holds this binary
#
#   opensandbox/execd:latest   opensandbox/busybox:latest (for `cp`) + the
#                              binary at /execd
# Idempotent: the image carries the binary's sha256 as the label
# opensandbox.io/execd-binary-sha256 and is rebuilt only when it differs.
# Push it where your cluster's nodes pull from (and set runtime.execd_image).
# Env: OSB_EXECD_IMAGE, OSB_BUSYBOX_IMAGE (image names).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=deploy/lib.sh
. "$here/deploy/lib.sh"
mode=build
case ${1:-} in
  --check) mode=check; shift ;;
esac
binary=${1:-$here/build/opensandbox-execd}
image=${OSB_EXECD_IMAGE:-opensandbox/execd:latest}
base_image=${OSB_BUSYBOX_IMAGE:-opensandbox/busybox:latest}
label=opensandbox.io/execd-binary-sha256

require_static_binary "$binary" execd opensandbox-execd
if image_holds_binary "$image" "$label" "$binary"; then
  echo "$image is up to date"
  exit 0
fi
sha=$binary_sha
if [ "$mode" = check ]; then
  echo "$image does not hold $binary (missing or stale):" \
    "run deploy/setup.sh or deploy/build-execd-image.sh" >&2
  exit 1
fi
if ! have_image "$base_image"; then
  echo "$base_image is missing (deploy/build-images.sh --base builds it)" >&2
  exit 1
fi

ctx=$(mktemp -d /tmp/osb-execd-ctx.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
strip -o "$ctx/execd" "$binary" 2>/dev/null || cp "$binary" "$ctx/execd"
chmod 0755 "$ctx/execd"
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $base_image
COPY execd /execd
LABEL $label=$sha
CMD ["cp", "/execd", "/opt/opensandbox/execd"]
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
