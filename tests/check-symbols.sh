#!/usr/bin/env bash
# Every global symbol our static libraries define starts with ibp_ (public) or
# ibp__ (internal, and the generated ibp__v1__ protobuf names): C has one
# namespace, and a program embedding libibp_data must not collide with us.
#
#   check-symbols.sh NM BUILD_DIR
set -euo pipefail
nm=${1:?usage: check-symbols.sh NM BUILD_DIR}
build=${2:?usage: check-symbols.sh NM BUILD_DIR}

bad=0 n=0
while IFS= read -r -d '' lib; do
    n=$((n + 1))
    # Lines "ADDR TYPE NAME"; undefined and archive member lines have fewer fields.
    # Names in the implementation's reserved space (__asan_*, __sancov_* of
    # sanitizer and fuzzer builds) are the compiler's, not ours.
    syms=$("$nm" -g --defined-only "$lib" 2>/dev/null | awk 'NF >= 3 { print $3 }' |
        grep -Ev '^(ibp_|__|\.)' || true)
    if [[ -n $syms ]]; then
        echo "${lib#"$build"/}: global symbols without the ibp_ prefix:"
        sed 's/^/    /' <<<"$syms"
        bad=1
    fi
done < <(find "$build" -name 'lib*.a' -type f -print0)
((n > 0)) || { echo "no lib*.a under $build" >&2; exit 1; }
((bad == 0)) && echo "ok: $n libraries, every global symbol starts with ibp_"
exit "$bad"
