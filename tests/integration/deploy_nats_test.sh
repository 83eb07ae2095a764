#!/usr/bin/env bash
# The deploy/nats cluster as shipped: the three server configs, rendered for
# free loopback ports and a private directory, with a CA, server, route and
# client certificates made here with openssl and the users of
# `ibpctl nats-auth`; then the IBP nodes against it with their own nkeys,
# TLS and client certificates: three monitors, a consensus replica, a dns
# node and ibp-persist (into a private MariaDB). Checks that
#   - every config passes `nats-server -t` and the three form a JetStream cluster;
#   - a client without TLS, or with TLS but no identity, is refused;
#   - observations of the monitors become an official epoch at the dns node;
#   - ibp-persist applies the outage event into member_events;
#   - ibpctl reads the status as admin with the credentials of the environment.
#
#   deploy_nats_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail

src=$1
build=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/ibp-deploy-nats.XXXXXX")
ctl="$build/node/ibpctl/ibpctl"
node_bin="$build/node/daemon/ibp-node"
persist_bin="$build/persist/ibp-persist"
democtl="$build/deploy/local/demo-ctl"
freeport="$build/tests/harness/ibp-test-freeport"
servers_sh="$src/tests/harness/servers.sh"
pids=()
declare -A node_pid=()
servers_started=0
ok=0

log() { echo "deploy_nats_test: $*"; }
fail() {
    echo "deploy_nats_test: FAILED: $*" >&2
    exit 1
}

