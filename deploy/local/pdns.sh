#!/usr/bin/env bash
# PowerDNS in front of a local dns node: renders deploy/pdns/pdns.conf for a
# loopback port and a backend connection, starts pdns_server and stops it.
# Sourced by scripts (functions pdns_render, pdns_start, pdns_stop,
# pdns_dig_line, pdns_city_db, pdns_demo_queries; safe under set -euo pipefail)
# or run directly:
#
#   deploy/local/pdns.sh render <dir> <port> <connection-string>
#   deploy/local/pdns.sh start  <dir>            (after render; waits until it answers)
#   deploy/local/pdns.sh stop   <dir>
#   deploy/local/pdns.sh city-db <build-dir> <out-dir>   (prints the City DB's path)
#   deploy/local/pdns.sh demo-queries <dir> <name> [rounds]
#
# <connection-string> is PowerDNS's remote-connection-string, e.g.
#   unix:path=run/dns1/dns-backend.sock
#   http:url=http://127.0.0.1:8053/dns,post=1,post_json=1
# Everything pdns_server writes stays in <dir>: pdns.conf, pdns.pid, pdns.log
# and its control socket.

pdns_src_dir() {
    cd "$(dirname "${BASH_SOURCE[0]}")/../pdns" && pwd
}

# pdns_render <dir> <port> <connection-string>: writes <dir>/pdns.conf from the
# shipped config with the listener on 127.0.0.1:<port>, the control socket in
# <dir> and the given backend connection, running in the foreground.
pdns_render() {
    local dir=$1 port=$2 conn=$3 src
    src="$(pdns_src_dir)/pdns.conf" || return 1
    mkdir -p "$dir" || return 1
    dir=$(cd "$dir" && pwd)
    sed -e "s|^local-address=.*|local-address=127.0.0.1|" \
        -e "s|^local-port=.*|local-port=$port|" \
        -e "s|^socket-dir=.*|socket-dir=$dir|" \
        -e "s|^remote-connection-string=.*|remote-connection-string=$conn|" \
        "$src" >"$dir/pdns.conf.tmp" || return 1
    cat >>"$dir/pdns.conf.tmp" <<EOF

# Local run (deploy/local/pdns.sh): in the foreground, no guardian, no syslog.
daemon=no
guardian=no
write-pid=no
disable-syslog=yes
EOF
    mv "$dir/pdns.conf.tmp" "$dir/pdns.conf"
}

# pdns_port <dir>: the port of a rendered config.
pdns_port() {
    sed -n 's/^local-port=//p' "$1/pdns.conf"
}

# pdns_start <dir>: starts pdns_server on the rendered config, writes
# <dir>/pdns.pid and waits up to 15 s until the server answers a query.
pdns_start() {
    local dir=$1 port pid i
    dir=$(cd "$dir" && pwd) || return 1
    port=$(pdns_port "$dir")
    command -v pdns_server >/dev/null || {
        echo "pdns.sh: pdns_server not found (apt-get install pdns-server pdns-backend-remote)" >&2
        return 1
    }
    pdns_server --config-dir="$dir" >>"$dir/pdns.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pdns.pid"
    for ((i = 0; i < 150; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "pdns.sh: pdns_server exited; see $dir/pdns.log" >&2
            return 1
        fi
        # Any answer (even REFUSED or NXDOMAIN) means it is up.
        if dig +tries=1 +time=1 -p "$port" @127.0.0.1 . SOA >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "pdns.sh: pdns_server on port $port did not answer; see $dir/pdns.log" >&2
    return 1
}

# pdns_stop <dir>: stops the server started by pdns_start (SIGTERM, then SIGKILL).
pdns_stop() {
    local dir=$1 pid i
    [[ -f $dir/pdns.pid ]] || return 0
    pid=$(cat "$dir/pdns.pid")
    # Only the pdns_server of this directory (a stale pid file may name another process).
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" |
        grep -qF -- "pdns_server --config-dir=$(cd "$dir" && pwd)"; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pdns.pid"
}

# pdns_dig_line <dir> <name> [subnet]: a dig command line a person can copy.
pdns_dig_line() {
    local dir=$1 name=$2 subnet=${3:-}
    echo "dig @127.0.0.1 -p $(pdns_port "$dir") ${subnet:++subnet=$subnet }$name A"
}

# pdns_city_db <build-dir> <out-dir>: a City DB whose client networks have
# locations (tests/integration/dns_test_mmdb.pl: DE, FR, JP, US, BR, ...), copied
# from the build tree or generated; prints its path. The dns node uses it as
# maxmind.city_db (countries for hits, locations for the nearest member).
pdns_city_db() {
    local build=$1 out=$2 src
    src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    mkdir -p "$out" || return 1
    if [[ ! -s $out/dns-city.mmdb ]]; then
        if [[ -s $build/tests/integration/dns-mmdb/dns-city.mmdb ]]; then
            cp "$build/tests/integration/dns-mmdb/dns-city.mmdb" "$out/" || return 1
        else
            perl "$src/tests/integration/dns_test_mmdb.pl" "$out" >&2 || return 1
        fi
    fi
    echo "$out/dns-city.mmdb"
}

# The demo's clients: an ECS subnet per country of the City DB above.
PDNS_DEMO_SUBNETS=(DE:192.0.2.0/24 FR:198.51.100.0/24 JP:203.0.113.0/24 US:100.64.0.0/24
                   BR:100.64.1.0/24 DE:2001:db8:1::/48 JP:2001:db8:3::/48)

# pdns_demo_queries <dir> <name> [rounds]: real DNS queries for <name> (A and
# AAAA) through the PowerDNS of <dir>, one per demo client and type per round;
# prints "<country> <subnet> <type> <answer>" for each.
pdns_demo_queries() {
    local dir=$1 name=$2 rounds=${3:-1} port r c t cc subnet ans
    port=$(pdns_port "$dir")
    for ((r = 0; r < rounds; r++)); do
        for c in "${PDNS_DEMO_SUBNETS[@]}"; do
            cc=${c%%:*} subnet=${c#*:}
            for t in A AAAA; do
                ans=$(dig +short +tries=1 +time=2 -p "$port" @127.0.0.1 +subnet="$subnet" \
                    "$name" "$t" 2>/dev/null | tr '\n' ' ') || ans=""
                echo "$cc $subnet $t ${ans:--}"
            done
        done
    done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    cmd=${1:-}
    case $cmd in
    render) (($# == 4)) || { echo "usage: $0 render <dir> <port> <connection-string>" >&2; exit 2; }
        pdns_render "$2" "$3" "$4" ;;
    start) (($# == 2)) || { echo "usage: $0 start <dir>" >&2; exit 2; }
        pdns_start "$2" ;;
    stop) (($# == 2)) || { echo "usage: $0 stop <dir>" >&2; exit 2; }
        pdns_stop "$2" ;;
    city-db) (($# == 3)) || { echo "usage: $0 city-db <build-dir> <out-dir>" >&2; exit 2; }
        pdns_city_db "$2" "$3" ;;
    demo-queries) (($# >= 3)) || { echo "usage: $0 demo-queries <dir> <name> [rounds]" >&2; exit 2; }
        pdns_demo_queries "$2" "$3" "${4:-1}" ;;
    *) echo "usage: $0 render|start|stop ... (see the top of $0)" >&2; exit 2 ;;
    esac
fi
