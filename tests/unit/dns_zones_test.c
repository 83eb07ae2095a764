/*
 * Zones and static records (ibp/dns_zones.h): the upstream static format,
 * derived zones, synthesised SOA, dynamic host names, errors. Uses the
 * shared geodns-static.json fixture when present.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/dns_zones.h"
#include "ibp/network.h"

static const char static_json[] =
    "[\n"
    "{\"qname\": \"dotters.network\", \"qtype\": \"A\", \"content\": \"192.96.202.175\","
    " \"ttl\": 3600, \"auth\": true, \"domain_id\": 0},\n"
    "{\"qname\": \"Dotters.Network.\", \"qtype\": \"ns\", \"content\": \"dns-01.dotters.network.\","
    " \"ttl\": 3600, \"auth\": true},\n"
    "{\"qname\": \"dotters.network\", \"qtype\": \"NS\", \"content\": "
    "\"dns-02.dotters.network.\"},\n"
    "{\"qname\": \"www.dotters.network\", \"qtype\": \"CNAME\", \"content\": \"dotters.network.\","
    " \"ttl\": 300},\n"
    "{\"qname\": \"_acme-challenge.ibp.network\", \"qtype\": \"TXT\", \"content\": \"x\","
    " \"ttl\": 0},\n"
    "{\"qname\": \"polkadot.dotters.network\", \"qtype\": \"A\", \"content\": \"10.9.9.9\"}\n"
    "]";

static const char members_json[] =
    "{\"M\": {\"Details\": {\"Name\": \"M\"}, \"Membership\": {\"MemberLevel\": 5},"
    " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.1\"},"
    " \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]}}}";
static const char services_json[] =
    "{\"Polkadot\": {\"Configuration\": {\"Name\": \"Polkadot\", \"ServiceType\": \"RPC\","
    " \"Active\": 1, \"LevelRequired\": 1},"
    " \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://polkadot.dotters.network\","
    " \"wss://rpc.example.org/polkadot\", \"https://[2001:db8::53]:8443/x\"]}}}}";

static ibp_network *load_net(void)
{
    ibp_network *net;
    ibp_err err = {0};
    assert_int_equal(ibp_network_load_buffers(members_json, strlen(members_json), services_json,
                                              strlen(services_json), NULL, 0, &net, &err),
                     IBP_OK);
    return net;
}

static ibp_dns_zones *build(const char *json, const ibp_network *net, ibp_status want, ibp_err *err)
{
    ibp_dns_zones_opts o;
    ibp_dns_zones_opts_init(&o);
    o.static_json = json;
    o.static_len = json ? strlen(json) : 0;
    o.static_source = "static.json";
    o.network = net;
    o.serial = 2026120401;
    ibp_dns_zones *z = NULL;
    ibp_status st = ibp_dns_zones_build(&o, &z, err);
    if (st != want)
        fail_msg("build: %s (%s), want %s", ibp_status_name(st), err->msg, ibp_status_name(want));
    return z;
}

static void test_normalize(void **state)
{
    (void)state;
    char buf[IBP_DNS_NAME_MAX + 1];
    assert_true(ibp_dns_name_normalize("RPC.Example.NET.", 16, buf, sizeof buf));
    assert_string_equal(buf, "rpc.example.net");
    assert_false(ibp_dns_name_normalize(".", 1, buf, sizeof buf));
    assert_false(ibp_dns_name_normalize("a..b", 4, buf, sizeof buf));
    assert_false(ibp_dns_name_normalize("a b", 3, buf, sizeof buf));
    char longname[300];
    memset(longname, 'a', sizeof longname);
    assert_false(ibp_dns_name_normalize(longname, sizeof longname, buf, sizeof buf));
}

static void test_zones_and_records(void **state)
{
    (void)state;
    ibp_network *net = load_net();
    ibp_err err = {0};
    ibp_dns_zones *z = build(static_json, net, IBP_OK, &err);
    /* dotters.network (NS owner), example.org (derived from a host), ibp.network (derived). */
    assert_int_equal(ibp_dns_zones_count(z), 3);
    assert_string_equal(ibp_dns_zones_at(z, 0)->name, "dotters.network");
    assert_string_equal(ibp_dns_zones_at(z, 1)->name, "example.org");
    assert_string_equal(ibp_dns_zones_at(z, 2)->name, "ibp.network");
    assert_int_equal(ibp_dns_zones_at(z, 2)->id, 3);
    const ibp_dns_zone *dz = ibp_dns_zones_find_zone(z, "dotters.network");
    assert_non_null(dz);
    assert_string_equal(dz->soa, "dns-01.dotters.network. hostmaster.dotters.network. 2026120401 "
                                 "10800 3600 604800 60");
    assert_string_equal(ibp_dns_zones_at(z, 1)->soa,
                        "ns1.example.org. hostmaster.example.org. 2026120401 10800 3600 604800 60");

    ibp_dns_name n;
    assert_true(ibp_dns_zones_lookup(z, "dotters.network", &n));
    assert_true(n.apex);
    assert_ptr_equal(n.zone, dz);
    assert_int_equal(n.record_count, 3);
    assert_string_equal(n.records[0].qtype, "A");
    assert_string_equal(n.records[1].qtype, "NS");
    assert_string_equal(n.records[1].content, "dns-01.dotters.network.");
    assert_int_equal(n.records[2].ttl_s, 3600); /* the default */
    assert_int_equal(n.host, -1);

    assert_true(ibp_dns_zones_lookup(z, "www.dotters.network", &n));
    assert_false(n.apex);
    assert_int_equal(n.records[0].ttl_s, 300);
    assert_true(ibp_dns_zones_lookup(z, "_acme-challenge.ibp.network", &n));
    assert_int_equal(n.records[0].ttl_s, 0);

    /* A host name is dynamic; the static A at it is shadowed. */
    assert_true(ibp_dns_zones_lookup(z, "polkadot.dotters.network", &n));
    assert_true(n.host >= 0);
    assert_int_equal(n.record_count, 0);
    assert_string_equal(ibp_network_domain_at(net, (size_t)n.host)->name,
                        "polkadot.dotters.network");
    assert_true(ibp_dns_zones_lookup(z, "rpc.example.org", &n));
    assert_true(n.host >= 0);
    ibp_dns_zones_stats st;
    ibp_dns_zones_stats_get(z, &st);
    assert_int_equal(st.shadowed, 1);
    assert_int_equal(st.dynamic_hosts, 2); /* the IPv6 literal host is no DNS name */
    assert_int_equal(st.static_records, 5);
    assert_int_equal(st.ents, 0);

    assert_false(ibp_dns_zones_lookup(z, "nothing.dotters.network", &n));
    assert_true(ibp_dns_zones_lookup(z, "ibp.network", &n)); /* an apex with no records */
    assert_true(n.apex);
    ibp_dns_zones_free(z);
    ibp_network_free(net);
}

