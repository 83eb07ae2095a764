/*
 * Unit tests: the check modules' pure parts. ExtraOptions and their
 * defaults, module selection, and every pass/fail rule of ping, ssl, wss
 * and ethrpc from parsed responses, with the JSON-RPC reading in front of
 * them. No sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ibp/check.h"
#include "ibp/check_rules.h"

#define assert_contains(s, sub)                                                                    \
    do {                                                                                           \
        if (!strstr((s), (sub)))                                                                   \
            fail_msg("\"%s\" does not contain \"%s\"", (s), (sub));                                \
    } while (0)

static ibp_check_params params(const char *name, const char *json)
{
    ibp_check_params p;
    ibp_err err = {0};
    if (ibp_check_params_parse(name, json, &p, &err) != IBP_OK)
        fail_msg("parse %s: %s", json, err.msg);
    return p;
}

static void test_defaults(void **state)
{
    (void)state;
    ibp_check_params p = params("ping", "{}");
    assert_true(p.module_known);
    assert_int_equal(p.module, IBP_CHECK_MODULE_PING);
    assert_int_equal(p.ping_count, 3);
    assert_int_equal(p.ping_interval_ms, 100);
    assert_int_equal(p.ping_timeout_ms, 1000);
    assert_int_equal(p.ping_size, 32);
    assert_int_equal(p.ping_ttl, 64);
    assert_true(p.max_packet_loss_pct == 5.0);
    assert_int_equal(p.max_latency_ms, 800);
    assert_int_equal(p.min_days_until_expiry, 5);
    assert_int_equal(p.minimum_peers, 5);
    assert_true(p.check_archive);
    assert_string_equal(p.genesis_state_root, "");
    assert_string_equal(p.connect, "");
    assert_int_equal(p.port, 0);
    ibp_check_params_free(&p);
}

static void test_options(void **state)
{
    (void)state;
    ibp_check_params p = params(
        "x", "{\"module\": \"WSS\", \"port\": 8443, \"ports\": {\"A\": 9443}, \"connect\": \"::1\","
             " \"PingCount\": 5, \"PingInterval\": 50, \"PingTimeout\": 300, \"PingSize\": 56,"
             " \"PingTTL\": 10, \"MaxPacketLoss\": 20.5, \"MaxLatency\": 100,"
             " \"MinDaysUntilExpiry\": 14, \"MinimumPeers\": 2, \"CheckArchive\": false,"
             " \"GenesisStateRoot\": \"0xabc\", \"NetworkName\": \"Paseo\", \"other\": [1]}");
    assert_true(p.module_known);
    assert_int_equal(p.module, IBP_CHECK_MODULE_WSS);
    assert_int_equal(ibp_check_params_port(&p, "A"), 9443);
    assert_int_equal(ibp_check_params_port(&p, "B"), 8443);
    assert_string_equal(p.connect, "::1");
    assert_true(p.connect_v6);
    assert_int_equal(p.ping_count, 5);
    assert_int_equal(p.ping_interval_ms, 50);
    assert_int_equal(p.ping_timeout_ms, 300);
    assert_int_equal(p.ping_size, 56);
    assert_int_equal(p.ping_ttl, 10);
    assert_true(p.max_packet_loss_pct == 20.5);
    assert_int_equal(p.max_latency_ms, 100);
    assert_int_equal(p.min_days_until_expiry, 14);
    assert_int_equal(p.minimum_peers, 2);
    assert_false(p.check_archive);
    assert_string_equal(p.genesis_state_root, "0xabc");
    assert_string_equal(p.network_name, "Paseo");
    ibp_check_params_free(&p);
}

static void test_module_selection(void **state)
{
    (void)state;
    struct {
        const char *name, *json;
        bool known;
        ibp_check_module m;
    } cases[] = {
        {"ssl", "{}", true, IBP_CHECK_MODULE_SSL},
        {"EthRpc", "{}", true, IBP_CHECK_MODULE_ETHRPC},
        {"tcp-site", "{}", true, IBP_CHECK_MODULE_TCP},
        {"wss-archive", "{}", true, IBP_CHECK_MODULE_WSS},
        {"anything", "{\"module\": \"ping\"}", true, IBP_CHECK_MODULE_PING},
        {"ssl", "{\"module\": \"tcp\"}", true, IBP_CHECK_MODULE_TCP},
        {"http", "{}", false, 0},
        {"x", "{\"module\": \"smtp\"}", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ibp_check_params p = params(cases[i].name, cases[i].json);
        assert_int_equal(p.module_known, cases[i].known);
        if (cases[i].known)
            assert_int_equal(p.module, cases[i].m);
        else
            assert_true(p.module_text[0] != '\0');
        ibp_check_params_free(&p);
    }
}

static void test_bad_options(void **state)
{
    (void)state;
    const char *bad[][2] = {
        {"[1]", "ExtraOptions is not a JSON object"},
        {"{\"port\": 0}", "ExtraOptions.port"},
        {"{\"ports\": {\"A\": \"1\"}}", "ExtraOptions.ports"},
        {"{\"connect\": \"example.com\"}", "ExtraOptions.connect"},
        {"{\"module\": 1}", "ExtraOptions.module"},
        {"{\"PingCount\": 0}", "ExtraOptions.PingCount"},
        {"{\"PingTTL\": 300}", "ExtraOptions.PingTTL"},
        {"{\"MaxPacketLoss\": 101}", "ExtraOptions.MaxPacketLoss"},
        {"{\"MaxLatency\": \"800\"}", "ExtraOptions.MaxLatency"},
        {"{\"MinDaysUntilExpiry\": -1}", "ExtraOptions.MinDaysUntilExpiry"},
        {"{\"MinimumPeers\": 1.5}", "ExtraOptions.MinimumPeers"},
        {"{\"CheckArchive\": 1}", "ExtraOptions.CheckArchive"},
        {"{\"NetworkName\": 5}", "ExtraOptions.NetworkName"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ibp_check_params p;
        ibp_err err = {0};
        assert_int_equal(ibp_check_params_parse("c", bad[i][0], &p, &err), IBP_E_CONFIG);
        assert_contains(err.msg, "check c: ");
        assert_contains(err.msg, bad[i][1]);
    }
}

/* ---- ping --------------------------------------------------------------- */

