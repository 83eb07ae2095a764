/*
 * Unit tests: the targets of the network's checks. Every site, domain and
 * endpoint check dials the member's own ServiceIPv4/ServiceIPv6 (one target
 * per family), with the domain as SNI/Host and the URL's path; modules apply
 * to their kind of service; what cannot run is reported, not dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/check_keyset.h"
#include "ibp/check_plan.h"

static const char MEMBERS[] =
    "{\"Alpha\": {\"Details\": {\"Name\": \"Alpha\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"192.0.2.10\", \"ServiceIPv6\": "
    "\"2001:db8::10\"},"
    "  \"ServiceAssignments\": {\"P\": [\"Relay\", \"Hub\"]}},"
    " \"Beta\": {\"Details\": {\"Name\": \"Beta\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"192.0.2.20\", \"ServiceIPv6\": \"\"},"
    "  \"ServiceAssignments\": {\"P\": [\"Relay\"]}},"
    " \"Ghost\": {\"Details\": {\"Name\": \"Ghost\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"\", \"ServiceIPv6\": \"\"},"
    "  \"ServiceAssignments\": {\"P\": [\"Relay\"]}},"
    " \"Sleepy\": {\"Details\": {\"Name\": \"Sleepy\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 0, \"ServiceIPv4\": \"192.0.2.30\"},"
    "  \"ServiceAssignments\": {\"P\": [\"Relay\"]}}}";

static const char SERVICES[] =
    "{\"Relay\": {\"Configuration\": {\"Name\": \"Relay\", \"ServiceType\": \"RPC\", \"Active\": 1,"
    "   \"LevelRequired\": 1, \"NetworkName\": \"Relay Chain\"},"
    "  \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://rpc.example.net/relay?x=1\","
    "   \"wss://rpc.example.net:8443\"]}}},"
    " \"Hub\": {\"Configuration\": {\"Name\": \"Hub\", \"ServiceType\": \"ETHRPC\", \"Active\": 1,"
    "   \"LevelRequired\": 1, \"NetworkName\": \"420420420\"},"
    "  \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://eth.example.net/hub\"]}}}}";

static ibp_network *load(const char *checks)
{
    ibp_network *net = NULL;
    ibp_err err = {0};
    if (ibp_network_load_buffers(MEMBERS, strlen(MEMBERS), SERVICES, strlen(SERVICES), checks,
                                 strlen(checks), &net, &err) != IBP_OK)
        fail_msg("network: %s", err.msg);
    return net;
}

static ibp_check_plan build(const char *checks)
{
    ibp_network *net = load(checks);
    ibp_check_plan plan;
    ibp_err err = {0};
    if (ibp_check_plan_build(net, &plan, &err) != IBP_OK)
        fail_msg("plan: %s", err.msg);
    ibp_network_free(net);
    return plan;
}

static const ibp_check_target *find(const ibp_check_plan *p, const char *check, const char *member,
                                    const char *endpoint, bool ipv6)
{
    for (size_t i = 0; i < p->count; i++) {
        const ibp_check_target *t = p->targets[i];
        if (strcmp(t->check, check) == 0 && strcmp(t->member, member) == 0 &&
            strcmp(t->endpoint, endpoint) == 0 && t->ipv6 == ipv6)
            return t;
    }
    return NULL;
}

static bool skipped(const ibp_check_plan *p, const char *check, const char *member,
                    const char *reason_part)
{
    for (size_t i = 0; i < p->skip_count; i++)
        if (strcmp(p->skips[i].check, check) == 0 && strcmp(p->skips[i].member, member) == 0 &&
            strstr(p->skips[i].reason, reason_part))
            return true;
    return false;
}

static void test_member_addresses(void **state)
{
    (void)state;
    ibp_check_plan p = build("{\"ping\": {\"CheckType\": \"site\"},"
                             " \"ssl\": {\"CheckType\": \"domain\"},"
                             " \"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": 7},"
                             " \"ethrpc\": {\"CheckType\": \"endpoint\"}}");
    /* ping: Alpha v4+v6, Beta v4. */
    const ibp_check_target *t = find(&p, "ping", "Alpha", "", true);
    assert_non_null(t);
    assert_string_equal(t->addr, "2001:db8::10");
    assert_int_equal(t->type, IBP_CHECK_SITE);
    assert_non_null(find(&p, "ping", "Alpha", "", false));
    assert_non_null(t = find(&p, "ping", "Beta", "", false));
    assert_string_equal(t->addr, "192.0.2.20");
    assert_null(find(&p, "ping", "Beta", "", true));
    assert_null(find(&p, "ping", "Sleepy", "", false));
    assert_true(skipped(&p, "ping", "Ghost", "no ServiceIPv4 or ServiceIPv6"));

    /* ssl: every domain of the member's services, at the member's address, port 443. */
    bool found = false;
    for (size_t i = 0; i < p.count; i++) {
        t = p.targets[i];
        if (strcmp(t->check, "ssl") == 0 && strcmp(t->member, "Alpha") == 0 && !t->ipv6 &&
            strcmp(t->domain, "eth.example.net") == 0) {
            found = true;
            assert_string_equal(t->addr, "192.0.2.10");
            assert_string_equal(t->host, "eth.example.net");
            assert_int_equal(t->port, 443);
            assert_true(t->tls);
        }
    }
    assert_true(found);

    /* wss: RPC services only, URL host as SNI/Host, path kept, port from the URL. */
    t = find(&p, "wss", "Beta", "wss://rpc.example.net/relay?x=1", false);
    assert_non_null(t);
    assert_string_equal(t->addr, "192.0.2.20");
    assert_string_equal(t->host, "rpc.example.net");
    assert_string_equal(t->domain, "rpc.example.net");
    assert_string_equal(t->path, "/relay?x=1");
    assert_int_equal(t->port, 443);
    assert_int_equal(t->timeout_ms, 7000);
    assert_string_equal(t->network_name, "Relay Chain");
    t = find(&p, "wss", "Alpha", "wss://rpc.example.net:8443", true);
    assert_non_null(t);
    assert_string_equal(t->addr, "2001:db8::10");
    assert_string_equal(t->path, "/");
    assert_int_equal(t->port, 8443);
    assert_null(find(&p, "wss", "Alpha", "wss://eth.example.net/hub", false));

    /* ethrpc: ETHRPC services only. */
    t = find(&p, "ethrpc", "Alpha", "wss://eth.example.net/hub", false);
    assert_non_null(t);
    assert_int_equal(t->module, IBP_CHECK_MODULE_ETHRPC);
    assert_string_equal(t->network_name, "420420420");
    assert_null(find(&p, "ethrpc", "Beta", "wss://rpc.example.net/relay?x=1", false));
    ibp_check_plan_free(&p);
}

