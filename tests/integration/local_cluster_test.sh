#!/usr/bin/env bash
# The local cluster end to end (deploy/local-cluster.sh) in a private run
# directory: nats-server, MariaDB, three monitor+consensus replicas running
# the built-in TCP checks against demo-listeners, a dns node with hits, and
# ibp-persist. The demo's flapping port goes down 12 s after the start for
# 20 s; the test waits until the outage is official (dns1 says Beta Infra is
# offline for its domain), then until it is over and recorded, closed, in
# member_events, checks hits in requests, and stops everything.
#
#   local_cluster_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$1
build=$2
run=$(mktemp -d "${TMPDIR:-/tmp}/ibp-lc.XXXXXX")
export IBP_RUN_DIR=$run IBP_BUILD_DIR=$build IBP_SKIP_DEPS=1 IBP_SKIP_BUILD=1
export IBP_DEMO_PERIOD=120 IBP_DEMO_DOWN=20 IBP_DEMO_OFFSET=12 IBP_DEMO_MIN_OFFLINE_MS=5000
export IBP_DEMO_HITS=10
cluster="$src/deploy/local-cluster.sh"
ctl="$build/deploy/local/demo-ctl"
ok=0

finish() {
    if ((!ok)); then
        echo "local_cluster_test: FAILED; logs:" >&2
        for f in "$run"/logs/*.log; do
            [[ -f $f ]] || continue
            echo "---- $f" >&2
            tail -n 15 "$f" >&2
        done
    fi
    "$cluster" down >/dev/null 2>&1 || true
    rm -rf "$run"
}
trap finish EXIT

fail() {
    echo "local_cluster_test: $*" >&2
    exit 1
}

# until SECONDS DESCRIPTION COMMAND...: polls every 0.5 s.
until_true() {
    local secs=$1 what=$2
    shift 2
    local t0=$SECONDS
    while ((SECONDS - t0 < secs)); do
        "$@" && {
            echo "local_cluster_test: $what after $((SECONDS - t0)) s"
            return 0
        }
        sleep 0.5
    done
    fail "$what: not within ${secs} s"
}

"$cluster" up >"$run/up.out" 2>&1 || {
    cat "$run/up.out" >&2
    fail "local-cluster.sh up failed"
}
# shellcheck disable=SC1091
source "$run/cluster.env"
"$cluster" status >/dev/null || fail "status after up says something is stopped"
# A second up keeps what runs.
"$cluster" up >"$run/up2.out" 2>&1 || fail "second up failed"
grep -q "mon1 already runs" "$run/up2.out" || fail "second up restarted mon1"

sql() {
    mariadb --no-defaults -S "$MYSQL_SOCKET" -uibp -p"$(cat "$MYSQL_PASSWORD_FILE")" ibp -N -B -e "$1"
}

member_online() { # member_online DOMAIN MEMBER -> prints true/false
    local ans
    ans=$("$ctl" --socket "$IBP_DNS_SOCKET" \
        "{\"cmd\":\"member_online\",\"domain\":\"$1\",\"member\":\"$2\",\"ipv6\":false}")
    case $ans in
    *'"online":true'*) echo true ;;
    *'"online":false'*) echo false ;;
    *) echo "?" ;;
    esac
}
offline() { [[ $(member_online paseo.ibp.demo "Beta Infra") == false ]]; }
online() { [[ $(member_online paseo.ibp.demo "Beta Infra") == true ]]; }
official_endpoint_down() {
    local ans
    ans=$("$ctl" --socket "$IBP_MON2_SOCKET" \
        '{"cmd":"official","type":"endpoint","check":"tcp-endpoint","member":"Beta Infra","domain":"paseo.ibp.demo","endpoint":"wss://paseo.ibp.demo","ipv6":false}')
    [[ $ans == *'"found":true'* && $ans == *'"up":false'* ]]
}
closed_events() {
    local n
    n=$(sql "SELECT COUNT(*) FROM member_events WHERE member_name='Beta Infra'
             AND check_type='endpoint' AND check_name='tcp-endpoint' AND end_time IS NOT NULL
             AND error LIKE 'connect 127.0.0.1:%: connection refused'")
    ((n >= 3))
}
hits_recorded() {
    local n
    n=$(sql "SELECT COALESCE(SUM(hits),0) FROM requests WHERE node_id='dns1'")
    ((n >= 50))
}

online || fail "Beta Infra is not online at the start"
[[ $(member_online paseo.ibp.demo "Gamma Stake") == true ]] || fail "Gamma Stake is not online"
until_true 40 "the outage is official" offline
official_endpoint_down || fail "mon2 does not hold the official endpoint result down"
[[ $(member_online paseo.ibp.demo "Gamma Stake") == true ]] || fail "Gamma Stake went offline too"
until_true 40 "Beta Infra is back online" online
until_true 20 "the closed outage is in member_events" closed_events
until_true 20 "hits are in requests" hits_recorded
sql "SELECT member_name, SUM(hits) FROM requests GROUP BY member_name"

"$cluster" down >/dev/null 2>&1 || fail "down failed"
if "$cluster" status >/dev/null 2>&1; then fail "status after down says something runs"; fi
ok=1
echo "local_cluster_test: ok"