static void test_ping_rules(void **state)
{
    (void)state;
    ibp_check_params p = params("ping", "{}");
    char why[256];
    ibp_ping_stats s;
    double rtts[] = {10, 20, 30};
    ibp_ping_stats_make(rtts, 3, 3, &s);
    assert_true(s.loss_pct == 0 && s.min_ms == 10 && s.max_ms == 30 && s.avg_ms == 20);
    assert_true(ibp_ping_judge(&p, &s, why, sizeof why));
    assert_string_equal(why, "");

    ibp_ping_stats_make(rtts, 0, 3, &s); /* no reply */
    assert_false(ibp_ping_judge(&p, &s, why, sizeof why));
    assert_contains(why, "no reply to 3");

    ibp_ping_stats_make(rtts, 2, 3, &s); /* 33 % loss over 5 % */
    assert_false(ibp_ping_judge(&p, &s, why, sizeof why));
    assert_contains(why, "packet loss 33.3%");

    double slow[] = {700, 900, 950}; /* average 850 over 800 */
    ibp_ping_stats_make(slow, 3, 3, &s);
    assert_false(ibp_ping_judge(&p, &s, why, sizeof why));
    assert_contains(why, "average round trip 850.0 ms over 800 ms");

    double edge[] = {800, 800, 800}; /* exactly the limit passes */
    ibp_ping_stats_make(edge, 3, 3, &s);
    assert_true(ibp_ping_judge(&p, &s, why, sizeof why));

    ibp_check_params lossy = params("ping", "{\"MaxPacketLoss\": 50}");
    ibp_ping_stats_make(rtts, 2, 3, &s);
    assert_true(ibp_ping_judge(&lossy, &s, why, sizeof why));

    char *data = ibp_ping_data(&s);
    assert_contains(data, "\"sent\":3");
    assert_contains(data, "\"received\":2");
    assert_contains(data, "\"avg_rtt_ms\":15");
    free(data);
    ibp_check_params_free(&p);
    ibp_check_params_free(&lossy);
}

