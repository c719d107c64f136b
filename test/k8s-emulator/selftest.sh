#!/usr/bin/env bash
# Proves the emulator honest against a real client, then runs its unit
# tests: Debian's kubectl 1.20 (kubernetes-client) over HTTPS with the
# emulator's CA and a client certificate (and a bearer token) creates, gets,
# waits for, watches, applies, patches and deletes pods and other objects.
# Installs nothing but the pinned npm packages (`npm ci`); kubectl comes
# from deploy/setup.sh --tests (test/k8s-emulator/find-kubectl.sh --install).
# Usage: test/k8s-emulator/selftest.sh [--kubectl-only]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
kubectl=$(./find-kubectl.sh) || exit 2

tmp=$(mktemp -d /tmp/k8s-emulator-selftest.XXXXXX)
emu_pid=
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null || true
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1" >&2; failed=$((failed + 1)); }
# expect NAME PATTERN COMMAND...: the command's output (stdout+stderr) must
# match the extended regular expression PATTERN.
expect() {
  local name=$1 pattern=$2 out
  shift 2
  out=$("$@" 2>&1) || true
  if grep -Eq -- "$pattern" <<<"$out"; then ok "$name"; else bad "$name: got: ${out:0:600}"; fi
}
# eventually NAME PATTERN FILE: FILE comes to match PATTERN within 10 s.
eventually() {
  local i
  for ((i = 0; i < 200; ++i)); do
    if grep -Eq -- "$2" "$3"; then ok "$1"; return; fi
    sleep 0.05
  done
  bad "$1: $3 never matched $2: $(tail -c 600 "$3")"
}

echo "selftest: $("$kubectl" version --client --short 2>/dev/null) at $kubectl"
node emulator.mjs --tls --token selftest-token --require-auth --state-dir "$tmp/state" \
  --delays scheduleMs=50,startMs=100,pullMs=50,terminateMs=300 >"$tmp/info" 2>"$tmp/emulator.log" &
emu_pid=$!
for ((i = 0; i < 100; ++i)); do
  [ -s "$tmp/info" ] && break
  sleep 0.05
done
info=$(head -1 "$tmp/info")
url=$(node -e 'console.log(JSON.parse(process.argv[1]).url)' "$info")
admin=$(node -e 'console.log(JSON.parse(process.argv[1]).admin)' "$info")
export KUBECONFIG="$tmp/state/kubeconfig"
k() { "$kubectl" --cache-dir "$tmp/cache" --request-timeout=20s "$@"; }
echo "selftest: emulator at $url (admin $admin)"

cat >"$tmp/pod.yaml" <<'YAML'
apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels:
    app: hello
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
YAML

expect "kubectl version talks to the emulator" 'Server Version: .*GitVersion:"v1\.30\.0"' k version
# A watch for the whole test, as `kubectl get pods -w` prints it.
k get pods --watch --output-watch-events -o json >"$tmp/watch.json" 2>"$tmp/watch.err" &
watch_pid=$!
expect "kubectl create -f pod.yaml" '^pod/hello created$' k create -f "$tmp/pod.yaml"
expect "create again is AlreadyExists" 'Error from server \(AlreadyExists\).*pods "hello" already exists' k create -f "$tmp/pod.yaml"
expect "kubectl wait for Ready (a watch)" 'pod/hello condition met' k wait --for=condition=Ready pod/hello --timeout=15s
expect "kubectl get pods (server-side table)" '^hello +1/1 +Running +0 ' k get pods
expect "kubectl get pods -o wide: IP and node" '^hello +1/1 +Running +0 +[0-9a-z]+ +10\.244\.[0-9]+\.[0-9]+ +emulator-node' k get pods -o wide
k get pods -o json >"$tmp/pods.json"
expect "kubectl get pods -o json: phase, podIP, conditions" '^Running 10\.244\.[0-9]+\.[0-9]+ PodScheduled=True,Initialized=True,ContainersReady=True,Ready=True|Running 10\.244' \
  node -e 'const l=JSON.parse(require("fs").readFileSync(process.argv[1]));const p=l.items[0];
           const c=["PodScheduled","Initialized","ContainersReady","Ready"].map(t=>t+"="+p.status.conditions.find(x=>x.type===t).status);
           console.log(l.kind, p.status.phase, p.status.podIP, c.join(","))' "$tmp/pods.json"
expect "kubectl get pod -o jsonpath (a GET)" '^busybox:1\.36$' k get pod hello -o 'jsonpath={.spec.containers[0].image}'
expect "kubectl get with a label selector" '^hello$' k get pods -l 'app in (hello)' -o 'jsonpath={.items[*].metadata.name}'
expect "kubectl get with a field selector" '^hello$' k get pods --field-selector status.phase=Running -o 'jsonpath={.items[*].metadata.name}'
expect "kubectl label (merge patch)" 'pod/hello labeled' k label pod hello tier=test
expect "kubectl annotate (merge patch)" 'pod/hello annotated' k annotate pod hello note=selftest
expect "the label is stored" '^test$' k get pod hello -o 'jsonpath={.metadata.labels.tier}'
expect "kubectl patch --type strategic" 'pod/hello patched' k patch pod hello -p '{"metadata":{"labels":{"patched":"yes"}}}'
expect "kubectl patch --type json" 'pod/hello patched' k patch pod hello --type json -p '[{"op":"remove","path":"/metadata/labels/patched"}]'
expect "kubectl get events (the kubelet's)" 'Started +Pod' k get events -o custom-columns=REASON:.reason,OBJ:.involvedObject.kind --sort-by=.metadata.creationTimestamp
expect "kubectl get events names the pod" 'Started' k get events --field-selector involvedObject.name=hello -o 'jsonpath={.items[*].reason}'

