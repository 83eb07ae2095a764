/*
 * Integration: the check modules against the member doubles (tests/doubles)
 * on 127.0.0.1 and ::1, with a CA and certificates the test makes. Each
 * module dials the given address with SNI/Host = the domain, and each
 * misbehaviour of the double gives a down result that says why, within the
 * check's Timeout. No NATS: the checks alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ibp/clock.h"
#include "ibp/check_run.h"
#include "member_double.h"

#define HOST "rpc.test.example"
#define ETH_HOST "eth.test.example"

static char dir[256];
static char ca[300], ok_cert[300], ok_key[300], exp_cert[300], exp_key[300], wrong_cert[300],
    wrong_key[300];
static bool have_v6;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "%s/ibp-checks.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s/tests/doubles/make-certs.sh' '%s' %s %s", IBP_SOURCE_DIR,
             dir, HOST, ETH_HOST);
    if (system(cmd) != 0) {
        fprintf(stderr, "make-certs.sh failed\n");
        return -1;
    }
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(ok_cert, sizeof ok_cert, "%s/ok.pem", dir);
    snprintf(ok_key, sizeof ok_key, "%s/ok.key", dir);
    snprintf(exp_cert, sizeof exp_cert, "%s/expiring.pem", dir);
    snprintf(exp_key, sizeof exp_key, "%s/expiring.key", dir);
    snprintf(wrong_cert, sizeof wrong_cert, "%s/wrongname.pem", dir);
    snprintf(wrong_key, sizeof wrong_key, "%s/wrongname.key", dir);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    have_v6 = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ibp_check_global_init() == IBP_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A target as the plan makes them, for one module. */
typedef struct tgt {
    ibp_check_target t;
    char addr[64], host[128], path[128], opts[256], network[64];
} tgt;

static void make(tgt *g, ibp_check_module m, const char *addr, unsigned port, const char *host,
                 const char *path, const char *opts, const char *network, int64_t timeout_ms)
{
    memset(g, 0, sizeof *g);
    snprintf(g->addr, sizeof g->addr, "%s", addr);
    snprintf(g->host, sizeof g->host, "%s", host);
    snprintf(g->path, sizeof g->path, "%s", path);
    snprintf(g->opts, sizeof g->opts, "%s", opts ? opts : "{}");
    snprintf(g->network, sizeof g->network, "%s", network ? network : "");
    ibp_err err = {0};
    if (ibp_check_params_parse(ibp_check_module_name(m), g->opts, &g->t.params, &err) != IBP_OK)
        fail_msg("params: %s", err.msg);
    g->t.type = m == IBP_CHECK_MODULE_SSL ? IBP_CHECK_DOMAIN : IBP_CHECK_ENDPOINT;
    g->t.module = m;
    g->t.check = (char *)ibp_check_module_name(m);
    g->t.member = "Alpha";
    g->t.domain = g->host;
    g->t.endpoint = "";
    g->t.host = g->host;
    g->t.path = g->path;
    g->t.addr = g->addr;
    g->t.network_name = g->network;
    g->t.options = g->opts;
    g->t.tls = true;
    g->t.port = port;
    g->t.ipv6 = strchr(addr, ':') != NULL;
    g->t.timeout_ms = timeout_ms;
    g->t.interval_ms = 60000;
}

static ibp_check_outcome run(tgt *g, const char *ca_file)
{
    ibp_check_env env = {.ca_file = ca_file, .max_response_bytes = 1 << 20};
    ibp_check_outcome o;
    ibp_check_run(&g->t, &env, &o);
    ibp_check_params_free(&g->t.params);
    return o;
}

#define expect_down(o, part)                                                                       \
    do {                                                                                           \
        if ((o).up || !strstr((o).error, (part)))                                                  \
            fail_msg("want down with \"%s\", got up=%d \"%s\"", (part), (o).up, (o).error);        \
    } while (0)

#define expect_up(o)                                                                               \
    do {                                                                                           \
        if (!(o).up)                                                                               \
            fail_msg("want up, got \"%s\"", (o).error);                                            \
    } while (0)

