/* Unit tests: the IBP network config loader (members, services, checks) and URL parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibp/network.h"
#include "test_util.h"

#define DATA IBP_SOURCE_DIR "/tests/data/network/"
#define UPSTREAM IBP_SHARED_DIR "/fixtures/ibp-config/"

#define assert_err(st, err, code, needle)                                                          \
    do {                                                                                           \
        ibp_status st_ = (st);                                                                     \
        if (st_ != (code) || !strstr((err).msg, (needle)))                                         \
            fail_msg("got %s \"%s\"\nwant %s containing \"%s\"", ibp_status_name(st_), (err).msg,  \
                     ibp_status_name(code), (needle));                                             \
    } while (0)

#define assert_ok(st, err)                                                                         \
    do {                                                                                           \
        ibp_status st_ = (st);                                                                     \
        if (st_ != IBP_OK)                                                                         \
            fail_msg("got %s \"%s\", want IBP_OK", ibp_status_name(st_), (err).msg);               \
    } while (0)

static bool has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static ibp_network *load_fixture(const char *checks)
{
    ibp_network *net = NULL;
    ibp_err err;
    ibp_err_clear(&err);
    assert_ok(ibp_network_load(DATA "members.json", DATA "services.json", checks, &net, &err), err);
    assert_non_null(net);
    return net;
}

/* Loads text for one of the three sources (the others are minimal and valid). */
static ibp_status load_text(const char *members, const char *services, const char *checks,
                            ibp_network **out, ibp_err *err)
{
    if (!members)
        members = "{}";
    if (!services)
        services = "{}";
    ibp_err_clear(err);
    return ibp_network_load_buffers(members, strlen(members), services, strlen(services), checks,
                                    checks ? strlen(checks) : 0, out, err);
}

static void expect_error(const char *members, const char *services, const char *checks,
                         const char *needle)
{
    ibp_network *net = (ibp_network *)(uintptr_t)0x1;
    ibp_err err;
    assert_err(load_text(members, services, checks, &net, &err), err, IBP_E_CONFIG, needle);
    assert_ptr_equal(net, (ibp_network *)(uintptr_t)0x1); /* *out untouched on failure */
}

/* A member object with one field replaced: {"M": {<sections>}} */
#define MEMBER(details, membership, service, rest)                                                 \
    "{\"M\": {\"Details\": " details ", \"Membership\": " membership                               \
    ", \"Service\": " service rest "}}"
#define OK_DETAILS "{\"Name\": \"M\"}"
#define OK_MEMBERSHIP "{\"MemberLevel\": 3}"
#define OK_SERVICE "{\"Active\": 1}"

#define SERVICE(conf, rest) "{\"S\": {\"Configuration\": " conf rest "}}"
#define OK_CONF "{\"Name\": \"S\", \"ServiceType\": \"RPC\", \"Active\": 1, \"LevelRequired\": 3}"
#define URLS(list) SERVICE(OK_CONF, ", \"Providers\": {\"P\": {\"RpcUrls\": " list "}}")

/* ---- our fixtures ------------------------------------------------------------------------ */

static void test_members(void **state)
{
    (void)state;
    ibp_network *net = load_fixture(NULL);
    assert_int_equal(ibp_network_member_count(net), 4);

    const ibp_network_member *a = ibp_network_member_at(net, 0);
    assert_string_equal(a->name, "Alpha Nodes"); /* file order */
    assert_ptr_equal(ibp_network_member_find(net, "Alpha Nodes"), a);
    assert_string_equal(a->display_name, "Alpha Nodes");
    assert_string_equal(a->website, "https://alpha.example");
    assert_int_equal(a->level, 6);
    assert_int_equal(a->joined, 1672549200);
    assert_int_equal(a->last_rankup, 1721209485);
    assert_true(a->active);
    assert_string_equal(a->ipv4, "203.0.113.10");
    assert_string_equal(a->ipv6, "2001:db8::10");
    assert_string_equal(a->monitor_url, "https://monitor.alpha.example");
    assert_string_equal(a->region, "Europe");
    assert_true(a->has_location);
    assert_true(a->latitude > 52.51 && a->latitude < 52.53);
    assert_true(a->longitude > 13.40 && a->longitude < 13.41);
    assert_int_equal(a->service_count, 4);
    assert_string_equal(a->services[0], "Polkadot");
    assert_string_equal(a->services[1], "Asset-Hub-Polkadot");
    assert_string_equal(a->services[2], "Kusama");
    assert_string_equal(a->services[3], "Hydration");

    /* "Polkadot" is in two of Beta's lists: flattened once, first place kept. */
    const ibp_network_member *b = ibp_network_member_find(net, "Beta Infra");
    assert_non_null(b);
    assert_int_equal(b->service_count, 3);
    assert_string_equal(b->services[0], "Polkadot");
    assert_string_equal(b->services[1], "Asset-Hub-Polkadot");
    assert_string_equal(b->services[2], "Paseo");
    assert_string_equal(b->ipv6, "");
    assert_string_equal(b->monitor_url, "");
    assert_int_equal(b->last_rankup, 0);
    assert_true(b->has_location); /* integer coordinates are numbers too */
    assert_true(b->latitude == 0.0 && b->longitude == 100.0);

    const ibp_network_member *g = ibp_network_member_find(net, "Gamma");
    assert_non_null(g);
    assert_string_equal(g->display_name, "Gamma GmbH"); /* the key is the name */
    assert_false(g->active);
    assert_string_equal(g->website, "");
    assert_string_equal(g->region, "");
    assert_false(g->has_location);

    const ibp_network_member *d = ibp_network_member_find(net, "Delta Ops");
    assert_non_null(d);
    assert_true(d->active);
    assert_int_equal(d->service_count, 0);
    assert_null(d->services);
    assert_string_equal(d->monitor_url, ""); /* null is absent */
    assert_string_equal(d->region, "South America");
    assert_false(d->has_location);

    assert_null(ibp_network_member_find(net, "alpha nodes")); /* case-sensitive */
    assert_null(ibp_network_member_find(net, "Nobody"));
    assert_null(ibp_network_member_at(net, 4));

    assert_true(ibp_network_member_serves(a, "Hydration"));
    assert_true(ibp_network_member_serves(b, "Paseo"));
    assert_false(ibp_network_member_serves(b, "Kusama"));
    assert_false(ibp_network_member_serves(d, "Polkadot"));
    assert_false(ibp_network_member_serves(a, "polkadot"));
    assert_false(ibp_network_member_serves(NULL, "Polkadot"));
    ibp_network_free(net);
}

