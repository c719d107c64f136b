#!/usr/bin/env bash
# Builds opensandbox/code-interpreter:latest locally: Debian packages (no
# registry pulls) plus the npm registry for the JavaScript/TypeScript kernel.
# Usage: deploy/build-code-interpreter-image.sh [--check]
#   --check  build nothing; exit 1 unless the image matches its inputs
#
# What is in it (execd is injected by the server, as into every sandbox):
#   debootstrap bookworm minbase + bash, coreutils, curl, procps, python3,
#   then with apt: python3-ipykernel (kernel "python3", language python),
#   python3-matplotlib and python3-numpy (plots come back as image/png),
#   nodejs (Debian's 18), openjdk-17-jdk-headless (JShell)
#   kernels: tslab 1.0.22 from npm (tslab: typescript, jslab: javascript),
#            pinned by deploy/code-interpreter/node/package-lock.json;
#            ours on ipykernel's base class: deploy/code-interpreter/
#            bash_kernel.py (bash), java_kernel.py + java/ (java, JShell)
#   /opt/code-interpreter/code-interpreter.sh   the upstream entrypoint path
# No Go kernel: none is packaged by Debian or published on npm.
#
# Idempotent: the image carries the sha256 of its inputs (this script, the
# files under deploy/code-interpreter/, the package list) as the label
# opensandbox.io/inputs-sha256 and is rebuilt only when they change.
# Without npm on the host the image is built without tslab (a warning).
# Env: OSB_CODE_INTERPRETER_IMAGE (image name), OSB_DEBIAN_MIRROR.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=deploy/lib.sh
. "$here/deploy/lib.sh"
image=${OSB_CODE_INTERPRETER_IMAGE:-opensandbox/code-interpreter:latest}
label=opensandbox.io/inputs-sha256
src=$here/deploy/code-interpreter
packages=bash,coreutils,curl,ca-certificates,procps,python3
# Installed by apt in the rootfs. python3-munkres first: it satisfies
# fonttools' "python3-scipy | python3-munkres", which would otherwise bring
# scipy, pythran and a C++ compiler (half a gigabyte) along with matplotlib.
apt_steps=("python3-munkres"
  "python3-ipykernel python3-matplotlib python3-numpy nodejs"
  "openjdk-17-jdk-headless")
mode=build
case ${1:-} in
  --check) mode=check ;;
  "") ;;
  *) echo "usage: deploy/build-code-interpreter-image.sh [--check]" >&2; exit 2 ;;
esac

sha=$( (echo "$packages" "${apt_steps[@]}"; cat "$0"; cat "$here/deploy/lib.sh"; cd "$src" && find . -type f | LC_ALL=C sort \
  | xargs sha256sum) | sha256sum | cut -d' ' -f1)
current=$(docker image inspect -f "{{ index .Config.Labels \"$label\" }}" \
  "$image" 2>/dev/null || true)
if [ "$current" = "$sha" ]; then
  echo "$image is up to date"
  exit 0
fi
if [ "$mode" = check ]; then
  echo "$image is missing or stale: run deploy/build-code-interpreter-image.sh" >&2
  exit 1
fi

start=$(date +%s)
root=$(mktemp -d /tmp/osb-code-interpreter-rootfs.XXXXXX)
npm_dir=$(mktemp -d /tmp/osb-code-interpreter-npm.XXXXXX)
# shellcheck disable=SC2064
trap "remove_rootfs '$root'; rm -rf '$npm_dir'" EXIT
trap 'exit 130' INT TERM
echo "building $image"

# The npm part runs while debootstrap downloads.
npm_log=$npm_dir.log
npm_pid=""
if command -v npm >/dev/null; then
  cp "$src/node/package.json" "$src/node/package-lock.json" "$npm_dir/"
  # --ignore-scripts: zeromq ships its prebuilt binaries in the package;
  # its install script would only try to fetch or compile them.
  (cd "$npm_dir" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
    --loglevel=error) >"$npm_log" 2>&1 &
  npm_pid=$!
else
  echo "warning: npm not found: building without the JavaScript/TypeScript kernel" >&2
