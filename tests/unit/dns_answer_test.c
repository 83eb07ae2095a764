/*
 * Answer selection (ibp/dns_answer.h): nearest eligible member per family,
 * health per family, operator overrides, last resort, country overrides,
 * deterministic ties and unlocated clients. No socket: a network from text
 * and an official store filled by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/dns_answer.h"
#include "ibp/store.h"

#define HOST "rpc.example.net"

static const char members_json[] =
    "{"
    "\"Berlin\": {\"Details\": {\"Name\": \"Berlin\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.1\", \"ServiceIPv6\": "
    "\"2001:db8::1\"},"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\", \"Dormant\"]},"
    "  \"Location\": {\"Latitude\": 52.52, \"Longitude\": 13.405}},"
    "\"Paris\": {\"Details\": {\"Name\": \"Paris\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.2\", \"ServiceIPv6\": "
    "\"2001:db8::2\"},"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
    "  \"Location\": {\"Latitude\": 48.8566, \"Longitude\": 2.3522}},"
    "\"Tokyo\": {\"Details\": {\"Name\": \"Tokyo\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.3\", \"ServiceIPv6\": \"\"},"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
    "  \"Location\": {\"Latitude\": 35.6762, \"Longitude\": 139.6503}},"
    "\"NoLoc\": {\"Details\": {\"Name\": \"NoLoc\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.9\"},"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]}},"
    "\"Junior\": {\"Details\": {\"Name\": \"Junior\"}, \"Membership\": {\"MemberLevel\": 1},"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.4\"},"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
    "  \"Location\": {\"Latitude\": 40.4, \"Longitude\": -3.7}},"
    "\"Resting\": {\"Details\": {\"Name\": \"Resting\"}, \"Membership\": {\"MemberLevel\": 5},"
    "  \"Service\": {\"Active\": 0, \"ServiceIPv4\": \"10.0.0.5\"},"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
    "  \"Location\": {\"Latitude\": 40.4, \"Longitude\": -3.7}}"
    "}";

static const char services_json[] =
    "{"
    "\"Polkadot\": {\"Configuration\": {\"Name\": \"Polkadot\", \"ServiceType\": \"RPC\","
    "  \"Active\": 1, \"LevelRequired\": 3},"
    "  \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://" HOST "/polkadot\"]}}},"
    "\"Dormant\": {\"Configuration\": {\"Name\": \"Dormant\", \"ServiceType\": \"RPC\","
    "  \"Active\": 0, \"LevelRequired\": 3},"
    "  \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://dormant.example.net\"]}}}"
    "}";

typedef struct fixture {
    ibp_network *net;
    ibp_store *store;
    ibp_dns_selector *sel;
    size_t host, dormant;
} fixture;

static size_t host_index(const ibp_network *net, const char *name)
{
    for (size_t i = 0; i < ibp_network_domain_count(net); i++)
        if (strcmp(ibp_network_domain_at(net, i)->name, name) == 0)
            return i;
    fail_msg("no host %s", name);
    return 0;
}

static int setup_with(void **state, const ibp_dns_country_override *ovr, size_t n_ovr)
{
    fixture *f = calloc(1, sizeof *f);
    ibp_err err = {0};
    assert_int_equal(ibp_network_load_buffers(members_json, strlen(members_json), services_json,
                                              strlen(services_json), NULL, 0, &f->net, &err),
                     IBP_OK);
    ibp_store_opts so;
    ibp_store_opts_init(&so);
    so.network = f->net;
    assert_int_equal(ibp_store_new(&so, &f->store), IBP_OK);
    ibp_dns_answer_opts ao;
    ibp_dns_answer_opts_init(&ao);
    ao.overrides = ovr;
    ao.override_count = n_ovr;
    if (ibp_dns_selector_new(f->net, &ao, &f->sel, &err) != IBP_OK)
        fail_msg("selector: %s", err.msg);
    f->host = host_index(f->net, HOST);
    f->dormant = host_index(f->net, "dormant.example.net");
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL, 0);
}

static int teardown(void **state)
{
    fixture *f = *state;
    ibp_dns_selector_free(f->sel);
    ibp_store_free(f->store);
    ibp_network_free(f->net);
    free(f);
    return 0;
}

static ibp_dns_client at(double lat, double lon, const char *country)
{
    ibp_dns_client c = {.has_location = true, .latitude = lat, .longitude = lon};
    memcpy(c.country, country, 3);
    return c;
}

static void set_result(fixture *f, ibp_check_type type, const char *member, bool ipv6, bool up)
{
    ibp_result_key k = {.type = type,
                        .check_name = type == IBP_CHECK_SITE ? "ping" : "ssl",
                        .member = member,
                        .domain = type == IBP_CHECK_SITE ? NULL : HOST,
                        .ipv6 = ipv6};
    ibp_result *r = NULL;
    ibp_err err = {0};
    assert_int_equal(ibp_result_new(&k, up, 1700000000000, up ? "" : "down", NULL, &r, &err),
                     IBP_OK);
    assert_int_equal(ibp_store_update_official(f->store, r, &err), IBP_OK);
    ibp_result_free(r);
}

static void expect(fixture *f, const ibp_dns_client *c, bool ipv6, ibp_dns_pick_kind kind,
                   const char *member, const char *address)
{
    ibp_dns_pick p;
    ibp_dns_select(f->sel, f->store, f->host, ipv6, c, &p);
    if (p.kind != kind)
        fail_msg("kind %d, want %d (member %s)", p.kind, kind, p.member ? p.member : "-");
    if (member)
        assert_string_equal(p.member ? p.member : "(null)", member);
    else
        assert_null(p.member);
    if (address)
        assert_string_equal(p.address, address);
}

static void test_distance(void **state)
{
    (void)state;
    double d = ibp_dns_distance_km(52.52, 13.405, 48.8566, 2.3522); /* Berlin - Paris */
    assert_true(fabs(d - 878) < 5);
    assert_true(ibp_dns_distance_km(10, 20, 10, 20) < 1e-9);
    d = ibp_dns_distance_km(0, 0, 0, 180); /* half the circumference */
    assert_true(fabs(d - M_PI * IBP_DNS_EARTH_RADIUS_KM) < 1);
}

