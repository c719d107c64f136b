#!/usr/bin/env bash
# Prints the path of Debian's kubectl 1.20 (package kubernetes-client), the
# client the emulator's selftest proves itself against.
#   $K8S_EMULATOR_KUBECTL             if set
#   /usr/bin/kubectl                  when the kubernetes-client package is installed
#   $cache/usr/bin/kubectl            the package unpacked (see --install)
# With --install (deploy/setup.sh --tests runs it) a missing client is
# installed: `apt-get install kubernetes-client`, or, where another package
# already owns /usr/bin/kubectl (e.g. google-cloud-cli's kubectl on some
# images; dpkg would refuse the overwrite), the same Debian package is
# fetched with `apt-get download` and unpacked into $cache, leaving the
# system's kubectl alone.
# Usage: test/k8s-emulator/find-kubectl.sh [--install]
set -euo pipefail
cache=${K8S_EMULATOR_KUBECTL_CACHE:-/var/cache/opensandbox/kubernetes-client}

is_120() {
  [ -x "$1" ] && "$1" version --client --short 2>/dev/null | grep -q 'v1\.20\.'
}

find_kubectl() {
  if [ -n "${K8S_EMULATOR_KUBECTL:-}" ]; then
    echo "$K8S_EMULATOR_KUBECTL"
    return 0
  fi
  if dpkg -s kubernetes-client >/dev/null 2>&1 && is_120 /usr/bin/kubectl; then
    echo /usr/bin/kubectl
    return 0
  fi
  if is_120 "$cache/usr/bin/kubectl"; then
    echo "$cache/usr/bin/kubectl"
    return 0
  fi
  return 1
}

if find_kubectl; then
  exit 0
fi
if [ "${1:-}" != "--install" ]; then
  echo "find-kubectl: Debian's kubectl 1.20 (kubernetes-client) is not installed;" \
       "run $0 --install (or deploy/setup.sh --tests)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache policy kubernetes-client 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  apt-get update -qq
fi
owner=$(dpkg -S /usr/bin/kubectl 2>/dev/null | cut -d: -f1 || true)
if [ -z "$owner" ] || [ "$owner" = kubernetes-client ]; then
  apt-get install -y -qq kubernetes-client >/dev/null
else
  echo "find-kubectl: /usr/bin/kubectl belongs to package $owner;" \
       "unpacking kubernetes-client into $cache instead" >&2
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq kubernetes-client 2>/dev/null)
  rm -rf "$cache"
  mkdir -p "$cache"
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$cache"
fi
find_kubectl
