#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan+UBSan, build-fuzz/) and runs
# each for a short fixed time over a copy of its seed corpus:
#
#   tests/run-fuzz.sh                 every harness, IBP_FUZZ_SECONDS (20) each
#   IBP_FUZZ_SECONDS=300 tests/run-fuzz.sh -R envelope    longer, one harness
#
# Extra arguments go to ctest. Crash inputs land in
# build-fuzz/tests/fuzz/fuzz-artifacts/<name>/; replay one with
# build-fuzz/tests/fuzz/<name>_fuzz FILE. The normal build (tests/run.sh)
# replays the committed corpora through the same harnesses (ctest -L fuzz).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build-fuzz"

"$top/deploy/ensure-deps.sh"
CC=clang cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIBP_FUZZ=ON \
    -DIBP_FUZZ_SECONDS="${IBP_FUZZ_SECONDS:-20}" >/dev/null
# Only the harnesses: the rest of the tree is not linked with the sanitizers.
cmake --build "$build" -j"$(nproc)" --target ibp_fuzz
cd "$build"
ctest --output-on-failure -j"$(nproc)" -L fuzz "$@"
