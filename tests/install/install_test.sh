#!/usr/bin/env bash
# The install, end to end: `cmake --install` of a built tree into a temporary
# prefix, then a small program against the installed data library through its
# pkg-config file (ibp-data.pc): it includes <ibp/data.h>, opens a data store
# with a network config, records a DNS hit and asks whether members are online.
# Also: every installed public header compiles on its own, ibpctl and the
# daemons are installed with the SQL files, and the program links neither
# libnats nor libmariadb.
#
#   install_test.sh BUILD_DIR [CC [EXTRA_CFLAGS...]]
# EXTRA_CFLAGS: the sanitizer flags the build's libraries were compiled with.
set -euo pipefail

build=${1:?usage: install_test.sh BUILD_DIR [CC [EXTRA_CFLAGS...]]}
cc=${2:-cc}
shift $(($# >= 2 ? 2 : 1))
extra=("$@")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ibp-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log" >&2; fail "cmake --install"; }

for f in bin/ibp-node bin/ibp-persist bin/ibpctl; do
    [[ -x $prefix/$f ]] || fail "$f not installed"
done
ls "$prefix"/share/ibp/sql/*.sql >/dev/null 2>&1 || fail "no SQL files in share/ibp/sql"
[[ -f $prefix/lib/pkgconfig/ibp-data.pc ]] || fail "lib/pkgconfig/ibp-data.pc not installed"
[[ -f $prefix/include/ibp/data.h ]] || fail "include/ibp/data.h not installed"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
read -r -a pc <<<"$(pkg-config --cflags --libs ibp-data)" || fail "pkg-config ibp-data"
read -r -a pc_cflags <<<"$(pkg-config --cflags ibp-data)"

# Each installed header stands alone (everything it includes is installed).
for h in "$prefix"/include/ibp/*.h; do
    printf '#include <ibp/%s>\n' "${h##*/}" >"$tmp/one.c"
    "$cc" -std=c11 -Wall -Werror "${pc_cflags[@]}" -fsyntax-only "$tmp/one.c" ||
        fail "installed header ibp/${h##*/} does not compile on its own"
done

mkdir -p "$tmp/work" "$tmp/batches"
cat >"$tmp/members.json" <<'JSON'
{"Alpha": {"Details": {"Name": "Alpha"}, "Membership": {"MemberLevel": 6},
           "Service": {"Active": 1, "ServiceIPv4": "192.0.2.10"},
           "ServiceAssignments": {"Paseo": ["Paseo"]}},
 "Beta":  {"Details": {"Name": "Beta"}, "Membership": {"MemberLevel": 6},
           "Service": {"Active": 1, "ServiceIPv4": "192.0.2.20"},
           "ServiceAssignments": {"Paseo": ["Paseo"]}}}
JSON
cat >"$tmp/services.json" <<'JSON'
{"Paseo": {"Configuration": {"Name": "Paseo", "ServiceType": "RPC", "Active": 1, "LevelRequired": 3},
           "Providers": {"Ibp": {"RpcUrls": ["wss://paseo.example.net"]}}}}
JSON

cat >"$tmp/prog.c" <<'C'
#include <ibp/data.h>
#include <stdio.h>
int main(int argc, char **argv) {
    ibp_err e = {0}; ibp_network *net; ibp_usage_sink sink; ibp_usage_opts u; ibp_data_opts o; ibp_data *d;
    if (argc != 5 || ibp_network_load(argv[2], argv[3], NULL, &net, &e) || ibp_usage_file_sink_open(argv[4], &sink, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    ibp_usage_opts_init(&u); u.node_id = "install"; u.sink = &sink;
    ibp_data_opts_init(&o); o.work_dir = argv[1]; o.network = net; o.usage = &u;
    if (ibp_data_open(&o, &d, &e) || ibp_usage_record_dns_hit(ibp_data_usage(d), false, "192.0.2.1", "paseo.example.net", "Alpha") || ibp_store_member_disable(ibp_data_store(d), "Beta", "test", &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    ibp_usage_stats st; ibp_usage_stats_get(ibp_data_usage(d), &st);
    printf("hits %llu alpha %d beta %d\n", (unsigned long long)st.hits, ibp_store_member_online(ibp_data_store(d), "paseo.example.net", "Alpha", false), ibp_store_member_online(ibp_data_store(d), "paseo.example.net", "Beta", false));
    if (ibp_data_close(d, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    ibp_usage_sink_close(&sink); ibp_network_free(net); return 0; }
C

"$cc" -std=c11 -Wall -Wextra -Werror "${extra[@]}" -o "$tmp/prog" "$tmp/prog.c" "${pc[@]}" ||
    fail "building prog.c with pkg-config ibp-data: ${pc[*]}"
out=$("$tmp/prog" "$tmp/work" "$tmp/members.json" "$tmp/services.json" "$tmp/batches") ||
    fail "prog exited $?"
expect="hits 1 alpha 1 beta 0"
[[ $out == "$expect" ]] || fail "prog printed '$out', expected '$expect'"
# The close flushed the hit and the file sink delivered it as one batch.
ls "$tmp"/batches/*.hitbatch >/dev/null 2>&1 || fail "no HitBatch delivered to the sink"

libs=$(ldd "$tmp/prog") || fail "ldd prog"
if grep -Ei 'libnats|libmariadb|libmysql' <<<"$libs"; then
    fail "a program linking ibp-data links NATS or MariaDB"
fi

# The installed programs run from their prefix and find its SQL files
# (ibp_schema_default_dir, which ibpctl shares), not the source tree's.
"$prefix/bin/ibpctl" --help >/dev/null 2>&1 || fail "installed ibpctl --help"
sql_dir="$(cd "$prefix/share/ibp/sql" && pwd -P)"
help=$("$prefix/bin/ibp-persist" --help 2>&1) || fail "installed ibp-persist --help"
grep -qF "$sql_dir" <<<"$help" || fail "installed ibp-persist does not default to $sql_dir"

echo "ok: installed into a temporary prefix; prog printed '$out'; ldd shows no libnats, no libmariadb"
