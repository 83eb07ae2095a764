#!/usr/bin/env bash
# Checks that the example configs in deploy/systemd are what the settings
# tables generate today (ibp-node --print-example-config, ibp-persist
# --example-config), so they never drift from the programs. To refresh them:
#   build/node/daemon/ibp-node --print-example-config > deploy/systemd/node.example.json
#   build/persist/ibp-persist --example-config > deploy/systemd/persist.example.json
set -euo pipefail
node_bin=$1 persist_bin=$2 dir=$3
status=0
check() {
    local name=$1
    shift
    if ! diff -u "$dir/$name" <("$@") >&2; then
        echo "FAIL: $dir/$name differs from the output of $* (see the diff above)" >&2
        status=1
    fi
}
check node.example.json "$node_bin" --print-example-config
check persist.example.json "$persist_bin" --example-config
((status == 0)) && echo "example configs match the settings tables"
exit "$status"