static void test_candidates(void **state)
{
    fixture *f = *state;
    const ibp_network_member *const *m;
    /* Junior is below LevelRequired, Resting inactive: neither is a candidate. */
    assert_int_equal(ibp_dns_selector_candidates(f->sel, f->host, false, &m), 4);
    assert_string_equal(m[0]->name, "Berlin");
    assert_string_equal(m[1]->name, "NoLoc");
    assert_string_equal(m[2]->name, "Paris");
    assert_string_equal(m[3]->name, "Tokyo");
    assert_int_equal(ibp_dns_selector_candidates(f->sel, f->host, true, &m), 2);
    /* An inactive service has no candidates: nothing to answer. */
    assert_int_equal(ibp_dns_selector_candidates(f->sel, f->dormant, false, &m), 0);
    ibp_dns_client c = at(40.4, -3.7, "ES");
    ibp_dns_pick p;
    ibp_dns_select(f->sel, f->store, f->dormant, false, &c, &p);
    assert_int_equal(p.kind, IBP_DNS_PICK_NONE);
}

static void test_nearest(void **state)
{
    fixture *f = *state;
    ibp_dns_client madrid = at(40.4168, -3.7038, "ES");
    ibp_dns_client osaka = at(34.6937, 135.5023, "JP");
    ibp_dns_client warsaw = at(52.23, 21.01, "PL");
    expect(f, &madrid, false, IBP_DNS_PICK_NEAREST, "Paris", "10.0.0.2");
    expect(f, &madrid, true, IBP_DNS_PICK_NEAREST, "Paris", "2001:db8::2");
    expect(f, &osaka, false, IBP_DNS_PICK_NEAREST, "Tokyo", "10.0.0.3");
    expect(f, &osaka, true, IBP_DNS_PICK_NEAREST, "Berlin", "2001:db8::1"); /* Tokyo has no v6 */
    expect(f, &warsaw, false, IBP_DNS_PICK_NEAREST, "Berlin", "10.0.0.1");
    ibp_dns_pick p;
    ibp_dns_select(f->sel, f->store, f->host, false, &madrid, &p);
    assert_int_equal(p.ttl_s, IBP_DNS_TTL_DEFAULT);
    assert_true(p.distance_km > 1000 && p.distance_km < 1100);
}

