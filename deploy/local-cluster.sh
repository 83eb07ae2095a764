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
# (mon1..mon3, quorum 2 of 3), one ibp-node dns (dns1, with test MaxMind DBs
# in run/geo when they can be made), ibp-persist (persist1, into the database
# ibp), demo-listeners (the members' servers on loopback; one member's
# endpoint port goes down for a while on a schedule) and demo-ctl sending DNS
# hits to dns1. Logs are in run/logs, control sockets in run/nodes/<node>/.
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
# <checkout>/build), IBP_DEMO_PERIOD and IBP_DEMO_DOWN (outage schedule of the
# flapping port, seconds; default 120 and 40), IBP_DEMO_OFFSET (first outage,
# default period - down), IBP_DEMO_MIN_OFFLINE_MS (events.min_offline_ms,
# default 30000), IBP_DEMO_HITS (hits per second, default 20),
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
    NATS_PID="" MYSQL_PID="" NATS_PORT="" MYSQL_PORT=""
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
log_file: "$run/nats/nats.log"
${IBP_NATS_TRACE:+trace: true}
jetstream {
  store_dir: "$run/nats/js"
  max_file_store: 2GB
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
        GRANT ALL PRIVILEGES ON ibp.* TO 'ibp'@'127.0.0.1';
        GRANT ALL PRIVILEGES ON ibp.* TO 'ibp'@'localhost';" || die "could not create the ibp user"
    log "mariadb ready at 127.0.0.1:$MYSQL_PORT and $sock (pid $MYSQL_PID)"
}

# ---- the IBP cluster -------------------------------------------------------

bin_node="$build/node/daemon/ibp-node"
bin_persist="$build/persist/ibp-persist"
bin_ctl="$build/node/ibpctl/ibpctl"
bin_listeners="$build/deploy/local/demo-listeners"
bin_democtl="$build/deploy/local/demo-ctl"
replicas=(mon1 mon2 mon3)
# Daemons in start order; pids in run/pids/<name>.pid.
daemons=(listeners mon1 mon2 mon3 dns1 persist1 hits)

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

