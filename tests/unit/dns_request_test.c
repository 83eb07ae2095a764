/*
 * PowerDNS remote backend requests (ibp/dns_request.h) and the answers of
 * the backend (ibp/dns_backend.h) to every method PowerDNS 4.7 calls, and to
 * hostile input: malformed JSON, wrong types, huge names, unknown methods.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/dns_backend.h"
#include "ibp/log.h"

static void test_parse_lookup(void **state)
{
    (void)state;
    ibp_dns_request r;
    const char *req = "{\"method\": \"lookup\", \"parameters\": {\"qtype\": \"ANY\", \"qname\": "
                      "\"rpc.example.net.\", \"remote\": \"192.0.2.1\", \"local\": \"0.0.0.0\", "
                      "\"real-remote\": \"192.0.2.0/24\", \"zone-id\": 2}}";
    assert_int_equal(ibp_dns_request_parse(req, strlen(req), 0, &r), IBP_DNS_REJECT_NONE);
    assert_int_equal(r.method, IBP_DNS_M_LOOKUP);
    assert_string_equal(r.qname, "rpc.example.net.");
    assert_string_equal(r.qtype, "ANY");
    assert_string_equal(r.remote, "192.0.2.1");
    assert_string_equal(r.real_remote, "192.0.2.0/24");
    assert_int_equal(r.zone_id, 2);
    const char *other = "{\"method\":\"GETALLDOMAINS\",\"parameters\":{\"include_disabled\":true}}";
    assert_int_equal(ibp_dns_request_parse(other, strlen(other), 0, &r), IBP_DNS_REJECT_NONE);
    assert_int_equal(r.method, IBP_DNS_M_GET_ALL_DOMAINS);
}

static ibp_dns_reject parse(const char *s)
{
    ibp_dns_request r;
    return ibp_dns_request_parse(s, strlen(s), 4096, &r);
}

static void test_parse_hostile(void **state)
{
    (void)state;
    assert_int_equal(parse(""), IBP_DNS_REJECT_MALFORMED);
    assert_int_equal(parse("{\"method\": \"lookup\""), IBP_DNS_REJECT_MALFORMED);
    assert_int_equal(parse("[1,2]"), IBP_DNS_REJECT_MALFORMED);
    assert_int_equal(parse("{\"method\": 5}"), IBP_DNS_REJECT_MALFORMED);
    assert_int_equal(parse("{\"method\": \"lookup\", \"method\": \"list\"}"),
                     IBP_DNS_REJECT_MALFORMED);
    assert_int_equal(parse("{\"method\": \"lookup\", \"parameters\": {\"qname\": \"a.\"}}"),
                     IBP_DNS_REJECT_PARAMS);
    assert_int_equal(parse("{\"method\": \"lookup\", \"parameters\": {\"qname\": 7, \"qtype\": "
                           "\"A\"}}"),
                     IBP_DNS_REJECT_PARAMS);
    assert_int_equal(parse("{\"method\": \"lookup\", \"parameters\": [1]}"), IBP_DNS_REJECT_PARAMS);
    assert_int_equal(parse("{\"method\": \"lookup\", \"parameters\": {\"qname\": \"a\\u0000b\", "
                           "\"qtype\": \"A\"}}"),
                     IBP_DNS_REJECT_MALFORMED); /* jansson refuses NUL in strings */
    assert_int_equal(parse("{\"method\": \"getDomainMetadata\", \"parameters\": {\"name\": "
                           "\"a.\"}}"),
                     IBP_DNS_REJECT_PARAMS);
    assert_int_equal(parse("{\"method\": \"list\", \"parameters\": {}}"), IBP_DNS_REJECT_PARAMS);
    assert_int_equal(parse("{\"method\": \"feedRecord\", \"parameters\": {}}"),
                     IBP_DNS_REJECT_UNKNOWN);
    /* A name longer than any DNS name: refused, never cut. */
    char big[1200];
    int n = snprintf(big, sizeof big,
                     "{\"method\":\"lookup\",\"parameters\":{\"qtype\":\"A\","
                     "\"qname\":\"");
    memset(big + n, 'a', 600);
    strcpy(big + n + 600, "\"}}");
    assert_int_equal(parse(big), IBP_DNS_REJECT_PARAMS);
    char *huge = malloc(5000);
    memset(huge, ' ', 4999);
    huge[4999] = '\0';
    assert_int_equal(parse(huge), IBP_DNS_REJECT_TOO_LARGE);
    free(huge);
    assert_string_equal(ibp_dns_reject_name(IBP_DNS_REJECT_TOO_LARGE), "too_large");
}

static void test_buf_json_str(void **state)
{
    (void)state;
    ibp_dns_buf b = {0};
    ibp_dns_buf_json_str(&b, "a\"b\\c\n\x01");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\"");
    ibp_dns_buf_reset(&b);
    ibp_dns_buf_printf(&b, "%0300d", 7); /* longer than the formatting stack buffer */
    assert_int_equal(b.len, 300);
    ibp_dns_buf_free(&b);
}

