#!/usr/bin/env bash
# Integration: `ibpctl smoke` against the fixture's servers, twice (the second
# run continues the signer's sequence from its file), and a clear failure when
# NATS is unreachable.
set -euo pipefail
ibpctl=$1
# shellcheck disable=SC1090
source "${IBP_TEST_SERVERS_ENV:?run through ctest: the servers fixture sets it}"
# The server requires a login: smoke (its own stream ibp.smoke.>) runs as the
# test administrator, the queries as the operator (the admin role's user).
nats_url_of() { # USER PASSWORD_FILE
    printf 'nats://%s:%s@127.0.0.1:%s' "$1" "$(<"$2")" "$NATS_PORT"
}
test_url=$(nats_url_of "$NATS_USER" "$NATS_PASSWORD_FILE")
admin_url=$(nats_url_of "$NATS_ADMIN_USER" "$NATS_ADMIN_PASSWORD_FILE")
work=$(mktemp -d "${TMPDIR:-/tmp}/ibp-smoke.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
db="smoke_$$_$RANDOM"

run() {
    IBP_MYSQL_PASSWORD=$MYSQL_PASSWORD "$ibpctl" smoke --nats "$test_url" --mysql-host "$MYSQL_HOST" \
        --mysql-port "$MYSQL_PORT" --mysql-user "$MYSQL_USER" --database "$db" --work-dir "$work"
}
run_anonymous() {
    IBP_MYSQL_PASSWORD=$MYSQL_PASSWORD "$ibpctl" smoke --nats "$NATS_URL" --mysql-host "$MYSQL_HOST" \
        --mysql-port "$MYSQL_PORT" --mysql-user "$MYSQL_USER" --database "$db" --work-dir "$work"
}
out1=$(run)
echo "$out1"
out2=$(run)
echo "$out2"
for out in "$out1" "$out2"; do
    grep -q '"duplicate_dropped": true' <<<"$out" || { echo "FAIL: no duplicate drop"; exit 1; }
    grep -q '"type": "Heartbeat"' <<<"$out" || { echo "FAIL: not verified"; exit 1; }
    latest=$(ls "$(dirname "$0")/../../deploy/sql"/[0-9]*.sql | wc -l)
    grep -q "\"schema_version\": $latest" <<<"$out" || { echo "FAIL: schema not at version $latest"; exit 1; }
done
seq1=$(grep -o '"seq": [0-9]*' <<<"$out1" | grep -o '[0-9]*')
seq2=$(grep -o '"seq": [0-9]*' <<<"$out2" | grep -o '[0-9]*')
((seq2 > seq1)) || { echo "FAIL: sequence did not grow across runs ($seq1 -> $seq2)"; exit 1; }
[[ $(stat -c %a "$work/smoke.key") == 600 ]] || { echo "FAIL: key file mode"; exit 1; }

# The key must be refused once others can read it.
chmod 644 "$work/smoke.key"
if err=$(run 2>&1); then echo "FAIL: smoke accepted a world-readable key"; exit 1; fi
grep -q "chmod 600" <<<"$err" || { echo "FAIL: unclear key error: $err"; exit 1; }
chmod 600 "$work/smoke.key"

# Without a login the server refuses smoke: exit 1.
rc=0
err=$(run_anonymous 2>&1) || rc=$?
((rc == 1)) || { echo "FAIL: exit $rc for an anonymous connection"; exit 1; }
grep -qi "authoriz" <<<"$err" || { echo "FAIL: unclear error for an anonymous connection: $err"; exit 1; }

# Unreachable NATS: exit 1 and a message naming the URL.
rc=0
err=$("$ibpctl" smoke --nats nats://127.0.0.1:1 --work-dir "$work" 2>&1) || rc=$?
((rc == 1)) || { echo "FAIL: exit $rc for unreachable NATS"; exit 1; }
grep -q "nats://127.0.0.1:1" <<<"$err" || { echo "FAIL: unclear error: $err"; exit 1; }
# Queries are answered by ibp-persist: without one, a clear message and exit 1;
# missing arguments are a usage error (exit 2).
rc=0
err=$("$ibpctl" events --nats "$admin_url" --member X --start 2025-01-01 --end 2025-01-02 2>&1) || rc=$?
((rc == 1)) || { echo "FAIL: events without persist exited $rc"; exit 1; }
grep -q "is ibp-persist running" <<<"$err" || { echo "FAIL: unclear error: $err"; exit 1; }
rc=0
"$ibpctl" usage --nats "$admin_url" >/dev/null 2>&1 || rc=$?
((rc == 2)) || { echo "FAIL: usage without dates exited $rc"; exit 1; }
# replay runs ibp-persist replay: its usage errors come through (exit 2).
rc=0
err=$("$ibpctl" replay 2>&1) || rc=$?
((rc == 2)) || { echo "FAIL: replay without --config exited $rc"; exit 1; }
grep -q -- "--config" <<<"$err" || { echo "FAIL: unclear replay error: $err"; exit 1; }

mariadb --no-defaults -h"$MYSQL_HOST" -P"$MYSQL_PORT" -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" -e "DROP DATABASE \`$db\`"
echo "PASS"