static void test_services_and_domains(void **state)
{
    (void)state;
    ibp_network *net = load_fixture(NULL);
    assert_int_equal(ibp_network_service_count(net), 5);
    assert_int_equal(ibp_network_rpc_url_count(net), 13);

    const ibp_network_service *p = ibp_network_service_find(net, "Polkadot");
    assert_non_null(p);
    assert_ptr_equal(p, ibp_network_service_at(net, 0));
    assert_string_equal(p->type, "RPC");
    assert_true(p->active);
    assert_int_equal(p->level_required, 3);
    assert_string_equal(p->network_name, "Polkadot");
    assert_int_equal(p->provider_count, 2);
    assert_string_equal(p->providers[0].name, "Dotters");
    assert_int_equal(p->providers[0].rpc_url_count, 3);
    assert_string_equal(p->providers[1].name, "Ibp");
    assert_string_equal(p->providers[1].rpc_urls[1], "wss://rpc.ibp.example/polkadot");
    /* Distinct and sorted, although polkadot.ibp.example is listed twice. */
    assert_int_equal(p->domain_count, 4);
    assert_string_equal(p->domains[0], "polkadot.dotters.example");
    assert_string_equal(p->domains[1], "polkadot.ibp.example");
    assert_string_equal(p->domains[2], "rpc.dotters.example");
    assert_string_equal(p->domains[3], "rpc.ibp.example");

    /* Host names are lower-cased; userinfo and port are not part of them. */
    const ibp_network_service *k = ibp_network_service_find(net, "Kusama");
    assert_int_equal(k->domain_count, 2);
    assert_string_equal(k->domains[0], "kusama.ibp.example");
    assert_string_equal(k->domains[1], "rpc.ibp.example");
    assert_string_equal(k->providers[0].rpc_urls[0], "wss://KUSAMA.IBP.example"); /* as written */

    const ibp_network_service *h = ibp_network_service_find(net, "Hydration");
    assert_false(h->active);
    assert_string_equal(h->type, "ETHRPC");
    assert_int_equal(h->level_required, 6);
    assert_int_equal(h->domain_count, 2);
    assert_string_equal(h->domains[0], "2001:db8::53");          /* IPv6 literal, no brackets */
    assert_string_equal(h->domains[1], "hydration.ibp.example"); /* trailing dot dropped */

    const ibp_network_service *pa = ibp_network_service_find(net, "Paseo");
    assert_true(pa->active);
    assert_string_equal(pa->network_name, "");
    assert_int_equal(pa->provider_count, 0);
    assert_int_equal(pa->domain_count, 0);
    assert_null(ibp_network_service_find(net, "Westend"));

    /* All domains of the network, sorted. */
    static const char *const all[] = {"2001:db8::53",
                                      "asset-hub-polkadot.ibp.example",
                                      "hydration.ibp.example",
                                      "kusama.ibp.example",
                                      "polkadot.dotters.example",
                                      "polkadot.ibp.example",
                                      "rpc.dotters.example",
                                      "rpc.ibp.example",
                                      "sys.ibp.example"};
    assert_int_equal(ibp_network_domain_count(net), 9);
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(ibp_network_domain_at(net, i)->name, all[i]);
    assert_null(ibp_network_domain_at(net, 9));

    const ibp_network_domain *rpc = ibp_network_domain_find(net, "RPC.ibp.example.");
    assert_non_null(rpc);
    assert_string_equal(rpc->name, "rpc.ibp.example");
    assert_int_equal(rpc->url_count, 3);
    assert_string_equal(rpc->urls[0], "wss://rpc.ibp.example/polkadot");
    assert_string_equal(rpc->urls[1], "wss://rpc.ibp.example/kusama");
    assert_string_equal(rpc->urls[2], "wss://user:pw@rpc.ibp.example:443/kusama-auth");
    assert_int_equal(rpc->service_count, 2);
    assert_string_equal(rpc->services[0], "Polkadot");
    assert_string_equal(rpc->services[1], "Kusama");

    const ibp_network_domain *pib = ibp_network_domain_find(net, "polkadot.ibp.example");
    assert_int_equal(pib->url_count, 1); /* listed by two providers, one endpoint */
    const ibp_network_domain *sys = ibp_network_domain_find(net, "sys.ibp.example");
    assert_int_equal(sys->url_count, 2);
    assert_int_equal(sys->service_count, 1);
    assert_string_equal(sys->services[0], "Asset-Hub-Polkadot");
    assert_non_null(ibp_network_domain_find(net, "2001:DB8::53"));
    assert_null(ibp_network_domain_find(net, "example"));
    assert_null(ibp_network_domain_find(net, ""));
    assert_null(ibp_network_domain_find(net, "."));
    assert_null(ibp_network_domain_find(net, NULL));

    const ibp_network_member *a = ibp_network_member_find(net, "Alpha Nodes");
    const ibp_network_member *b = ibp_network_member_find(net, "Beta Infra");
    const ibp_network_member *g = ibp_network_member_find(net, "Gamma");
    assert_true(ibp_network_member_serves_domain(net, a, "sys.ibp.example"));
    assert_true(ibp_network_member_serves_domain(net, b, "rpc.ibp.example")); /* via Polkadot */
    assert_false(ibp_network_member_serves_domain(net, b, "kusama.ibp.example"));
    assert_true(ibp_network_member_serves_domain(net, g, "rpc.ibp.example")); /* via Kusama */
    assert_false(ibp_network_member_serves_domain(net, g, "polkadot.ibp.example"));
    assert_false(ibp_network_member_serves_domain(net, a, "nowhere.example"));
    ibp_network_free(net);
}