static void test_down_per_family(void **state)
{
    fixture *f = *state;
    ibp_dns_client madrid = at(40.4168, -3.7038, "ES");
    set_result(f, IBP_CHECK_DOMAIN, "Paris", false, false); /* down over IPv4 only */
    expect(f, &madrid, false, IBP_DNS_PICK_NEAREST, "Berlin", "10.0.0.1");
    expect(f, &madrid, true, IBP_DNS_PICK_NEAREST, "Paris", "2001:db8::2");
    set_result(f, IBP_CHECK_SITE, "Berlin", true, false); /* Berlin's site down over IPv6 */
    expect(f, &madrid, true, IBP_DNS_PICK_NEAREST, "Paris", NULL);
    set_result(f, IBP_CHECK_SITE, "Paris", true, false);
    /* Every IPv6 candidate down: last resort, the nearest anyway, short TTL. */
    ibp_dns_pick p;
    ibp_dns_select(f->sel, f->store, f->host, true, &madrid, &p);
    assert_int_equal(p.kind, IBP_DNS_PICK_LAST_RESORT);
    assert_string_equal(p.member, "Paris");
    assert_int_equal(p.ttl_s, IBP_DNS_LAST_RESORT_TTL_DEFAULT);
    set_result(f, IBP_CHECK_DOMAIN, "Paris", false, true); /* back */
    expect(f, &madrid, false, IBP_DNS_PICK_NEAREST, "Paris", NULL);
}

static void test_overridden(void **state)
{
    fixture *f = *state;
    ibp_err err = {0};
    ibp_dns_client madrid = at(40.4168, -3.7038, "ES");
    assert_int_equal(ibp_store_member_disable(f->store, "Paris", "maintenance", &err), IBP_OK);
    expect(f, &madrid, false, IBP_DNS_PICK_NEAREST, "Berlin", NULL);
    expect(f, &madrid, true, IBP_DNS_PICK_NEAREST, "Berlin", NULL);
    /* Berlin down over IPv6 as well: last resort must not pick the overridden Paris. */
    set_result(f, IBP_CHECK_SITE, "Berlin", true, false);
    expect(f, &madrid, true, IBP_DNS_PICK_LAST_RESORT, "Berlin", NULL);
    assert_int_equal(ibp_store_member_disable(f->store, "Berlin", "maintenance", &err), IBP_OK);
    expect(f, &madrid, true, IBP_DNS_PICK_NONE, NULL, NULL);
    assert_int_equal(ibp_store_member_enable(f->store, "Paris", &err), IBP_OK);
    expect(f, &madrid, true, IBP_DNS_PICK_NEAREST, "Paris", NULL);
}

static void test_no_location_last(void **state)
{
    fixture *f = *state;
    ibp_dns_client madrid = at(40.4168, -3.7038, "ES");
    const char *others[] = {"Berlin", "Paris", "Tokyo"};
    for (int i = 0; i < 3; i++)
        set_result(f, IBP_CHECK_SITE, others[i], false, false);
    /* Only NoLoc is healthy: a member without a location is still answered. */
    expect(f, &madrid, false, IBP_DNS_PICK_NEAREST, "NoLoc", "10.0.0.9");
    set_result(f, IBP_CHECK_SITE, "NoLoc", false, false);
    /* Last resort: members with a location come first. */
    expect(f, &madrid, false, IBP_DNS_PICK_LAST_RESORT, "Paris", NULL);
}

static void test_unlocated_clients(void **state)
{
    fixture *f = *state;
    int seen[4] = {0};
    const char *names[4] = {"Berlin", "NoLoc", "Paris", "Tokyo"};
    for (int i = 0; i < 200; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "198.51.100.%d", i);
        ibp_dns_client c = {.country = "??", .key = ibp_dns_client_key(addr)};
        ibp_dns_pick p1, p2;
        ibp_dns_select(f->sel, f->store, f->host, false, &c, &p1);
        ibp_dns_select(f->sel, f->store, f->host, false, &c, &p2);
        assert_int_equal(p1.kind, IBP_DNS_PICK_NEAREST);
        assert_ptr_equal(p1.member, p2.member); /* deterministic per client */
        assert_true(p1.distance_km < 0);
        for (int k = 0; k < 4; k++)
            if (strcmp(p1.member, names[k]) == 0)
                seen[k]++;
    }
    for (int k = 0; k < 4; k++)
        if (seen[k] < 20)
            fail_msg("unlocated clients are not spread: %s got %d of 200", names[k], seen[k]);
}

