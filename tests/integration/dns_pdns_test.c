/*
 * Integration: the dns role answering DNS through a real pdns_server
 * (DESIGN.md §12). A dns ibp-node with its remote backend, PowerDNS on a
 * free loopback port with the shipped deploy/pdns/pdns.conf, the official
 * status made by two consensus replicas from signed monitor observations and
 * an admin override (dns_testlib.h). Queries with dig and kdig:
 *   - SOA, NS, a static record, TXT, NXDOMAIN, ANY, AXFR;
 *   - the nearest member by ECS subnet for clients in Germany, France, Japan
 *     and Brazil (IPv4 and IPv6), the scope echoed, no answer shared through
 *     PowerDNS's caches;
 *   - a country override (US -> "Paris Ops");
 *   - a member down for the host over IPv4: not answered over IPv4, still
 *     over IPv6;
 *   - an overridden member: answered for no family; the country override
 *     falls back to the nearest;
 *   - every member down over IPv4: the last resort (nearest not overridden,
 *     short TTL), IPv6 unaffected;
 *   - PowerDNS on the HTTP connector (the upstream connection string);
 *   - hostile requests on the HTTP connector: malformed JSON, a huge qname,
 *     an unknown method, a 1 MB body, wrong path and method, a client that
 *     stalls: refused, and everything else still answered; an oversized line on
 *     the unix socket closes that connection only; every refusal counted in
 *     $SRV.STATS.
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
#include <jansson.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dns_testlib.h"

#define DE "192.0.2.0/24"
#define FR "198.51.100.0/24"
#define JP "203.0.113.0/24"
#define US "100.64.0.0/24"
#define BR "100.64.1.0/24"
#define DE6 "2001:db8:1::/48"
#define JP6 "2001:db8:3::/48"

static dns_env env;

static int unix_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    assert_true(fd >= 0 && strlen(path) < sizeof sa.sun_path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void want(const char *name, const char *type, const char *subnet, const char *expect)
{
    char *got = ibp_test_dns_dig_short(&env, name, type, subnet);
    if (strcmp(got, expect) != 0)
        fail_msg("dig %s %s (subnet %s): got \"%s\", want \"%s\"", name, type,
                 subnet ? subnet : "none", got, expect);
    free(got);
}

/* The TTL of the first answer record (dig +noall +answer). */
static int answer_ttl(const char *name, const char *type, const char *subnet)
{
    char *out = NULL;
    ibp_test_dns_sh(&out, "dig +noall +answer -p %u @127.0.0.1 +subnet=%s %s %s", env.dns_port,
                    subnet, name, type);
    char n[256], cls[16];
    int ttl = -1;
    if (sscanf(out, "%255s %d %15s", n, &ttl, cls) != 3)
        fail_msg("no answer to %s %s: %s", name, type, out);
    free(out);
    return ttl;
}

static void test_static_and_zone(void **state)
{
    (void)state;
    char *out = NULL;
    out = ibp_test_dns_dig_short(&env, DNS_ZONE, "SOA", NULL);
    assert_true(strncmp(out, "ns1.ibp.test. hostmaster.ibp.test. ", 35) == 0);
    assert_non_null(strstr(out, " 10800 3600 604800 60"));
    free(out);
    /* PowerDNS shuffles an RRset: compare sorted. */
    assert_int_equal(
        ibp_test_dns_sh(&out, "dig +short -p %u @127.0.0.1 %s NS | sort", env.dns_port, DNS_ZONE),
        0);
    assert_string_equal(out, "ns1.ibp.test.\nns2.ibp.test.\n");
    free(out);
    want("www." DNS_ZONE, "A", NULL, "192.0.2.80");
    want("www." DNS_ZONE, "TXT", NULL, "\"hello\"");
    want("ns1." DNS_ZONE, "A", NULL, "192.0.2.53");

    /* NXDOMAIN for a name the zone does not have, with the SOA in authority. */
    assert_int_equal(
        ibp_test_dns_sh(&out, "dig -p %u @127.0.0.1 nothere.%s A", env.dns_port, DNS_ZONE), 0);
    assert_non_null(strstr(out, "status: NXDOMAIN"));
    assert_non_null(strstr(out, "hostmaster.ibp.test."));
    free(out);
    /* An empty non-terminal (names exist below it): NODATA, not NXDOMAIN. */
    want("_acme-challenge.deep." DNS_ZONE, "TXT", NULL, "\"token\"");
    assert_int_equal(
        ibp_test_dns_sh(&out, "dig -p %u @127.0.0.1 deep.%s A", env.dns_port, DNS_ZONE), 0);
    assert_non_null(strstr(out, "status: NOERROR"));
    assert_non_null(strstr(out, "ANSWER: 0"));
    free(out);
    /* A name outside every zone: PowerDNS refuses it. */
    assert_int_equal(ibp_test_dns_sh(&out, "dig -p %u @127.0.0.1 example.com A", env.dns_port), 0);
    assert_non_null(strstr(out, "status: REFUSED"));
    free(out);

    /* AXFR: SOA at both ends, the static records and the host's addresses. */
    assert_int_equal(ibp_test_dns_sh(&out, "dig -p %u @127.0.0.1 %s AXFR", env.dns_port, DNS_ZONE),
                     0);
    assert_non_null(strstr(out, "www.ibp.test."));
    assert_non_null(strstr(out, "\"hello\""));
    assert_non_null(strstr(out, "rpc.ibp.test."));
    assert_non_null(strstr(out, "10.0.0.4"));
    assert_non_null(strstr(out, "fd00::3"));
    assert_non_null(strstr(out, "XFR size"));
    free(out);
}

