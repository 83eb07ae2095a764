#!/usr/bin/env bash
# Starts and stops a private nats-server (JetStream) and MariaDB for the
# integration tests (tests/harness/CMakeLists.txt runs it as a CTest fixture).
#
#   servers.sh start <statefile> [--watch-parent]
#   servers.sh stop  <statefile>
#
# start: makes a private directory ${TMPDIR:-/tmp}/ibp-test.XXXXXX, picks free
# 127.0.0.1 ports (ibp-test-freeport), starts both servers in it, waits until
# they accept connections, creates a MariaDB user for TCP, starts a watchdog
# and writes <statefile> (KEY=VALUE lines, safe to `source` from a shell).
# nats-server requires a login, as in production: its users (see "NATS users"
# below) have random passwords in files of mode 0600 in the private
# directory, which the state file names:
#   IBP_TEST_DIR NATS_URL NATS_PORT NATS_PID NATS_SERVER_VERSION
#   NATS_USER NATS_PASSWORD_FILE (the test administrator: every subject)
#   NATS_<ROLE>_USER NATS_<ROLE>_PASSWORD_FILE for ROLE in MONITOR CONSENSUS
#     DNS PERSIST ADMIN MONITOR_CONSENSUS (the permissions of DESIGN.md §13)
#   MYSQL_HOST MYSQL_PORT MYSQL_SOCKET MYSQL_USER MYSQL_PASSWORD MYSQL_PID
#   MARIADB_VERSION WATCHDOG_PID START_MS
# stop: stops both servers (TERM, KILL after a timeout), the watchdog, and
# removes the directory and the state file. Safe to run when nothing runs.
#
# Only loopback addresses, never a fixed port, never a shared directory.
# The watchdog kills both servers and removes the directory after
# IBP_TEST_MAX_LIFETIME_S (default 7200, longer than
# CI's 90-minute limit on a whole run), or, with --watch-parent, as soon as
# the process that ran `start` (ctest) is gone, so an interrupted ctest run
# leaves nothing behind.
#
# Environment:
#   IBP_TEST_FREEPORT        path of ibp-test-freeport (default: next to <statefile>)
#   IBP_TEST_IBPCTL          the ibpctl that renders the NATS role users
#                            (default: <build>/node/ibpctl/ibpctl, found from
#                            ibp-test-freeport); "none": the lists of this script
#   IBP_TEST_START_TIMEOUT_S readiness timeout per server (default 30)
#   IBP_TEST_MAX_LIFETIME_S  watchdog lifetime (default 7200)
#   IBP_TEST_CACHE_DIR       where the bootstrapped MariaDB system tables are
#                            cached as a read-only template (default: the
#                            directory of <statefile>); "none" disables it
#   IBP_TEST_MYSQL_ARGS      extra mariadbd arguments (word-split)
#
# Speed: `mariadb-install-db` spends about 2 s loading help tables and the sys
# schema that tests never use. We bootstrap with the system tables only
# (about 0.6-1.5 s) and keep the result as a template that later runs copy
# (about 20 ms), so a start takes a few hundred milliseconds once warm.
set -euo pipefail

PROG=servers.sh
now_ms() { date +%s%3N; }
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Options shared by the bootstrap and the server: InnoDB refuses a log file
# size different from the one the data directory was created with only by
# resizing it at start, which costs time, so both use the same values.
MYSQL_COMMON_ARGS=(
    --innodb-buffer-pool-size=32M
    --innodb-log-file-size=16M
    --innodb-buffer-pool-dump-at-shutdown=0
    --innodb-buffer-pool-load-at-startup=0
    --character-set-server=utf8mb4
    --collation-server=utf8mb4_general_ci
    --skip-log-bin
)
# Bump when the template's contents change meaning (users, tables, options).
TEMPLATE_FORMAT=1