/* ---- the backend ----------------------------------------------------------------------- */

static const char members_json[] =
    "{\"Berlin\": {\"Details\": {\"Name\": \"Berlin\"}, \"Membership\": {\"MemberLevel\": 5},"
    " \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.1\", \"ServiceIPv6\": "
    "\"2001:db8::1\"},"
    " \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},"
    " \"Location\": {\"Latitude\": 52.52, \"Longitude\": 13.405}}}";
static const char services_json[] =
    "{\"Polkadot\": {\"Configuration\": {\"Name\": \"Polkadot\", \"ServiceType\": \"RPC\","
    " \"Active\": 1, \"LevelRequired\": 1},"
    " \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://rpc.example.net/polkadot\"]}}}}";
static const char static_json[] =
    "[{\"qname\": \"example.net\", \"qtype\": \"NS\", \"content\": \"ns1.example.net.\"},"
    " {\"qname\": \"txt.example.net\", \"qtype\": \"TXT\", \"content\": \"\\\"v=1\\\"\","
    "  \"ttl\": 120}]";

typedef struct fixture {
    ibp_network *net;
    ibp_store *store;
    ibp_dns_zones *zones;
    ibp_dns_selector *sel;
    ibp_dns_backend *b;
    ibp_dns_buf out;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    ibp_err err = {0};
    ibp_log_set_level(IBP_LOG_OFF);
    assert_int_equal(ibp_network_load_buffers(members_json, strlen(members_json), services_json,
                                              strlen(services_json), NULL, 0, &f->net, &err),
                     IBP_OK);
    assert_int_equal(ibp_store_new(NULL, &f->store), IBP_OK);
    ibp_dns_zones_opts zo;
    ibp_dns_zones_opts_init(&zo);
    zo.static_json = static_json;
    zo.static_len = strlen(static_json);
    zo.network = f->net;
    zo.serial = 7;
    assert_int_equal(ibp_dns_zones_build(&zo, &f->zones, &err), IBP_OK);
    assert_int_equal(ibp_dns_selector_new(f->net, NULL, &f->sel, &err), IBP_OK);
    ibp_dns_backend_opts bo;
    ibp_dns_backend_opts_init(&bo);
    bo.zones = f->zones;
    bo.selector = f->sel;
    bo.store = f->store;
    assert_int_equal(ibp_dns_backend_new(&bo, &f->b, &err), IBP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ibp_dns_buf_free(&f->out);
    ibp_dns_backend_free(f->b);
    ibp_dns_selector_free(f->sel);
    ibp_dns_zones_free(f->zones);
    ibp_store_free(f->store);
    ibp_network_free(f->net);
    free(f);
    return 0;
}

/* Sends req and returns the parsed "result". */
static json_t *call(fixture *f, const char *req)
{
    ibp_dns_backend_handle(f->b, req, strlen(req), &f->out);
    json_error_t je;
    json_t *j = json_loadb(f->out.data, f->out.len, 0, &je);
    if (!j)
        fail_msg("answer is not JSON: %s (%s)", f->out.data, je.text);
    json_t *r = json_incref(json_object_get(j, "result"));
    assert_non_null(r);
    json_decref(j);
    return r;
}

static json_t *lookup(fixture *f, const char *qname, const char *qtype, const char *real_remote)
{
    char req[512];
    snprintf(req, sizeof req,
             "{\"method\":\"lookup\",\"parameters\":{\"qtype\":\"%s\",\"qname\":\"%s\","
             "\"remote\":\"127.0.0.1\",\"local\":\"127.0.0.1\",\"real-remote\":\"%s\","
             "\"zone-id\":-1}}",
             qtype, qname, real_remote);
    return call(f, req);
}

static const char *str(json_t *rec, const char *key)
{
    return json_string_value(json_object_get(rec, key));
}

static void test_backend_methods(void **state)
{
    fixture *f = *state;
    json_t *r = call(f, "{\"method\":\"initialize\",\"parameters\":{\"path\":\"/x\"}}");
    assert_true(json_is_true(r));
    json_decref(r);

    r = call(f, "{\"method\":\"getAllDomains\",\"parameters\":{\"include_disabled\":true}}");
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(str(json_array_get(r, 0), "zone"), "example.net.");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "serial")), 7);
    assert_string_equal(str(json_array_get(r, 0), "kind"), "native");
    json_decref(r);

    r = call(f, "{\"method\":\"getDomainInfo\",\"parameters\":{\"name\":\"example.net.\"}}");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    r = call(f, "{\"method\":\"getDomainInfo\",\"parameters\":{\"name\":\"other.org.\"}}");
    assert_true(json_is_false(r));
    json_decref(r);
    r = call(f, "{\"method\":\"getAllDomainMetadata\",\"parameters\":{\"name\":\"example.net.\"}}");
    assert_true(json_is_object(r));
    json_decref(r);
    r = call(f, "{\"method\":\"getDomainMetadata\",\"parameters\":{\"name\":\"example.net.\","
                "\"kind\":\"PRESIGNED\"}}");
    assert_int_equal(json_array_size(r), 0);
    assert_true(json_is_array(r));
    json_decref(r);
    r = call(f, "{\"method\":\"getDomainKeys\",\"parameters\":{\"name\":\"example.net.\"}}");
    assert_true(json_is_array(r));
    json_decref(r);

    /* SOA at the apex (PowerDNS asks it directly, and ANY). */
    r = lookup(f, "example.net.", "SOA", "0.0.0.0/0");
    assert_int_equal(json_array_size(r), 1);
    assert_string_equal(str(json_array_get(r, 0), "qtype"), "SOA");
    assert_string_equal(str(json_array_get(r, 0), "qname"), "example.net.");
    assert_string_equal(str(json_array_get(r, 0), "content"),
                        "ns1.example.net. hostmaster.example.net. 7 10800 3600 604800 60");
    json_decref(r);
    r = lookup(f, "EXAMPLE.net", "ANY", "0.0.0.0/0");
    assert_int_equal(json_array_size(r), 2); /* SOA, NS */
    json_decref(r);
    r = lookup(f, "txt.example.net.", "ANY", "0.0.0.0/0");
    assert_string_equal(str(json_array_get(r, 0), "content"), "\"v=1\"");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "ttl")), 120);
    json_decref(r);
    r = lookup(f, "nothing.example.net.", "ANY", "0.0.0.0/0");
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);

    /* AXFR: SOA first, the NS, the TXT and the host's addresses. */
    r = call(f, "{\"method\":\"list\",\"parameters\":{\"zonename\":\"example.net.\","
                "\"domain_id\":-1,\"include_disabled\":false}}");
    assert_string_equal(str(json_array_get(r, 0), "qtype"), "SOA");
    assert_int_equal(json_array_size(r), 5);
    json_decref(r);
    r = call(f, "{\"method\":\"list\",\"parameters\":{\"zonename\":\"other.org.\"}}");
    assert_true(json_is_false(r));
    json_decref(r);
}

