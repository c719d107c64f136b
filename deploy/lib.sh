# Shell helpers of the deploy/ scripts (sourced, not run):
#   osb_project_images, osb_image_cache_dir
#                             what the setup creates outside the clone
#   have_image IMAGE          whether the Docker daemon has IMAGE (exit code)
#   ensure_dockerd            starts dockerd in the background if none answers
#   register_runsc            registers gVisor's runsc with dockerd as OCI
#                             runtime "runsc" (daemon.json + SIGHUP, idempotent)
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
  opensandbox/server:latest opensandbox/code-interpreter:latest
  opensandbox/execd:latest)
osb_image_cache_dir=${OSB_IMAGE_CACHE_DIR:-/var/cache/opensandbox}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# Exits unless $1 is a statically linked executable (the images built from
# our binaries have no libraries); $2 names it, $3 is its CMake target.
require_static_binary() {
  if [ ! -x "$1" ]; then
    echo "no $2 binary at $1 (cmake --build <dir> --target $3)" >&2
    exit 1
  fi
  if ! file -L "$1" | grep -q 'statically linked'; then
    echo "$1 is not statically linked" >&2
    exit 1
  fi
}

# Sets binary_sha to the sha256 of binary $3; true when image $1 already
# holds it (its label $2 says so).
image_holds_binary() {
  binary_sha=$(sha256sum "$3" | cut -d' ' -f1)
  [ "$(docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" \
    2>/dev/null || true)" = "$binary_sha" ]
}

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

# gVisor for `[secure_runtime] type = "gvisor"` (docs/gvisor.md). These
# machines have no /dev/kvm (ptrace platform), and gVisor's own network stack
# fails in Docker's namespaces ("cannot run with network enabled in root
# network namespace"), so socket calls go to the kernel of the container's
# network namespace (--network=host). OSB_RUNSC_ARGS overrides the arguments.
osb_runsc_path=/usr/bin/runsc
osb_runsc_args=${OSB_RUNSC_ARGS:---platform=ptrace --network=host}
osb_docker_daemon_json=${OSB_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}

# The runtime entry we want, as compact JSON.
osb_runsc_entry() {
  jq -cn --arg path "$osb_runsc_path" --arg args "$osb_runsc_args" \
    '{path: $path, runtimeArgs: ($args | split(" ") | map(select(. != "")))}'
}

# Merges the runtime into daemon.json (other keys and runtimes kept; an
# existing "runsc" entry with other settings is replaced and reported), then
# reloads dockerd with SIGHUP if the daemon does not list it as wanted. A
# SIGHUP adds or updates runtimes (never removes any) and restarts nothing:
# running containers and other users of the daemon are not affected.
register_runsc() {
  local conf=$osb_docker_daemon_json want current merged live pid _
  [ -x "$osb_runsc_path" ] || {
    echo "register_runsc: $osb_runsc_path missing (apt-get install runsc)" >&2
    return 1
  }
  want=$(osb_runsc_entry)
  current='{}'
  if [ -s "$conf" ]; then
    current=$(jq -c . "$conf") || {
      echo "register_runsc: $conf is not valid JSON; fix it first" >&2
      return 1
    }
  fi
  if ! jq -e --argjson w "$want" '.runtimes.runsc == $w' <<<"$current" >/dev/null; then
    if jq -e '.runtimes.runsc != null' <<<"$current" >/dev/null; then
      echo "register_runsc: replacing runtime runsc $(jq -c .runtimes.runsc <<<"$current") in $conf"
    fi
    merged=$(jq --argjson w "$want" '.runtimes.runsc = $w' <<<"$current")
    mkdir -p "$(dirname "$conf")"
    # Written next to it and renamed: dockerd never reads half a file.
    printf '%s\n' "$merged" >"$conf.osb-tmp" && mv -f "$conf.osb-tmp" "$conf"
    echo "register_runsc: $conf registers runsc $want"
  fi
  live=$(docker info --format '{{json .Runtimes}}' 2>/dev/null) || {
    echo "register_runsc: dockerd does not answer" >&2
    return 1
  }
  if jq -e --argjson w "$want" '.runsc == $w' <<<"$live" >/dev/null; then
    return 0
  fi
  pid=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd || true)
  case "$pid" in
    '' | *' '*)
      echo "register_runsc: cannot tell dockerd's pid (/var/run/docker.pid);" \
        "reload it yourself (kill -HUP <pid>)" >&2
      return 1
      ;;
  esac
  echo "register_runsc: reloading dockerd (pid $pid, SIGHUP)"
  kill -HUP "$pid"
  for _ in $(seq 1 50); do
    live=$(docker info --format '{{json .Runtimes}}' 2>/dev/null || echo '{}')
    jq -e --argjson w "$want" '.runsc == $w' <<<"$live" >/dev/null && return 0
    sleep 0.2
  done
  echo "register_runsc: dockerd did not pick up runsc after SIGHUP; see its" \
    "log (the daemon.json above must be valid for its version)" >&2
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