static void test_checks(void **state)
{
    (void)state;
    ibp_network *net = load_fixture(DATA "checks.json");
    assert_int_equal(ibp_network_check_count(net), 3);

    const ibp_network_check *ping = ibp_network_check_find(net, "ping");
    assert_ptr_equal(ping, ibp_network_check_at(net, 0));
    assert_true(ping->enabled);
    assert_int_equal(ping->type, IBP_NETWORK_CHECK_SITE);
    assert_int_equal(ping->timeout_s, 5);
    assert_int_equal(ping->min_interval_s, 30);
    assert_string_equal(ping->extra_options, "{\"count\":3}");

    const ibp_network_check *ssl = ibp_network_check_find(net, "ssl");
    assert_true(ssl->enabled);
    assert_int_equal(ssl->type, IBP_NETWORK_CHECK_DOMAIN);
    assert_int_equal(ssl->min_interval_s, 3600); /* "minimumInterval" spelling */
    assert_string_equal(ssl->extra_options, "{\"warnDays\":14}");

    const ibp_network_check *wss = ibp_network_check_find(net, "wss");
    assert_false(wss->enabled);
    assert_int_equal(wss->type, IBP_NETWORK_CHECK_ENDPOINT); /* "Endpoint": any case */
    assert_int_equal(wss->timeout_s, 15);
    assert_int_equal(wss->min_interval_s, 60); /* default */
    assert_string_equal(wss->extra_options, "{}");
    assert_null(ibp_network_check_find(net, "dns"));
    assert_null(ibp_network_check_at(net, 3));
    assert_string_equal(ibp_network_check_type_name(wss->type), "endpoint");
    assert_string_equal(ibp_network_check_type_name((ibp_network_check_type)42), "?");
    ibp_network_free(net);

    net = load_fixture(DATA "checks_array.json");
    assert_int_equal(ibp_network_check_count(net), 2);
    ping = ibp_network_check_find(net, "ping");
    assert_true(ping->enabled);
    assert_int_equal(ping->timeout_s, 10); /* default */
    const ibp_network_check *eth = ibp_network_check_find(net, "ethrpc");
    assert_false(eth->enabled);
    assert_int_equal(eth->timeout_s, 3);
    assert_int_equal(eth->min_interval_s, 120);
    assert_string_equal(eth->extra_options, "{\"method\":\"eth_chainId\",\"params\":[]}");
    ibp_network_free(net);

    /* No checks file: no checks. */
    net = load_fixture(NULL);
    assert_int_equal(ibp_network_check_count(net), 0);
    assert_null(ibp_network_check_find(net, "ping"));
    ibp_network_free(net);
}

