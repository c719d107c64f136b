#!/bin/bash
# Entrypoint of opensandbox/code-interpreter:latest (the path the upstream
# image uses, so sandboxes created for it work unchanged).
# Usage: /opt/code-interpreter/code-interpreter.sh [command...]
#   Reports the language versions asked for (PYTHON_VERSION, JAVA_VERSION,
#   NODE_VERSION, GO_VERSION) against what the image has: one version of
#   each, so a request is honoured when it matches and ignored with a log
#   line when it does not. Puts PATH into $EXECD_ENVS (execd's commands and
#   kernels see it), then execs the command, or waits forever without one.
#   Nothing is started here: execd starts a kernel on a context's first run.

log() { echo "code-interpreter: $*" >&2; }

# check NAME REQUESTED HAVE: HAVE is the image's version ("" = none).
check() {
  local name=$1 want=$2 have=$3
  [ -n "$want" ] || return 0
  if [ -z "$have" ]; then
    log "$name $want requested: this image has no $name; ignored"
  elif [ "$have" = "$want" ] || [ "${have#"$want".}" != "$have" ]; then
    log "$name $want requested: using $have"
  else
    log "$name $want requested: this image has $name $have only; ignored"
  fi
}

py=$(python3 -c 'import platform; print(platform.python_version())' 2>/dev/null)
node=$(node -p 'process.versions.node' 2>/dev/null)
java=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -1)
go=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
check python "${PYTHON_VERSION:-}" "$py"
check java "${JAVA_VERSION:-}" "$java"
check node "${NODE_VERSION:-}" "$node"
check go "${GO_VERSION:-}" "$go"

if [ -n "${EXECD_ENVS:-}" ]; then
  mkdir -p "$(dirname "$EXECD_ENVS")" 2>/dev/null || true
  printf 'PATH=%s\n' "$PATH" >>"$EXECD_ENVS" 2>/dev/null || true
fi

if [ $# -gt 0 ]; then
  exec "$@"
fi
exec sleep infinity