# True when pid is alive and its command line mentions dir (so a reused pid
# of an unrelated process is never signalled).
owned_pid() {
    local pid=$1 dir=$2
    [[ -n $pid && $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -qF -- "$dir"
}

# Sends TERM to the owned pids, waits up to timeout_s, then KILLs the rest.
stop_pids() {
    local dir=$1 timeout_s=$2
    shift 2
    local pid live=()
    for pid in "$@"; do
        if owned_pid "$pid" "$dir"; then
            kill -TERM "$pid" 2>/dev/null || true
            live+=("$pid")
        fi
    done
    local deadline=$(($(now_ms) + timeout_s * 1000))
    while ((${#live[@]} > 0)); do
        local still=()
        for pid in "${live[@]}"; do
            owned_pid "$pid" "$dir" && still+=("$pid")
        done
        live=("${still[@]+"${still[@]}"}")
        ((${#live[@]} == 0)) && break
        if (($(now_ms) >= deadline)); then
            for pid in "${live[@]}"; do
                log "pid $pid did not stop after ${timeout_s}s: SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
            done
            sleep 0.1
            break
        fi
        sleep 0.05
    done
}

safe_rm_dir() {
    local dir=$1
    case $dir in
    */ibp-test.??????) [[ -d $dir ]] && rm -rf -- "$dir" ;;
    *) log "not removing '$dir': not an ibp-test.XXXXXX directory" ;;
    esac
    return 0
}

# ---- watchdog (runs in its own session, see start) --------------------------
watchdog() {
    local dir=$1 max_s=$2 parent=$3
    shift 3
    local end=$((SECONDS + max_s)) why="maximum lifetime ${max_s}s reached"
    while ((SECONDS < end)); do
        if [[ $parent != 0 ]] && ! kill -0 "$parent" 2>/dev/null; then
            why="parent process $parent is gone (stop never ran)"
            break
        fi
        [[ -d $dir ]] || exit 0
        sleep 1
    done
    log "watchdog: $why: stopping servers in $dir"
    stop_pids "$dir" 5 "$@"
    safe_rm_dir "$dir"
}

# ---- state file ----------------------------------------------------------------
read_state() {
    local file=$1 k v
    unset IBP_TEST_DIR NATS_PID MYSQL_PID WATCHDOG_PID
    while IFS='=' read -r k v; do
        case $k in
        IBP_TEST_DIR) IBP_TEST_DIR=$v ;;
        NATS_PID) NATS_PID=$v ;;
        MYSQL_PID) MYSQL_PID=$v ;;
        WATCHDOG_PID) WATCHDOG_PID=$v ;;
        esac
    done <"$file"
}

do_stop() {
    local file=$1
    if [[ ! -f $file ]]; then
        log "stop: no state file $file: nothing to stop"
        return 0
    fi
    read_state "$file"
    local dir=${IBP_TEST_DIR:-}
    if [[ -z $dir ]]; then
        log "stop: $file has no IBP_TEST_DIR; removing it"
        rm -f -- "$file"
        return 0
    fi
    local t0
    t0=$(now_ms)
    # The watchdog first, so it does not race us; it leads its own process
    # group (setsid), so its sleep goes with it.
    if owned_pid "${WATCHDOG_PID:-}" "$dir"; then
        kill -TERM -- "-$WATCHDOG_PID" 2>/dev/null || kill -TERM "$WATCHDOG_PID" 2>/dev/null || true
    fi
    local running=0
    if owned_pid "${NATS_PID:-}" "$dir" || owned_pid "${MYSQL_PID:-}" "$dir"; then running=1; fi
    stop_pids "$dir" 10 "${NATS_PID:-}" "${MYSQL_PID:-}"
    # Refusals by the users' permissions, for whoever reads the test's log:
    # a daemon refused a subject its role should allow, or a test that
    # expects a refusal got it.
    local violations
    if violations=$(grep -hE 'Violation|authentication error' "$dir/nats.log" 2>/dev/null); then
        log "nats-server refused $(wc -l <<<"$violations") operation(s); the last ones:"
        tail -n 20 <<<"$violations" | sed 's/^/    /' >&2
    fi
    safe_rm_dir "$dir"
    rm -f -- "$file"
    if ((running)); then
        log "stopped nats-server (pid ${NATS_PID:-?}) and mariadbd (pid ${MYSQL_PID:-?}), removed $dir in $(($(now_ms) - t0)) ms"
    else
        log "servers of $file were already gone (the watchdog stopped them?); cleaned up"
    fi
}

# ---- start ---------------------------------------------------------------------
DIR=""
NATS_USERS_CONF=""
NATS_USERS_FROM=""
NATS_PID=""
MYSQL_PID=""
WATCHDOG_PID=""

# On any failure during start: print the logs, stop what was started, remove
# the directory. A failed start leaves nothing running.
start_failed() {
    local rc=$?
    trap - EXIT
    if ((rc != 0)) && [[ -n $DIR ]]; then
        local f
        for f in "$DIR/nats.log" "$DIR/mysqld.log" "$DIR/bootstrap.log"; do
            if [[ -s $f ]]; then
                log "---- last lines of $f ----"
                tail -n 40 "$f" >&2 || true
            fi
        done
        stop_pids "$DIR" 5 "$NATS_PID" "$MYSQL_PID"
        if [[ -n $WATCHDOG_PID ]]; then kill -TERM -- "-$WATCHDOG_PID" 2>/dev/null || true; fi
        safe_rm_dir "$DIR"
        log "start failed; cleaned up"
    fi
    exit "$rc"
}

freeport() {
    "$FREEPORT" 1 || die "$FREEPORT failed"
}

# ---- NATS users (DESIGN.md §13) ---------------------------------------------------
#
# The server requires a login, as in production. All users live in one
# account, IBP, that has JetStream. `test` is the test administrator (no
# permissions block: every subject), the identity of the tests' own
# connections. The role users carry the permissions of their role, with
# node-id wildcards since several test nodes share one user. They are
# rendered by `ibpctl nats-auth --role-users` (see nats_users); the lists
# below are what this script writes when that command is not available:
#   monitor    publishes ibp.local.*        dns  publishes ibp.hits.*
#   consensus  publishes ibp.official.>, ibp.status.>, ibp.events.>,
#              ibp.consensus.checkpoint.*; reads LOCAL and CHECKPOINT
#              (its epoch statements go on ibp.official.cosign.<id>)
#   persist    pull consumers on HITS and EVENTS; answers on ibp.persist.>
#   admin      overrides on ibp.local.*, queries on ibp.persist.>; reads every stream
#   monitor_consensus  the union of monitor and consensus (a node with both roles)
# Every ibp-node role keeps its official store current from OFFICIAL and the
# statements that certify its epochs (COSIGN); every
# daemon creates the streams when missing (ibp_bus_ensure_streams) and answers
# $SRV.> (ADR-32).
NATS_ROLES=(monitor consensus dns persist admin monitor_consensus)
IBP_STREAMS=(LOCAL OFFICIAL STATUS EVENTS HITS CHECKPOINT COSIGN)

# Prints its arguments quoted and comma-separated.
nats_subjects() {
    local out="" s
    for s in "$@"; do out+="${out:+, }\"$s\""; done
    printf '%s' "$out"
}

# The JetStream subjects that read stream $1 through consumers (push or pull,
# ephemeral or durable) and direct gets, with their acks and flow control.
nats_js_read() {
    local s=$1
    printf '%s\n' "\$JS.API.CONSUMER.CREATE.$s" "\$JS.API.CONSUMER.CREATE.$s.>" \
        "\$JS.API.CONSUMER.DURABLE.CREATE.$s.*" "\$JS.API.CONSUMER.INFO.$s.*" \
        "\$JS.API.CONSUMER.DELETE.$s.*" "\$JS.API.CONSUMER.MSG.NEXT.$s.*" \
        "\$JS.API.STREAM.MSG.GET.$s" "\$JS.API.DIRECT.GET.$s" "\$JS.API.DIRECT.GET.$s.>" \
        "\$JS.ACK.$s.>" "\$JS.FC.$s.>"
}

# What every daemon publishes: replies, JetStream account and stream info,
# and the creation of the streams (and their update to the settings).
nats_daemon_base() {
    local s
    printf '%s\n' "_INBOX.>" "\$JS.API.INFO" "\$JS.API.STREAM.NAMES" "\$JS.API.STREAM.INFO.*"
    for s in "${IBP_STREAMS[@]}"; do
        printf '%s\n' "\$JS.API.STREAM.CREATE.$s" "\$JS.API.STREAM.UPDATE.$s"
    done
}

# The publish allow-list of role $1, one subject a line.
nats_role_publish() {
    local s
    case $1 in
    monitor)
        nats_daemon_base
        nats_js_read OFFICIAL
        nats_js_read COSIGN
        echo "ibp.local.*"
        echo "\$JS.API.DIRECT.GET.LOCAL.ibp.local.*"
        ;;
    consensus)
        nats_daemon_base
        nats_js_read OFFICIAL
        nats_js_read COSIGN
        nats_js_read LOCAL
        nats_js_read CHECKPOINT
        printf '%s\n' "ibp.official.>" "ibp.status.>" "ibp.events.>" "ibp.consensus.checkpoint.*"
        ;;
    dns)
        nats_daemon_base
        nats_js_read OFFICIAL
        nats_js_read COSIGN
        echo "ibp.hits.*"
        echo "\$JS.API.DIRECT.GET.HITS.ibp.hits.*"
        ;;
    persist)
        nats_daemon_base
        nats_js_read HITS
        nats_js_read EVENTS
        ;;
    admin)
        printf '%s\n' "_INBOX.>" "\$JS.API.INFO" "\$JS.API.STREAM.NAMES" "\$JS.API.STREAM.INFO.*" \
            "ibp.local.*" "ibp.persist.>" "\$SRV.>"
        for s in "${IBP_STREAMS[@]}"; do nats_js_read "$s"; done
        ;;
    monitor_consensus)
        { nats_role_publish monitor; nats_role_publish consensus; } | awk '!seen[$0]++'
        ;;
    esac
}