# Server-side validation: a typo in a field, a bad name.
sed 's/imagePullPolicy: X//; s/command:/comand:/; s/name: hello/name: typo/' "$tmp/pod.yaml" >"$tmp/typo.yaml"
expect "an unknown field is refused (422)" 'The Pod "typo" is invalid: .*spec\.containers\[0\]\.comand' k create -f "$tmp/typo.yaml"
sed 's/name: hello/name: Bad_Name/' "$tmp/pod.yaml" >"$tmp/badname.yaml"
expect "a bad name is refused (422)" 'The Pod "Bad_Name" is invalid: metadata\.name: Invalid value' k create -f "$tmp/badname.yaml"

# Other resources.
expect "kubectl create namespace" 'namespace/scratch created' k create namespace scratch
expect "kubectl create configmap" 'configmap/cfg created' k -n scratch create configmap cfg --from-literal=a=1
expect "kubectl create secret" 'secret/sec created' k -n scratch create secret generic sec --from-literal=token=abc
expect "the secret is base64" '^YWJj$' k -n scratch get secret sec -o 'jsonpath={.data.token}'
expect "kubectl create service" 'service/web created' k -n scratch create service clusterip web --tcp=80:8080
expect "the service has a cluster IP" '^10\.96\.' k -n scratch get service web -o 'jsonpath={.spec.clusterIP}'
expect "kubectl get leases (coordination.k8s.io)" 'No resources found' k get leases -A
expect "kubectl api-resources (discovery)" 'leases +coordination\.k8s\.io/v1 +true +Lease' k api-resources
expect "kubectl delete namespace (and its contents)" 'namespace "scratch" deleted' k delete namespace scratch
expect "the namespace is gone" 'NotFound' k get namespace scratch

# kubectl apply: create, then a change as a strategic merge patch.
sed 's/name: hello/name: applied/' "$tmp/pod.yaml" >"$tmp/applied.yaml"
expect "kubectl apply creates" 'pod/applied created' k apply -f "$tmp/applied.yaml"
sed 's/app: hello/app: hello2/' "$tmp/applied.yaml" >"$tmp/applied2.yaml"
expect "kubectl apply patches" 'pod/applied configured' k apply -f "$tmp/applied2.yaml"
expect "the applied change is stored" '^hello2$' k get pod applied -o 'jsonpath={.metadata.labels.app}'

# Deletion: graceful (Terminating), then gone; kubectl waits for it.
expect "kubectl delete pod" 'pod "hello" deleted' k delete pod hello
expect "the pod is gone (404)" 'Error from server \(NotFound\): pods "hello" not found' k get pod hello
expect "kubectl delete --grace-period=0 --force" 'pod "applied" force deleted' k delete pod applied --grace-period=0 --force

# The watch saw it all.
eventually "the watch saw hello ADDED" '"type":"ADDED"' "$tmp/watch.json"
eventually "the watch saw hello Running" '"phase":"Running"' "$tmp/watch.json"
eventually "the watch saw hello Terminating" '"deletionTimestamp"' "$tmp/watch.json"
eventually "the watch saw hello DELETED" '"type":"DELETED"' "$tmp/watch.json"
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=
# The table form of the watch (kubectl get pods -w).
k get pods -w >"$tmp/watch.txt" 2>&1 &
watch_pid=$!
k create -f "$tmp/pod.yaml" >/dev/null
eventually "kubectl get pods -w prints the table rows" '^hello +1/1 +Running' "$tmp/watch.txt"
k delete pod hello --wait=false >/dev/null
eventually "kubectl get pods -w prints Terminating" '^hello +.*Terminating' "$tmp/watch.txt"
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=

# Authentication: the token, and nothing.
ca="$tmp/state/pki/ca.crt"
expect "a bearer token authenticates" 'No resources found|hello' \
  "$kubectl" --kubeconfig /dev/null --cache-dir "$tmp/cache" --server "$url" --certificate-authority "$ca" --token selftest-token get pods
expect "a wrong token is 401" 'Unauthorized|must be logged in' \
  "$kubectl" --kubeconfig /dev/null --cache-dir "$tmp/cache2" --server "$url" --certificate-authority "$ca" --token wrong get pods
# A watch from a compacted resourceVersion: kubectl reports 410 Gone.
old_rv=$(k get --raw /api/v1/namespaces/default/configmaps |
  node -e 'console.log(JSON.parse(require("fs").readFileSync(0)).metadata.resourceVersion)')
k create configmap after-rv --from-literal=a=1 >/dev/null
curl --noproxy '*' -fsS -X POST "$admin/_emulator/compact" >/dev/null
expect "a watch from a compacted resourceVersion gets a 410 Expired ERROR event" '"type":"ERROR".*"reason":"Expired".*"code":410' \
  k get --raw "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$old_rv"

echo "selftest: kubectl: $passed passed, $failed failed"
if [ "${1:-}" = "--kubectl-only" ]; then
  [ "$failed" -eq 0 ]
  exit
fi
kill "$emu_pid" && wait "$emu_pid" 2>/dev/null || true
emu_pid=
node --test test/ || failed=$((failed + 1))
[ "$failed" -eq 0 ]