static void test_nearest_by_subnet(void **state)
{
    (void)state;
    char *out = NULL;
    want(DNS_HOST, "A", DE, "10.0.0.1");
    want(DNS_HOST, "A", FR, "10.0.0.2");
    want(DNS_HOST, "A", JP, "10.0.0.3");
    want(DNS_HOST, "A", BR, "10.0.0.4"); /* Sao Paulo: Virginia is the nearest */
    want(DNS_HOST, "AAAA", JP, "fd00::3");
    want(DNS_HOST, "AAAA", BR, "fd00::2"); /* no IPv6 in Virginia: Paris next */
    want(DNS_HOST, "AAAA", DE6, "fd00::1");
    want(DNS_HOST, "A", JP6, "10.0.0.3"); /* an IPv6 client asking for A */
    /* Again, in another order: nothing is served from a cache to the wrong client. */
    for (int i = 0; i < 3; i++) {
        want(DNS_HOST, "A", JP, "10.0.0.3");
        want(DNS_HOST, "A", DE, "10.0.0.1");
    }
    /* kdig too, and the scope of the answer is the client's subnet. */
    assert_int_equal(ibp_test_dns_sh(&out, "kdig +short -p %u @127.0.0.1 +subnet=%s %s AAAA",
                                     env.dns_port, DE6, DNS_HOST),
                     0);
    assert_string_equal(out, "fd00::1\n");
    free(out);
    assert_int_equal(
        ibp_test_dns_sh(&out, "dig -p %u @127.0.0.1 +subnet=%s %s A", env.dns_port, FR, DNS_HOST),
        0);
    assert_non_null(strstr(out, "CLIENT-SUBNET: 198.51.100.0/24/24"));
    free(out);
    /* ANY (over TCP after TC=1): both families. */
    assert_int_equal(ibp_test_dns_sh(&out, "dig +short -p %u @127.0.0.1 +subnet=%s %s ANY",
                                     env.dns_port, JP, DNS_HOST),
                     0);
    assert_non_null(strstr(out, "10.0.0.3"));
    assert_non_null(strstr(out, "fd00::3"));
    free(out);
    /* The dynamic TTL. */
    assert_int_equal(answer_ttl(DNS_HOST, "A", DE), 30);
    /* Through PowerDNS on the HTTP connector, as upstream configures it. */
    assert_int_equal(ibp_test_dns_sh(&out, "dig +short -p %u @127.0.0.1 +subnet=%s %s A",
                                     env.dns_port_http, JP, DNS_HOST),
                     0);
    assert_string_equal(out, "10.0.0.3\n");
    free(out);
}

