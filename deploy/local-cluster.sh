#!/usr/bin/env bash
# The local cluster on loopback, for trying the system and for development.
#
#   deploy/local-cluster.sh up      install what is missing, build, start, check
#   deploy/local-cluster.sh down    stop everything `up` started (data stays in run/)
#   deploy/local-cluster.sh status  say what runs
#
# `up` brings up, under run/ in the checkout (or $IBP_RUN_DIR): nats-server
# with JetStream (run/nats), MariaDB with a data directory of its own
# (run/mariadb; no system service needed), runs `ibpctl smoke` (a signed
# message through JetStream, verified, and the schema applied to MariaDB and
# read back), and then the IBP cluster of the demo network in deploy/local/:
# keys and a roster (run/keys), three ibp-node monitor+consensus replicas
# (mon1..mon3, quorum 2 of 3) running the real check modules, one ibp-node
# dns (dns1, the PowerDNS remote backend, with test MaxMind DBs in run/geo
# when they can be made), pdns_server in front of it (run/pdns),
# ibp-persist (persist1, into the database ibp), the members' servers on
# loopback: per member an ibp-member-double --kind tls (the ssl check) and
# --kind substrate (the wss check), with certificates of a CA of their own
# (run/certs), and demo-listeners (the tcp-site check); Beta Infra's
# substrate double is restarted with --syncing for a while on a schedule
# (deploy/local/demo-outage.sh), and deploy/local/demo-queries.sh sends real
# DNS queries through PowerDNS from clients in several countries (ECS).
# Logs are in run/logs, control sockets in run/nodes/<node>/.
# nats-server requires authentication: every node has a NATS user nkey of its
# own (run/keys/<node>.nk, next to its signing key <node>.key) recorded in the
# roster, and the server's users and per-role permissions are rendered from
# the roster by `ibpctl nats-auth` (run/nats/auth.conf, DESIGN.md §13).
# ibpctl uses the admin identity (run/keys/admin.nk).
# It writes run/cluster.env (NATS_URL, IBP_NATS_NKEY_FILE, MYSQL_*,
# IBP_ROSTER, IBP_ADMIN_KEY, IBP_*_SOCKET, ...); the three ibpctl reads are
# exported, so that after `source run/cluster.env` ibpctl needs no flags. Running `up` twice is safe:
# what already runs is kept, and what an older version of this script did
# not make (nkeys, the server's authentication) is added. Everything listens
# on 127.0.0.1 only, on ports chosen free at the first start and kept
# afterwards.
#
# Environment: IBP_RUN_DIR (default <checkout>/run), IBP_BUILD_DIR (default
# <checkout>/build), IBP_DEMO_PERIOD and IBP_DEMO_DOWN (outage schedule of
# Beta Infra's node, seconds; default 120 and 40), IBP_DEMO_OFFSET (first
# outage, default period - down), IBP_DEMO_MIN_OFFLINE_MS (events.min_offline_ms,
# default 30000), IBP_DEMO_QUERY_INTERVAL (seconds between rounds of demo DNS
# queries, one host name from every client per round, A and AAAA; default 1),
# IBP_SKIP_DEPS=1 (do not run ensure-deps.sh), IBP_SKIP_BUILD=1,
# IBP_NATS_TRACE=1 (nats-server logs every protocol line, permission
# refusals included, to run/nats/nats.log).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run="${IBP_RUN_DIR:-$top/run}"
build="${IBP_BUILD_DIR:-$top/build}"
env_file="$run/cluster.env"

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

alive() { [[ -n ${1:-} && -r /proc/$1/cmdline ]] && { tr '\0' ' ' </proc/"$1"/cmdline; } 2>/dev/null | grep -qF -- "$run"; }

load_env() {
    NATS_PID="" MYSQL_PID="" NATS_PORT="" MYSQL_PORT="" DNS_PORT=""
    # shellcheck disable=SC1090
    [[ -f $env_file ]] && source "$env_file"
    return 0
}

