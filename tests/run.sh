#!/usr/bin/env bash
# Installs missing packages, builds, and runs the test suite with ctest.
#
#   tests/run.sh                 every test but the benchmarks (build/)
#   tests/run.sh --asan [ARGS]   AddressSanitizer + UBSan build (build-asan/)
#   tests/run.sh --tsan [ARGS]   ThreadSanitizer build (build-tsan/)
#   tests/run.sh -L unit         any other arguments go to ctest
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

build="$top/build"
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
case "${1:-}" in
--asan)
    build="$top/build-asan"
    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DIBP_ASAN=ON)
    shift
    ;;
--tsan)
    build="$top/build-tsan"
    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DIBP_TSAN=ON)
    shift
    ;;
esac

"$top/deploy/ensure-deps.sh"
cmake -S "$top" -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
# The benchmarks are run on purpose only: ctest -L bench -V
ctest --output-on-failure -j"$(nproc)" -LE bench "$@"
