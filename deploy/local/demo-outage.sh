#!/usr/bin/env bash
# The local cluster's demo outage (deploy/local-cluster.sh): runs one member
# double (tests/doubles, ibp-member-double) and, on a schedule, restarts it
# with --syncing for a while, so the monitors' wss check finds the member's
# node syncing ("wss: node is syncing") and its endpoints go down:
#
#   demo-outage.sh [--period S] [--down S] [--offset S] -- ibp-member-double ARGS...
#
# For --down seconds (default 40) every --period seconds (default 120), the
# first time --offset seconds after the start (default period - down), the
# double runs with --syncing; otherwise as given. Every change is printed
# with the time. A double that exits by itself is started again a second
# later. SIGTERM or SIGINT stop the double and then this script.
set -uo pipefail

period=120 down=40 offset=""
while (($#)); do
    case $1 in
    --period) period=$2; shift 2 ;;
    --down) down=$2; shift 2 ;;
    --offset) offset=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--period S] [--down S] [--offset S] -- COMMAND..." >&2; exit 2 ;;
    esac
done
(($# > 0)) || { echo "usage: $0 [--period S] [--down S] [--offset S] -- COMMAND..." >&2; exit 2; }
if ! [[ $period =~ ^[0-9]+$ && $down =~ ^[0-9]+$ ]] || ((period == 0 || down >= period)); then
    echo "demo-outage: need 0 <= --down < --period (whole seconds)" >&2
    exit 2
fi
[[ -n $offset ]] || offset=$((period - down))
[[ $offset =~ ^[0-9]+$ ]] || { echo "demo-outage: --offset must be whole seconds" >&2; exit 2; }
cmd=("$@")
child="" napper=""

say() { printf '%s demo-outage: %s\n' "$(date -u +%FT%TZ)" "$*"; }

stop_child() {
    [[ -n $child ]] || return 0
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
    child=""
}

on_signal() {
    [[ -n $napper ]] && kill "$napper" 2>/dev/null
    stop_child
    say "stopped"
    exit 0
}
trap on_signal TERM INT

run_double() { # run_double [--syncing]
    stop_child
    "${cmd[@]}" "$@" &
    child=$!
}

# nap_until T: sleeps until $SECONDS reaches T; restarts the double if it exits meanwhile.
nap_until() {
    local left
    while ((left = $1 - SECONDS, left > 0)); do
        sleep "$left" &
        napper=$!
        wait -n "$napper" "$child"
        if ! kill -0 "$child" 2>/dev/null; then
            kill "$napper" 2>/dev/null
            wait "$child" 2>/dev/null
            say "the double exited (status $?); starting it again"
            sleep 1
            run_double ${syncing:+--syncing}
        fi
        wait "$napper" 2>/dev/null
        napper=""
    done
}

say "period ${period}s, syncing for ${down}s, the first time in ${offset}s: ${cmd[*]}"
syncing=""
run_double
next=$offset
while :; do
    nap_until "$next"
    say "outage: the node is syncing for ${down}s"
    syncing=1
    run_double --syncing
    nap_until $((next + down))
    say "outage over: the node is in sync"
    syncing=""
    run_double
    next=$((next + period))
done
