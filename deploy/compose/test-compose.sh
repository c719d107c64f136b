#!/usr/bin/env bash
# End-to-end check of the compose cluster on this machine's Docker:
#   makes the cluster's certificates (deploy/make-cluster-certs.sh, in a
#   temporary directory), checks that the node image is up to date, starts
#   the 3 nodes (docker-compose up -d), waits until every node sees the other
#   two over TLS, checks that a node without a certificate of the cluster's
#   CA cannot join,
#   creates one sandbox through each node's API, checks that a GET through
#   every node finds every sandbox and that the list on node3 shows all of
#   them, checks their endpoints (directly and through every node's server
#   proxy) and the containers' labels, deletes them
#   (each through another node than the one it was created through), and
#   tears everything down (docker-compose down -v). Containers labelled
#   opensandbox.io/node=node1..node3 are removed even on failure.
#
# Usage: deploy/compose/test-compose.sh
# Env:   OSB_BUILD_DIR (binaries for the image, default build),
#        OSB_NODE_IMAGE (default opensandbox/server:latest),
#        OSB_API_KEY (default: a random key), OSB_COMPOSE_PROJECT
#        (default osb-compose-test), OSB_NODE{1,2,3}_PORT (default 8081..8083).
# Needs: docker, docker-compose (v1.29, Debian package), curl, jq, the image
#        opensandbox/busybox:latest (deploy/build-images.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
project=${OSB_COMPOSE_PROJECT:-osb-compose-test}
export OSB_API_KEY=${OSB_API_KEY:-test-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')}
export OSB_NODE1_PORT=${OSB_NODE1_PORT:-8081}
export OSB_NODE2_PORT=${OSB_NODE2_PORT:-8082}
export OSB_NODE3_PORT=${OSB_NODE3_PORT:-8083}
nodes=(node1 node2 node3)
declare -A port=([node1]=$OSB_NODE1_PORT [node2]=$OSB_NODE2_PORT [node3]=$OSB_NODE3_PORT)
image=opensandbox/busybox:latest
logs=$(mktemp -d /tmp/osb-compose-test.XXXXXX)
compose=(docker-compose -f "$here/docker-compose.yml" -p "$project")
node_image=${OSB_NODE_IMAGE:-opensandbox/server:latest}
rogue=$project-rogue
# The cluster's CA and one certificate per node, for this run only.
export OSB_CLUSTER_CERTS=$logs/certs
"$repo/deploy/make-cluster-certs.sh" "$OSB_CLUSTER_CERTS" node1 node2 node3 >"$logs/certs.log"

for tool in docker docker-compose curl jq; do
  command -v "$tool" >/dev/null || { echo "test-compose: $tool is required" >&2; exit 1; }
done
docker image inspect "$image" >/dev/null 2>&1 || {
  echo "test-compose: $image is missing; run deploy/setup.sh" >&2
  exit 1
}

say() { echo "test-compose: $*"; }
fail() {
  echo "test-compose: FAIL: $*" >&2
  exit 1
}

remove_sandbox_containers() {
  local n left
  for n in "${nodes[@]}"; do
    left=$(docker ps -aq --filter "label=opensandbox.io/node=$n")
    if [ -n "$left" ]; then
      say "removing $(echo "$left" | wc -l) container(s) labelled opensandbox.io/node=$n"
      # shellcheck disable=SC2086
      docker rm -f $left >/dev/null 2>&1 || true
    fi
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  "${compose[@]}" logs --no-color >"$logs/compose.log" 2>&1 || true
  if [ "$rc" -ne 0 ]; then
    echo "---- last lines of the node logs ($logs/compose.log) ----" >&2
    tail -n 60 "$logs/compose.log" >&2 || true
  fi
  docker rm -f "$rogue" >/dev/null 2>&1 || true
  "${compose[@]}" down -v --remove-orphans >"$logs/down.log" 2>&1 || true
  remove_sandbox_containers
  if [ "$rc" -eq 0 ]; then
    say "PASS (logs in $logs)"
  else
    say "failed with status $rc (logs in $logs)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# api METHOD NODE PATH [BODY] -> body on stdout, status in $logs/status
api() {
  local method=$1 node=$2 path=$3 body=${4:-}
  local args=(-sS -o "$logs/body" -w '%{http_code}' -X "$method"
    -H "OPEN-SANDBOX-API-KEY: $OSB_API_KEY" --max-time 30)
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
  curl "${args[@]}" "http://127.0.0.1:${port[$node]}/v1$path" >"$logs/status" 2>>"$logs/curl.err" \
    || echo 000 >"$logs/status"
  cat "$logs/body" 2>/dev/null || true
}
status() { cat "$logs/status"; }

# A previous run that died hard may have left its project behind.
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
remove_sandbox_containers
for n in "${nodes[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/${port[$n]}") 2>/dev/null; then
    fail "port ${port[$n]} (for $n) is already in use; set OSB_${n^^}_PORT"
  fi
done

# deploy/setup.sh --tests builds the node image from the current binaries.
OSB_NODE_IMAGE=$node_image "$repo/deploy/build-node-image.sh" --check >/dev/null \
  || fail "the node image $node_image is not up to date"

say "starting ${nodes[*]} (project $project)"
"${compose[@]}" up -d >"$logs/up.log" 2>&1 || { cat "$logs/up.log" >&2; fail "docker-compose up"; }

say "waiting for every node to see the other two"
start=$(date +%s)
for n in "${nodes[@]}"; do
  while :; do
    out=$(api GET "$n" /cluster/nodes)
    if [ "$(status)" = 200 ] \
      && [ "$(jq '[.nodes[] | select(.state == "up")] | length' <<<"$out")" = 2 ]; then
      break
    fi
    (($(date +%s) - start < 60)) || fail "$n does not see 2 peers up after 60 s: $(status) $out"
    sleep 0.5
  done
  say "$n: $(jq -c '[.nodes[] | "\(.name)=\(.state)"]' <<<"$out")"
done
say "cluster formed in $(($(date +%s) - start)) s"

say "scraping every node with Prometheus (issue 15)"
"$repo/deploy/prometheus/check-targets.sh" "$OSB_API_KEY" \
  "${port[node1]}" "${port[node2]}" "${port[node3]}" \
  || fail "Prometheus does not see every node up"
# (grep reads whole logs: grep -q would end a pipe early, which pipefail
# counts as a failure.)
node_log() { "${compose[@]}" logs --no-color "$1" 2>/dev/null || true; }
for n in "${nodes[@]}"; do
  grep -c "cluster port speaks TLS" <<<"$(node_log "$n")" >/dev/null \
    || fail "$n does not speak TLS on its cluster port"
done

say "a node without a certificate of the cluster's CA cannot join"
printf '%s\n' '[server]' 'host = "0.0.0.0"' 'port = 8080' '[runtime]' 'type = "fake"' \
  '[store]' 'path = "/tmp/rogue.db"' '[cluster]' 'node_name = "rogue"' \
  'listen = "rogue:7000"' 'seeds = ["node1:7000"]' 'plaintext = true' >"$logs/rogue.toml"
docker run -d --name "$rogue" --network "${project}_cluster" --network-alias rogue \
  -e OPENSANDBOX_SERVER_API_KEY=rogue -v "$logs/rogue.toml:/etc/opensandbox/config.toml:ro" \
  "$node_image" >/dev/null || fail "cannot start the rogue node"
start=$(date +%s)
until grep -c "closed before a BASP handshake" <<<"$(node_log node1)" >/dev/null; do
  (($(date +%s) - start < 20)) || fail "node1 saw no connection attempt of the rogue node"
  sleep 0.5
done
out=$(api GET node1 /cluster/nodes)
jq -e '[.nodes[].name] | index("rogue") == null' <<<"$out" >/dev/null \
  || fail "the rogue node joined: $out"
if grep -c "joined peer" <<<"$(docker logs "$rogue" 2>&1)" >/dev/null; then
  fail "the rogue node joined a peer"
fi
docker rm -f "$rogue" >/dev/null
say "node1 refused it: $(jq -c '[.nodes[] | "\(.name)=\(.state)"]' <<<"$out")"

declare -A created_via=()
declare -A owner_of=()
ids=()
for n in "${nodes[@]}"; do
  body=$(jq -nc --arg img "$image" --arg via "$n" \
    '{image: {uri: $img}, entrypoint: ["sleep", "600"], timeout: 600,
      resourceLimits: {cpu: "250m", memory: "128Mi"},
      metadata: {"compose-test": "yes", via: $via}}')
  out=$(api POST "$n" /sandboxes "$body")
  [ "$(status)" = 202 ] || fail "create through $n: $(status) $out"
  id=$(jq -r .id <<<"$out")
  ids+=("$id")
  created_via[$id]=$n
  say "created $id through $n"
done

say "waiting for every sandbox to be Running (GET through every node)"
for id in "${ids[@]}"; do
  start=$(date +%s)
  while :; do
    states=()
    for n in "${nodes[@]}"; do
      out=$(api GET "$n" "/sandboxes/$id")
      [ "$(status)" = 200 ] || fail "GET $id through $n: $(status) $out"
      [ "$(jq -r .id <<<"$out")" = "$id" ] || fail "GET $id through $n returned $out"
      states+=("$(jq -r .status.state <<<"$out")")
    done
    case " ${states[*]} " in
      *" Failed "* | *" Terminated "*) fail "$id: ${states[*]} ($out)" ;;
    esac
    [ "${states[*]}" = "Running Running Running" ] && break
    (($(date +%s) - start < 60)) || fail "$id is not Running after 60 s: ${states[*]}"
    sleep 0.5
  done
  say "$id is Running on every node's view"