static void test_wss(void **state)
{
    (void)state;
    unsigned port = 0;
    ibp_double *d = ibp_double_start(IBP_DOUBLE_SUBSTRATE, "127.0.0.1", 0, ok_cert, ok_key, &port);
    assert_non_null(d);
    tgt g;
    make(&g, IBP_CHECK_MODULE_WSS, "127.0.0.1", port, HOST, "/relay?x=1", NULL, "Paseo Testnet",
         3000);
    ibp_check_outcome o = run(&g, ca);
    expect_up(o);
    assert_non_null(strstr(o.data_json, "\"Peers\":12"));
    assert_non_null(strstr(o.data_json, "\"Archive\":true"));
    assert_non_null(strstr(o.data_json, "\"Network\":\"Paseo Testnet\""));
    ibp_check_outcome_clear(&o);
    char host[256], path[256];
    ibp_double_last_host(d, host, sizeof host);
    ibp_double_last_path(d, path, sizeof path);
    char want[300];
    snprintf(want, sizeof want, "%s:%u", HOST, port);
    assert_string_equal(host, want); /* the domain, never the address dialled */
    assert_string_equal(path, "/relay?x=1");

    /* The same through CAs loaded once and shared (what the checker does). */
    ibp_check_trust *trust = NULL;
    ibp_err terr = {0};
    assert_int_equal(ibp_check_trust_load(ca, &trust, &terr), IBP_OK);
    make(&g, IBP_CHECK_MODULE_WSS, "127.0.0.1", port, HOST, "/", NULL, "Paseo Testnet", 3000);
    ibp_check_env env = {.trust = trust};
    ibp_check_run(&g.t, &env, &o);
    ibp_check_params_free(&g.t.params);
    expect_up(o);
    ibp_check_outcome_clear(&o);
    ibp_check_trust_free(trust);
    /* The system's CAs do not know the test CA. */
    assert_int_equal(ibp_check_trust_load(NULL, &trust, &terr), IBP_OK);
    make(&g, IBP_CHECK_MODULE_WSS, "127.0.0.1", port, HOST, "/", NULL, "Paseo Testnet", 3000);
    env.trust = trust;
    ibp_check_run(&g.t, &env, &o);
    ibp_check_params_free(&g.t.params);
    expect_down(o, "wss: connect: TLS 127.0.0.1");
    ibp_check_outcome_clear(&o);
    ibp_check_trust_free(trust);
    assert_int_equal(ibp_check_trust_load("/nonexistent.pem", &trust, &terr), IBP_E_CONFIG);

    /* Without the test CA the chain does not verify. */
    make(&g, IBP_CHECK_MODULE_WSS, "127.0.0.1", port, HOST, "/", NULL, NULL, 3000);
    o = run(&g, NULL);
    expect_down(o, "wss: connect: TLS 127.0.0.1");
    ibp_check_outcome_clear(&o);

    ibp_double_behaviour b;
#define CASE(mut, opts, want)                                                                      \
    do {                                                                                           \
        ibp_double_behaviour_init(&b);                                                             \
        mut;                                                                                       \
        ibp_double_set(d, &b);                                                                     \
        make(&g, IBP_CHECK_MODULE_WSS, "127.0.0.1", port, HOST, "/", opts, "Paseo Testnet", 1000); \
        int64_t t0 = ibp_clock_mono_ms();                                                                    \
        o = run(&g, ca);                                                                           \
        expect_down(o, want);                                                                      \
        assert_true(ibp_clock_mono_ms() - t0 < 1300);                                                        \
        ibp_check_outcome_clear(&o);                                                               \
    } while (0)
    CASE(b.syncing = true, NULL, "node is syncing");
    CASE(b.peers = 3, NULL, "3 peers, fewer than 5");
    CASE(snprintf(b.chain, sizeof b.chain, "Kusama"), NULL, "wrong chain \"Kusama\"");
    CASE(b.archive = false, NULL, "not an archive node");
    CASE(b.delay_ms = 1500, NULL, "timed out");
    CASE(b.hang_after_upgrade = true, NULL, "wss: chain_getBlockHash: timed out");
    CASE(b.garbage = true, NULL, "websocket: ");
    CASE(b.oversized = true, NULL, "over 1048576 bytes");
    CASE(b.close_mid_call = true, NULL, "closed");
    /* Options change the verdicts. */
    ibp_double_behaviour_init(&b);
    b.archive = false;
    b.peers = 3;
    ibp_double_set(d, &b);
    make(&g, IBP_CHECK_MODULE_WSS, "127.0.0.1", port, HOST, "/",
         "{\"CheckArchive\": false, \"MinimumPeers\": 3}", "Paseo Testnet", 2000);
    o = run(&g, ca);
    expect_up(o);
    ibp_check_outcome_clear(&o);
    ibp_double_stop(d);
}

static void test_wss_ipv6(void **state)
{
    (void)state;
    if (!have_v6)
        skip();
    unsigned port = 0;
    ibp_double *d = ibp_double_start(IBP_DOUBLE_SUBSTRATE, "::1", 0, ok_cert, ok_key, &port);
    assert_non_null(d);
    tgt g;
    make(&g, IBP_CHECK_MODULE_WSS, "::1", port, HOST, "/", NULL, "paseo testnet", 3000);
    ibp_check_outcome o = run(&g, ca);
    expect_up(o);
    ibp_check_outcome_clear(&o);
    ibp_double_stop(d);
}