/* ---- ssl ---------------------------------------------------------------- */

static void test_ssl_rules(void **state)
{
    (void)state;
    ibp_check_params p = params("ssl", "{}");
    const int64_t now = 1700000000, day = 86400;
    char why[256];
    assert_int_equal(ibp_ssl_days_until(now + 30 * day, now), 30);
    assert_int_equal(ibp_ssl_days_until(now + 5 * day - 1, now), 4);
    assert_int_equal(ibp_ssl_days_until(now - 1, now), -1);
    ibp_ssl_facts f = {.not_after_s = now + 30 * day, .port = 443, .issuer = "Test CA"};
    assert_true(ibp_ssl_judge(&p, &f, now, why, sizeof why));
    f.not_after_s = now + 5 * day; /* exactly 5 days left passes */
    assert_true(ibp_ssl_judge(&p, &f, now, why, sizeof why));
    f.not_after_s = now + 3 * day;
    assert_false(ibp_ssl_judge(&p, &f, now, why, sizeof why));
    assert_contains(why, "expires in 3 days (fewer than 5)");
    f.not_after_s = now - 2 * day;
    assert_false(ibp_ssl_judge(&p, &f, now, why, sizeof why));
    assert_contains(why, "expired 2 days ago");
    f.not_after_s = now + 3 * day;
    char *data = ibp_ssl_data(&f, now);
    assert_contains(data, "\"DaysUntilExpiry\":3");
    assert_contains(data, "\"Port\":443");
    assert_contains(data, "\"Issuer\":\"Test CA\"");
    assert_contains(data, "\"ExpiryTimestamp\":1700259200");
    free(data);
    ibp_check_params_free(&p);
}

/* ---- JSON-RPC ----------------------------------------------------------- */

static json_t *rpc_ok(const char *body, int64_t id)
{
    json_t *r = NULL;
    char why[256];
    if (!ibp_jsonrpc_read(body, strlen(body), id, &r, why, sizeof why))
        fail_msg("%s: %s", body, why);
    return r;
}

static void rpc_bad(const char *body, int64_t id, const char *want)
{
    json_t *r = NULL;
    char why[256];
    assert_false(ibp_jsonrpc_read(body, strlen(body), id, &r, why, sizeof why));
    assert_null(r);
    assert_contains(why, want);
}

static void test_jsonrpc(void **state)
{
    (void)state;
    json_t *r = rpc_ok("{\"jsonrpc\":\"2.0\",\"id\":3,\"result\":\"0x12\"}", 3);
    assert_string_equal(json_string_value(r), "0x12");
    json_decref(r);
    r = rpc_ok("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}", 1);
    assert_true(json_is_null(r));
    json_decref(r);
    rpc_bad("garbage", 1, "not JSON");
    rpc_bad("[1]", 1, "not an object");
    rpc_bad("{\"id\":2,\"result\":1}", 1, "another request");
    rpc_bad("{\"id\":1,\"error\":{\"code\":-32601,\"message\":\"Method not found\"}}", 1,
            "error -32601: Method not found");
    rpc_bad("{\"id\":1}", 1, "without a result");
    char buf[128];
    ibp_jsonrpc_request(buf, sizeof buf, 7, "system_health", NULL);
    assert_string_equal(buf, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"system_health\","
                             "\"params\":[]}");
}

/* ---- wss ---------------------------------------------------------------- */

static void take(ibp_substrate_facts *f, const char *method, bool genesis, const char *json)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    char why[256];
    if (!ibp_substrate_take(f, method, genesis, v, why, sizeof why))
        fail_msg("%s %s: %s", method, json, why);
    json_decref(v);
}

static ibp_substrate_facts healthy(void)
{
    ibp_substrate_facts f = {0};
    take(&f, "chain_getBlockHash", false, "\"0xaa\"");
    take(&f, "chain_getBlockHash", true, "\"0x91b1\"");
    take(&f, "chain_getHeader", true, "{\"stateRoot\": \"0x29D0\", \"number\": \"0x0\"}");
    take(&f, "system_chain", false, "\"Paseo Testnet\"");
    take(&f, "system_health", false,
         "{\"peers\": 12, \"isSyncing\": false, "
         "\"shouldHavePeers\": true}");
    return f;
}