static void test_files(void **state)
{
    (void)state;
    ibp_network *net = NULL;
    ibp_err err;
    assert_err(ibp_network_load(DATA "nope.json", DATA "services.json", NULL, &net, &err), err,
               IBP_E_IO, "nope.json: cannot open: No such file or directory");
    assert_err(ibp_network_load(DATA "members.json", DATA "nope.json", NULL, &net, &err), err,
               IBP_E_IO, "nope.json: cannot open");
    assert_err(
        ibp_network_load(DATA "members.json", DATA "services.json", DATA "nope.json", &net, &err),
        err, IBP_E_IO, "nope.json: cannot open");
    assert_err(ibp_network_load(DATA, DATA "services.json", NULL, &net, &err), err, IBP_E_IO,
               "not a regular file");
    /* The members file given as the services file: the error names that file. */
    assert_err(ibp_network_load(DATA "members.json", DATA "members.json", NULL, &net, &err), err,
               IBP_E_CONFIG, "members.json: \"Alpha Nodes\".Configuration: missing (required)");
    assert_err(ibp_network_load(DATA "members.json", DATA "services.json", DATA "members.json",
                                &net, &err),
               err, IBP_E_CONFIG, "members.json: \"Alpha Nodes\": unknown key \"Details\"");
    assert_null(net);

    char *dir = test_tmpdir();
    char path[4096], want[4200];
    test_path(path, sizeof path, dir, "members.json");
    test_write(path, "{\n  \"A\": {\n    \"Details\": {\"Name\": \"A\"},\n  }\n}\n", 0644);
    snprintf(want, sizeof want, "%s:4:", path);
    assert_err(ibp_network_load(path, DATA "services.json", NULL, &net, &err), err, IBP_E_CONFIG,
               want);
    assert_int_equal(ibp_network_load(NULL, DATA "services.json", NULL, &net, &err), IBP_E_INVAL);
    assert_int_equal(ibp_network_load_buffers(NULL, 0, "{}", 2, NULL, 0, &net, &err), IBP_E_INVAL);
    test_rmdir(dir);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_member_errors(void **state)
{
    (void)state;
    expect_error("{\"A\": {", NULL, NULL, "members:1:");
    expect_error("", NULL, NULL, "members:");
    expect_error("[]", NULL, NULL,
                 "members: expected an object keyed by member name at the top level, got an "
                 "array");
    expect_error("{\"A\": 1, \"A\": 2}", NULL, NULL, "duplicate object key");
    expect_error("{\"A\": []}", NULL, NULL, "members: \"A\": expected an object, got an array");
    expect_error("{\"\": {}}", NULL, NULL, "members: \"\": empty member name");
    expect_error("{\"A\": {}}", NULL, NULL, "members: \"A\".Details: missing (required)");
    expect_error("{\"A\": {\"Details\": \"A\"}}", NULL, NULL,
                 "members: \"A\".Details: expected an object, got a string \"A\"");
    expect_error(MEMBER("{}", OK_MEMBERSHIP, OK_SERVICE, ""), NULL, NULL,
                 "members: \"M\".Details.Name: missing (required)");
    expect_error(MEMBER("{\"Name\": \"\"}", OK_MEMBERSHIP, OK_SERVICE, ""), NULL, NULL,
                 "members: \"M\".Details.Name: is empty");
    expect_error(MEMBER("{\"Name\": 7}", OK_MEMBERSHIP, OK_SERVICE, ""), NULL, NULL,
                 "members: \"M\".Details.Name: expected a string, got an integer 7");
    expect_error(MEMBER(OK_DETAILS, "{}", OK_SERVICE, ""), NULL, NULL,
                 "members: \"M\".Membership.MemberLevel: missing (required)");
    expect_error(MEMBER(OK_DETAILS, "{\"MemberLevel\": \"6\"}", OK_SERVICE, ""), NULL, NULL,
                 "members: \"M\".Membership.MemberLevel: expected an integer, got a string \"6\"");
    expect_error(MEMBER(OK_DETAILS, "{\"MemberLevel\": 6.5}", OK_SERVICE, ""), NULL, NULL,
                 "\"M\".Membership.MemberLevel: expected an integer, got a real number 6.5");
    expect_error(MEMBER(OK_DETAILS, "{\"MemberLevel\": -1}", OK_SERVICE, ""), NULL, NULL,
                 "\"M\".Membership.MemberLevel: -1 is out of range 0..100");
    expect_error(MEMBER(OK_DETAILS, "{\"MemberLevel\": 1, \"Joined\": \"2023\"}", OK_SERVICE, ""),
                 NULL, NULL, "\"M\".Membership.Joined: expected an integer");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, "{}", ""), NULL, NULL,
                 "members: \"M\".Service.Active: missing (required)");
    expect_error("{\"Stake Plus\": {\"Details\": {\"Name\": \"Stake Plus\"}, \"Membership\": "
                 "{\"MemberLevel\": 6}, \"Service\": {\"Active\": \"1\"}}}",
                 NULL, NULL,
                 "members: \"Stake Plus\".Service.Active: expected 0, 1, true or false, got a "
                 "string \"1\"");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, "{\"Active\": 2}", ""), NULL, NULL,
                 "\"M\".Service.Active: expected 0, 1, true or false, got an integer 2");
    expect_error(
        MEMBER(OK_DETAILS, OK_MEMBERSHIP, "{\"Active\": 1, \"ServiceIPv4\": \"1.2.3\"}", ""), NULL,
        NULL, "\"M\".Service.ServiceIPv4: \"1.2.3\" is not an IPv4 address");
    expect_error(
        MEMBER(OK_DETAILS, OK_MEMBERSHIP, "{\"Active\": 1, \"ServiceIPv6\": \"192.0.2.1\"}", ""),
        NULL, NULL, "\"M\".Service.ServiceIPv6: \"192.0.2.1\" is not an IPv6 address");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, "{\"Active\": 1, \"ServiceIPv4\": 5}", ""), NULL,
                 NULL, "\"M\".Service.ServiceIPv4: expected a string, got an integer 5");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP,
                        "{\"Active\": 1, \"MonitorUrl\": \"monitor.example\"}", ""),
                 NULL, NULL,
                 "\"M\".Service.MonitorUrl: \"monitor.example\" is not a valid URL: missing "
                 "\"://\" after the scheme");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE, ", \"ServiceAssignments\": []"),
                 NULL, NULL, "\"M\".ServiceAssignments: expected an object, got an array");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE,
                        ", \"ServiceAssignments\": {\"Polkadot\": \"Polkadot\"}"),
                 NULL, NULL,
                 "\"M\".ServiceAssignments.\"Polkadot\": expected an array of service names, got "
                 "a string \"Polkadot\"");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE,
                        ", \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\", 5]}"),
                 NULL, NULL,
                 "members: \"M\".ServiceAssignments.\"Polkadot\"[1]: expected a service name, "
                 "got an integer 5");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE,
                        ", \"ServiceAssignments\": {\"Polkadot\": [\"\"]}"),
                 NULL, NULL, "\"M\".ServiceAssignments.\"Polkadot\"[0]: is empty");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE, ", \"Location\": 5"), NULL, NULL,
                 "\"M\".Location: expected an object, got an integer 5");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE,
                        ", \"Location\": {\"Latitude\": 91, \"Longitude\": 0}"),
                 NULL, NULL, "\"M\".Location.Latitude: 91 is out of range -90..90");
    expect_error(MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE,
                        ", \"Location\": {\"Latitude\": 1, \"Longitude\": \"east\"}"),
                 NULL, NULL, "\"M\".Location.Longitude: expected a number, got a string \"east\"");
    expect_error(
        MEMBER(OK_DETAILS, OK_MEMBERSHIP, OK_SERVICE, ", \"Location\": {\"Region\": [\"EU\"]}"),
        NULL, NULL, "\"M\".Location.Region: expected a string, got an array");
    /* Hostile member names are escaped in messages. */
    expect_error("{\"A\\nB\": {}}", NULL, NULL, "members: \"A\\nB\".Details: missing");
}