static void test_tie_by_name(void **state)
{
    (void)state;
    static const char m[] =
        "{\"Zed\": {\"Details\": {\"Name\": \"Zed\"}, \"Membership\": {\"MemberLevel\": 5},"
        " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.1.0.2\"},"
        " \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
        " \"Location\": {\"Latitude\": 10, \"Longitude\": 10}},"
        "\"Amy\": {\"Details\": {\"Name\": \"Amy\"}, \"Membership\": {\"MemberLevel\": 5},"
        " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.1.0.1\"},"
        " \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
        " \"Location\": {\"Latitude\": 10, \"Longitude\": 10}}}";
    ibp_network *net;
    ibp_store *store;
    ibp_dns_selector *sel;
    ibp_err err = {0};
    assert_int_equal(ibp_network_load_buffers(m, strlen(m), services_json, strlen(services_json),
                                              NULL, 0, &net, &err),
                     IBP_OK);
    assert_int_equal(ibp_store_new(NULL, &store), IBP_OK);
    assert_int_equal(ibp_dns_selector_new(net, NULL, &sel, &err), IBP_OK);
    ibp_dns_client c = at(-20, 50, "MG");
    ibp_dns_pick p;
    ibp_dns_select(sel, store, host_index(net, HOST), false, &c, &p);
    assert_string_equal(p.member, "Amy");
    ibp_dns_selector_free(sel);
    ibp_store_free(store);
    ibp_network_free(net);
}

static void test_country_overrides(void **state)
{
    ibp_dns_country_override o[3];
    ibp_err err = {0};
    assert_int_equal(ibp_dns_country_override_parse("fr=Tokyo", &o[0], &err), IBP_OK);
    assert_int_equal(ibp_dns_country_override_parse("DE=192.0.2.99", &o[1], &err), IBP_OK);
    assert_int_equal(ibp_dns_country_override_parse("DE=2001:db8::99", &o[2], &err), IBP_OK);
    assert_string_equal(o[0].country, "FR");
    assert_string_equal(o[0].member, "Tokyo");
    assert_string_equal(o[1].ipv4, "192.0.2.99");
    assert_string_equal(o[2].ipv6, "2001:db8::99");
    ibp_dns_country_override bad;
    assert_int_equal(ibp_dns_country_override_parse("France=Tokyo", &bad, &err), IBP_E_CONFIG);
    setup_with(state, o, 3);
    fixture *f = *state;
    ibp_dns_client paris = at(48.85, 2.35, "FR");
    ibp_dns_client munich = at(48.13, 11.58, "DE");
    expect(f, &paris, false, IBP_DNS_PICK_COUNTRY, "Tokyo", "10.0.0.3");
    expect(f, &paris, true, IBP_DNS_PICK_NEAREST, "Paris", NULL); /* Tokyo has no IPv6 */
    expect(f, &munich, false, IBP_DNS_PICK_COUNTRY, NULL, "192.0.2.99");
    expect(f, &munich, true, IBP_DNS_PICK_COUNTRY, NULL, "2001:db8::99");
    /* The member of an override while it is down: the normal answer. */
    set_result(f, IBP_CHECK_SITE, "Tokyo", false, false);
    expect(f, &paris, false, IBP_DNS_PICK_NEAREST, "Paris", NULL);
    teardown(state);

    /* Unknown member in an override: refused at start. */
    ibp_network *net;
    ibp_dns_selector *sel = NULL;
    assert_int_equal(ibp_network_load_buffers(members_json, strlen(members_json), services_json,
                                              strlen(services_json), NULL, 0, &net, &err),
                     IBP_OK);
    ibp_dns_answer_opts ao;
    ibp_dns_answer_opts_init(&ao);
    assert_int_equal(ibp_dns_country_override_parse("NL=Nobody", &bad, &err), IBP_OK);
    ao.overrides = &bad;
    ao.override_count = 1;
    assert_int_equal(ibp_dns_selector_new(net, &ao, &sel, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "Nobody"));
    assert_null(sel);
    ibp_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test_setup_teardown(test_candidates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nearest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_down_per_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overridden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_location_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlocated_clients, setup, teardown),
        cmocka_unit_test(test_tie_by_name),
        cmocka_unit_test(test_country_overrides),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