static void test_connect_and_tcp(void **state)
{
    (void)state;
    ibp_check_plan p = build(
        "{\"tcp-site\": {\"CheckType\": \"site\", \"ExtraOptions\": {\"connect\": \"127.0.0.1\","
        "   \"ports\": {\"Alpha\": 4001}}},"
        " \"wss\": {\"CheckType\": \"endpoint\", \"ExtraOptions\": {\"connect\": \"::1\","
        "   \"port\": 9000}}}");
    const ibp_check_target *t = find(&p, "tcp-site", "Alpha", "", false);
    assert_non_null(t);
    assert_int_equal(t->module, IBP_CHECK_MODULE_TCP);
    assert_string_equal(t->addr, "127.0.0.1");
    assert_int_equal(t->port, 4001);
    assert_null(find(&p, "tcp-site", "Alpha", "", true)); /* connect: its family only */
    assert_true(skipped(&p, "tcp-site", "Beta", "without a port"));
    t = find(&p, "wss", "Alpha", "wss://rpc.example.net/relay?x=1", true);
    assert_non_null(t);
    assert_string_equal(t->addr, "::1");
    assert_int_equal(t->port, 9000);
    assert_string_equal(t->host, "rpc.example.net");
    ibp_check_plan_free(&p);
}

static void test_cannot_run(void **state)
{
    (void)state;
    ibp_check_plan p = build("{\"http\": {\"CheckType\": \"endpoint\"},"
                             " \"wss-site\": {\"CheckType\": \"site\"},"
                             " \"ping-ep\": {\"CheckType\": \"endpoint\"},"
                             " \"off\": {\"CheckType\": \"site\", \"Enabled\": 0,"
                             "   \"ExtraOptions\": {\"module\": \"nope\"}}}");
    assert_int_equal(p.count, 0);
    assert_true(skipped(&p, "http", "", "unknown check module (name \"http\""));
    assert_true(skipped(&p, "wss-site", "", "does not run site checks"));
    assert_true(skipped(&p, "ping-ep", "", "does not run endpoint checks"));
    assert_false(skipped(&p, "off", "", ""));
    /* Reported once per check, not once per member. */
    assert_int_equal(p.skip_count, 3);
    ibp_check_plan_free(&p);

    ibp_network *net =
        load("{\"c\": {\"CheckType\": \"site\", \"ExtraOptions\": {\"PingTTL\": 0}}}");
    ibp_err err = {0};
    assert_int_equal(ibp_check_plan_build(net, &p, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "check c: ExtraOptions.PingTTL"));
    ibp_network_free(net);
}

