#!/usr/bin/env bash
# Builds the local sandbox images (no registry access needed).
# Usage: deploy/build-images.sh   (idempotent; rebuilds only missing images)
#   opensandbox/busybox:latest  from the host's busybox-static (a second)
#   opensandbox/debian:bookworm debootstrap minbase from the Debian mirror
#                               (bash, coreutils, curl, procps, python3; about
#                               a minute, see docs/e2e.md); nothing is cached
#                               outside Docker
# Env: OSB_BUSYBOX_IMAGE, OSB_DEBIAN_IMAGE (image names),
#      OSB_DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail

busybox_image=${OSB_BUSYBOX_IMAGE:-opensandbox/busybox:latest}
debian_image=${OSB_DEBIAN_IMAGE:-opensandbox/debian:bookworm}
debian_mirror=${OSB_DEBIAN_MIRROR:-http://deb.debian.org/debian}
debian_packages=bash,coreutils,curl,ca-certificates,procps,python3

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

# Unmounts whatever debootstrap left mounted under $1, then removes $1
# without crossing into other file systems.
remove_rootfs() {
  local root=$1 m
  [ -d "$root" ] || return 0
  for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$root"
}

build_debian() {
  local root start
  if ! command -v debootstrap >/dev/null; then
    echo "debootstrap is required (apt-get install debootstrap)" >&2
    exit 1
  fi
  start=$(date +%s)
  root=$(mktemp -d /tmp/osb-debian-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "trap - RETURN INT TERM; remove_rootfs '$root'" RETURN
  trap "remove_rootfs '$root'; exit 130" INT TERM
  echo "building $debian_image with debootstrap from $debian_mirror"
  if ! debootstrap --variant=minbase --include="$debian_packages" \
      bookworm "$root" "$debian_mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    echo "debootstrap failed" >&2
    exit 1
  fi
  rm -f "$root.log"
  # Clean: package caches and lists, logs, docs; docker provides these files.
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
    "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/tmp/* "$root"/root/.cache \
    "$root"/etc/hostname "$root"/etc/resolv.conf
  find "$root"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
  mkdir -p "$root"/workspace "$root"/opt
  tar -C "$root" --numeric-owner -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' - "$debian_image" >/dev/null
  echo "built $debian_image in $(($(date +%s) - start)) s"
}

have_image "$busybox_image" || build_busybox
have_image "$debian_image" || build_debian