static void test_service_errors(void **state)
{
    (void)state;
    expect_error(NULL, "{\"S\": {", NULL, "services:1:");
    expect_error(NULL, "[1]", NULL,
                 "services: expected an object keyed by service name at the top level");
    expect_error(NULL, "{\"S\": {}}", NULL, "services: \"S\".Configuration: missing (required)");
    expect_error(NULL,
                 SERVICE("{\"ServiceType\": \"RPC\", \"Active\": 1, \"LevelRequired\": 3}", ""),
                 NULL, "services: \"S\".Configuration.Name: missing (required)");
    expect_error(NULL, SERVICE("{\"Name\": \"S\", \"Active\": 1, \"LevelRequired\": 3}", ""), NULL,
                 "services: \"S\".Configuration.ServiceType: missing (required)");
    expect_error(NULL,
                 SERVICE("{\"Name\": \"S\", \"ServiceType\": \"RPC\", \"LevelRequired\": 3}", ""),
                 NULL, "services: \"S\".Configuration.Active: missing (required)");
    expect_error(NULL,
                 SERVICE("{\"Name\": \"S\", \"ServiceType\": \"RPC\", \"Active\": 1, "
                         "\"LevelRequired\": 3.0}",
                         ""),
                 NULL,
                 "services: \"S\".Configuration.LevelRequired: expected an integer, got a real "
                 "number 3.0");
    expect_error(NULL, SERVICE(OK_CONF, ", \"Providers\": [\"Ibp\"]"), NULL,
                 "services: \"S\".Providers: expected an object, got an array");
    expect_error(NULL, SERVICE(OK_CONF, ", \"Providers\": {\"Ibp\": []}"), NULL,
                 "services: \"S\".Providers.\"Ibp\": expected an object, got an array");
    expect_error(NULL, SERVICE(OK_CONF, ", \"Providers\": {\"Ibp\": {\"RpcUrls\": \"wss://x\"}}"),
                 NULL, "services: \"S\".Providers.\"Ibp\".RpcUrls: expected an array of URLs");
    expect_error(NULL, URLS("[\"wss://a.example\", 7]"), NULL,
                 "services: \"S\".Providers.\"P\".RpcUrls[1]: expected a URL string, got an "
                 "integer 7");
    expect_error(NULL, URLS("[\"wss//a.example\"]"), NULL,
                 "services: \"S\".Providers.\"P\".RpcUrls[0]: \"wss//a.example\" is not a valid "
                 "URL: missing \"://\" after the scheme");
    expect_error(NULL, URLS("[\"wss://\"]"), NULL, "is not a valid URL: missing host");
    expect_error(NULL, URLS("[\"wss://a..example\"]"), NULL, "empty label in the host name");
    expect_error(NULL, URLS("[\"wss://a.example:0/x\"]"), NULL, "port out of range 1..65535");
    expect_error(NULL, URLS("[\"wss://[::1/x\"]"), NULL, "unterminated IPv6 literal");
    expect_error(NULL, URLS("[\"wss://::1/x\"]"), NULL, "an IPv6 address must be in brackets");
    expect_error(NULL, URLS("[\"wss://a b.example\"]"), NULL,
                 "contains a space or control character");
    /* Providers may be absent, and null means absent. */
    ibp_network *net = NULL;
    ibp_err err;
    assert_ok(load_text(NULL, SERVICE(OK_CONF, ", \"Providers\": null"), NULL, &net, &err), err);
    assert_int_equal(ibp_network_service_find(net, "S")->provider_count, 0);
    ibp_network_free(net);
}