static void test_backend_dynamic(void **state)
{
    fixture *f = *state;
    json_t *r = lookup(f, "rpc.example.net.", "ANY", "192.0.2.0/24");
    assert_int_equal(json_array_size(r), 2);
    json_t *a = json_array_get(r, 0), *aaaa = json_array_get(r, 1);
    assert_string_equal(str(a, "qtype"), "A");
    assert_string_equal(str(a, "content"), "10.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(a, "ttl")), 30);
    assert_int_equal(json_integer_value(json_object_get(a, "scopeMask")), 24);
    assert_string_equal(str(aaaa, "qtype"), "AAAA");
    assert_string_equal(str(aaaa, "content"), "2001:db8::1");
    json_decref(r);
    r = lookup(f, "rpc.example.net.", "AAAA", "2001:db8:1::/56");
    assert_int_equal(json_array_size(r), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "scopeMask")), 56);
    json_decref(r);
    /* No ECS: the resolver's /32. NS at a host name: nothing, and no selection. */
    r = lookup(f, "rpc.example.net.", "A", "127.0.0.1/32");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "scopeMask")), 32);
    json_decref(r);
    r = lookup(f, "rpc.example.net.", "NS", "127.0.0.1/32");
    assert_int_equal(json_array_size(r), 0);
    json_decref(r);
    ibp_dns_backend_stats st;
    ibp_dns_backend_stats_get(f->b, &st);
    assert_int_equal(st.dynamic_answers, 3);
}

static void test_backend_hostile(void **state)
{
    fixture *f = *state;
    const char *bad[] = {
        "not json",
        "{\"method\":\"lookup\"}",
        "{\"method\":\"setNotified\",\"parameters\":{}}",
        "{\"method\":\"lookup\",\"parameters\":{\"qname\":\"a..b.\",\"qtype\":\"A\"}}",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ibp_dns_backend_handle(f->b, bad[i], strlen(bad[i]), &f->out);
        if (i == 3) /* a name no zone has: an empty answer, not an error */
            assert_string_equal(f->out.data, "{\"result\":[]}");
        else
            assert_string_equal(f->out.data, "{\"result\":false}");
    }
    ibp_dns_backend_stats st;
    ibp_dns_backend_stats_get(f->b, &st);
    assert_int_equal(st.rejected[IBP_DNS_REJECT_MALFORMED], 2);
    assert_int_equal(st.rejected[IBP_DNS_REJECT_PARAMS], 1);
    assert_int_equal(st.rejected[IBP_DNS_REJECT_UNKNOWN], 1);
    assert_int_equal(st.requests, 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_lookup),
        cmocka_unit_test(test_parse_hostile),
        cmocka_unit_test(test_buf_json_str),
        cmocka_unit_test_setup_teardown(test_backend_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_dynamic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