static void test_substrate_rules(void **state)
{
    (void)state;
    ibp_check_params p = params("wss", "{}");
    char why[256];
    ibp_substrate_facts f = healthy();
    assert_true(ibp_substrate_judge(&p, "paseo testnet", &f, why, sizeof why));
    assert_true(ibp_substrate_judge(&p, "", &f, why, sizeof why)); /* no name: not compared */

    f = healthy();
    f.syncing = true;
    assert_false(ibp_substrate_judge(&p, "Paseo Testnet", &f, why, sizeof why));
    assert_contains(why, "syncing");

    f = healthy();
    f.peers = 4;
    assert_false(ibp_substrate_judge(&p, "Paseo Testnet", &f, why, sizeof why));
    assert_contains(why, "4 peers, fewer than 5");
    f.peers = 5;
    assert_true(ibp_substrate_judge(&p, "Paseo Testnet", &f, why, sizeof why));

    f = healthy();
    assert_false(ibp_substrate_judge(&p, "Polkadot", &f, why, sizeof why));
    assert_contains(why, "wrong chain \"Paseo Testnet\", want \"Polkadot\"");
    ibp_check_params named = params("wss", "{\"NetworkName\": \"Paseo Testnet\"}");
    assert_true(ibp_substrate_judge(&named, "Polkadot", &f, why, sizeof why));

    f = healthy();
    f.have_genesis = false; /* not archive */
    f.genesis_hash[0] = '\0';
    assert_false(ibp_substrate_judge(&p, "Paseo Testnet", &f, why, sizeof why));
    assert_contains(why, "not an archive node");
    ibp_check_params noarch = params("wss", "{\"CheckArchive\": false}");
    assert_true(ibp_substrate_judge(&noarch, "Paseo Testnet", &f, why, sizeof why));

    f = healthy();
    f.have_latest = false;
    assert_false(ibp_substrate_judge(&p, "Paseo Testnet", &f, why, sizeof why));
    assert_contains(why, "no latest block hash");

    f = healthy();
    ibp_check_params root = params("wss", "{\"GenesisStateRoot\": \"0x29d0\"}");
    assert_true(ibp_substrate_judge(&root, "Paseo Testnet", &f, why, sizeof why));
    snprintf(f.state_root, sizeof f.state_root, "0xbeef");
    assert_false(ibp_substrate_judge(&root, "Paseo Testnet", &f, why, sizeof why));
    assert_contains(why, "genesis state root 0xbeef, want 0x29d0");

    f = healthy();
    f.have_health = false;
    assert_false(ibp_substrate_judge(&p, "Paseo Testnet", &f, why, sizeof why));
    assert_contains(why, "system_health");

    /* Shapes refused when taking a result. */
    ibp_substrate_facts g = {0};
    json_t *v = json_string("");
    assert_false(ibp_substrate_take(&g, "chain_getBlockHash", false, v, why, sizeof why));
    json_decref(v);
    v = json_null(); /* a pruned node answers null for block 0 */
    assert_false(ibp_substrate_take(&g, "chain_getBlockHash", true, v, why, sizeof why));
    assert_contains(why, "no block hash");
    v = json_loads("{\"peers\": \"12\", \"isSyncing\": false}", 0, NULL);
    assert_false(ibp_substrate_take(&g, "system_health", false, v, why, sizeof why));
    json_decref(v);
    v = json_integer(1);
    assert_false(ibp_substrate_take(&g, "system_chain", false, v, why, sizeof why));
    json_decref(v);

    f = healthy();
    f.latency_ms = 7;
    char *data = ibp_substrate_data(&f);
    assert_contains(data, "\"Syncing\":false");
    assert_contains(data, "\"Peers\":12");
    assert_contains(data, "\"Network\":\"Paseo Testnet\"");
    assert_contains(data, "\"Archive\":true");
    assert_contains(data, "\"LatencyMs\":7");
    free(data);
    ibp_check_params_free(&p);
    ibp_check_params_free(&named);
    ibp_check_params_free(&noarch);
    ibp_check_params_free(&root);
}

