#!/usr/bin/env bash
# End-to-end tests: the real server (and the execd it injects into sandboxes)
# driven through the official JS SDK (@alibaba-group/opensandbox, pinned in
# package.json) with Node's built-in test runner. Builds nothing.
#
# Usage: test/e2e/run.sh [extra node --test args, e.g. --test-name-pattern=files]
# Env:
#   OSB_BUILD_DIR          build directory (default build; relative to the repo)
#                          holding opensandbox-server and opensandbox-execd
#   OSB_E2E_IMAGE          main image (default opensandbox/debian:bookworm)
#   OSB_E2E_BUSYBOX_IMAGE  busybox image (default opensandbox/busybox:latest)
#   OSB_E2E_CODE_IMAGE     code-interpreter image (default
#                          opensandbox/code-interpreter:latest)
#   OSB_E2E_EXTRA_TOML     appended to the generated server config
#   OSB_E2E_SECURE_RUNTIME every sandbox under this [secure_runtime] type,
#                          e.g. gvisor (docs/gvisor.md)
#   OSB_E2E_CONCURRENCY    test files run in parallel (default 1)
#   OSB_E2E_FILES          test files (default tests/*.test.mjs), e.g.
#                          "tests/files.test.mjs tests/proxy.test.mjs"
#   OSB_E2E_KEEP=1         keep the temp dir (config, store, server log)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build_dir=${OSB_BUILD_DIR:-build}
case "$build_dir" in /*) ;; *) build_dir="$repo/$build_dir" ;; esac
server_bin="$build_dir/opensandbox-server"
[ -x "$server_bin" ] || { echo "e2e: $server_bin not found (build first)" >&2; exit 2; }
command -v node >/dev/null || { echo "e2e: node is required" >&2; exit 2; }

image=${OSB_E2E_IMAGE:-opensandbox/debian:bookworm}
busybox_image=${OSB_E2E_BUSYBOX_IMAGE:-opensandbox/busybox:latest}
code_image=${OSB_E2E_CODE_IMAGE:-opensandbox/code-interpreter:latest}
for img in "$image" "$busybox_image" "$code_image"; do
  docker image inspect "$img" >/dev/null 2>&1 || {
    echo "e2e: image $img missing (run deploy/setup.sh)" >&2; exit 2; }
done

node_name="it-e2e-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
api_key="e2e-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')"
tmp=$(mktemp -d "/tmp/osb-e2e-${node_name}.XXXXXX")
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
server_pid=""
dns_pid=""

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [ -z "$dns_pid" ] || kill "$dns_pid" 2>/dev/null || true
  local left
  left=$(docker ps -aq --filter "label=opensandbox.io/node=$node_name")
  if [ -n "$left" ]; then
    echo "e2e: removing $(echo "$left" | wc -l) leftover container(s) of $node_name"
    echo "$left" | xargs -r docker rm -f >/dev/null 2>&1 || true
  fi
  # Snapshot images carry the labels of their source container.
  left=$(docker images -q --filter reference=opensandbox-snapshots \
    --filter "label=opensandbox.io/node=$node_name")
  if [ -n "$left" ]; then
    echo "e2e: removing $(echo "$left" | wc -l) leftover snapshot image(s) of $node_name"
    echo "$left" | xargs -r docker rmi -f >/dev/null 2>&1 || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$tmp/server.log" ]; then
    echo "e2e: last lines of the server log ($tmp/server.log):" >&2
    tail -n 40 "$tmp/server.log" >&2
  fi
  if [ "${OSB_E2E_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "e2e: kept $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Egress (tests/egress.test.mjs): the sidecar image, and a DNS server of our
# own as the sidecars' upstream: names under .e2e.test resolve to the
# bridge's gateway, where the tests' HTTP servers listen.
# deploy/setup.sh builds the sidecar image from the current binary.
"$repo/deploy/build-egress-image.sh" --check "$build_dir/opensandbox-egress" >/dev/null
# The default bridge's address on the host (IPAM often omits it).
bridge_dev=$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}')
gateway=$(ip -4 -o addr show dev "$bridge_dev" | awk '{print $4}' | cut -d/ -f1 | head -n1)
node "$here/dns-server.mjs" "$gateway" >"$tmp/dns.port" 2>"$tmp/dns.log" &
dns_pid=$!
for _ in $(seq 1 50); do [ -s "$tmp/dns.port" ] && break; sleep 0.1; done
dns_port=$(head -1 "$tmp/dns.port")
[ -n "$dns_port" ] || { echo "e2e: the test DNS server did not start" >&2; exit 1; }

cat >"$tmp/config.toml" <<TOML
[server]
host = "127.0.0.1"
port = $port
api_key = "$api_key"

[log]
level = "DEBUG"

[runtime]
type = "docker"

[docker]
network_mode = "bridge"

[store]
path = "$tmp/store.db"

[cluster]
node_name = "$node_name"

[egress]
image = "opensandbox/egress:latest"
upstream_dns = "$gateway:$dns_port"

# Signed URLs (tests/access.test.mjs): key "e" = base64("e2e-signing-secret").
[ingress.secure_access]
active_key = "e"
[[ingress.secure_access.keys]]
key_id = "e"
key = "ZTJlLXNpZ25pbmctc2VjcmV0"
${OSB_E2E_EXTRA_TOML:-}
TOML
if [ -n "${OSB_E2E_SECURE_RUNTIME:-}" ]; then
  printf '[secure_runtime]\ntype = "%s"\ndocker_runtime = ""\n' \
    "$OSB_E2E_SECURE_RUNTIME" >>"$tmp/config.toml"
fi

"$server_bin" --config "$tmp/config.toml" >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { echo "e2e: server exited at start" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { echo "e2e: server not healthy" >&2; exit 1; }
echo "e2e: server pid $server_pid on 127.0.0.1:$port, node $node_name, log $tmp/server.log"

cd "$here"
if [ ! -d node_modules/@alibaba-group/opensandbox ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

export OSB_E2E_DOMAIN="127.0.0.1:$port"
export OSB_E2E_API_KEY="$api_key"
export OSB_E2E_IMAGE="$image"
export OSB_E2E_BUSYBOX_IMAGE="$busybox_image"
export OSB_E2E_CODE_IMAGE="$code_image"
export OSB_E2E_NODE="$node_name"
export OSB_E2E_GATEWAY="$gateway"
export OSB_E2E_SECURE_RUNTIME="${OSB_E2E_SECURE_RUNTIME:-}"
# shellcheck disable=SC2086
node --test --test-concurrency="${OSB_E2E_CONCURRENCY:-1}" "$@" ${OSB_E2E_FILES:-tests/*.test.mjs}
