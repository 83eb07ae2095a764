#!/usr/bin/env bash
# Installs missing packages, builds, and runs the test suite with ctest.
#
#   tests/run.sh                 every test but the benchmarks (build/)
#   tests/run.sh --asan [ARGS]   AddressSanitizer + UBSan build (build-asan/)
#   tests/run.sh --tsan [ARGS]   ThreadSanitizer build (build-tsan/)
#   tests/run.sh -L unit         any other arguments go to ctest
#
# Under --asan and --tsan every instrumented process (test programs and the
# daemons and tools they start) writes its sanitizer reports to
# <build>/sanitizer-reports/report.<program>.<pid> instead of stderr, since the
# daemons' stderr goes to log files that the tests delete. Any report there
# fails the run and is printed after ctest, even when the test that started
# the process passed (a daemon stopped with SIGKILL has no exit status to check).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)

build="$top/build"
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
sanitizer=
case "${1:-}" in
--asan)
    build="$top/build-asan"
    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DIBP_ASAN=ON)
    sanitizer=asan
    shift
    ;;
--tsan)
    build="$top/build-tsan"
    cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DIBP_TSAN=ON)
    sanitizer=tsan
    shift
    ;;
esac

"$top/deploy/ensure-deps.sh"
cmake -S "$top" -B "$build" "${cmake_args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"

reports="$build/sanitizer-reports"
if [[ -n $sanitizer ]]; then
    rm -rf "$reports"
    mkdir -p "$reports"
    # Options given by the caller come last and win.
    common="halt_on_error=1:log_path=$reports/report:log_exe_name=1"
    # Suppressions only for bugs in system libraries, each with its reason.
    supp="$top/tests/sanitizers"
    if [[ $sanitizer == asan ]]; then
        asan="$common:detect_leaks=1:detect_stack_use_after_return=1"
        asan+=":check_initialization_order=1:strict_init_order=1"
        export ASAN_OPTIONS="$asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        ubsan="$common:print_stacktrace=1:report_error_type=1"
        export UBSAN_OPTIONS="$ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
        lsan=
        [[ -f $supp/lsan.supp ]] && lsan="suppressions=$supp/lsan.supp"
        export LSAN_OPTIONS="$lsan${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
    else
        tsan="$common:second_deadlock_stack=1"
        [[ -f $supp/tsan.supp ]] && tsan+=":suppressions=$supp/tsan.supp"
        export TSAN_OPTIONS="$tsan${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    fi
fi

rc=0
# The benchmarks are run on purpose only: ctest -L bench -V
ctest --output-on-failure -j"$(nproc)" -LE bench "$@" || rc=$?

if [[ -n $sanitizer ]] && [[ -n $(ls -A "$reports") ]]; then
    for f in "$reports"/*; do
        echo "==== sanitizer report ${f##*/}"
        cat "$f"
    done
    echo "FAIL: $(ls "$reports" | wc -l) sanitizer report(s) in $reports" >&2
    rc=1
fi
exit "$rc"
