# Shell helpers of the deploy/ scripts (sourced, not run):
#   osb_project_images, osb_image_cache_dir
#                             what the setup creates outside the clone
#   have_image IMAGE          whether the Docker daemon has IMAGE (exit code)
#   ensure_dockerd            starts dockerd in the background if none answers
#   remove_rootfs DIR         unmounts what debootstrap left there, removes DIR
#   debootstrap_rootfs DIR PACKAGES [APT_STEP...]
#                             a Debian 12 minbase rootfs with PACKAGES (comma
#                             separated) from $OSB_DEBIAN_MIRROR, without
#                             package caches, logs, docs and the files Docker
#                             provides (hostname, resolv.conf, hosts); each
#                             APT_STEP (space separated packages) is then
#                             installed with apt-get in the rootfs, without
#                             recommends (apt resolves dependencies fully;
#                             debootstrap's resolver is for small sets)

osb_debian_mirror=${OSB_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# Everything deploy/setup.sh creates outside the clone (.ci/run removes it to
# prove a fresh machine): the local images and the rootfs cache.
osb_project_images=(opensandbox/busybox:latest opensandbox/debian:bookworm
  opensandbox/egress-base:bookworm opensandbox/egress:latest
  opensandbox/server:latest opensandbox/code-interpreter:latest)
osb_image_cache_dir=${OSB_IMAGE_CACHE_DIR:-/var/cache/opensandbox}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || {
    echo "dockerd is not installed (apt-get install docker.io)" >&2
    return 1
  }
  echo "starting dockerd (log /var/log/opensandbox-dockerd.log)"
  (setsid nohup dockerd >>/var/log/opensandbox-dockerd.log 2>&1 &)
  local _
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "dockerd did not start; see /var/log/opensandbox-dockerd.log" >&2
  return 1
}

remove_rootfs() {
  local root=$1 m
  [ -d "$root" ] || return 0
  for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts \
      | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf --one-file-system "$root"
}

debootstrap_rootfs() {
  local root=$1 packages=$2 m step
  command -v debootstrap >/dev/null || {
    echo "debootstrap is required (apt-get install debootstrap)" >&2
    return 1
  }
  echo "debootstrap bookworm minbase (${packages:-no extra packages}) from $osb_debian_mirror"
  if ! debootstrap --variant=minbase ${packages:+--include="$packages"} \
      bookworm "$root" "$osb_debian_mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    echo "debootstrap failed" >&2
    return 1
  fi
  rm -f "$root.log"
  shift 2
  if [ $# -gt 0 ]; then
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    for step in "$@"; do
      echo "apt-get install $step"
      # shellcheck disable=SC2086
      if ! chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install \
          -y -q --no-install-recommends $step >"$root.log" 2>&1; then
        tail -n 30 "$root.log" >&2
        rm -f "$root.log"
        echo "apt-get install $step failed" >&2
        return 1
      fi
    done
    rm -f "$root.log"
    umount -l "$root/proc" 2>/dev/null || true
  fi
  chroot "$root" apt-get clean
  for m in $(awk -v r="$root/" 'index($2, r) == 1 { print $2 }' /proc/mounts \
      | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
    "$root"/var/log/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/usr/share/locale/* "$root"/tmp/* \
    "$root"/root/.cache
  rm -rf "$root"/dev/* "$root"/proc/* "$root"/sys/* 2>/dev/null || true
  find "$root"/usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} + \
    2>/dev/null || true
  rm -f "$root"/etc/hostname "$root"/etc/resolv.conf "$root"/etc/hosts
}
