#!/usr/bin/env bash
# Validates the Kubernetes manifests offline (no cluster): installs the pinned
# validator (kubernetes-models, yaml) from package-lock.json with `npm ci`,
# then runs validate.mjs (schemas, unknown fields, cross references, the
# entrypoint's rendering of the config template), validate_runtime.mjs
# (kubernetes-runtime/) and validate_agent_sandbox.mjs (its agent-sandbox
# overlay).
# Usage: deploy/k8s/validate.sh   (Node.js >= 18 and npm)
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node validate.mjs
node validate_runtime.mjs
exec node validate_agent_sandbox.mjs
