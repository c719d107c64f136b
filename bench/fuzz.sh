#!/usr/bin/env bash
# Long fuzzing runs: every libFuzzer harness of test/fuzz/ for 10 minutes
# (two at a time: the machine has two cores), on a corpus kept between runs
# in <build-fuzz>/corpus/<harness>/ (seeded from test/fuzz/corpus/).
# Usage: bench/fuzz.sh [minutes per harness (10)] [parallel jobs (2)]
# Prints executions, coverage and the outcome per harness; a crash input is
# kept under <build-fuzz>/artifacts/<harness>/ and the script exits 1.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-10}
jobs=${2:-2}
build=${OSB_FUZZ_BUILD_DIR:-$here/build-fuzz}
export OSB_FUZZ_BUILD_DIR=$build
export OSB_FUZZ_CORPUS_DIR=${OSB_FUZZ_CORPUS_DIR:-$build/corpus}
exec "$here/test/fuzz/run.sh" $((minutes * 60)) "$jobs"
