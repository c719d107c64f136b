#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang-14, ASan+UBSan, own build dir) and
# runs each one for a while on a scratch copy of its seed corpus.
# Usage: test/fuzz/run.sh [seconds per harness (20)] [parallel jobs (1)]
# Env: OSB_FUZZ_BUILD_DIR (default <repo>/build-fuzz), OSB_FUZZ_CORPUS_DIR
# (a corpus kept between runs, one subfolder per harness; default: scratch),
# OSB_FUZZ_ONLY (space-separated harness names).
# Exits non-zero if a harness finds a crash, leak or timeout; the input is
# kept under <build dir>/artifacts/<harness>/.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-20}
jobs=${2:-1}
build=${OSB_FUZZ_BUILD_DIR:-$here/build-fuzz}
cxx=${OSB_FUZZ_CXX:-clang++-14}

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_COMPILER="$cxx" -DOSB_BUILD_FUZZERS=ON \
    -DOSB_BUILD_TESTS=OFF >/dev/null
fi
# Quiet unless the build fails: then its output says why.
if ! out=$(cmake --build "$build" --target fuzzers -j 2 2>&1); then
  echo "$out" | tail -n 40 >&2
  echo "fuzz: building the harnesses failed" >&2
  exit 1
fi

# RapidJSON's known pointer arithmetic is suppressed; anything else halts.
export UBSAN_OPTIONS="suppressions=$here/test/fuzz/ubsan.supp:halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

harnesses=${OSB_FUZZ_ONLY:-$(cd "$here/test/fuzz" && ls fuzz_*.cpp | sed 's/\.cpp$//')}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# run_one NAME: fuzzes NAME for $seconds; writes NAME.log and NAME.rc.
run_one() {
  local name=$1
  local corpus
  if [ -n "${OSB_FUZZ_CORPUS_DIR:-}" ]; then
    corpus=$OSB_FUZZ_CORPUS_DIR/$name
  else
    corpus=$scratch/corpus-$name
  fi
  mkdir -p "$corpus" "$build/artifacts/$name"
  local rc=0
  # New inputs go to the first folder; the repo's seeds are only read.
  # -timeout: an input taking over 10 s is a finding (a hang).
  "$build/test/fuzz/$name" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name/" \
    "$corpus" "$here/test/fuzz/corpus/$name" >"$scratch/$name.log" 2>&1 \
    || rc=$?
  echo "$rc" >"$scratch/$name.rc"
}

running=0
for name in $harnesses; do
  run_one "$name" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
total=0
for name in $harnesses; do
  total=$((total + 1))
  rc=$(cat "$scratch/$name.rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$name.log")
  cov=$(grep -o 'cov: [0-9]*' "$scratch/$name.log" | tail -1 | cut -d' ' -f2 || true)
  if [ "$rc" -eq 0 ]; then
    echo "fuzz: $name: ${execs:-?} executions, coverage ${cov:-?}, no crash"
  else
    failed=$((failed + 1))
    echo "fuzz: $name: FAILED (exit $rc) after ${execs:-?} executions" >&2
    grep -E '^==[0-9]+==|SUMMARY|runtime error|Test unit written|deadly signal' \
      "$scratch/$name.log" | head -20 >&2 || true
  fi
done
echo "fuzz: $((total - failed)) of $total harnesses ran ${seconds}s without a crash"
[ "$failed" -eq 0 ]
