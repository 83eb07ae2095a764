#!/usr/bin/env bash
# The local cluster on loopback, for trying the system and for development.
#
#   deploy/local-cluster.sh up      install what is missing, build, start, check
#   deploy/local-cluster.sh down    stop everything `up` started (data stays in run/)
#   deploy/local-cluster.sh status  say what runs
#
# `up` brings up, under run/ in the checkout: nats-server with JetStream
# (run/nats), MariaDB with a data directory of its own (run/mariadb; no system
# service needed), then runs `ibpctl smoke`: a signed message through
# JetStream, verified, and the schema applied to MariaDB and read back.
# It writes run/cluster.env (NATS_URL, MYSQL_HOST, MYSQL_PORT, MYSQL_SOCKET,
# MYSQL_USER, MYSQL_PASSWORD_FILE, MYSQL_DATABASE) for scripts. Running `up`
# twice is safe: what already runs is kept. Everything listens on 127.0.0.1
# only, on ports chosen free at the first start and kept afterwards.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/run"
build="${IBP_BUILD_DIR:-$top/build}"
env_file="$run/cluster.env"

log() { printf 'local-cluster: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

alive() { [[ -n ${1:-} && -r /proc/$1/cmdline ]] && tr '\0' ' ' </proc/"$1"/cmdline | grep -qF -- "$run"; }

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
jetstream {
  store_dir: "$run/nats/js"
  max_file_store: 2GB
  max_memory_store: 256MB
}
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

write_env() {
    local tmp="$env_file.tmp"
    cat >"$tmp" <<ENV
# Written by deploy/local-cluster.sh; source it from a shell.
NATS_URL=nats://127.0.0.1:$NATS_PORT
NATS_PORT=$NATS_PORT
NATS_PID=$NATS_PID
MYSQL_HOST=127.0.0.1
MYSQL_PORT=$MYSQL_PORT
MYSQL_SOCKET=$run/mariadb/mysqld.sock
MYSQL_USER=ibp
MYSQL_PASSWORD_FILE=$run/mariadb/ibp.password
MYSQL_DATABASE=ibp
MYSQL_PID=$MYSQL_PID
ENV
    mv -f "$tmp" "$env_file"
}

cmd_up() {
    "$top/deploy/ensure-deps.sh"
    log "building in $build"
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$build" -j"$(nproc)" --target ibpctl ibp-test-freeport >/dev/null
    mkdir -p "$run"
    chmod 700 "$run"
    load_env
    if alive "$NATS_PID"; then log "nats-server already runs (pid $NATS_PID)"; else start_nats; fi
    write_env
    if alive "$MYSQL_PID"; then log "mariadbd already runs (pid $MYSQL_PID)"; else start_mariadb; fi
    write_env

    log "smoke check: signed message through JetStream, schema into MariaDB"
    mkdir -p "$run/smoke"
    IBP_MYSQL_PASSWORD=$(cat "$run/mariadb/ibp.password") "$build/node/ibpctl/ibpctl" smoke \
        --nats "nats://127.0.0.1:$NATS_PORT" --mysql-host 127.0.0.1 --mysql-port "$MYSQL_PORT" \
        --mysql-user ibp --database ibp --work-dir "$run/smoke"
    cat <<DONE

The local cluster runs on 127.0.0.1:
  NATS      nats://127.0.0.1:$NATS_PORT   (JetStream data in run/nats/js)
  MariaDB   127.0.0.1:$MYSQL_PORT, socket run/mariadb/mysqld.sock, database ibp,
            user ibp, password in run/mariadb/ibp.password
  Settings  run/cluster.env

Look around:
  source run/cluster.env
  mariadb --no-defaults -h127.0.0.1 -P\$MYSQL_PORT -uibp -p\$(cat \$MYSQL_PASSWORD_FILE) ibp -e 'SHOW TABLES'
  $build/node/ibpctl/ibpctl roster list --roster run/smoke/smoke-roster.json
  $build/node/ibpctl/ibpctl smoke --help

Stop it:  deploy/local-cluster.sh down
DONE
}

cmd_down() {
    load_env
    local pid stopped=0
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
    local rc=0
    if alive "$NATS_PID"; then echo "nats-server: running (pid $NATS_PID, nats://127.0.0.1:$NATS_PORT)"; else echo "nats-server: stopped"; rc=3; fi
    if alive "$MYSQL_PID"; then echo "mariadbd: running (pid $MYSQL_PID, 127.0.0.1:$MYSQL_PORT)"; else echo "mariadbd: stopped"; rc=3; fi
    return $rc
}

case ${1:-up} in
up | start) cmd_up ;;
down | stop) cmd_down ;;
status) cmd_status ;;
-h | --help | help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