free_port() { "$build/tests/harness/ibp-test-freeport" 1; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local secs=$1 what=$2
    shift 2
    for ((i = 0; i < secs * 20; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    die "$what did not become ready within ${secs}s"
}

start_nats() {
    mkdir -p "$run/nats"
    [[ -n $NATS_PORT ]] || NATS_PORT=$(free_port)
    cat >"$run/nats/nats.conf" <<CONF
# Local cluster: one JetStream server on loopback (deploy/local-cluster.sh).
listen: 127.0.0.1:$NATS_PORT
server_name: ibp-local
max_payload: 8MB
max_control_line: 16KB
log_file: "$run/nats/nats.log"
${IBP_NATS_TRACE:+trace: true}
jetstream {
  store_dir: "$run/nats/js"
  max_file_store: 2GB
  # OFFICIAL is a memory stream reserving nats.official_max_bytes (128 MiB).
  max_memory_store: 256MB
}
# Users (one nkey per node) and their permissions: ibpctl nats-auth --roster.
include ./auth.conf
CONF
    setsid nats-server -c "$run/nats/nats.conf" </dev/null >>"$run/nats/nats.out" 2>&1 &
    NATS_PID=$!
    wait_for 30 "nats-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT"
    log "nats-server ready at nats://127.0.0.1:$NATS_PORT (pid $NATS_PID)"
}

start_mariadb() {
    local user_arg=() sock="$run/mariadb/mysqld.sock"
    [[ $(id -u) == 0 ]] && user_arg=(--user=root)
    mkdir -p "$run/mariadb"
    ((${#sock} < 100)) || die "checkout path too long for a unix socket ($sock)"
    if [[ ! -d $run/mariadb/db/mysql ]]; then
        log "creating the MariaDB data directory in $run/mariadb/db"
        mariadb-install-db --no-defaults --datadir="$run/mariadb/db" --skip-test-db \
            --auth-root-authentication-method=socket --user="$(id -un)" \
            >"$run/mariadb/install.log" 2>&1 || die "mariadb-install-db failed: see $run/mariadb/install.log"
    fi
    [[ -n $MYSQL_PORT ]] || MYSQL_PORT=$(free_port)
    setsid mariadbd --no-defaults --datadir="$run/mariadb/db" --socket="$sock" \
        --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-error="$run/mariadb/mysqld.log" --pid-file="$run/mariadb/mysqld.pid" \
        --innodb-buffer-pool-size=64M "${user_arg[@]}" </dev/null >>"$run/mariadb/mysqld.out" 2>&1 &
    MYSQL_PID=$!
    # The administrative account is the OS user running this script (socket auth).
    local admin
    admin=$(id -un)
    wait_for 60 "mariadbd" mariadb-admin --no-defaults --socket="$sock" -u"$admin" ping
    local pwfile="$run/mariadb/ibp.password"
    if [[ ! -s $pwfile ]]; then
        (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pwfile")
    fi
    mariadb --no-defaults --socket="$sock" -u"$admin" --batch -e "
        CREATE USER IF NOT EXISTS 'ibp'@'127.0.0.1' IDENTIFIED BY '$(cat "$pwfile")';
        CREATE USER IF NOT EXISTS 'ibp'@'localhost' IDENTIFIED BY '$(cat "$pwfile")';
        CREATE DATABASE IF NOT EXISTS ibp;
        -- ibp, and the databases ibp-persist replay rebuilds into (ibp_rebuilt, ...)
        GRANT ALL PRIVILEGES ON \`ibp%\`.* TO 'ibp'@'127.0.0.1';
        GRANT ALL PRIVILEGES ON \`ibp%\`.* TO 'ibp'@'localhost';" || die "could not create the ibp user"
    log "mariadb ready at 127.0.0.1:$MYSQL_PORT and $sock (pid $MYSQL_PID)"
}

# ---- the IBP cluster -------------------------------------------------------

bin_node="$build/node/daemon/ibp-node"
bin_persist="$build/persist/ibp-persist"
bin_ctl="$build/node/ibpctl/ibpctl"
bin_listeners="$build/deploy/local/demo-listeners"
bin_democtl="$build/deploy/local/demo-ctl"
bin_double="$build/tests/doubles/ibp-member-double"
replicas=(mon1 mon2 mon3)
# The demo's members in the order of their ports in deploy/local/checks.json
# (471<kind><n>: kind 0 tcp-site, 1 ssl, 2 wss; n 1..4 in this order).
demo_members=(alpha beta gamma delta)
# Daemons in start order; pids in run/pids/<name>.pid. tls-<member> and
# wss-<member> are the member doubles; wss-beta is demo-outage.sh running one.
daemons=(listeners tls-alpha tls-beta tls-gamma tls-delta wss-alpha wss-beta wss-gamma wss-delta
    mon1 mon2 mon3 dns1 pdns persist1 queries)
# What older versions of this script started (stopped by down, never started).
legacy_daemons=(hits)

# shellcheck source=deploy/local/pdns.sh
source "$top/deploy/local/pdns.sh"

pid_of() { [[ -s $run/pids/$1.pid ]] && cat "$run/pids/$1.pid" || true; }

# Keys and the roster, once (a new roster would orphan the nodes' sequence files):
# per node a signing key (<id>.key) and a NATS user nkey (<id>.nk), a key pair of
# its own; a run dir of an older version gets the nkeys it lacks.
make_keys() {
    mkdir -p "$run/keys"
    chmod 700 "$run/keys"
    local spec id roles
    for spec in mon1:monitor,consensus mon2:monitor,consensus mon3:monitor,consensus \
        dns1:dns persist1:persist admin:admin; do
        id=${spec%%:*} roles=${spec#*:}
        if [[ ! -f $run/keys/$id.key ]]; then
            "$bin_ctl" keygen --out "$run/keys/$id.key" --nkey-out "$run/keys/$id.nk" \
                --node "$id" --roles "$roles" --roster "$run/keys/roster.json" >/dev/null ||
                die "ibpctl keygen $id failed"
        elif [[ ! -f $run/keys/$id.nk ]]; then
            "$bin_ctl" keygen --nkey-out "$run/keys/$id.nk" --node "$id" \
                --roster "$run/keys/roster.json" >/dev/null || die "ibpctl keygen --nkey-out $id failed"
            log "$id: new NATS nkey $run/keys/$id.nk"
        fi
    done
    log "keys and roster in $run/keys (mon1..mon3 monitor+consensus, dns1, persist1, admin)"
}

# The server's users and permissions from the roster (run/nats/auth.conf); a
# running server re-reads it when it changed.
render_auth() {
    mkdir -p "$run/nats"
    "$bin_ctl" nats-auth --roster "$run/keys/roster.json" --admin-id admin \
        --out "$run/nats/auth.conf.new" || die "ibpctl nats-auth failed"
    if cmp -s "$run/nats/auth.conf.new" "$run/nats/auth.conf"; then
        rm -f "$run/nats/auth.conf.new"
        return 0
    fi
    mv -f "$run/nats/auth.conf.new" "$run/nats/auth.conf"
    log "nats-server users and permissions in $run/nats/auth.conf"
    if alive "$NATS_PID"; then
        kill -HUP "$NATS_PID" && log "nats-server reloads its users (pid $NATS_PID)"
    fi
}

# The demo network, with the template's loopback ports replaced by free ones
# (once): run/network/checks.json, and run/network/ports.env with the ports
# per kind of server (DEMO_TCP_PORTS, DEMO_TLS_PORTS, DEMO_WSS_PORTS, in the
# order of demo_members) and DEMO_FLAP_PORT (Beta Infra's wss port, whose
# node goes syncing on a schedule).
make_network() {
    mkdir -p "$run/network"
    cp "$top/deploy/local/members.json" "$top/deploy/local/services.json" \
        "$top/deploy/local/static-records.json" "$run/network/"
    if [[ -s $run/network/ports.env ]] && ! grep -q '^DEMO_WSS_PORTS=' "$run/network/ports.env"; then
        # An older version's demo: TCP checks only, against demo-listeners.
        log "the demo network of an older version: new checks and servers, its daemons restart"
        stop_cluster >/dev/null
        rm -f "$run/network/ports.env"
    fi
    if [[ ! -s $run/network/ports.env ]]; then
        local tmpl_ports free i p expr="" tcp=() tls=() wss=()
        mapfile -t tmpl_ports < <(grep -o '471[0-2][1-4]' "$top/deploy/local/checks.json" | sort -u)
        ((${#tmpl_ports[@]} == 12)) || die "deploy/local/checks.json: expected ports 4710n, 4711n, 4712n (n 1..4)"
        mapfile -t free < <("$build/tests/harness/ibp-test-freeport" "${#tmpl_ports[@]}")
        ((${#free[@]} == ${#tmpl_ports[@]})) || die "could not get ${#tmpl_ports[@]} free ports"
        for i in "${!tmpl_ports[@]}"; do
            p=${tmpl_ports[$i]}
            expr+="s/\\b$p\\b/${free[$i]}/g;"
            case ${p:3:1} in
            0) tcp[${p:4:1} - 1]=${free[$i]} ;;
            1) tls[${p:4:1} - 1]=${free[$i]} ;;
            2) wss[${p:4:1} - 1]=${free[$i]} ;;
            esac
        done
        sed -e "$expr" "$top/deploy/local/checks.json" >"$run/network/checks.json"
        printf 'DEMO_TCP_PORTS=%s\nDEMO_TLS_PORTS=%s\nDEMO_WSS_PORTS=%s\nDEMO_FLAP_PORT=%s\n' \
            "$(IFS=,; echo "${tcp[*]}")" "$(IFS=,; echo "${tls[*]}")" "$(IFS=,; echo "${wss[*]}")" \
            "${wss[1]}" >"$run/network/ports.env"
    fi
    # shellcheck disable=SC1091
    source "$run/network/ports.env"
}

# The host names of the demo's services (their RPC URLs).
demo_names() {
    grep -o 'wss://[^/"]*' "$run/network/services.json" | sed 's|^wss://||' | sort -u
}

# A CA and certificates for the demo's host names (tests/doubles/make-certs.sh),
# for the member doubles; the monitors trust the CA (checks.ca_file). The leaf
# certificates are valid 30 days: a week before that, new ones are made and the
# doubles and monitors restart with them.
make_certs() {
    local names
    if [[ -s $run/certs/ok.pem ]]; then
        openssl x509 -checkend $((7 * 86400)) -noout -in "$run/certs/ok.pem" >/dev/null 2>&1 && return 0
        log "the demo's certificates expire within a week: new ones; the doubles and monitors restart"
        stop_names tls-alpha tls-beta tls-gamma tls-delta wss-alpha wss-beta wss-gamma wss-delta \
            mon1 mon2 mon3 >/dev/null
    fi
    mapfile -t names < <(demo_names)
    bash "$top/tests/doubles/make-certs.sh" "$run/certs" "${names[@]}" ||
        die "tests/doubles/make-certs.sh failed"
    log "a CA and certificates for ${names[*]} in $run/certs"
}

# MaxMind DBs for dns1, once: the City DB of deploy/local/pdns.sh (client
# networks of DE, FR, JP, US, BR with locations, so the nearest member can be
# told) and the small ASN DB of tests/data/mmdb/make-test-mmdb.pl; none if
# they cannot be made.
make_geo() {
    GEO_CITY="" GEO_ASN=""
    mkdir -p "$run/geo"
    if [[ ! -s $run/geo/test-asn.mmdb ]]; then
        if [[ -s $build/tests/data/mmdb/test-asn.mmdb ]]; then
            cp "$build/tests/data/mmdb/test-asn.mmdb" "$run/geo/"
        else
            perl "$top/tests/data/mmdb/make-test-mmdb.pl" "$run/geo" >>"$run/geo/make.log" 2>&1 || true
        fi
    fi
    [[ -s $run/geo/test-asn.mmdb ]] && GEO_ASN="$run/geo/test-asn.mmdb"
    if ! GEO_CITY=$(pdns_city_db "$build" "$run/geo" 2>>"$run/geo/make.log"); then
        GEO_CITY=""
        log "no MaxMind City DB (see $run/geo/make.log): dns1 cannot locate clients"
    fi
}

write_node_config() { # write_node_config ID ROLES
    local id=$1 roles=$2 wd="$run/nodes/$1" role="" geo=""
    mkdir -p "$wd"
    if [[ $roles == dns ]]; then
        # The PowerDNS remote backend: pdns_server (run/pdns) connects to its unix socket.
        role=" \"dns\": {\"unix_socket\": \"$wd/dns-backend.sock\",
         \"static_records_file\": \"$run/network/static-records.json\"},"
        [[ -n $GEO_CITY ]] && geo+="\"city_db\": \"$GEO_CITY\""
        [[ -n $GEO_ASN ]] && geo+="${geo:+, }\"asn_db\": \"$GEO_ASN\""
        [[ -n $geo ]] && role+=$'\n'" \"maxmind\": {$geo},"
    else
        # The ssl and wss checks trust the CA of the member doubles.
        role=" \"checks\": {\"ca_file\": \"$run/certs/ca.pem\"},"
    fi
    cat >"$wd/node.json" <<CONF
{"node": {"id": "$id", "key_file": "$run/keys/$id.key", "roster_file": "$run/keys/roster.json",
          "work_dir": "$wd", "roles": "$roles"},
 "nats": {"servers": ["nats://127.0.0.1:$NATS_PORT"], "nkey_seed_file": "$run/keys/$id.nk"},
$role
 "network": {"members_file": "$run/network/members.json",
             "services_file": "$run/network/services.json",
             "checks_file": "$run/network/checks.json"},
 "intervals": {"publish_ms": 1000, "refresh_ms": 15000, "heartbeat_ms": 2000,
               "usage_flush_ms": 5000, "cache_save_ms": 30000},
 "consensus": {"quorum_min": 2, "active_window_ms": 60000},
 "events": {"min_offline_ms": ${IBP_DEMO_MIN_OFFLINE_MS:-30000}},
 "log": {"level": "info"}}
CONF
}

write_persist_config() {
    local wd="$run/nodes/persist1"
    mkdir -p "$wd"
    cat >"$wd/persist.json" <<CONF
{"node": {"id": "persist1", "key_file": "$run/keys/persist1.key",
          "roster_file": "$run/keys/roster.json", "work_dir": "$wd"},
 "nats": {"servers": ["nats://127.0.0.1:$NATS_PORT"],
          "nkey_seed_file": "$run/keys/persist1.nk"},
 "mysql": {"host": "127.0.0.1", "port": $MYSQL_PORT, "user": "ibp",
           "password_file": "$run/mariadb/ibp.password", "database": "ibp"},
 "events": {"min_offline_ms": ${IBP_DEMO_MIN_OFFLINE_MS:-30000}},
 "log": {"level": "info"}}
CONF
}

# launch NAME COMMAND...: background, own session, log in run/logs/NAME.log, pid recorded.
launch() {
    local name=$1
    shift
    # Where this start's output begins (wait_log looks only at it).
    stat -c %s "$run/logs/$name.log" >"$run/pids/$name.logstart" 2>/dev/null || echo 0 >"$run/pids/$name.logstart"
    setsid "$@" </dev/null >>"$run/logs/$name.log" 2>&1 &
    echo $! >"$run/pids/$name.pid"
}

fail_with_log() { # fail_with_log NAME WHAT [LOG]
    local file=${3:-$run/logs/$1.log}
    log "error: $2; the end of $file:"
    tail -n 25 "$file" >&2 || true
    exit 1
}

wait_socket() { # wait_socket NAME: the node's control socket answers status
    local sock="$run/nodes/$1/control.sock" pid
    pid=$(pid_of "$1")
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || fail_with_log "$1" "$1 exited while starting"
        "$bin_democtl" --socket "$sock" '{"cmd":"status"}' >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail_with_log "$1" "$1 did not answer on $sock within 30 s"
}

wait_log() { # wait_log NAME PATTERN: the output of this start has a line matching PATTERN
    local pid start
    pid=$(pid_of "$1")
    start=$(cat "$run/pids/$1.logstart" 2>/dev/null || echo 0)
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || fail_with_log "$1" "$1 exited while starting"
        tail -c +$((start + 1)) "$run/logs/$1.log" 2>/dev/null | grep -q -- "$2" && return 0
        sleep 0.1
    done
    fail_with_log "$1" "$1 was not ready within 30 s"
}

# demo_port KIND MEMBER: the port of a member's server (KIND TCP, TLS or WSS).
demo_port() {
    local list ports i
    list="DEMO_$1_PORTS"
    IFS=, read -ra ports <<<"${!list}"
    for i in "${!demo_members[@]}"; do
        [[ ${demo_members[$i]} == "$2" ]] && echo "${ports[$i]}" && return 0
    done
    die "no $1 port for $2"
}

start_pdns() {
    local sock="$run/nodes/dns1/dns-backend.sock" i
    [[ -n $DNS_PORT ]] || DNS_PORT=$(free_port)
    ((${#sock} < 100)) || die "run directory path too long for a unix socket ($sock)"
    for ((i = 0; i < 300; i++)); do
        [[ -S $sock ]] && break
        sleep 0.1
    done
    [[ -S $sock ]] || fail_with_log dns1 "dns1 has no backend socket $sock"
    pdns_render "$run/pdns" "$DNS_PORT" "unix:path=$sock" || die "deploy/local/pdns.sh render failed"
    # In a session of its own, like the other daemons; pdns_start waits until it answers.
    # shellcheck disable=SC2016 # expanded by that bash
    setsid -w bash -c 'source "$1" && pdns_start "$2"' pdns "$top/deploy/local/pdns.sh" "$run/pdns" \
        </dev/null >>"$run/logs/pdns.log" 2>&1 ||
        fail_with_log pdns "pdns_server did not start" "$run/pdns/pdns.log"
    cp "$run/pdns/pdns.pid" "$run/pids/pdns.pid"
}

start_daemon() { # start_daemon NAME
    local name=$1 pid double
    pid=$(pid_of "$name")
    if alive "$pid"; then
        log "$name already runs (pid $pid)"
        return 0
    fi
    case $name in
    listeners)
        launch listeners "$bin_listeners" --name "$run" --port "$DEMO_TCP_PORTS"
        wait_log listeners "listening on"
        ;;
    tls-*)
        launch "$name" "$bin_double" --kind tls --cert "$run/certs/ok.pem" --key "$run/certs/ok.key" \
            --listen 127.0.0.1 --port "$(demo_port TLS "${name#tls-}")"
        wait_log "$name" "^PORT "
        ;;
    wss-*)
        double=("$bin_double" --kind substrate --cert "$run/certs/ok.pem" --key "$run/certs/ok.key"
            --listen 127.0.0.1 --port "$(demo_port WSS "${name#wss-}")" --chain "IBP Demo" --peers 12)
        if [[ $name == wss-beta ]]; then
            # The demo outage: Beta Infra's node is syncing for a while every period.
            launch "$name" "$top/deploy/local/demo-outage.sh" --period "${IBP_DEMO_PERIOD:-120}" \
                --down "${IBP_DEMO_DOWN:-40}" ${IBP_DEMO_OFFSET:+--offset "$IBP_DEMO_OFFSET"} -- "${double[@]}"
        else
            launch "$name" "${double[@]}"
        fi
        wait_log "$name" "^PORT "
        ;;
    mon* | dns*)
        launch "$name" "$bin_node" --config "$run/nodes/$name/node.json"
        wait_socket "$name"
        ;;
    pdns)
        start_pdns
        log "pdns started (pid $(pid_of pdns), port $DNS_PORT, log $run/pdns/pdns.log)"
        return 0
        ;;
    persist1)
        launch persist1 "$bin_persist" --config "$run/nodes/persist1/persist.json" \
            --sql-dir "$top/deploy/sql"
        wait_log persist1 "running node=persist1"
        ;;
    queries)
        local names
        mapfile -t names < <(demo_names)
        launch queries "$top/deploy/local/demo-queries.sh" "$run/pdns" \
            "${IBP_DEMO_QUERY_INTERVAL:-1}" "${names[@]}"
        ;;
    esac
    log "$name started (pid $(pid_of "$name"), log $run/logs/$name.log)"
}

start_cluster() {
    mkdir -p "$run/logs" "$run/pids" "$run/nodes"
    make_network
    make_certs
    make_geo
    local id
    for id in "${replicas[@]}"; do write_node_config "$id" monitor,consensus; done
    write_node_config dns1 dns
    write_persist_config
    for id in "${daemons[@]}"; do start_daemon "$id"; done
}

stop_names() { # stop_names NAME...: stops those that run (TERM, then KILL); prints how many
    local name pid pids=()
    for name in "$@"; do
        pid=$(pid_of "$name")
        if alive "$pid"; then
            kill -TERM "$pid"
            pids+=("$pid")
        fi
    done
    for ((i = 0; i < 150; i++)); do
        local any=0
        for pid in "${pids[@]}"; do alive "$pid" && any=1; done
        ((any)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do alive "$pid" && kill -KILL "$pid"; done
    echo "${#pids[@]}"
}

stop_cluster() { # stops the cluster's processes (reverse order); prints how many
    local names=() n
    for ((n = ${#daemons[@]} - 1; n >= 0; n--)); do names+=("${daemons[$n]}"); done
    stop_names "${names[@]}" "${legacy_daemons[@]}"
}

write_env() {
    local tmp="$env_file.tmp"
    cat >"$tmp" <<ENV
# Written by deploy/local-cluster.sh; source it from a shell. ibpctl reads the
# exported three: the server, the admin's NATS identity, the roster.
export NATS_URL=nats://127.0.0.1:$NATS_PORT
export IBP_NATS_NKEY_FILE=$run/keys/admin.nk
NATS_PORT=$NATS_PORT
NATS_PID=$NATS_PID
MYSQL_HOST=127.0.0.1
MYSQL_PORT=$MYSQL_PORT
MYSQL_SOCKET=$run/mariadb/mysqld.sock
MYSQL_USER=ibp
MYSQL_PASSWORD_FILE=$run/mariadb/ibp.password
MYSQL_DATABASE=ibp
MYSQL_PID=$MYSQL_PID
IBP_RUN_DIR=$run
export IBP_ROSTER=$run/keys/roster.json
IBP_ADMIN_KEY=$run/keys/admin.key
IBP_MON1_SOCKET=$run/nodes/mon1/control.sock
IBP_MON2_SOCKET=$run/nodes/mon2/control.sock
IBP_MON3_SOCKET=$run/nodes/mon3/control.sock
IBP_DNS_SOCKET=$run/nodes/dns1/control.sock
IBP_LOG_DIR=$run/logs
DNS_PORT=$DNS_PORT
IBP_PDNS_DIR=$run/pdns
IBP_DNS_BACKEND_SOCKET=$run/nodes/dns1/dns-backend.sock
IBP_DEMO_FLAP_PORT=${DEMO_FLAP_PORT:-}
ENV
    mv -f "$tmp" "$env_file"
}

cmd_up() {
    if [[ -z ${IBP_SKIP_DEPS:-} ]]; then "$top/deploy/ensure-deps.sh"; fi
    if [[ -z ${IBP_SKIP_BUILD:-} ]]; then
        log "building in $build"
        cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
        cmake --build "$build" -j"$(nproc)" --target ibpctl ibp-test-freeport ibp-node ibp-persist \
            demo-listeners demo-ctl ibp-member-double >/dev/null
    fi
    mkdir -p "$run"
    chmod 700 "$run"
    load_env
    make_keys
    if alive "$NATS_PID" && ! grep -qF 'include ./auth.conf' "$run/nats/nats.conf" 2>/dev/null; then
        # Started by an older version of this script, without authentication:
        # its daemons connect without an identity, so all go and come back.
        log "nats-server (pid $NATS_PID) runs without authentication: restarting the cluster with it"
        stop_cluster >/dev/null
        kill -TERM "$NATS_PID"
        for ((i = 0; i < 100; i++)); do alive "$NATS_PID" || break; sleep 0.1; done
        alive "$NATS_PID" && kill -KILL "$NATS_PID"
    fi
    render_auth
    if alive "$NATS_PID"; then log "nats-server already runs (pid $NATS_PID)"; else start_nats; fi
    write_env
    if alive "$MYSQL_PID"; then log "mariadbd already runs (pid $MYSQL_PID)"; else start_mariadb; fi
    write_env

    log "smoke check: signed message through JetStream, schema into MariaDB"
    mkdir -p "$run/smoke"
    IBP_MYSQL_PASSWORD=$(cat "$run/mariadb/ibp.password") "$bin_ctl" smoke \
        --nats "nats://127.0.0.1:$NATS_PORT" --nats-nkey "$run/keys/admin.nk" --mysql-host 127.0.0.1 --mysql-port "$MYSQL_PORT" \
        --mysql-user ibp --database ibp --work-dir "$run/smoke"
    start_cluster
    write_env
    local today tomorrow r
    today=$(date -u +%F)
    tomorrow=$(date -u -d tomorrow +%F 2>/dev/null || echo "$today")
    r=${run/#$top\//}
    cat <<DONE

The local cluster runs on 127.0.0.1:
  NATS      nats://127.0.0.1:$NATS_PORT   (JetStream data in $r/nats/js; users and
            permissions per node in $r/nats/auth.conf; NATS identities $r/keys/<node>.nk)
  MariaDB   127.0.0.1:$MYSQL_PORT, socket $r/mariadb/mysqld.sock, database ibp,
            user ibp, password in $r/mariadb/ibp.password
  Nodes     mon1 mon2 mon3 (monitor+consensus), dns1 (dns), persist1 (ibp-persist);
            configs and control sockets in $r/nodes/<node>/, logs in $r/logs/
  DNS       PowerDNS at 127.0.0.1:$DNS_PORT (UDP and TCP) with dns1 as its remote backend
            ($r/pdns/pdns.conf, log $r/pdns/pdns.log); zones ibp.demo and dotters.demo
  Demo      members and services of deploy/local/ ($r/network/); checks: tcp-site against
            demo-listeners, ssl against an ibp-member-double --kind tls per member, wss
            against one --kind substrate per member (CA in $r/certs); Beta Infra's node is
            syncing ${IBP_DEMO_DOWN:-40} s every ${IBP_DEMO_PERIOD:-120} s ($r/logs/wss-beta.log); DNS queries through
            PowerDNS from clients in DE, FR, JP, US, BR (answers as they change: $r/logs/queries.log)
  Settings  $r/cluster.env

Look around:
  source $r/cluster.env     (NATS_URL, and IBP_NATS_NKEY_FILE: ibpctl acts as admin)
  $(pdns_dig_line "$run/pdns" paseo.ibp.demo 100.64.0.0/24)   (a client in the US: Beta Infra, 127.0.0.12,
            while its node is in sync; 198.51.100.0/24 is in FR, 203.0.113.0/24 in JP)
  $bin_ctl status --member 'Beta Infra'
  $bin_ctl watch
  $bin_ctl snapshot --roster \$IBP_ROSTER
  $bin_ctl events --member 'Beta Infra' --start $today --end $tomorrow
  $bin_ctl usage --start $today --end $today --by member
  $bin_democtl --socket \$IBP_MON1_SOCKET '{"cmd":"status"}'
  $bin_democtl --socket \$IBP_DNS_SOCKET '{"cmd":"member_online","domain":"polkadot.ibp.demo","member":"Beta Infra"}'
  mariadb --no-defaults -h127.0.0.1 -P\$MYSQL_PORT -uibp -p\$(cat \$MYSQL_PASSWORD_FILE) ibp \\
      -e 'SELECT * FROM member_events ORDER BY id DESC LIMIT 10; SELECT COUNT(*), SUM(hits) FROM requests'
  $bin_ctl observe --help    (inject an observation into a monitor: --socket \$IBP_MON1_SOCKET)

Stop it:  deploy/local-cluster.sh down
DONE
}

cmd_down() {
    load_env
    local pid stopped=0 n
    n=$(stop_cluster)
    ((n > 0)) && stopped=1
    for pid in "$NATS_PID" "$MYSQL_PID"; do
        if alive "$pid"; then
            kill -TERM "$pid"
            stopped=1
        fi
    done
    for ((i = 0; i < 200; i++)); do
        alive "$NATS_PID" || alive "$MYSQL_PID" || break
        sleep 0.1
    done
    for pid in "$NATS_PID" "$MYSQL_PID"; do
        alive "$pid" && kill -KILL "$pid"
    done
    ((stopped)) && log "stopped (data kept in $run; remove it to start afresh)" || log "nothing was running"
}

cmd_status() {
    load_env
    local rc=0 name pid
    if alive "$NATS_PID"; then echo "nats-server: running (pid $NATS_PID, nats://127.0.0.1:$NATS_PORT)"; else echo "nats-server: stopped"; rc=3; fi
    if alive "$MYSQL_PID"; then echo "mariadbd: running (pid $MYSQL_PID, 127.0.0.1:$MYSQL_PORT)"; else echo "mariadbd: stopped"; rc=3; fi
    for name in "${daemons[@]}"; do
        pid=$(pid_of "$name")
        if ! alive "$pid"; then
            echo "$name: stopped"
            rc=3
        elif [[ $name == pdns ]]; then
            echo "$name: running (pid $pid, pdns_server on 127.0.0.1:$DNS_PORT, log $run/pdns/pdns.log)"
        else
            echo "$name: running (pid $pid, log $run/logs/$name.log)"
        fi
    done
    return $rc
}

case ${1:-up} in
up | start) cmd_up ;;
down | stop) cmd_down ;;
status) cmd_status ;;
-h | --help | help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//' ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