fi

debootstrap_rootfs "$root" "$packages" "${apt_steps[@]}" || exit 1
# Bytecode and matplotlib's font cache now, not in every sandbox's first
# kernel start (debootstrap_rootfs dropped the __pycache__ directories;
# importing ipykernel takes 1.8 s without them, 0.5 s with). One process:
# compileall's -j needs /dev/shm, which the chroot lacks.
chroot "$root" python3 -m compileall -q /usr/lib/python3/dist-packages \
  "$(chroot "$root" python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')" \
  >/dev/null 2>&1 || echo "warning: compileall failed: kernels start slower" >&2
chroot "$root" env HOME=/root MPLBACKEND=Agg python3 -c 'import matplotlib.pyplot' \
  >/dev/null 2>&1 || true

ci=$root/opt/code-interpreter
kernels=$root/usr/local/share/jupyter/kernels
mkdir -p "$ci/kernels/java" "$kernels/bash" "$kernels/java" "$root/workspace"
install -m 0755 "$src/code-interpreter.sh" "$ci/code-interpreter.sh"
install -m 0644 "$src/bash_kernel.py" "$src/java_kernel.py" "$ci/kernels/"
cat >"$kernels/bash/kernel.json" <<'JSON'
{"argv": ["/usr/bin/python3", "/opt/code-interpreter/kernels/bash_kernel.py", "-f", "{connection_file}"],
 "display_name": "Bash", "language": "bash"}
JSON
# The JShell bridge, compiled by the image's own JDK (sun.misc.Signal, for
# interrupts, warns as internal API).
install -m 0644 "$src/java/JShellBridge.java" "$ci/kernels/java/"
mount -t proc proc "$root/proc"
chroot "$root" javac -nowarn -d /opt/code-interpreter/kernels/java \
  /opt/code-interpreter/kernels/java/JShellBridge.java >"$root.javac.log" 2>&1 || true
umount -l "$root/proc"
if [ ! -f "$ci/kernels/java/JShellBridge.class" ]; then
  cat "$root.javac.log" >&2
  echo "javac of the JShell bridge failed" >&2
  exit 1
fi
rm -f "$root.javac.log"
# jmods are for jlink only (75 MB).
rm -rf "$root"/usr/lib/jvm/*/jmods
cat >"$kernels/java/kernel.json" <<'JSON'
{"argv": ["/usr/bin/python3", "/opt/code-interpreter/kernels/java_kernel.py", "-f", "{connection_file}"],
 "display_name": "Java", "language": "java"}
JSON

if [ -n "$npm_pid" ]; then
  if ! wait "$npm_pid"; then
    cat "$npm_log" >&2
    echo "npm ci of tslab failed" >&2
    exit 1
  fi
  mkdir -p "$ci/node"
  cp -a "$npm_dir/node_modules" "$ci/node/"
  # TypeScript finds @types/node by walking up from the kernel's working
  # directory: the root's node_modules is on every such walk.
  ln -s /opt/code-interpreter/node/node_modules "$root/node_modules"
  for k in tslab:typescript:TypeScript jslab:javascript:JavaScript; do
    IFS=: read -r name lang display <<<"$k"
    extra=""
    [ "$name" = jslab ] && extra=', "--js"'
    mkdir -p "$kernels/$name"
    cat >"$kernels/$name/kernel.json" <<JSON
{"argv": ["/usr/bin/node", "/opt/code-interpreter/node/node_modules/tslab/bin/tslab", "kernel", "--config-path", "{connection_file}"$extra],
 "display_name": "$display", "language": "$lang"}
JSON
  done
fi
rm -f "$npm_log"

tar -C "$root" --numeric-owner -c . | docker import \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'ENV LANG=C.UTF-8' \
  -c 'WORKDIR /workspace' \
  -c "LABEL $label=$sha" \
  -c 'CMD ["/opt/code-interpreter/code-interpreter.sh"]' - "$image" >/dev/null
echo "built $image in $(($(date +%s) - start)) s ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%d MB", $1/1e6}'))"