/* The local cluster's demo traffic helper (deploy/local/pdns.sh demo-queries). */
static void test_demo_queries(void **state)
{
    (void)state;
    char *out = NULL;
    assert_int_equal(ibp_test_dns_sh(&out,
                                     "bash '%s/deploy/local/pdns.sh' demo-queries '%s/pdns' %s 1",
                                     IBP_SOURCE_DIR, env.dir, DNS_HOST),
                     0);
    assert_non_null(strstr(out, "JP 203.0.113.0/24 A 10.0.0.3 \n"));
    assert_non_null(strstr(out, "DE 2001:db8:1::/48 AAAA fd00::1 \n"));
    free(out);
}

static void test_country_override(void **state)
{
    (void)state;
    want(DNS_HOST, "A", US, "10.0.0.2"); /* US=Paris Ops, though Virginia is nearer */
    want(DNS_HOST, "AAAA", US, "fd00::2");
}

static void test_status_changes(void **state)
{
    (void)state;
    /* Tokyo down for the host over IPv4 only. */
    ibp_test_dns_observe_all(&env, "domain", "ssl", "Tokyo Ops", DNS_HOST, false, false);
    ibp_test_dns_wait_online(&env, "Tokyo Ops", false, false);
    want(DNS_HOST, "A", JP, "10.0.0.1"); /* Berlin is next to Tokyo */
    want(DNS_HOST, "AAAA", JP, "fd00::3");

    /* Paris overridden: answered for no family; the US override falls back. */
    ibp_test_dns_override(&env, "Paris Ops", true);
    ibp_test_dns_wait_online(&env, "Paris Ops", false, false);
    ibp_test_dns_wait_online(&env, "Paris Ops", true, false);
    want(DNS_HOST, "A", FR, "10.0.0.1");
    want(DNS_HOST, "AAAA", FR, "fd00::1");
    want(DNS_HOST, "A", US, "10.0.0.4");

    /* Every member down over IPv4: the last resort, nearest not overridden, short TTL. */
    const char *all[] = {"Berlin Ops", "Paris Ops", "Tokyo Ops", "Virginia Ops"};
    for (int i = 0; i < 4; i++)
        ibp_test_dns_observe_all(&env, "site", "ping", all[i], NULL, false, false);
    ibp_test_dns_wait_online(&env, "Berlin Ops", false, false);
    ibp_test_dns_wait_online(&env, "Virginia Ops", false, false);
    want(DNS_HOST, "A", JP, "10.0.0.3");
    want(DNS_HOST, "A", FR, "10.0.0.1"); /* not Paris: overridden */
    assert_int_equal(answer_ttl(DNS_HOST, "A", DE), 5);
    want(DNS_HOST, "AAAA", DE6, "fd00::1");
    assert_int_equal(answer_ttl(DNS_HOST, "AAAA", DE6), 30);

    /* Back: Berlin up again over IPv4, Paris enabled. */
    ibp_test_dns_observe_all(&env, "site", "ping", "Berlin Ops", NULL, false, true);
    ibp_test_dns_override(&env, "Paris Ops", false);
    ibp_test_dns_wait_online(&env, "Berlin Ops", false, true);
    ibp_test_dns_wait_online(&env, "Paris Ops", true, true);
    want(DNS_HOST, "A", JP, "10.0.0.1");
    assert_int_equal(answer_ttl(DNS_HOST, "A", JP), 30);
    want(DNS_HOST, "AAAA", FR, "fd00::2");
}