/* ---- ethrpc ------------------------------------------------------------- */

static void eth(ibp_eth_facts *f, const char *method, const char *json, bool ok)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    char why[256];
    assert_int_equal(ibp_eth_take(f, method, v, why, sizeof why), ok);
    json_decref(v);
}

static ibp_eth_facts eth_healthy(void)
{
    ibp_eth_facts f = {0};
    eth(&f, "eth_chainId", "\"0x190f1b44\"", true);
    eth(&f, "eth_blockNumber", "\"0x1b4\"", true);
    eth(&f, "net_version", "\"420420420\"", true);
    eth(&f, "eth_syncing", "false", true);
    return f;
}

static void test_eth_rules(void **state)
{
    (void)state;
    ibp_check_params p = params("ethrpc", "{}");
    char why[256];
    ibp_eth_facts f = eth_healthy();
    assert_int_equal(f.chain_id, 420420420);
    assert_int_equal(f.block_number, 436);
    assert_true(ibp_eth_judge(&p, "420420420", &f, why, sizeof why));  /* net_version */
    assert_true(ibp_eth_judge(&p, "0x190F1B44", &f, why, sizeof why)); /* chain id, hex */
    assert_true(ibp_eth_judge(&p, "", &f, why, sizeof why));
    assert_false(ibp_eth_judge(&p, "1", &f, why, sizeof why));
    assert_contains(why, "wrong network");

    eth(&f, "eth_syncing", "{\"startingBlock\": \"0x0\", \"currentBlock\": \"0x1\"}", true);
    assert_false(ibp_eth_judge(&p, "", &f, why, sizeof why));
    assert_contains(why, "syncing");

    ibp_eth_facts g = {0};
    eth(&g, "eth_chainId", "\"12\"", false);
    eth(&g, "eth_blockNumber", "\"0x\"", false);
    eth(&g, "net_version", "\"abc\"", false);
    eth(&g, "eth_syncing", "\"no\"", false);
    assert_false(ibp_eth_judge(&p, "", &g, why, sizeof why));
    assert_contains(why, "missing answers");

    f = eth_healthy();
    char *data = ibp_eth_data(&f);
    assert_contains(data, "\"ChainId\":420420420");
    assert_contains(data, "\"BlockNumber\":436");
    assert_contains(data, "\"Syncing\":false");
    free(data);
    ibp_check_params_free(&p);
}

/* ---- purity ------------------------------------------------------------------ */

/* The pure parts of the checks touch no clock, socket, file, thread or library of I/O. */
static void test_purity(void **state)
{
    (void)state;
    static const char *const files[] = {"check_params.c", "check_rules.c",  "check_plan.c",
                                        "check_sched.c",  "check_keyset.c", "ws_frame.c",
                                        "icmp_echo.c"};
    static const char *const banned[] = {"time(",   "clock_gettime", "ibp/clock.h", "pthread",
                                         "socket(", "poll(",         "curl",        "fopen",
                                         "getenv",  "rand(",         "sleep",       "ibp/log.h"};
    int bad = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/node/monitor/%s", IBP_SOURCE_DIR, files[f]);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        char line[1024];
        int lineno = 0;
        while (fgets(line, sizeof line, fp)) {
            lineno++;
            for (size_t b = 0; b < sizeof banned / sizeof banned[0]; b++)
                if (strstr(line, banned[b])) {
                    fprintf(stderr, "%s:%d: uses %s\n", path, lineno, banned[b]);
                    bad++;
                }
        }
        fclose(fp);
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),         cmocka_unit_test(test_options),
        cmocka_unit_test(test_module_selection), cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_ping_rules),       cmocka_unit_test(test_ssl_rules),
        cmocka_unit_test(test_jsonrpc),          cmocka_unit_test(test_substrate_rules),
        cmocka_unit_test(test_eth_rules),        cmocka_unit_test(test_purity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
