#!/usr/bin/env bash
# Installs the Debian packages the project needs to build, test and run the
# local cluster, if any are missing. As root it runs apt-get itself; otherwise
# it uses passwordless sudo when available, or prints the one command to run.
set -euo pipefail

packages=(
    # build
    gcc make cmake pkg-config
    protobuf-c-compiler libprotobuf-c-dev
    libnats-dev libmariadb-dev libmaxminddb-dev libsodium-dev libjansson-dev
    # the monitor's member checks (node/monitor): HTTPS and TLS through libcurl
    # (OpenSSL flavour), certificates read with OpenSSL
    libcurl4-openssl-dev libssl-dev
    # tests
    libcmocka-dev libmaxmind-db-writer-perl
    # fuzz tests (tests/run-fuzz.sh): clang and its libFuzzer runtime
    clang libclang-rt-14-dev
    # fault tests (tests/fault): a skewed clock, network namespaces, memcheck;
    # TLS certificates for the NATS authentication tests
    libfaketime iproute2 valgrind openssl
    # servers and their clients (the tests and the local cluster start their own)
    nats-server mariadb-server mariadb-client
    # the dns role: PowerDNS with its remote backend (the tests and the local cluster
    # start their own pdns_server), the HTTP connector's library, DNS clients and
    # the DNS benchmark (with the bind backend as its baseline)
    pdns-server pdns-backend-remote pdns-backend-bind libmicrohttpd-dev dnsutils knot-dnsutils
    dnsperf
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
((${#missing[@]} == 0)) && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]]; then
    echo "ensure-deps: installing ${missing[*]}" >&2
    # Package scripts must not start system services: the project runs its own servers.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
    fi
    status=0
    bash -c "$cmd" || status=$?
    ((added_policy)) && rm -f "$policy"
    exit "$status"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "ensure-deps: installing ${missing[*]} with sudo" >&2
    sudo bash -c "$cmd"
else
    echo "ensure-deps: missing Debian packages: ${missing[*]}" >&2
    echo "Run this as root, then try again:" >&2
    echo "  $cmd" >&2
    exit 1
fi