# The subscribe allow-list of role $1.
nats_role_subscribe() {
    case $1 in
    persist) printf '%s\n' "_INBOX.>" "\$SRV.>" "ibp.persist.>" ;;
    admin) printf '%s\n' "_INBOX.>" "ibp.>" ;;
    *) printf '%s\n' "_INBOX.>" "\$SRV.>" "ibp.official.>" ;;
    esac
}

# Makes a random password for user $1 in $DIR/nats-users (mode 0600) unless
# it is there, and prints the file's path.
nats_password_file() {
    local file=$DIR/nats-users/$1.password
    [[ -s $file ]] || (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    echo "$file"
}

# Prints the subjects of the allow list of user $2's $3 (publish or subscribe)
# in $1, a users block as `ibpctl nats-auth` renders it (one subject a line).
nats_rendered_allow() {
    awk -v user="$2" -v sect="$3" '
        /user: "/ { match($0, /user: "[^"]*"/); cur = substr($0, RSTART + 7, RLENGTH - 8) }
        /publish: *\{/ { s = "publish" }
        /subscribe: *\{/ { s = "subscribe" }
        /allow: *\[/ { in_list = (cur == user && s == sect); next }
        /deny: *\[/ { in_list = 0; next }
        /\]/ { in_list = 0 }
        in_list && /"/ { gsub(/^[ \t]*"|"[ \t,]*$/, ""); print }
    ' "$1"
}

# Prints one user entry: name, password file, then the publish and the
# subscribe allow lists as two newline-separated strings.
nats_user_entry() {
    local pub sub
    mapfile -t pub <<<"$3"
    mapfile -t sub <<<"$4"
    printf '      {user: "%s", password: "%s", permissions: {\n' "$1" "$(<"$2")"
    printf '        publish: {allow: [%s]}\n' "$(nats_subjects "${pub[@]}")"
    printf '        subscribe: {allow: [%s]}\n' "$(nats_subjects "${sub[@]}")"
    printf '        allow_responses: true\n      }}\n'
}

# Makes the users' passwords and sets NATS_USERS_CONF, the accounts block of
# the server config, and NATS_USERS_FROM. Once per start: a relaunch on
# another port keeps them.
#
# The role users come from `ibpctl nats-auth --role-users` when the ibpctl of
# the build has it (IBP_TEST_IBPCTL, default <build>/node/ibpctl/ibpctl
# beside ibp-test-freeport; "none": never), so the tests run with the
# permissions that production renders from the roster; the union user is
# the union of its monitor and consensus lists. Without it, the lists above.
nats_users() {
    [[ -n $NATS_USERS_CONF ]] && return 0
    local role file pub sub union="" rendered=$DIR/nats-roles.conf
    mkdir -m 700 "$DIR/nats-users"
    file=$(nats_password_file test)
    local admin_entry
    admin_entry="      # the test administrator: every subject
      {user: \"test\", password: \"$(<"$file")\"}"
    if [[ $IBPCTL != none && -x $IBPCTL ]] && "$IBPCTL" nats-auth --help >/dev/null 2>&1; then
        "$IBPCTL" nats-auth --role-users "$DIR/nats-users" --out "$rendered" ||
            die "$IBPCTL nats-auth --role-users failed"
        pub=$( (nats_rendered_allow "$rendered" monitor publish
            nats_rendered_allow "$rendered" consensus publish) | awk '!seen[$0]++')
        sub=$( (nats_rendered_allow "$rendered" monitor subscribe
            nats_rendered_allow "$rendered" consensus subscribe) | awk '!seen[$0]++')
        [[ $pub == *ibp.local.* && $pub == *ibp.official.* && $sub == *_INBOX.* ]] ||
            die "cannot read the monitor and consensus permissions from $rendered (ibpctl nats-auth output)"
        file=$(nats_password_file monitor_consensus)
        union="      # monitor and consensus (a node with both roles): the union of the two
$(nats_user_entry monitor_consensus "$file" "$pub" "$sub")"
        grep -q 'users: \[' "$rendered" || die "no users list in $rendered (ibpctl nats-auth output)"
        # The test administrator and the union user go first in the list.
        NATS_USERS_CONF="$(sed -n '1,/users: \[/p' "$rendered")
$admin_entry
$union
$(sed '1,/users: \[/d' "$rendered")"
        NATS_USERS_FROM="ibpctl nats-auth --role-users"
        return 0
    fi
    local users=$admin_entry
    for role in "${NATS_ROLES[@]}"; do
        file=$(nats_password_file "$role")
        users+="
$(nats_user_entry "$role" "$file" "$(nats_role_publish "$role")" "$(nats_role_subscribe "$role")")"
    done
    NATS_USERS_CONF="accounts {
  IBP {
    jetstream: enabled
    users: [
$users
    ]
  }
}"
    NATS_USERS_FROM="servers.sh (no ibpctl nats-auth at '$IBPCTL')"
}

# The state file's lines NATS_<ROLE>_USER and NATS_<ROLE>_PASSWORD_FILE.
nats_role_state() {
    local role up
    for role in "${NATS_ROLES[@]}"; do
        up=${role^^}
        printf 'NATS_%s_USER=%s\nNATS_%s_PASSWORD_FILE=%s\n' "$up" "$role" "$up" "$DIR/nats-users/$role.password"
    done
}

nats_launch() {
    NATS_PORT=$(freeport)
    nats_users
    (umask 077 && cat >"$DIR/nats.conf") <<EOF
# Private test server (tests/harness/servers.sh).
listen: 127.0.0.1:$NATS_PORT
server_name: ibp-test
# Envelopes may be up to IBP_MESSAGE_MAX_DEFAULT (8 MiB, proto/include/ibp/envelope.h).
max_payload: 8MB
max_control_line: 16KB
log_file: "$DIR/nats.log"
pid_file: "$DIR/nats.pid"
jetstream {
  store_dir: "$DIR/js"
  # OFFICIAL is a memory stream reserving nats.official_max_bytes (128 MiB).
  max_memory_store: 256MB
  max_file_store: 4GB
}
# A login is required (no anonymous connections).
$NATS_USERS_CONF
EOF
    : >"$DIR/nats.log"
    setsid nats-server -c "$DIR/nats.conf" </dev/null >>"$DIR/nats.out" 2>&1 &
    NATS_PID=$!
}

# 0 ready, 2 port taken (retry), 1 failed.
nats_wait() {
    local deadline=$(($(now_ms) + TIMEOUT_S * 1000))
    while (($(now_ms) < deadline)); do
        if ! kill -0 "$NATS_PID" 2>/dev/null; then
            if grep -qiE 'address already in use' "$DIR/nats.log" "$DIR/nats.out" 2>/dev/null; then
                return 2
            fi
            log "nats-server (pid $NATS_PID) exited during start"
            cat "$DIR/nats.out" >&2 2>/dev/null || true
            return 1
        fi
        if grep -q 'Server is ready' "$DIR/nats.log" 2>/dev/null &&
            (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.01
    done
    log "nats-server did not become ready within ${TIMEOUT_S}s"
    return 1
}

mysql_share_dir() {
    local d
    for d in /usr/share/mysql /usr/share/mariadb "$(dirname "$(command -v mariadbd)")/../share/mysql"; do
        if [[ -f $d/mysql_system_tables.sql && -f $d/mysql_system_tables_data.sql ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# Creates a fresh data directory at $1 holding only the system tables.
# Bootstraps, and once more after a failure: on a loaded machine, several
# first-time bootstraps at once (parallel tests, an empty template cache) have
# been seen to fail now and then.
mysql_bootstrap() {
    local datadir=$1
    mysql_bootstrap_once "$datadir" && return 0
    log "retrying the bootstrap once; first attempt's log:"
    tail -n 20 "$DIR/bootstrap.log" >&2 || true
    rm -rf -- "$datadir"
    sleep 0.5
    mysql_bootstrap_once "$datadir"
}

mysql_bootstrap_once() {
    local datadir=$1 share
    mkdir -p "$datadir"
    if share=$(mysql_share_dir); then
        {
            echo "CREATE DATABASE IF NOT EXISTS mysql;"
            echo "USE mysql;"
            echo "SET @auth_root_socket=NULL;"
            cat "$share/mysql_system_tables.sql"
            [[ -f $share/mysql_performance_tables.sql ]] && cat "$share/mysql_performance_tables.sql"
            cat "$share/mysql_system_tables_data.sql"
        } | mariadbd --no-defaults --bootstrap --silent-startup --datadir="$datadir" \
            --log-warnings=0 --enforce-storage-engine= "${USER_ARG[@]}" \
            --max_allowed_packet=8M --net_buffer_length=16K "${MYSQL_COMMON_ARGS[@]}" \
            >"$DIR/bootstrap.log" 2>&1 || {
            log "mariadbd --bootstrap failed"
            return 1
        }
    else
        # Unknown layout: the slower standard tool.
        mariadb-install-db --no-defaults --datadir="$datadir" --skip-test-db \
            --auth-root-authentication-method=normal "${USER_ARG[@]}" \
            "${MYSQL_COMMON_ARGS[@]}" >"$DIR/bootstrap.log" 2>&1 || {
            log "mariadb-install-db failed"
            return 1
        }
    fi
}

# Fills $DIR/db from the cached template, making the template when missing.
mysql_prepare_datadir() {
    local key tpl
    if [[ $CACHE_DIR == none ]]; then
        mysql_bootstrap "$DIR/db"
        return
    fi
    # Keyed on the server binary (path, size, mtime: cheaper than running
    # `mariadbd --version`) and everything that shapes the data directory.
    local bin
    bin=$(command -v mariadbd)
    key=$( (
        echo "$TEMPLATE_FORMAT"
        stat -L -c '%n %s %Y' "$bin"
        echo "${MYSQL_COMMON_ARGS[*]} ${USER_ARG[*]}"
    ) | cksum | cut -d' ' -f1)
    tpl="$CACHE_DIR/mariadb-template-$key"
    if [[ -f $tpl/.complete ]]; then
        cp -a "$tpl/db" "$DIR/db"
        MYSQL_FROM_TEMPLATE=1
        return
    fi
    mysql_bootstrap "$DIR/db"
    # Publish a copy atomically; a concurrent run may win the rename.
    local tmp
    if tmp=$(mktemp -d "$CACHE_DIR/.mariadb-template.XXXXXX" 2>/dev/null); then
        if cp -a "$DIR/db" "$tmp/db" && touch "$tmp/.complete" && mv -T "$tmp" "$tpl" 2>/dev/null; then
            :
        else
            rm -rf -- "$tmp"
        fi
    fi
}

mysql_launch() {
    MYSQL_PORT=$(freeport)
    : >"$DIR/mysqld.log"
    # shellcheck disable=SC2086 # IBP_TEST_MYSQL_ARGS is a word list on purpose
    setsid mariadbd --no-defaults --datadir="$DIR/db" --socket="$DIR/mysqld.sock" \
        --port="$MYSQL_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --pid-file="$DIR/mysqld.pid" --log-error="$DIR/mysqld.log" "${USER_ARG[@]}" \
        "${MYSQL_COMMON_ARGS[@]}" ${IBP_TEST_MYSQL_ARGS:-} </dev/null >>"$DIR/mysqld.out" 2>&1 &
    MYSQL_PID=$!
}

# 0 ready, 2 port taken (retry), 1 failed.
mysql_wait() {
    local deadline=$(($(now_ms) + TIMEOUT_S * 1000))
    while (($(now_ms) < deadline)); do
        if ! kill -0 "$MYSQL_PID" 2>/dev/null; then
            if grep -qiE 'Bind on TCP/IP port|Address already in use|Do you already have another server running' \
                "$DIR/mysqld.log" 2>/dev/null; then
                return 2
            fi
            log "mariadbd (pid $MYSQL_PID) exited during start"
            cat "$DIR/mysqld.out" >&2 2>/dev/null || true
            return 1
        fi
        if mariadb-admin --no-defaults --socket="$DIR/mysqld.sock" -uroot --connect-timeout=1 \
            ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.02
    done
    log "mariadbd did not become ready within ${TIMEOUT_S}s"
    return 1
}

do_start() {
    local file=$1 watch_parent=$2
    local t0 t_nats t_mysql rc tries
    t0=$(now_ms)

    local cmd
    for cmd in nats-server mariadbd mariadb-admin mariadb setsid; do
        command -v "$cmd" >/dev/null || die "$cmd not found in PATH (install nats-server and mariadb-server)"
    done
    FREEPORT=${IBP_TEST_FREEPORT:-$(dirname "$file")/ibp-test-freeport}
    IBPCTL=${IBP_TEST_IBPCTL:-$(dirname "$FREEPORT")/../../node/ibpctl/ibpctl}
    [[ -x $FREEPORT ]] || die "ibp-test-freeport not found at $FREEPORT (build target ibp-test-freeport or set IBP_TEST_FREEPORT)"
    TIMEOUT_S=${IBP_TEST_START_TIMEOUT_S:-30}
    local max_s=${IBP_TEST_MAX_LIFETIME_S:-7200}
    CACHE_DIR=${IBP_TEST_CACHE_DIR:-$(cd "$(dirname "$file")" && pwd)}
    USER_ARG=()
    if [[ $(id -u) == 0 ]]; then USER_ARG=(--user=root); fi
    MYSQL_FROM_TEMPLATE=0

    # A state file left by a run whose stop never ran: clean it up first.
    if [[ -f $file ]]; then
        log "found a state file from an earlier run: stopping it first"
        do_stop "$file"
    fi

    DIR=$(mktemp -d "${TMPDIR:-/tmp}/ibp-test.XXXXXX")
    trap start_failed EXIT
    chmod 700 "$DIR"
    case $DIR in
    *[[:space:]\'\"\$\`\\]*) die "private directory '$DIR' has characters the state file cannot hold; set TMPDIR" ;;
    esac
    # sockaddr_un holds 108 bytes.
    ((${#DIR} + 12 < 108)) || die "private directory '$DIR' is too long for a unix socket path; set TMPDIR"

    # Versions for the ctest -V log, collected in the background.
    (nats-server --version 2>&1 | head -n 1 >"$DIR/versions.txt"
        mariadbd --version 2>&1 | head -n 1 >>"$DIR/versions.txt") </dev/null &
    local versions_pid=$!

    # NATS boots while MariaDB's data directory is prepared (the slow part).
    nats_launch
    mysql_prepare_datadir
    local t_prep
    t_prep=$(now_ms)
    mysql_launch

    tries=1
    while :; do
        rc=0
        nats_wait || rc=$?
        ((rc == 0)) && break
        if ((rc == 2 && tries < 5)); then
            log "nats port $NATS_PORT was taken meanwhile; retrying with another"
            tries=$((tries + 1))
            nats_launch
            continue
        fi
        die "nats-server failed to start (see $DIR/nats.log above)"
    done
    t_nats=$(now_ms)

    tries=1
    while :; do
        rc=0
        mysql_wait || rc=$?
        ((rc == 0)) && break
        if ((rc == 2 && tries < 5)); then
            log "mariadb port $MYSQL_PORT was taken meanwhile; retrying with another"
            tries=$((tries + 1))
            mysql_launch
            continue
        fi
        die "mariadbd failed to start (see $DIR/mysqld.log above)"
    done

    # The test user for TCP connections, with a fresh password per run.
    local user=ibp password version
    password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mariadb --no-defaults --socket="$DIR/mysqld.sock" -uroot --batch -e "
        CREATE USER '$user'@'127.0.0.1' IDENTIFIED BY '$password';
        GRANT ALL PRIVILEGES ON *.* TO '$user'@'127.0.0.1' WITH GRANT OPTION;
        CREATE USER '$user'@'localhost' IDENTIFIED BY '$password';
        GRANT ALL PRIVILEGES ON *.* TO '$user'@'localhost' WITH GRANT OPTION;" ||
        die "could not create the test user"
    version=$(mariadb --no-defaults -h127.0.0.1 -P"$MYSQL_PORT" -u"$user" -p"$password" \
        --batch --skip-column-names -e 'SELECT VERSION()') ||
        die "test user cannot connect over TCP 127.0.0.1:$MYSQL_PORT"
    t_mysql=$(now_ms)

    local parent=0
    if [[ $watch_parent == 1 ]]; then parent=$PPID; fi
    setsid "$BASH" "$0" _watchdog "$DIR" "$max_s" "$parent" "$NATS_PID" "$MYSQL_PID" \
        </dev/null >>"$DIR/watchdog.log" 2>&1 &
    WATCHDOG_PID=$!

    wait "$versions_pid" || true
    local line nats_version=unknown
    while IFS= read -r line; do
        log "$line"
        case $line in nats-server:*) nats_version=${line##* } ;; esac
    done <"$DIR/versions.txt"
    local tmpfile="$file.tmp.$$"
    cat >"$tmpfile" <<EOF
IBP_TEST_DIR=$DIR
NATS_URL=nats://127.0.0.1:$NATS_PORT
NATS_PORT=$NATS_PORT
NATS_PID=$NATS_PID
NATS_SERVER_VERSION=$nats_version
NATS_USER=test
NATS_PASSWORD_FILE=$DIR/nats-users/test.password
$(nats_role_state)
MYSQL_HOST=127.0.0.1
MYSQL_PORT=$MYSQL_PORT
MYSQL_SOCKET=$DIR/mysqld.sock
MYSQL_USER=$user
MYSQL_PASSWORD=$password
MYSQL_PID=$MYSQL_PID
MARIADB_VERSION=$version
WATCHDOG_PID=$WATCHDOG_PID
START_MS=$((t_mysql - t0))
EOF
    mv -f "$tmpfile" "$file"
    trap - EXIT

    local how=bootstrapped
    ((MYSQL_FROM_TEMPLATE)) && how="copied from template"
    log "nats-server $nats_version ready at nats://127.0.0.1:$NATS_PORT (JetStream in $DIR/js; seen ready $((t_nats - t0)) ms into the start)"
    log "nats-server requires a login; role users from $NATS_USERS_FROM; passwords in $DIR/nats-users"
    log "mariadb $version ready at 127.0.0.1:$MYSQL_PORT (datadir $how in $((t_prep - t0)) ms) after $((t_mysql - t0)) ms"
    log "started in $((t_mysql - t0)) ms; state in $file; watchdog pid $WATCHDOG_PID (lifetime ${max_s}s$([[ $parent != 0 ]] && echo ", parent $parent"))"
}

usage() {
    echo "usage: $PROG start <statefile> [--watch-parent] | stop <statefile>" >&2
    exit 2
}

case ${1:-} in
start)
    [[ $# -ge 2 ]] || usage
    wp=0
    if [[ ${3:-} == --watch-parent ]]; then wp=1; elif [[ $# -gt 2 ]]; then usage; fi
    do_start "$2" "$wp"
    ;;
stop)
    [[ $# -eq 2 ]] || usage
    do_stop "$2"
    ;;
_watchdog)
    shift
    watchdog "$@"
    ;;
*) usage ;;
esac
