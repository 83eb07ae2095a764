#!/bin/sh
# Runs one libFuzzer harness over a fresh copy of its seeds (ctest fuzz.<name>
# with IBP_FUZZ=ON):
#     run-fuzzer.sh WORK_DIR ARTIFACT_DIR SEED... -- FUZZER [FLAGS...]
# Each SEED (a file, or a directory whose files are taken) is copied into
# WORK_DIR, which is emptied first; the source corpus is never written.
# libFuzzer gets WORK_DIR as its corpus and writes crash inputs under
# ARTIFACT_DIR.
set -eu
work=$1
artifacts=$2
shift 2
rm -rf "$work"
mkdir -p "$work" "$artifacts" "${TMPDIR:-/tmp}"
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    if [ -d "$1" ]; then
        find "$1" -maxdepth 1 -type f -exec cp {} "$work"/ \;
    elif [ -f "$1" ]; then
        cp "$1" "$work"/
    fi
    shift
done
[ "$#" -gt 0 ] && shift
fuzzer=$1
shift
exec "$fuzzer" "$@" -artifact_prefix="$artifacts/" "$work"