done

say "listing on node3"
out=$(api GET node3 "/sandboxes?metadata=compose-test%3Dyes&pageSize=50")
[ "$(status)" = 200 ] || fail "list on node3: $(status) $out"
for id in "${ids[@]}"; do
  jq -e --arg id "$id" '[.items[].id] | index($id) != null' <<<"$out" >/dev/null \
    || fail "the list on node3 misses $id: $out"
done
total=$(jq '.items | length' <<<"$out")
[ "$total" = "${#ids[@]}" ] || fail "the list on node3 has $total items, want ${#ids[@]}: $out"
say "node3 lists all ${#ids[@]} sandboxes"

say "checking endpoints and container labels"
for id in "${ids[@]}"; do
  out=$(api GET node2 "/sandboxes/$id/endpoints/8080")
  [ "$(status)" = 200 ] || fail "endpoint of $id: $(status) $out"
  ep=$(jq -r .endpoint <<<"$out")
  case $ep in 127.0.0.1:*) ;; *) fail "endpoint of $id is '$ep', want 127.0.0.1:<port>" ;; esac
  owner=$(docker ps --filter "label=opensandbox.io/id=$id" \
    --format '{{ .Label "opensandbox.io/node" }}')
  case " ${nodes[*]} " in
    *" $owner "*) ;;
    *) fail "container of $id: owner label '$owner'" ;;
  esac
  owner_of[$id]=$owner
  # execd went in by archive upload (the node runs in a container): ping it
  # on its published port.
  out=$(api GET node3 "/sandboxes/$id/endpoints/44772")
  [ "$(status)" = 200 ] || fail "execd endpoint of $id: $(status) $out"
  execd=$(jq -r .endpoint <<<"$out")
  execd=${execd%%/*}
  start=$(date +%s)
  until curl -sf --max-time 2 "http://$execd/ping" >/dev/null; do
    (($(date +%s) - start < 20)) || fail "execd of $id does not answer on $execd/ping"
    sleep 0.2
  done
  # The server proxy of every node reaches it too (the nodes run in
  # containers: the ports are published on their Docker host, the gateway),
  # for a caller with the API key; without a credential it answers 401.
  for n in "${nodes[@]}"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
      -H "OPEN-SANDBOX-API-KEY: $OSB_API_KEY" \
      "http://127.0.0.1:${port[$n]}/sandboxes/$id/proxy/44772/ping")
    [ "$code" = 200 ] || fail "server proxy of $n to execd of $id: HTTP $code"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
      "http://127.0.0.1:${port[$n]}/sandboxes/$id/proxy/44772/ping")
    [ "$code" = 401 ] || fail "server proxy of $n without a credential: HTTP $code"
  done
  say "$id: endpoint $ep, execd $execd answers, created via ${created_via[$id]}, owned by $owner"
done
out=$(api GET node1 /cluster/nodes)
say "placement: $(jq -c '[.nodes[] | "\(.name):\(.sandboxes)"]' <<<"$out")"

say "stopping node2: its sandboxes answer 503 elsewhere, then heal when it returns"
victim=""
for id in "${ids[@]}"; do
  [ "${owner_of[$id]}" = node2 ] && victim=$id && break
done
"${compose[@]}" stop node2 >>"$logs/up.log" 2>&1
if [ -n "$victim" ]; then
  start=$(date +%s)
  while :; do
    out=$(api GET node1 "/sandboxes/$victim")
    [ "$(status)" = 503 ] && break
    (($(date +%s) - start < 20)) || fail "GET $victim (node2 down) through node1: $(status) $out"
    sleep 0.2
  done
  grep -q node2 <<<"$out" || fail "the 503 for $victim does not name node2: $out"
  say "node2 down: GET $victim through node1 -> 503 $(jq -c . <<<"$out")"
else
  say "no sandbox was placed on node2; only its restart is checked"
fi
"${compose[@]}" start node2 >>"$logs/up.log" 2>&1
start=$(date +%s)
for id in "${ids[@]}"; do
  for n in "${nodes[@]}"; do
    while :; do
      out=$(api GET "$n" "/sandboxes/$id")
      [ "$(status)" = 200 ] && [ "$(jq -r .status.state <<<"$out")" = Running ] && break
      (($(date +%s) - start < 60)) || fail "after node2 restarted, GET $id through $n: $(status) $out"
      sleep 0.3
    done
  done
done
say "node2 back after $(($(date +%s) - start)) s: every sandbox Running through every node"

say "deleting each sandbox through the next node"
i=0
for id in "${ids[@]}"; do
  n=${nodes[$(((i + 1) % 3))]}
  i=$((i + 1))
  out=$(api DELETE "$n" "/sandboxes/$id")
  [ "$(status)" = 204 ] || fail "DELETE $id through $n: $(status) $out"
done
for id in "${ids[@]}"; do
  start=$(date +%s)
  for n in "${nodes[@]}"; do
    while :; do
      out=$(api GET "$n" "/sandboxes/$id")
      [ "$(status)" = 404 ] && break
      (($(date +%s) - start < 30)) || fail "$id is still visible on $n after delete: $(status) $out"
      sleep 0.2
    done
  done
  while [ -n "$(docker ps -aq --filter "label=opensandbox.io/id=$id")" ]; do
    (($(date +%s) - start < 30)) || fail "the container of $id survives its delete"
    sleep 0.2
  done
done
out=$(api GET node3 "/sandboxes?metadata=compose-test%3Dyes")
[ "$(jq '.items | length' <<<"$out")" = 0 ] || fail "node3 still lists sandboxes: $out"
say "all sandboxes deleted; no container left"
