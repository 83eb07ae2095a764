#!/usr/bin/env bash
# Makes the certificates of the member doubles in DIR (tests/doubles): a CA
# and leaf certificates signed by it, each for the given host names:
#   ca.pem                   the CA (give it to the checks: checks.ca_file)
#   ok.pem/ok.key            valid 30 days, for NAMES
#   expiring.pem/.key        valid 3 days, for NAMES
#   wrongname.pem/.key       valid 30 days, for wrong.invalid only
# Usage: make-certs.sh DIR NAME [NAME...]
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
cd "$dir"
san=$(printf 'DNS:%s,' "$@")
san=${san%,},IP:127.0.0.1,IP:::1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj "/O=IBP Test CA/CN=IBP Test CA" -keyout ca.key -out ca.pem 2>/dev/null
leaf() {
    local name=$1 days=$2 alt=$3
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=${name}" -keyout "$name.key" -out "$name.csr" 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days "$days" -out "$name.pem" \
        -extfile <(printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$alt") 2>/dev/null
    rm -f "$name.csr"
}
leaf ok 30 "$san"
leaf expiring 3 "$san"
leaf wrongname 30 "DNS:wrong.invalid"
chmod 600 ./*.key
