#!/usr/bin/env bash
# Checks the rooms of the source tree against docs/ARCHITECTURE.md:
#  1. a file includes project headers only from the rooms its room may use;
#  2. the data library and proto include neither NATS nor MariaDB, and only
#     persist (and the programs) include MariaDB;
#  3. no project header includes itself through others (no include loop).
# Usage: check-layering.sh [SOURCE_DIR]   (prints every violation; exit 1 if any)
set -euo pipefail

src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$src"

# room -> the directory whose include/ibp/ holds its headers
declare -A header_dir=(
    [proto]=proto/include/ibp
    [data]=node/data/include/ibp
    [runtime]=node/runtime/include/ibp
    [monitor]=node/monitor/include/ibp
    [dns]=node/dns/include/ibp
    [daemon]=node/daemon/include/ibp
    [consensus]=consensus/include/ibp
    [persist]=persist/include/ibp
)
# room -> source directories (a file belongs to the first that prefixes it)
declare -A room_src=(
    [proto]=proto
    [data]=node/data
    [runtime]=node/runtime
    [monitor]=node/monitor
    [dns]=node/dns
    [daemon]=node/daemon
    [ibpctl]=node/ibpctl
    [consensus]=consensus
    [persist]=persist
    [deploy]=deploy/local
)
# room -> the rooms it may include (itself always)
declare -A may_use=(
    [proto]=""
    [data]="proto"
    [runtime]="proto data"
    [monitor]="proto data runtime"
    [dns]="proto data runtime"
    [consensus]="proto data runtime"
    [persist]="proto data runtime"
    [daemon]="proto data runtime monitor dns consensus"
    [ibpctl]="proto data runtime monitor dns consensus persist daemon"
    [deploy]="proto data runtime daemon"
)

# header name -> room
declare -A owner=()
for room in "${!header_dir[@]}"; do
    for h in "${header_dir[$room]}"/*.h; do
        [[ -e $h ]] || continue
        name=${h##*/}
        if [[ -n ${owner[$name]:-} ]]; then
            echo "layering: ibp/$name is defined in two rooms (${owner[$name]}, $room)"
            fail=1
        fi
        owner[$name]=$room
    done
done
owner[ibp.pb-c.h]=proto

fail=${fail:-0}
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT

for room in "${!room_src[@]}"; do
    dir=${room_src[$room]}
    allowed=" $room ${may_use[$room]} "
    while IFS= read -r -d '' file; do
        while IFS= read -r line; do
            inc=${line#*\"ibp/}
            inc=${inc%%\"*}
            r=${owner[$inc]:-}
            if [[ -z $r ]]; then
                echo "layering: $file includes ibp/$inc, which no room defines"
                fail=1
            elif [[ $allowed != *" $r "* ]]; then
                echo "layering: $file ($room) includes ibp/$inc of $r; $room may use: ${may_use[$room]:-nothing}"
                fail=1
            fi
            case $file in
            */include/ibp/*.h) echo "${file##*/} $inc" >>"$edges" ;;
            esac
        done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]+"ibp/[^"]+"' "$file" || true)
        case $room in
        proto | data)
            if grep -nE '#[[:space:]]*include[[:space:]]*<(nats/|mysql\.h|mariadb/)' "$file"; then
                echo "layering: $file ($room) includes NATS or MariaDB"
                fail=1
            fi
            ;;
        persist | ibpctl) ;;
        *)
            if grep -nE '#[[:space:]]*include[[:space:]]*<(mysql\.h|mariadb/)' "$file"; then
                echo "layering: $file ($room) includes MariaDB"
                fail=1
            fi
            ;;
        esac
    done < <(find "$dir" -name '*.[ch]' -print0)
done

# An include loop among the headers: tsort reports it.
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
    echo "layering: include loop among the headers:"
    cat "$edges.err"
    fail=1
fi
rm -f "$edges.err"

if ((fail)); then
    exit 1
fi
echo "layering: ok (${#owner[@]} headers in ${#header_dir[@]} rooms)"
