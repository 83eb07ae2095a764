#!/usr/bin/env bash
# The local cluster's DNS traffic (deploy/local-cluster.sh): real DNS queries
# through the PowerDNS of <pdns-dir> (deploy/local/pdns.sh pdns_demo_queries:
# A and AAAA from a client subnet per country, sent as ECS), one host name per
# round, the names in turn, a round every <interval> seconds:
#
#   demo-queries.sh <pdns-dir> <interval> <name>...
#
# Prints every answer the first time and then each one that changed, with the
# time ("<time> <name> <country> <subnet> <type> <answer>", "-" for none), so
# its log shows members leaving and coming back. SIGTERM or SIGINT stop it.
set -uo pipefail

(($# >= 3)) || { echo "usage: $0 <pdns-dir> <interval> <name>..." >&2; exit 2; }
dir=$1 interval=$2
shift 2
names=("$@")
# shellcheck source=deploy/local/pdns.sh
source "$(dirname "${BASH_SOURCE[0]}")/pdns.sh"

napper=""
trap '[[ -n $napper ]] && kill "$napper" 2>/dev/null; exit 0' TERM INT

declare -A last
round=0
while :; do
    name=${names[round % ${#names[@]}]}
    now=$(date -u +%FT%TZ)
    while read -r cc subnet type answer; do
        key="$name $cc $subnet $type"
        if [[ ${last[$key]:-} != "$answer" ]]; then
            echo "$now $key $answer"
            last[$key]=$answer
        fi
    done < <(pdns_demo_queries "$dir" "$name" 1)
    round=$((round + 1))
    sleep "$interval" &
    napper=$!
    wait "$napper"
    napper=""
done
