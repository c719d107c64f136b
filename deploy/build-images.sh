#!/usr/bin/env bash
# Builds the local sandbox images (no registry access needed).
# Usage: deploy/build-images.sh   (idempotent; rebuilds only missing images)
set -euo pipefail

busybox_image=${OSB_BUSYBOX_IMAGE:-opensandbox/busybox:latest}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

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

have_image "$busybox_image" || build_busybox
