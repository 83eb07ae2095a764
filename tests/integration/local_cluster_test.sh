#!/usr/bin/env bash
# The local cluster end to end (deploy/local-cluster.sh) in a private run
# directory: nats-server, MariaDB, three monitor+consensus replicas running
# the real check modules (ssl and wss against the member doubles, tcp-site
# against demo-listeners), a dns node behind PowerDNS answering the demo's
# real DNS queries, and ibp-persist. Beta Infra's node goes syncing 12 s
# after the start for 20 s; the test waits until the outage is official (dns1
# says Beta Infra is offline for its domain, mon2 holds its wss result down,
# and dig through PowerDNS no longer answers Beta Infra for a client in the
# US), then until it is over (dig answers Beta Infra again) and recorded,
# closed, in member_events, checks that the DNS queries' hits are in
# requests, and stops everything.
#
#   local_cluster_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$1
build=$2
run=$(mktemp -d "${TMPDIR:-/tmp}/ibp-lc.XXXXXX")
export IBP_RUN_DIR=$run IBP_BUILD_DIR=$build IBP_SKIP_DEPS=1 IBP_SKIP_BUILD=1
export IBP_DEMO_PERIOD=120 IBP_DEMO_DOWN=20 IBP_DEMO_OFFSET=12 IBP_DEMO_MIN_OFFLINE_MS=5000
export IBP_DEMO_QUERY_INTERVAL=0.5
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
for name in mon1 wss-beta tls-alpha pdns queries; do
    grep -q "$name already runs" "$run/up2.out" || fail "second up restarted $name"
done

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
        '{"cmd":"official","type":"endpoint","check":"wss","member":"Beta Infra","domain":"paseo.ibp.demo","endpoint":"wss://paseo.ibp.demo","ipv6":false}')
    [[ $ans == *'"found":true'* && $ans == *'"up":false'* ]]
}
# The real modules pass where nothing fails: Gamma Stake's wss and ssl results are official and up.
official_up() { # official_up TYPE CHECK DOMAIN ENDPOINT
    local ans
    ans=$("$ctl" --socket "$IBP_MON2_SOCKET" \
        "{\"cmd\":\"official\",\"type\":\"$1\",\"check\":\"$2\",\"member\":\"Gamma Stake\",\"domain\":\"$3\",\"endpoint\":\"$4\",\"ipv6\":false}")
    [[ $ans == *'"found":true'* && $ans == *'"up":true'* ]]
}
gamma_official_up() {
    official_up endpoint wss paseo.ibp.demo wss://paseo.ibp.demo && official_up domain ssl paseo.ibp.demo ""
}
# dig through PowerDNS: the A answer for NAME to a client in SUBNET.
dig_a() {
    dig +short +tries=1 +time=2 -p "$DNS_PORT" @127.0.0.1 +subnet="$2" "$1" A 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'
}
# Beta Infra is 127.0.0.12 (deploy/local/members.json), nearest to the US client.
us_paseo() { dig_a paseo.ibp.demo 100.64.0.0/24; }
dig_beta() { [[ $(us_paseo) == 127.0.0.12 ]]; }
closed_events() {
    local n
    n=$(sql "SELECT COUNT(*) FROM member_events WHERE member_name='Beta Infra'
             AND check_type='endpoint' AND check_name='wss' AND end_time IS NOT NULL
             AND error LIKE '%syncing%'")
    ((n >= 3))
}
# The hits of the DNS queries: from clients in several countries (the ECS subnets).
hits_recorded() {
    local n c
    n=$(sql "SELECT COALESCE(SUM(hits),0) FROM requests WHERE node_id='dns1'")
    c=$(sql "SELECT COUNT(DISTINCT country_code) FROM requests WHERE node_id='dns1'
             AND country_code IN ('DE','FR','JP','US','BR')")
    ((n >= 50 && c >= 4))
}

[[ $(member_online paseo.ibp.demo "Gamma Stake") == true ]] || fail "Gamma Stake is not online"
until_true 15 "Gamma Stake's wss and ssl results are official and up" gamma_official_up
# PowerDNS answers a service host name: Gamma Stake for the client in Japan.
[[ $(dig_a paseo.ibp.demo 203.0.113.0/24) == 127.0.0.13 ]] ||
    fail "dig paseo.ibp.demo from JP: '$(dig_a paseo.ibp.demo 203.0.113.0/24)', want 127.0.0.13"
until_true 40 "the outage is official" offline
official_endpoint_down || fail "mon2 does not hold the official wss result down"
a=$(us_paseo)
[[ -n $a && $a != 127.0.0.12 ]] || fail "dig paseo.ibp.demo from the US during the outage: '$a'"
echo "local_cluster_test: during the outage dig answers $a for the US client"
[[ $(member_online paseo.ibp.demo "Gamma Stake") == true ]] || fail "Gamma Stake went offline too"
until_true 40 "Beta Infra is back online" online
until_true 5 "dig answers Beta Infra again" dig_beta
until_true 20 "the closed outage is in member_events" closed_events
until_true 20 "hits are in requests" hits_recorded
sql "SELECT member_name, SUM(hits) FROM requests GROUP BY member_name"

"$cluster" down >/dev/null 2>&1 || fail "down failed"
if "$cluster" status >/dev/null 2>&1; then fail "status after down says something runs"; fi
if pgrep -f "$run" >/dev/null; then fail "processes of the run directory survive down: $(pgrep -af "$run")"; fi
ok=1
echo "local_cluster_test: ok"