static void test_hostile_http(void **state)
{
    (void)state;
    char *resp = NULL;
    const char *ok_req = "{\"method\":\"lookup\",\"parameters\":{\"qtype\":\"A\",\"qname\":"
                         "\"www.ibp.test.\",\"remote\":\"127.0.0.1\",\"real-remote\":"
                         "\"127.0.0.1/32\",\"zone-id\":1}}";
    assert_int_equal(ibp_test_dns_http_post(&env, "/dns", "POST", ok_req, strlen(ok_req), &resp),
                     200);
    assert_non_null(strstr(resp, "192.0.2.80"));
    free(resp);

    /* A client that sends half a request and stalls holds nothing else up. */
    int slow = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)env.http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(slow, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *partial = "POST /dns HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"meth";
    assert_true(write(slow, partial, strlen(partial)) > 0);

    const char *bad[] = {
        "this is not json",
        "{\"method\":\"lookup\",\"parameters\":{\"qtype\":\"A\"}}",
        "{\"method\":\"getUpdatedMasters\",\"parameters\":{}}",
        "{\"method\":",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(
            ibp_test_dns_http_post(&env, "/dns", "POST", bad[i], strlen(bad[i]), &resp), 200);
        assert_string_equal(resp, "{\"result\":false}");
        free(resp);
    }
    /* A qname of 10 000 bytes. */
    size_t hn = 10200;
    char *huge = malloc(hn);
    int n =
        snprintf(huge, hn, "{\"method\":\"lookup\",\"parameters\":{\"qtype\":\"A\",\"qname\":\"");
    memset(huge + n, 'a', 10000);
    strcpy(huge + n + 10000, "\"}}");
    assert_int_equal(ibp_test_dns_http_post(&env, "/dns", "POST", huge, strlen(huge), &resp), 200);
    assert_string_equal(resp, "{\"result\":false}");
    free(resp);
    free(huge);
    /* 1 MB: refused before it is read. */
    size_t mb = 1 << 20;
    char *big = malloc(mb);
    memset(big, '[', mb);
    assert_int_equal(ibp_test_dns_http_post(&env, "/dns", "POST", big, mb, NULL), 413);
    free(big);
    assert_int_equal(ibp_test_dns_http_post(&env, "/other", "POST", ok_req, strlen(ok_req), NULL),
                     404);
    assert_int_equal(ibp_test_dns_http_post(&env, "/dns", "GET", "", 0, NULL), 405);

    /* Still answering, over HTTP and through PowerDNS, with the slow client connected. */
    assert_int_equal(ibp_test_dns_http_post(&env, "/dns", "POST", ok_req, strlen(ok_req), &resp),
                     200);
    assert_non_null(strstr(resp, "192.0.2.80"));
    free(resp);
    want(DNS_HOST, "A", FR, "10.0.0.2");
    close(slow);

    /* The unix socket: a line over the limit closes that connection, and only that one. */
    int u = unix_connect(env.socket);
    size_t over = 70000;
    char *line = malloc(over);
    memset(line, 'x', over);
    for (size_t off = 0; off < over;) {
        ssize_t w = send(u, line + off, over - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(line);
    char b[64];
    assert_true(read(u, b, sizeof b) <= 0);
    close(u);
    u = unix_connect(env.socket);
    const char *q = "{\"method\":\"getDomainInfo\",\"parameters\":{\"name\":\"ibp.test.\"}}\n";
    assert_int_equal(write(u, q, strlen(q)), (ssize_t)strlen(q));
    char ans[1024] = "";
    assert_true(read(u, ans, sizeof ans - 1) > 0);
    assert_non_null(strstr(ans, "\"zone\":\"ibp.test.\""));
    close(u);

    /* Every refusal is counted, in $SRV.STATS of the node. */
    natsMsg *reply = NULL;
    assert_int_equal(natsConnection_RequestString(&reply, ibp_test_dns_env_nc(),
                                                  "$SRV.STATS.ibp-node", "", 5000),
                     NATS_OK);
    json_t *stats = json_loads(natsMsg_GetData(reply), 0, NULL);
    natsMsg_Destroy(reply);
    json_t *dns = json_object_get(json_object_get(stats, "data"), "dns");
    json_t *rej = json_object_get(dns, "rejected");
    char *text = json_dumps(dns, JSON_COMPACT);
    printf("dns stats: %s\n", text);
    free(text);
    assert_true(json_integer_value(json_object_get(rej, "malformed")) >= 2);
    assert_true(json_integer_value(json_object_get(rej, "bad_params")) >= 2);
    assert_true(json_integer_value(json_object_get(rej, "unknown_method")) >= 1);
    assert_true(json_integer_value(json_object_get(rej, "too_large")) >= 2);
    assert_true(json_integer_value(json_object_get(json_object_get(dns, "http"), "http_errors")) >=
                2);
    json_decref(stats);
}

static int group_setup(void **state)
{
    (void)state;
    dns_env_opts o = {.country_overrides_json = "[\"US=Paris Ops\"]", .http_pdns = true};
    ibp_test_dns_env_start(&env, &o);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ibp_test_dns_env_stop(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_static_and_zone), cmocka_unit_test(test_nearest_by_subnet),
        cmocka_unit_test(test_demo_queries),    cmocka_unit_test(test_country_override),
        cmocka_unit_test(test_hostile_http),    cmocka_unit_test(test_status_changes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