# The demo network, with the template's loopback ports replaced by free ones (once).
make_network() {
    mkdir -p "$run/network"
    cp "$top/deploy/local/members.json" "$top/deploy/local/services.json" "$run/network/"
    if [[ ! -s $run/network/ports.env ]]; then
        local tmpl_ports free i expr=""
        mapfile -t tmpl_ports < <(grep -o '471[0-9][0-9]' "$top/deploy/local/checks.json" | sort -u)
        mapfile -t free < <("$build/tests/harness/ibp-test-freeport" "${#tmpl_ports[@]}")
        ((${#free[@]} == ${#tmpl_ports[@]})) || die "could not get ${#tmpl_ports[@]} free ports"
        for i in "${!tmpl_ports[@]}"; do
            expr+="s/\\b${tmpl_ports[$i]}\\b/${free[$i]}/g;"
        done
        sed -e "$expr" "$top/deploy/local/checks.json" >"$run/network/checks.json"
        local all flap=""
        all=$(IFS=,; echo "${free[*]}")
        # Beta Infra's endpoint port (47122 in the template) flaps.
        for i in "${!tmpl_ports[@]}"; do
            [[ ${tmpl_ports[$i]} == 47122 ]] && flap=${free[$i]}
        done
        [[ -n $flap ]] || die "deploy/local/checks.json has no port 47122 (Beta Infra's endpoint)"
        printf 'DEMO_PORTS=%s\nDEMO_FLAP_PORT=%s\n' "$all" "$flap" >"$run/network/ports.env"
    fi
    # shellcheck disable=SC1091
    source "$run/network/ports.env"
}

# Small MaxMind City and ASN DBs (tests/data/mmdb/make-test-mmdb.pl), once; none if that fails.
make_geo() {
    GEO_CITY="" GEO_ASN=""
    if [[ ! -s $run/geo/test-city.mmdb ]]; then
        mkdir -p "$run/geo"
        if [[ -s $build/tests/data/mmdb/test-city.mmdb ]]; then
            cp "$build/tests/data/mmdb/test-city.mmdb" "$build/tests/data/mmdb/test-asn.mmdb" "$run/geo/"
        elif ! perl "$top/tests/data/mmdb/make-test-mmdb.pl" "$run/geo" >"$run/geo/make.log" 2>&1; then
            log "no MaxMind test DBs (see $run/geo/make.log): dns1 runs without geo"
            return 0
        fi
    fi
    GEO_CITY="$run/geo/test-city.mmdb" GEO_ASN="$run/geo/test-asn.mmdb"
}

write_node_config() { # write_node_config ID ROLES
    local id=$1 roles=$2 wd="$run/nodes/$1" geo=""
    mkdir -p "$wd"
    if [[ $roles == dns && -n $GEO_CITY ]]; then
        geo=" \"maxmind\": {\"city_db\": \"$GEO_CITY\", \"asn_db\": \"$GEO_ASN\"},"
    fi
    cat >"$wd/node.json" <<CONF
{"node": {"id": "$id", "key_file": "$run/keys/$id.key", "roster_file": "$run/keys/roster.json",
          "work_dir": "$wd", "roles": "$roles"},
 "nats": {"servers": ["nats://127.0.0.1:$NATS_PORT"], "nkey_seed_file": "$run/keys/$id.nk"},
$geo
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
    setsid "$@" </dev/null >>"$run/logs/$name.log" 2>&1 &
    echo $! >"$run/pids/$name.pid"
}

fail_with_log() { # fail_with_log NAME WHAT
    log "error: $2; the end of $run/logs/$1.log:"
    tail -n 25 "$run/logs/$1.log" >&2 || true
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

wait_log() { # wait_log NAME PATTERN
    local pid
    pid=$(pid_of "$1")
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || fail_with_log "$1" "$1 exited while starting"
        grep -q -- "$2" "$run/logs/$1.log" 2>/dev/null && return 0
        sleep 0.1
    done
    fail_with_log "$1" "$1 was not ready within 30 s"
}

start_daemon() { # start_daemon NAME
    local name=$1 pid
    pid=$(pid_of "$name")
    if alive "$pid"; then
        log "$name already runs (pid $pid)"
        return 0
    fi
    case $name in
    listeners)
        launch listeners "$bin_listeners" --name "$run" --port "$DEMO_PORTS" --flap "$DEMO_FLAP_PORT" \
            --period "${IBP_DEMO_PERIOD:-120}" --down "${IBP_DEMO_DOWN:-40}" \
            ${IBP_DEMO_OFFSET:+--offset "$IBP_DEMO_OFFSET"}
        wait_log listeners "listening on"
        ;;
    mon* | dns*)
        launch "$name" "$bin_node" --config "$run/nodes/$name/node.json"
        wait_socket "$name"
        ;;
    persist1)
        launch persist1 "$bin_persist" --config "$run/nodes/persist1/persist.json" \
            --sql-dir "$top/deploy/sql"
        wait_log persist1 "running node=persist1"
        ;;
    hits)
        launch hits "$bin_democtl" --socket "$run/nodes/dns1/control.sock" \
            --hits "${IBP_DEMO_HITS:-20}" --members "$run/network/members.json" \
            --services "$run/network/services.json"
        ;;
    esac
    log "$name started (pid $(pid_of "$name"), log $run/logs/$name.log)"
}

start_cluster() {
    mkdir -p "$run/logs" "$run/pids" "$run/nodes"
    make_network
    make_geo
    local id
    for id in "${replicas[@]}"; do write_node_config "$id" monitor,consensus; done
    write_node_config dns1 dns
    write_persist_config
    for id in "${daemons[@]}"; do start_daemon "$id"; done
}

stop_cluster() { # stops the cluster's processes (reverse order); prints what it stopped
    local name pid pids=() n
    for ((n = ${#daemons[@]} - 1; n >= 0; n--)); do
        name=${daemons[$n]}
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
            demo-listeners demo-ctl >/dev/null
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
  Demo      members and services of deploy/local/ on loopback ports ($r/network/);
            Beta Infra's endpoint port $DEMO_FLAP_PORT is down ${IBP_DEMO_DOWN:-40} s every ${IBP_DEMO_PERIOD:-120} s
            ($r/logs/listeners.log); demo-ctl sends ${IBP_DEMO_HITS:-20} DNS hits/s to dns1
  Settings  $r/cluster.env

Look around:
  source $r/cluster.env     (NATS_URL, and IBP_NATS_NKEY_FILE: ibpctl acts as admin)
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
        if alive "$pid"; then echo "$name: running (pid $pid, log $run/logs/$name.log)"; else echo "$name: stopped"; rc=3; fi
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