finish() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if ((!ok)); then
        for f in "$dir"/logs/*.log "$dir"/nats/*.log; do
            [[ -f $f ]] || continue
            echo "---- $f" >&2
            tail -n 20 "$f" >&2
        done
    fi
    ((servers_started)) && IBP_TEST_FREEPORT=$freeport bash "$servers_sh" stop "$dir/servers.env" >/dev/null 2>&1
    rm -rf "$dir"
}
trap finish EXIT

# until_true SECONDS DESCRIPTION COMMAND...: polls every 0.3 s.
until_true() {
    local secs=$1 what=$2
    shift 2
    local t0=$SECONDS
    while ((SECONDS - t0 < secs)); do
        "$@" && {
            log "$what after $((SECONDS - t0)) s"
            return 0
        }
        sleep 0.3
    done
    fail "$what: not within $secs s"
}

mkdir -p "$dir"/{tls,nats,keys,logs,nodes}
chmod 700 "$dir" "$dir/keys"

# ---- certificates: a CA; server (clients verify it), route (mutual TLS
# between the servers) and client (every node) certificates signed by it.
(
    cd "$dir/tls"
    ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    # shellcheck disable=SC2086
    openssl req -x509 $ec -keyout ca-key.pem -out ca.pem -days 2 -subj "/CN=ibp deploy test CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >server.ext
    printf 'basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' >route.ext
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >client.ext
    serial=2
    for leaf in server route client; do
        # shellcheck disable=SC2086
        openssl req $ec -keyout "$leaf-key.pem" -out "$leaf.csr" -subj "/CN=ibp deploy test $leaf"
        openssl x509 -req -in "$leaf.csr" -CA ca.pem -CAkey ca-key.pem -set_serial $((serial++)) \
            -days 2 -extfile "$leaf.ext" -out "$leaf.pem"
        chmod 600 "$leaf-key.pem"
    done
    openssl verify -CAfile ca.pem server.pem route.pem client.pem
) >"$dir/logs/openssl.log" 2>&1 || {
    cat "$dir/logs/openssl.log" >&2
    fail "openssl could not make the certificates"
}

# ---- identities: a signing key and a NATS nkey per node, in one roster.
roster="$dir/keys/roster.json"
nodes=(mon1:monitor mon2:monitor mon3:monitor con1:consensus dns1:dns persist1:persist admin:admin)
for spec in "${nodes[@]}"; do
    id=${spec%%:*}
    "$ctl" keygen --out "$dir/keys/$id.key" --nkey-out "$dir/keys/$id.nk" --node "$id" \
        --roles "${spec#*:}" --roster "$roster" >/dev/null || fail "ibpctl keygen $id"
done
"$ctl" nats-auth --roster "$roster" --admin-id admin --out "$dir/nats/ibp-auth.conf" ||
    fail "ibpctl nats-auth"

# ---- the three servers from the very templates of deploy/nats.
mapfile -t ports < <("$freeport" 9)
((${#ports[@]} == 9)) || fail "no free ports"
expr=""
for k in 0 1 2; do
    expr+="s/127\\.0\\.0\\.1:$((4222 + k))\\b/127.0.0.1:${ports[$k]}/g;"
    expr+="s/127\\.0\\.0\\.1:$((6222 + k))\\b/127.0.0.1:${ports[$((3 + k))]}/g;"
    expr+="s/127\\.0\\.0\\.1:$((8222 + k))\\b/127.0.0.1:${ports[$((6 + k))]}/g;"
done
expr+="s|/etc/nats/tls/|$dir/tls/|g;s|/var/lib/nats/|$dir/nats/|g;"
urls=""
for k in 1 2 3; do
    sed -e "$expr" "$src/deploy/nats/nats-$k.conf" >"$dir/nats/nats-$k.conf"
    # Whole port numbers only: a free port such as 42221 starts with 4222.
    grep -qE '127\.0\.0\.1:(4222|4223|4224|6222|6223|6224|8222|8223|8224)\b|/etc/nats|/var/lib/nats' \
        "$dir/nats/nats-$k.conf" &&
        fail "nats-$k.conf: a template value was not replaced"
    nats-server -c "$dir/nats/nats-$k.conf" -t >"$dir/logs/nats-t-$k.log" 2>&1 || {
        cat "$dir/logs/nats-t-$k.log" >&2
        fail "nats-server -t refuses the rendered nats-$k.conf"
    }
    urls+="${urls:+, }\"tls://127.0.0.1:${ports[$((k - 1))]}\""
done
for k in 1 2 3; do
    nats-server -c "$dir/nats/nats-$k.conf" -l "$dir/nats/nats-$k.log" </dev/null >/dev/null 2>&1 &
    pids+=($!)
done
healthy() { [[ $(curl -s "http://127.0.0.1:${ports[$1]}/healthz") == *'"ok"'* ]]; }
all_healthy() { healthy 6 && healthy 7 && healthy 8; }
until_true 60 "the three servers are healthy (JetStream meta leader)" all_healthy

# ---- refusals: no TLS; TLS without client certificate; TLS without identity.
url1="tls://127.0.0.1:${ports[0]}"
export IBP_NATS_CA=$dir/tls/ca.pem IBP_NATS_CERT=$dir/tls/client.pem IBP_NATS_KEY=$dir/tls/client-key.pem
if "$ctl" status --roster "$roster" --nats "nats://127.0.0.1:${ports[0]}" \
    --nats-nkey "$dir/keys/admin.nk" >/dev/null 2>"$dir/logs/refused-plain.log"; then
    fail "a client without TLS was let in"
fi
if IBP_NATS_CERT="" IBP_NATS_KEY="" "$ctl" status --roster "$roster" --nats "$url1" \
    --nats-nkey "$dir/keys/admin.nk" >/dev/null 2>"$dir/logs/refused-nocert.log"; then
    fail "a client without a certificate was let in"
fi
if "$ctl" status --roster "$roster" --nats "$url1" >/dev/null 2>"$dir/logs/refused-noid.log"; then
    fail "a client without an identity was let in"
fi
grep -q "authorization failed" "$dir/logs/refused-noid.log" ||
    fail "no identity: not refused as an authorization failure: $(cat "$dir/logs/refused-noid.log")"
log "refused: plain TCP, TLS without a client certificate, TLS without an identity"

# ---- MariaDB (private) and the nodes.
IBP_TEST_FREEPORT=$freeport IBP_TEST_CACHE_DIR=${IBP_TEST_CACHE_DIR:-none} \
    bash "$servers_sh" start "$dir/servers.env" --watch-parent >"$dir/logs/servers.log" 2>&1 ||
    fail "servers.sh start: $(tail -n 5 "$dir/logs/servers.log")"
servers_started=1
# shellcheck disable=SC1091
source "$dir/servers.env"
database=ibp_deploy_$$
mariadb --no-defaults -h127.0.0.1 -P"$MYSQL_PORT" -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" \
    -e "CREATE DATABASE $database" || fail "create database"
(umask 077 && printf '%s' "$MYSQL_PASSWORD" >"$dir/keys/mysql.password")

nats_json() { # nats_json ID
    printf '"nats": {"servers": [%s], "stream_replicas": 3, "nkey_seed_file": "%s",
          "tls_ca_file": "%s", "tls_cert_file": "%s", "tls_key_file": "%s"}' \
        "$urls" "$dir/keys/$1.nk" "$dir/tls/ca.pem" "$dir/tls/client.pem" "$dir/tls/client-key.pem"
}
for spec in "${nodes[@]}"; do
    id=${spec%%:*} roles=${spec#*:}
    wd="$dir/nodes/$id"
    mkdir -p "$wd"
    case $roles in
    admin) continue ;;
    persist)
        cat >"$wd/persist.json" <<CONF
{"node": {"id": "$id", "key_file": "$dir/keys/$id.key", "roster_file": "$roster", "work_dir": "$wd"},
 $(nats_json "$id"),
 "mysql": {"host": "127.0.0.1", "port": $MYSQL_PORT, "user": "$MYSQL_USER",
           "password_file": "$dir/keys/mysql.password", "database": "$database"},
 "events": {"min_offline_ms": 0},
 "log": {"level": "info"}}
CONF
        ;;
    *)
        cat >"$wd/node.json" <<CONF
{"node": {"id": "$id", "key_file": "$dir/keys/$id.key", "roster_file": "$roster",
          "work_dir": "$wd", "roles": "$roles"},
 $(nats_json "$id"),
 "network": {"members_file": "$src/tests/data/network/members.json",
             "services_file": "$src/tests/data/network/services.json"},
 "intervals": {"publish_ms": 200, "refresh_ms": 2000, "heartbeat_ms": 500},
 "consensus": {"active_window_ms": 20000, "staleness_ms": 8000, "quorum_min": 2,
               "expiry_ms": 600000},
 "events": {"min_offline_ms": 0},
 "log": {"level": "info"}}
CONF
        ;;
    esac
done

ctl_json() { "$democtl" --socket "$dir/nodes/$1/control.sock" "$2" 2>/dev/null; }
answers() { [[ $(ctl_json "$1" '{"cmd":"status"}') == *'"ok":true'* ]]; }
start_node() { # start_node ID
    local id=$1
    if [[ $id == persist1 ]]; then
        "$persist_bin" --config "$dir/nodes/$id/persist.json" --sql-dir "$src/deploy/sql" \
            </dev/null >"$dir/logs/$id.log" 2>&1 &
        pids+=($!)
        node_pid[$id]=$!
        until_true 60 "$id runs" grep -q "running node=$id" "$dir/logs/$id.log"
    else
        "$node_bin" --config "$dir/nodes/$id/node.json" </dev/null >"$dir/logs/$id.log" 2>&1 &
        pids+=($!)
        node_pid[$id]=$!
        until_true 60 "$id answers" answers "$id"
    fi
}
for id in con1 persist1 mon1 mon2 mon3 dns1; do start_node "$id"; done

# ---- an outage observed by the three monitors becomes official at dns1.
member="Alpha Nodes" domain=polkadot.ibp.example endpoint=wss://polkadot.ibp.example
observe() { # observe MONITOR up|down
    "$ctl" observe --socket "$dir/nodes/$1/control.sock" --type endpoint --check wss \
        --member "$member" --domain "$domain" --endpoint "$endpoint" "--$2" \
        ${3:+--error "$3"} --flush >/dev/null || fail "ibpctl observe $1"
}
official_is() { # official_is up|down: dns1 holds the key officially with that status
    local want=$1 ans
    ans=$(ctl_json dns1 "{\"cmd\":\"official\",\"type\":\"endpoint\",\"check\":\"wss\",\"member\":\"$member\",\"domain\":\"$domain\",\"endpoint\":\"$endpoint\",\"ipv6\":false}")
    [[ $ans == *'"found":true'* && $ans == *"\"up\":$([[ $want == up ]] && echo true || echo false)"* ]]
}
for m in mon1 mon2 mon3; do observe "$m" up; done
until_true 60 "the key is officially up at dns1" official_is up
for m in mon1 mon2 mon3; do observe "$m" down "connect timeout"; done
until_true 60 "the outage is official at dns1" official_is down
epoch=$(ctl_json dns1 '{"cmd":"status"}' | grep -o '"epoch":[0-9]*' | head -1 | cut -d: -f2)
((epoch >= 2)) || fail "dns1 is at epoch ${epoch:-?}, expected 2 or more"
log "dns1 is at epoch $epoch"

sql() {
    mariadb --no-defaults -h127.0.0.1 -P"$MYSQL_PORT" -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" \
        "$database" -N -B -e "$1"
}
event_open() {
    local n
    n=$(sql "SELECT COUNT(*) FROM member_events WHERE member_name='$member' AND end_time IS NULL" 2>/dev/null)
    ((${n:-0} >= 1))
}
until_true 60 "ibp-persist applied the outage event" event_open

# ---- ibpctl as admin, credentials and TLS from the environment.
export NATS_URL=$url1 IBP_NATS_NKEY_FILE=$dir/keys/admin.nk IBP_ROSTER=$roster
out=$("$ctl" status --member "$member" 2>"$dir/logs/status.log") ||
    fail "ibpctl status as admin: $(cat "$dir/logs/status.log")"
[[ $out == *'"status": "down"'* ]] || fail "ibpctl status shows no down key: $out"
log "ibpctl status (admin, TLS, from the environment) shows the outage"

# ---- stream settings reach existing streams: con1 restarted with other limits.
con1_pid=${node_pid[con1]}
kill -TERM "$con1_pid"
wait "$con1_pid" || fail "con1 did not stop cleanly (exit $?)"
sed -i 's/"stream_replicas": 3,/"stream_replicas": 3, "local_max_age_ms": "2d", "official_keep": 64,/' \
    "$dir/nodes/con1/node.json"
start_node con1
grep -q 'stream LOCAL: max age 7d -> 2d' "$dir/logs/con1.log" ||
    fail "con1 did not bring LOCAL to its max age: $(grep -h 'stream' "$dir/logs/con1.log")"
grep -q 'stream OFFICIAL: messages kept per subject 256 -> 64' "$dir/logs/con1.log" ||
    fail "con1 did not bring OFFICIAL to its depth: $(grep -h 'stream' "$dir/logs/con1.log")"
grep -q 'stream LOCAL updated' "$dir/logs/con1.log" || fail "no 'stream LOCAL updated' line"
log "a restarted consensus node brought LOCAL and OFFICIAL to its settings"

# ---- ibp-persist stops cleanly (exit 0) on SIGTERM.
persist_pid=${node_pid[persist1]}
kill -TERM "$persist_pid"
wait "$persist_pid" || fail "ibp-persist did not stop cleanly (exit $?)"

# No node was refused anything it needed.
if grep -h "NATS refused" "$dir"/logs/*.log; then fail "a node was refused a permission"; fi
ok=1
log "ok"
