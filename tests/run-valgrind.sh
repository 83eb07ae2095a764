#!/usr/bin/env bash
# Runs each unit-test program under valgrind memcheck (Debug build without
# sanitizers, build-valgrind/). Any memcheck error, or a definite or indirect
# leak, fails the run:
#
#   tests/run-valgrind.sh                 every unit test but the stress tests
#   tests/run-valgrind.sh -R usage        extra arguments select tests (ctest -N)
#   IBP_VALGRIND_STRESS=1 tests/run-valgrind.sh      the stress tests too
#
# The *_stress_test programs are skipped by default: several threads do a
# fixed amount of work (some against 1 ms flush and save intervals), valgrind
# runs one thread at a time, so they take many minutes (data_stress_test did
# not finish in 15) while what they are for, races, is ThreadSanitizer's job
# (tests/run.sh --tsan). A -E given here replaces that exclusion. Tests that
# are shell scripts (unit.example_configs) are not programs to check and are left
# out. Each program's valgrind log is kept in build-valgrind/valgrind/<test>.log.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build="$top/build-valgrind"
logs="$build/valgrind"

"$top/deploy/ensure-deps.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug >/dev/null

filter=(-L unit)
[[ ${IBP_VALGRIND_STRESS:-0} == 1 ]] || filter+=(-E _stress_test)
mapfile -t tests < <(cd "$build" && ctest -N "${filter[@]}" "$@" |
    sed -n 's/^ *Test *#[0-9]*: unit\.\([A-Za-z0-9_]*_test\)$/\1/p')
((${#tests[@]} > 0)) || {
    echo "run-valgrind: no unit tests selected" >&2
    exit 1
}
# Only the test programs (and what they depend on) are built.
cmake --build "$build" -j"$(nproc)" $(printf -- '--target %s ' "${tests[@]}")

vg=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --track-origins=yes
    --num-callers=30)
# Suppressions only for bugs in system libraries, each with its reason.
[[ -f $top/tests/sanitizers/valgrind.supp ]] &&
    vg+=(--suppressions="$top/tests/sanitizers/valgrind.supp")

rm -rf "$logs"
mkdir -p "$logs"
failed=()
cd "$build/tests/unit"
for t in "${tests[@]}"; do
    start=$SECONDS
    rc=0
    timeout 900 "${vg[@]}" --log-file="$logs/$t.log" "./$t" >"$logs/$t.out" 2>&1 || rc=$?
    if ((rc == 0)); then
        printf 'PASS  %-28s %4ds\n' "$t" $((SECONDS - start))
    else
        case $rc in
        99) why="memcheck errors" ;;
        124) why="timed out" ;;
        *) why="exit status $rc" ;;
        esac
        printf 'FAIL  %-28s %4ds  (%s)\n' "$t" $((SECONDS - start)) "$why"
        failed+=("$t")
        tail -n 40 "$logs/$t.out"
        cat "$logs/$t.log"
    fi
done

if ((${#failed[@]} > 0)); then
    echo "run-valgrind: ${#failed[@]} of ${#tests[@]} failed: ${failed[*]} (logs in $logs)" >&2
    exit 1
fi
echo "run-valgrind: ${#tests[@]} unit tests clean under memcheck"