static void test_same(void **state)
{
    (void)state;
    ibp_check_plan a = build("{\"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": 5}}");
    ibp_check_plan b = build("{\"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": 5}}");
    ibp_check_plan c = build("{\"wss\": {\"CheckType\": \"endpoint\", \"Timeout\": 6}}");
    assert_int_equal(a.count, b.count);
    for (size_t i = 0; i < a.count; i++) {
        assert_true(ibp_check_target_same(a.targets[i], b.targets[i]));
        assert_false(ibp_check_target_same(a.targets[i], c.targets[i]));
    }
    ibp_check_plan_free(&a);
    ibp_check_plan_free(&b);
    ibp_check_plan_free(&c);
    ibp_check_plan_free(NULL);
}

/* The keys a config wants voted: its targets, and anything of a check it does not have. */
static void test_keyset(void **state)
{
    (void)state;
    const char *checks = "{\"ping\": {\"CheckType\": \"site\"},"
                         " \"off\": {\"CheckType\": \"site\", \"Enabled\": 0}}";
    ibp_network *net = load(checks);
    ibp_check_plan plan;
    ibp_err err = {0};
    assert_int_equal(ibp_check_plan_build(net, &plan, &err), IBP_OK);
    ibp_check_keyset ks;
    assert_int_equal(ibp_check_keyset_build(&plan, net, &ks), IBP_OK);
    struct {
        const char *check, *member;
        bool ipv6, want;
    } cases[] = {
        {"ping", "Alpha", false, true},   {"ping", "Alpha", true, true},
        {"ping", "Beta", true, false},    /* Beta has no ServiceIPv6 */
        {"ping", "Gone", false, false},   /* not a member (any more) */
        {"ping", "Sleepy", false, false}, /* inactive */
        {"off", "Gone", false, true},     /* a disabled check is not the config's */
        {"by-hand", "Gone", false, true}, /* nor is an operator's */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ibp_result_key k = {IBP_CHECK_SITE, cases[i].check, cases[i].member, "", "", cases[i].ipv6};
        ibp_result *r = NULL;
        assert_int_equal(ibp_result_new(&k, true, 1, "", "", &r, &err), IBP_OK);
        if (ibp_check_keyset_wants(&ks, r) != cases[i].want)
            fail_msg("%s/%s/%d: want %d", cases[i].check, cases[i].member, cases[i].ipv6,
                     cases[i].want);
        ibp_result_free(r);
    }
    ibp_check_keyset_free(&ks);
    ibp_check_keyset_free(NULL);
    ibp_check_plan_free(&plan);
    ibp_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_addresses), cmocka_unit_test(test_connect_and_tcp),
        cmocka_unit_test(test_cannot_run),       cmocka_unit_test(test_same),
        cmocka_unit_test(test_keyset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
