#!/usr/bin/env bash
# Sets everything up (packages, dockerd, images, build) and runs the server.
# Usage: deploy/quickstart.sh [--config PATH]
#   Without --config it serves on 127.0.0.1:8080 with deploy/quickstart.toml.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
"$here/deploy/setup.sh"
config="$here/deploy/quickstart.toml"
if [ "${1:-}" = "--config" ] && [ -n "${2:-}" ]; then
  config=$2
fi
if ! grep -Eq '^\s*api_key\s*=\s*"[^"]+"' "$config" \
  && [ -z "${OPENSANDBOX_SERVER_API_KEY:-}" ]; then
  # The quickstart config binds to loopback only; say so explicitly.
  export OPENSANDBOX_INSECURE_SERVER=YES
fi
exec "${OSB_BUILD_DIR:-$here/build}/opensandbox-server" --config "$config"