static void test_ethrpc(void **state)
{
    (void)state;
    unsigned port = 0;
    ibp_double *d = ibp_double_start(IBP_DOUBLE_ETH, "127.0.0.1", 0, ok_cert, ok_key, &port);
    assert_non_null(d);
    tgt g;
    make(&g, IBP_CHECK_MODULE_ETHRPC, "127.0.0.1", port, ETH_HOST, "/hub", NULL, "420420420", 3000);
    ibp_check_outcome o = run(&g, ca);
    expect_up(o);
    assert_non_null(strstr(o.data_json, "\"ChainId\":420420420"));
    assert_non_null(strstr(o.data_json, "\"BlockNumber\":436"));
    ibp_check_outcome_clear(&o);
    char host[256], path[256];
    ibp_double_last_host(d, host, sizeof host);
    ibp_double_last_path(d, path, sizeof path);
    assert_non_null(strstr(host, ETH_HOST));
    assert_string_equal(path, "/hub");

    ibp_double_behaviour b;
    ibp_double_behaviour_init(&b);
    b.syncing = true;
    ibp_double_set(d, &b);
    make(&g, IBP_CHECK_MODULE_ETHRPC, "127.0.0.1", port, ETH_HOST, "/", NULL, NULL, 3000);
    o = run(&g, ca);
    expect_down(o, "syncing");
    ibp_check_outcome_clear(&o);
    ibp_double_behaviour_init(&b);
    ibp_double_set(d, &b);
    make(&g, IBP_CHECK_MODULE_ETHRPC, "127.0.0.1", port, ETH_HOST, "/", NULL, "1", 3000);
    o = run(&g, ca);
    expect_down(o, "wrong network");
    ibp_check_outcome_clear(&o);
    b.delay_ms = 2000;
    ibp_double_set(d, &b);
    make(&g, IBP_CHECK_MODULE_ETHRPC, "127.0.0.1", port, ETH_HOST, "/", NULL, NULL, 1000);
    int64_t t0 = ibp_clock_mono_ms();
    o = run(&g, ca);
    expect_down(o, "eth_chainId");
    assert_true(ibp_clock_mono_ms() - t0 < 1300);
    ibp_check_outcome_clear(&o);
    ibp_double_stop(d);
}

static void test_ssl(void **state)
{
    (void)state;
    unsigned p_ok = 0, p_exp = 0, p_wrong = 0;
    ibp_double *ok = ibp_double_start(IBP_DOUBLE_TLS, "127.0.0.1", 0, ok_cert, ok_key, &p_ok);
    ibp_double *ex = ibp_double_start(IBP_DOUBLE_TLS, "127.0.0.1", 0, exp_cert, exp_key, &p_exp);
    ibp_double *wr =
        ibp_double_start(IBP_DOUBLE_TLS, "127.0.0.1", 0, wrong_cert, wrong_key, &p_wrong);
    assert_non_null(ok);
    assert_non_null(ex);
    assert_non_null(wr);
    tgt g;
    make(&g, IBP_CHECK_MODULE_SSL, "127.0.0.1", p_ok, HOST, "/", NULL, NULL, 3000);
    ibp_check_outcome o = run(&g, ca);
    expect_up(o);
    assert_non_null(strstr(o.data_json, "\"DaysUntilExpiry\":29"));
    assert_non_null(strstr(o.data_json, "\"Issuer\":\"IBP Test CA\""));
    ibp_check_outcome_clear(&o);
    /* The double notes the SNI after its side of the handshake, which may end
     * after the check has its answer: give it a moment. */
    char sni[256] = "";
    for (int i = 0; i < 200; i++) {
        ibp_double_last_host(ok, sni, sizeof sni);
        if (sni[0])
            break;
        usleep(10000);
    }
    assert_string_equal(sni, HOST);

    make(&g, IBP_CHECK_MODULE_SSL, "127.0.0.1", p_exp, HOST, "/", NULL, NULL, 3000);
    o = run(&g, ca);
    expect_down(o, "expires in 2 days (fewer than 5)");
    ibp_check_outcome_clear(&o);
    make(&g, IBP_CHECK_MODULE_SSL, "127.0.0.1", p_exp, HOST, "/", "{\"MinDaysUntilExpiry\": 1}",
         NULL, 3000);
    o = run(&g, ca);
    expect_up(o);
    ibp_check_outcome_clear(&o);

    make(&g, IBP_CHECK_MODULE_SSL, "127.0.0.1", p_wrong, HOST, "/", NULL, NULL, 3000);
    o = run(&g, ca);
    expect_down(o, "ssl: TLS 127.0.0.1");
    ibp_check_outcome_clear(&o);
    ibp_double_stop(ok);
    ibp_double_stop(ex);
    ibp_double_stop(wr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wss),
        cmocka_unit_test(test_wss_ipv6),
        cmocka_unit_test(test_ethrpc),
        cmocka_unit_test(test_ssl),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