static void test_check_errors(void **state)
{
    (void)state;
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"Timout\": 5}}",
                 "checks: \"ping\": unknown key \"Timout\" (expected Name, Enabled, CheckType, "
                 "Timeout, MinimumInterval, ExtraOptions)");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"dns\"}}",
                 "checks: \"ping\".CheckType: \"dns\" is not \"site\", \"domain\" or \"endpoint\"");
    expect_error(NULL, NULL, "{\"ping\": {\"Enabled\": 1}}",
                 "checks: \"ping\".CheckType: missing (required)");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": 1}}",
                 "checks: \"ping\".CheckType: expected \"site\", \"domain\" or \"endpoint\", got "
                 "an integer 1");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"Timeout\": 0}}",
                 "checks: \"ping\".Timeout: 0 is out of range 1..3600");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"Timeout\": \"5s\"}}",
                 "checks: \"ping\".Timeout: expected an integer, got a string \"5s\"");
    expect_error(NULL, NULL,
                 "{\"ping\": {\"CheckType\": \"site\", \"MinimumInterval\": 5, "
                 "\"minimumInterval\": 6}}",
                 "checks: \"ping\": both MinimumInterval and minimumInterval are set");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"MinimumInterval\": 0}}",
                 "checks: \"ping\".MinimumInterval: 0 is out of range 1..86400");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"minimumInterval\": -5}}",
                 "checks: \"ping\".minimumInterval: -5 is out of range 1..86400");
    expect_error(NULL, NULL, "{\"ping\": {\"Name\": \"pong\", \"CheckType\": \"site\"}}",
                 "checks: \"ping\".Name: \"pong\" differs from the check's key");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"Enabled\": 2}}",
                 "checks: \"ping\".Enabled: expected 0, 1, true or false, got an integer 2");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\", \"ExtraOptions\": [1]}}",
                 "checks: \"ping\".ExtraOptions: expected an object, got an array");
    expect_error(NULL, NULL, "{\"ping\": 5}", "checks: \"ping\": expected an object");
    expect_error(NULL, NULL, "{\"\": {\"CheckType\": \"site\"}}", "checks: \"\": empty check name");
    expect_error(NULL, NULL,
                 "[{\"Name\": \"ping\", \"CheckType\": \"site\"}, {\"CheckType\": \"site\"}]",
                 "checks: [1].Name: missing (required)");
    expect_error(NULL, NULL,
                 "[{\"Name\": \"ping\", \"CheckType\": \"site\"}, {\"Name\": \"ping\", "
                 "\"CheckType\": \"domain\"}]",
                 "checks: check \"ping\" is defined twice");
    expect_error(NULL, NULL, "[5]", "checks: [0]: expected an object, got an integer 5");
    expect_error(NULL, NULL, "{\"ping\": {\"CheckType\": \"site\",}}", "checks:1:");
    expect_error(NULL, NULL, "\"ping\"", "checks:1:");
}

/* Every prefix and many byte flips of the fixtures load or fail cleanly; none crashes. */
static void test_garbage_never_crashes(void **state)
{
    (void)state;
    static const char *const files[] = {DATA "members.json", DATA "services.json",
                                        DATA "checks.json"};
    for (size_t f = 0; f < 3; f++) {
        FILE *fp = fopen(files[f], "rb");
        assert_non_null(fp);
        char buf[8192];
        size_t len = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        assert_true(len > 0 && len < sizeof buf);
        for (size_t cut = 0; cut <= len; cut += 3) {
            for (int flip = 0; flip < 2; flip++) {
                char *text = malloc(len + 1);
                assert_non_null(text);
                memcpy(text, buf, len);
                if (flip && cut < len)
                    text[cut] = (char)(text[cut] ^ 0x5a);
                size_t n = flip ? len : cut;
                ibp_network *net = NULL;
                ibp_err err;
                ibp_status st;
                if (f == 0)
                    st = ibp_network_load_buffers(text, n, "{}", 2, NULL, 0, &net, &err);
                else if (f == 1)
                    st = ibp_network_load_buffers("{}", 2, text, n, NULL, 0, &net, &err);
                else
                    st = ibp_network_load_buffers("{}", 2, "{}", 2, text, n, &net, &err);
                if (st == IBP_OK)
                    ibp_network_free(net);
                else
                    assert_int_equal(st, IBP_E_CONFIG);
                free(text);
            }
        }
    }
}