static bool count_name(const ibp_dns_name *n, const char *name, void *user)
{
    (void)n;
    (void)name;
    (*(int *)user)++;
    return true;
}

static void test_each_name_and_explicit_zones(void **state)
{
    (void)state;
    ibp_err err = {0};
    ibp_dns_zones_opts o;
    ibp_dns_zones_opts_init(&o);
    o.static_json = static_json;
    o.static_len = strlen(static_json);
    const char *zones[] = {"WWW.dotters.network."};
    o.zones = zones;
    o.zone_count = 1;
    ibp_dns_zones *z = NULL;
    assert_int_equal(ibp_dns_zones_build(&o, &z, &err), IBP_OK);
    ibp_dns_name n;
    assert_true(ibp_dns_zones_lookup(z, "www.dotters.network", &n));
    assert_true(n.apex);
    int count = 0;
    ibp_dns_zones_each_name(z, ibp_dns_zones_find_zone(z, "dotters.network"), count_name, &count);
    assert_int_equal(count, 2); /* the apex and polkadot (no network: static here) */
    ibp_dns_zones_free(z);
}

static void test_errors(void **state)
{
    (void)state;
    ibp_err err = {0};
    build("[{\"qname\": \"a.b\"", NULL, IBP_E_CONFIG, &err);
    assert_non_null(strstr(err.msg, "static.json:"));
    build("{}", NULL, IBP_E_CONFIG, &err);
    build("[{\"qname\": \"a.b\", \"qtype\": \"A\"}]", NULL, IBP_E_CONFIG, &err);
    assert_non_null(strstr(err.msg, "record 0"));
    build("[{\"qname\": \"a..b\", \"qtype\": \"A\", \"content\": \"x\"}]", NULL, IBP_E_CONFIG,
          &err);
    build("[{\"qname\": \"a.b\", \"qtype\": \"A-1\", \"content\": \"x\"}]", NULL, IBP_E_CONFIG,
          &err);
    build("[{\"qname\": \"a.b\", \"qtype\": \"A\", \"content\": \"x\", \"ttl\": -1}]", NULL,
          IBP_E_CONFIG, &err);
    build("[{\"qname\": \"a.b\", \"qtype\": \"A\", \"content\": \"x\", \"auth\": 1}]", NULL,
          IBP_E_CONFIG, &err);
    ibp_dns_zones *z = build("[]", NULL, IBP_OK, &err);
    assert_int_equal(ibp_dns_zones_count(z), 0);
    ibp_dns_zones_free(z);
}

static void test_upstream_fixture(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/ibp-config/geodns-static.json", IBP_SHARED_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) {
        skip();
        return;
    }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    ibp_err err = {0};
    ibp_dns_zones *z = build(buf, NULL, IBP_OK, &err);
    assert_non_null(ibp_dns_zones_find_zone(z, "dotters.network"));
    assert_non_null(ibp_dns_zones_find_zone(z, "ibp.network"));
    ibp_dns_zones_stats st;
    ibp_dns_zones_stats_get(z, &st);
    assert_int_equal(st.static_records, 25);
    /* _acme-challenge.{boot,rpc}.stake.plus and _acme-challenge.paras under dotters.network. */
    assert_int_equal(st.ents, 5);
    ibp_dns_name nm;
    assert_true(ibp_dns_zones_lookup(z, "plus.dotters.network", &nm));
    assert_true(nm.ent);
    assert_int_equal(nm.record_count, 0);
    assert_true(ibp_dns_zones_lookup(z, "rpc.stake.plus.dotters.network", &nm));
    assert_true(nm.ent);
    assert_true(ibp_dns_zones_lookup(z, "_acme-challenge.rpc.stake.plus.dotters.network", &nm));
    assert_false(nm.ent);
    ibp_dns_zones_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_zones_and_records),
        cmocka_unit_test(test_each_name_and_explicit_zones),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_upstream_fixture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