static void test_url_parse(void **state)
{
    (void)state;
    ibp_network_url u;
    ibp_err err;
    const char *url = "WSS://User:Pa%40ss@RPC.Example.ORG:8443/polkadot?x=1#f";
    assert_ok(ibp_network_url_parse(url, &u, &err), err);
    assert_string_equal(u.scheme, "wss");
    assert_string_equal(u.host, "rpc.example.org");
    assert_false(u.host_is_ipv6);
    assert_int_equal(u.port, 8443);
    assert_string_equal(url + u.path_offset, "/polkadot?x=1#f");

    assert_ok(ibp_network_url_parse("https://[2001:DB8::1]:443", &u, &err), err);
    assert_string_equal(u.host, "2001:db8::1");
    assert_true(u.host_is_ipv6);
    assert_int_equal(u.port, 443);
    assert_int_equal(u.path_offset, strlen("https://[2001:DB8::1]:443"));

    assert_ok(ibp_network_url_parse("wss://a@b@host.example?q", &u, &err), err);
    assert_string_equal(u.host, "host.example");
    assert_int_equal(u.port, 0);
    assert_ok(ibp_network_url_parse("wss://[::ffff:192.0.2.1]/", &u, &err), err);
    assert_string_equal(u.host, "::ffff:192.0.2.1");
    assert_ok(ibp_network_url_parse("nats+tls://192.0.2.1:4222", &u, &err), err);
    assert_string_equal(u.scheme, "nats+tls");
    assert_string_equal(u.host, "192.0.2.1");
    assert_ok(ibp_network_url_parse("wss://under_score.example./", &u, &err), err);
    assert_string_equal(u.host, "under_score.example");

    static const struct {
        const char *url;
        const char *why;
    } bad[] = {
        {"", "missing scheme"},
        {"//host", "missing scheme"},
        {"1wss://host", "missing scheme"},
        {"wss:host", "missing \"://\""},
        {"wss:/host", "missing \"://\""},
        {"averyveryverylongscheme://host", "scheme is too long"},
        {"wss://", "missing host"},
        {"wss:///path", "missing host"},
        {"wss://user@", "missing host"},
        {"wss://user@/x", "missing host"},
        {"wss://.", "missing host"},
        {"wss://:443", "missing host"},
        {"wss://.example", "empty label"},
        {"wss://a..b", "empty label"},
        {"wss://exa*mple.org", "bad character"},
        {"wss://exa%41mple.org", "bad character"},
        {"wss://host:", "empty port"},
        {"wss://host:0", "port out of range"},
        {"wss://host:65536", "port out of range"},
        {"wss://host:99999999999999999999", "port out of range"},
        {"wss://host:44a", "bad port"},
        {"wss://host:-1", "bad port"},
        {"wss://[::1", "unterminated IPv6 literal"},
        {"wss://[]", "bad IPv6 literal"},
        {"wss://[zz::1]", "bad IPv6 literal"},
        {"wss://[192.0.2.1]", "bad IPv6 literal"},
        {"wss://[::1]x", "unexpected text after the IPv6 literal"},
        {"wss://[::1]:", "empty port"},
        {"wss://::1", "must be in brackets"},
        {"wss://host name", "space or control"},
        {"wss://host\tname", "space or control"},
        {"wss://host\x7f", "space or control"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ibp_err_clear(&err);
        memset(&u, 0x5a, sizeof u);
        ibp_status st = ibp_network_url_parse(bad[i].url, &u, &err);
        if (st != IBP_E_INVAL || !strstr(err.msg, bad[i].why))
            fail_msg("URL \"%s\": got %s \"%s\", want IBP_E_INVAL \"%s\"", bad[i].url,
                     ibp_status_name(st), err.msg, bad[i].why);
        assert_int_equal(u.port, 0x5a5a5a5a); /* *out untouched */
    }
    /* 64 bytes in one label, 254 bytes in all. */
    char big[300];
    snprintf(big, sizeof big, "wss://%064d.example", 0);
    assert_err(ibp_network_url_parse(big, &u, &err), err, IBP_E_INVAL,
               "label longer than 63 bytes");
    char name[300] = "wss://";
    for (int i = 0; i < 64; i++)
        strcat(name, "abc.");
    strcat(name, "x");
    assert_err(ibp_network_url_parse(name, &u, &err), err, IBP_E_INVAL, "longer than 253 bytes");
    assert_int_equal(ibp_network_url_parse(NULL, &u, &err), IBP_E_INVAL);
    assert_int_equal(ibp_network_url_parse("wss://x", NULL, NULL), IBP_E_INVAL);
}

static void test_null_network(void **state)
{
    (void)state;
    ibp_network_free(NULL);
    assert_int_equal(ibp_network_member_count(NULL), 0);
    assert_null(ibp_network_member_at(NULL, 0));
    assert_null(ibp_network_member_find(NULL, "x"));
    assert_null(ibp_network_service_find(NULL, "x"));
    assert_null(ibp_network_check_find(NULL, "x"));
    assert_null(ibp_network_domain_find(NULL, "x"));
    assert_int_equal(ibp_network_domain_count(NULL), 0);
    assert_int_equal(ibp_network_rpc_url_count(NULL), 0);
    assert_false(ibp_network_member_serves_domain(NULL, NULL, "x"));

    ibp_network *net = NULL;
    ibp_err err;
    assert_ok(load_text(NULL, NULL, NULL, &net, &err), err); /* an empty network is valid */
    assert_int_equal(ibp_network_member_count(net), 0);
    assert_int_equal(ibp_network_domain_count(net), 0);
    assert_null(ibp_network_member_find(net, "x"));
    assert_null(ibp_network_domain_find(net, "x"));
    ibp_network_free(net);
}

/* ---- the real upstream files ------------------------------------------------------------- */

static void test_upstream_files(void **state)
{
    (void)state;
    if (access(UPSTREAM "members_professional.json", R_OK) != 0 ||
        access(UPSTREAM "services_rpc.json", R_OK) != 0) {
        skip();
    }
    ibp_network *net = NULL;
    ibp_err err;
    ibp_err_clear(&err);
    assert_ok(ibp_network_load(UPSTREAM "members_professional.json", UPSTREAM "services_rpc.json",
                               NULL, &net, &err),
              err);
    /* Counted from the files with python. */
    assert_int_equal(ibp_network_member_count(net), 7);
    assert_int_equal(ibp_network_service_count(net), 22);
    assert_int_equal(ibp_network_rpc_url_count(net), 83);
    /* Distinct hosts, counted with python's urllib.parse. */
    assert_int_equal(ibp_network_domain_count(net), 48);

    const ibp_network_member *sp = ibp_network_member_find(net, "Stake Plus");
    assert_non_null(sp);
    assert_true(ibp_network_member_serves(sp, "Polkadot"));
    assert_true(ibp_network_member_serves(sp, "Hydration")); /* from the "Level6" list */
    assert_false(ibp_network_member_serves(sp, "Westend"));
    assert_int_equal(sp->service_count, 22);
    assert_int_equal(sp->level, 6);
    assert_true(sp->active);
    assert_string_equal(sp->ipv4, "192.96.202.175");
    assert_string_equal(sp->ipv6, "");
    assert_string_equal(sp->monitor_url, "https://monitor.dotters.network");
    assert_string_equal(sp->region, "North America");
    assert_true(sp->has_location);

    assert_false(ibp_network_member_find(net, "Rotko Networks")->active);
    assert_string_equal(ibp_network_member_find(net, "RadiumBlock")->monitor_url, "");

    const ibp_network_service *paseo = ibp_network_service_find(net, "Paseo");
    assert_non_null(paseo);
    assert_string_equal(paseo->network_name, "Paseo Testnet");
    assert_int_equal(paseo->level_required, 3);
    assert_int_equal(paseo->domain_count, 4);
    assert_true(has(paseo->domains, paseo->domain_count, "paseo.dotters.network"));
    assert_true(has(paseo->domains, paseo->domain_count, "paseo.ibp.network"));
    assert_true(has(paseo->domains, paseo->domain_count, "rpc.dotters.network"));
    assert_true(has(paseo->domains, paseo->domain_count, "rpc.ibp.network"));
    assert_string_equal(ibp_network_service_find(net, "ETH-Asset-Hub-Paseo")->type, "ETHRPC");
    assert_int_equal(ibp_network_service_find(net, "Hydration")->level_required, 6);

    const ibp_network_domain *rpc = ibp_network_domain_find(net, "rpc.ibp.network");
    assert_non_null(rpc);
    assert_int_equal(rpc->url_count, 3);
    assert_true(has(rpc->urls, rpc->url_count, "wss://rpc.ibp.network/paseo"));
    assert_true(has(rpc->urls, rpc->url_count, "wss://rpc.ibp.network/kusama"));
    assert_true(has(rpc->urls, rpc->url_count, "wss://rpc.ibp.network/polkadot"));
    assert_int_equal(rpc->service_count, 3);
    assert_int_equal(ibp_network_domain_find(net, "sys.ibp.network")->url_count, 17);
    assert_true(ibp_network_member_serves_domain(net, sp, "rpc.dotters.network"));
    ibp_network_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),        cmocka_unit_test(test_services_and_domains),
        cmocka_unit_test(test_checks),         cmocka_unit_test(test_files),
        cmocka_unit_test(test_member_errors),  cmocka_unit_test(test_service_errors),
        cmocka_unit_test(test_check_errors),   cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_url_parse),      cmocka_unit_test(test_null_network),
        cmocka_unit_test(test_upstream_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
