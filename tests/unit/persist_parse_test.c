/*
 * Unit tests: persist's decoding of HitBatch and Event payloads into the
 * columns it writes (ibp/persist_parse.h). No MariaDB: the payloads are
 * built in memory and the parsed structs compared field by field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/persist_parse.h"

#define T0 1700000000000LL

/* ---- HitBatch ------------------------------------------------------------ */

typedef struct hits_fixture {
    Ibp__V1__HitBatch hb;
    Ibp__V1__HitRow row[2];
    Ibp__V1__HitRow *rows[2];
} hits_fixture;

static void hits_init(hits_fixture *f)
{
    Ibp__V1__HitBatch hb = IBP__V1__HIT_BATCH__INIT;
    Ibp__V1__HitRow r = IBP__V1__HIT_ROW__INIT;
    f->hb = hb;
    f->hb.node = "dns-1";
    f->hb.flush_seq = 7;
    for (int i = 0; i < 2; i++) {
        f->row[i] = r;
        f->row[i].date = "2025-01-31";
        f->row[i].domain = "rpc.example.org";
        f->row[i].member = "alice";
        f->row[i].country_code = "DE";
        f->row[i].asn = "AS3320";
        f->row[i].network_name = "Deutsche Telekom";
        f->row[i].country_name = "Germany";
        f->row[i].hits = 10 + (uint64_t)i;
        f->rows[i] = &f->row[i];
    }
    f->row[1].ipv6 = 1;
    f->hb.n_rows = 2;
    f->hb.rows = f->rows;
}

/* Parses f's batch, expecting want; on an error err.msg must contain detail. */
static void expect_hits(hits_fixture *f, const char *signer, ibp_status want, const char *detail)
{
    ibp_persist_hit_batch out;
    ibp_err err;
    ibp_err_clear(&err);
    ibp_status st = ibp_persist_parse_hit_batch(&f->hb, signer, &out, &err);
    if (st != want)
        fail_msg("status %s, want %s (%s)", ibp_status_name(st), ibp_status_name(want), err.msg);
    if (detail != NULL && strstr(err.msg, detail) == NULL)
        fail_msg("detail \"%s\" does not contain \"%s\"", err.msg, detail);
    ibp_persist_hit_batch_clear(&out);
}

static void test_hits_ok(void **state)
{
    (void)state;
    hits_fixture f;
    hits_init(&f);
    f.row[1].asn = NULL; /* absent strings become "" */
    ibp_persist_hit_batch out;
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_persist_parse_hit_batch(&f.hb, "dns-1", &out, &err), IBP_OK);
    assert_string_equal(out.node, "dns-1");
    assert_int_equal(out.flush_seq, 7);
    assert_int_equal(out.n_rows, 2);
    assert_string_equal(out.rows[0].date, "2025-01-31");
    assert_string_equal(out.rows[0].domain, "rpc.example.org");
    assert_string_equal(out.rows[0].member, "alice");
    assert_string_equal(out.rows[0].asn, "AS3320");
    assert_string_equal(out.rows[0].network_name, "Deutsche Telekom");
    assert_string_equal(out.rows[0].country_code, "DE");
    assert_string_equal(out.rows[0].country_name, "Germany");
    assert_false(out.rows[0].ipv6);
    assert_int_equal(out.rows[0].hits, 10);
    assert_true(out.rows[1].ipv6);
    assert_int_equal(out.rows[1].hits, 11);
    assert_non_null(out.rows[1].asn);
    assert_string_equal(out.rows[1].asn, "");
    ibp_persist_hit_batch_clear(&out);
    assert_null(out.rows);
    assert_int_equal(out.n_rows, 0);
    ibp_persist_hit_batch_clear(NULL);

    f.hb.n_rows = 0; /* an empty batch is fine (it still advances flush_seq) */
    assert_int_equal(ibp_persist_parse_hit_batch(&f.hb, "dns-1", &out, &err), IBP_OK);
    assert_int_equal(out.n_rows, 0);
    assert_null(out.rows);
    ibp_persist_hit_batch_clear(&out);
}

static void test_hits_rejected(void **state)
{
    (void)state;
    hits_fixture f;

    hits_init(&f);
    expect_hits(&f, "dns-2", IBP_E_ROLE_DENIED, "HitBatch of node 'dns-1' signed by 'dns-2'");
    f.hb.node = NULL;
    expect_hits(&f, "dns-1", IBP_E_ROLE_DENIED, "a dns node reports its own hits");

    hits_init(&f);
    f.hb.flush_seq = 0;
    expect_hits(&f, "dns-1", IBP_E_INVAL, "HitBatch of dns-1 has flush_seq 0");

    hits_init(&f);
    char long_node[80];
    memset(long_node, 'n', 65);
    long_node[65] = '\0';
    f.hb.node = long_node;
    expect_hits(&f, long_node, IBP_E_RANGE,
                "node of 65 bytes is over the limit of 64 (IBP_NODE_ID_MAX)");
    long_node[64] = '\0';
    expect_hits(&f, long_node, IBP_OK, NULL);

    /* Member and domain at their caps (bytes, not characters), and one byte more. */
    char member[IBP_NAME_MAX + 2], domain[IBP_DOMAIN_MAX + 2];
    memset(member, 'm', sizeof member - 1);
    memcpy(member, "\xc3\xa9\xe2\x82\xac", 5); /* two characters of five bytes first */
    member[IBP_NAME_MAX] = '\0';
    memset(domain, 'd', sizeof domain - 1);
    domain[IBP_DOMAIN_MAX] = '\0';
    hits_init(&f);
    f.row[0].member = member;
    f.row[1].domain = domain;
    expect_hits(&f, "dns-1", IBP_OK, NULL);
    member[IBP_NAME_MAX] = 'm';
    member[IBP_NAME_MAX + 1] = '\0';
    expect_hits(&f, "dns-1", IBP_E_RANGE,
                "row 0: member of 256 bytes is over the limit of 255 (IBP_NAME_MAX)");
    hits_init(&f);
    domain[IBP_DOMAIN_MAX] = 'd';
    domain[IBP_DOMAIN_MAX + 1] = '\0';
    f.row[1].domain = domain;
    expect_hits(&f, "dns-1", IBP_E_RANGE,
                "row 1: domain of 254 bytes is over the limit of 253 (IBP_DOMAIN_MAX)");

    static const char *const bad_dates[] = {"2025-13-01", "2025-02-30",  "25-01-01",
                                            "0999-12-31", "2025-01-31x", ""};
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        hits_init(&f);
        f.row[1].date = (char *)bad_dates[i];
        expect_hits(&f, "dns-1", IBP_E_INVAL, "row 1: date");
    }
    hits_init(&f);
    f.row[0].date = NULL;
    expect_hits(&f, "dns-1", IBP_E_INVAL, "row 0: date '' is not YYYY-MM-DD");
    hits_init(&f);
    f.row[0].date = "1000-01-01"; /* the earliest DATE */
    expect_hits(&f, "dns-1", IBP_OK, NULL);

    hits_init(&f);
    f.row[0].hits = IBP_PERSIST_MAX_ROW_HITS;
    expect_hits(&f, "dns-1", IBP_OK, NULL);
    f.row[0].hits = IBP_PERSIST_MAX_ROW_HITS + 1;
    expect_hits(&f, "dns-1", IBP_E_RANGE, "row 0: 1000000000001 hits is above the plausible");

    hits_init(&f);
    f.row[1].country_code = "DEU";
    expect_hits(&f, "dns-1", IBP_E_RANGE,
                "row 1: country_code has 3 characters, the column holds 2");
    hits_init(&f);
    f.row[1].country_code = "\xc3\x9f\xc3\x9f"; /* two characters, four bytes: fits */
    expect_hits(&f, "dns-1", IBP_OK, NULL);
    hits_init(&f);
    f.row[0].network_name = "bad \xff byte";
    expect_hits(&f, "dns-1", IBP_E_INVAL, "row 0: network_name is not valid UTF-8");
    hits_init(&f);
    f.row[0].domain = "\xed\xa0\x80"; /* a surrogate: utf8mb4 refuses it */
    expect_hits(&f, "dns-1", IBP_E_INVAL, "row 0: domain is not valid UTF-8");
    hits_init(&f);
    f.row[0].member = "\xc0\xaf"; /* overlong '/' */
    expect_hits(&f, "dns-1", IBP_E_INVAL, "row 0: member is not valid UTF-8");

    char long_asn[40];
    memset(long_asn, '1', 33);
    long_asn[33] = '\0';
    hits_init(&f);
    f.row[0].asn = long_asn;
    expect_hits(&f, "dns-1", IBP_E_RANGE, "row 0: asn has 33 characters, the column holds 32");
}

/* ---- Event --------------------------------------------------------------- */

typedef struct event_fixture {
    Ibp__V1__Event ev;
    Ibp__V1__ResultKey key;
    Ibp__V1__Voter voter[2];
    Ibp__V1__Voter *voters[2];
} event_fixture;

static void event_init(event_fixture *f, Ibp__V1__CheckType type)
{
    Ibp__V1__Event ev = IBP__V1__EVENT__INIT;
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    Ibp__V1__Voter v = IBP__V1__VOTER__INIT;
    f->ev = ev;
    f->key = k;
    f->key.check_type = type;
    f->key.check_name = "wss";
    f->key.member = "alice";
    if (type != IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE)
        f->key.domain = "rpc.example.org";
    if (type == IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT)
        f->key.endpoint = "wss://rpc.example.org/polkadot";
    f->key.ipv6 = 1;
    f->ev.id = "ev-1";
    f->ev.kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
    f->ev.key = &f->key;
    f->ev.status = IBP__V1__STATUS__STATUS_DOWN;
    f->ev.error = "connection refused";
    f->ev.time_ms = T0;
    f->ev.epoch = 3;
    for (int i = 0; i < 2; i++) {
        f->voter[i] = v;
        f->voter[i].node = i == 0 ? "mon-1" : "mon-2";
        f->voter[i].local_seq = 10 + (uint64_t)i;
        f->voter[i].batch_seq = 20 + (uint64_t)i;
        f->voter[i].status = IBP__V1__STATUS__STATUS_DOWN;
        f->voters[i] = &f->voter[i];
    }
    f->ev.n_voters = 2;
    f->ev.voters = f->voters;
}

static void expect_event(event_fixture *f, ibp_status want, const char *detail)
{
    ibp_persist_event out;
    ibp_err err;
    ibp_err_clear(&err);
    ibp_status st = ibp_persist_parse_event(&f->ev, &out, &err);
    if (st != want)
        fail_msg("status %s, want %s (%s)", ibp_status_name(st), ibp_status_name(want), err.msg);
    if (detail != NULL && strstr(err.msg, detail) == NULL)
        fail_msg("detail \"%s\" does not contain \"%s\"", err.msg, detail);
    ibp_persist_event_clear(&out);
}

static void test_event_down_endpoint(void **state)
{
    (void)state;
    event_fixture f;
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT);
    f.ev.data_json = "{\"latency_ms\":12}";
    ibp_persist_event out;
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_string_equal(out.id, "ev-1");
    assert_string_equal(out.check_type, "endpoint");
    assert_string_equal(out.check_name, "wss");
    assert_string_equal(out.member, "alice");
    assert_string_equal(out.domain, "rpc.example.org");
    assert_string_equal(out.endpoint, "wss://rpc.example.org/polkadot");
    assert_true(out.ipv6);
    assert_false(out.up);
    assert_int_equal(out.time_ms, T0);
    assert_int_equal(out.epoch, 3);
    assert_int_equal(out.error_len, strlen("connection refused"));
    assert_memory_equal(out.error, "connection refused", out.error_len);
    assert_string_equal(out.vote_json,
                        "{\"epoch\":3,\"voters\":[{\"node\":\"mon-1\",\"local_seq\":10,"
                        "\"batch_seq\":20,\"status\":\"down\"},{\"node\":\"mon-2\",\"local_seq\":"
                        "11,\"batch_seq\":21,\"status\":\"down\"}]}");
    assert_string_equal(out.data_json, "{\"latency_ms\":12}");
    ibp_persist_event_clear(&out);
    assert_null(out.vote_json);
    assert_null(out.data_json);
    ibp_persist_event_clear(NULL);
}

/* A key that left the official state while down ends its outage: an up record. */
static void test_event_removed_ends_outage(void **state)
{
    (void)state;
    event_fixture f;
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN);
    f.ev.kind = IBP__V1__EVENT_KIND__EVENT_KIND_REMOVED;
    f.ev.n_voters = 0;
    ibp_persist_event out;
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_true(out.up);
    assert_string_equal(out.check_type, "domain");
    assert_string_equal(out.domain, "rpc.example.org");
    assert_int_equal(out.time_ms, T0);
    ibp_persist_event_clear(&out);
}

static void test_event_up_site_and_override(void **state)
{
    (void)state;
    event_fixture f;
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.status = IBP__V1__STATUS__STATUS_UP;
    f.ev.n_voters = 1;
    f.voter[0].status = IBP__V1__STATUS__STATUS_UP;
    f.ev.data_json = "not json {";
    ibp_persist_event out;
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_string_equal(out.check_type, "site");
    assert_string_equal(out.domain, "");
    assert_string_equal(out.endpoint, "");
    assert_true(out.up);
    assert_string_equal(out.vote_json, "{\"end_epoch\":3,\"end_voters\":[{\"node\":\"mon-1\","
                                       "\"local_seq\":10,\"batch_seq\":20,\"status\":\"up\"}]}");
    /* Text that is not JSON is kept as a JSON string. */
    assert_string_equal(out.data_json, "\"not json {\"");
    ibp_persist_event_clear(&out);

    /* An override: check type "override", no domain, endpoint or IPv6. */
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_UNSPECIFIED);
    f.ev.kind = IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE;
    f.key.check_name = "";
    f.key.domain = "ignored.example.org";
    f.ev.n_voters = 0;
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_string_equal(out.check_type, "override");
    assert_string_equal(out.check_name, "override");
    assert_string_equal(out.domain, "");
    assert_string_equal(out.endpoint, "");
    assert_false(out.ipv6);
    assert_null(out.vote_json);
    assert_null(out.data_json);
    ibp_persist_event_clear(&out);

    /* Domain keys need a domain and no endpoint. */
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN);
    expect_event(&f, IBP_OK, NULL);
}

static void test_event_error_text_cut(void **state)
{
    (void)state;
    event_fixture f;
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    /* "x", then "é" repeated past the limit: the cut never splits a character. */
    size_t n = IBP_ERROR_MAX + 13; /* odd: one "x", then pairs */
    char *text = malloc(n + 1);
    assert_non_null(text);
    text[0] = 'x';
    for (size_t i = 1; i + 1 < n; i += 2)
        memcpy(text + i, "\xc3\xa9", 2);
    text[n] = '\0';
    f.ev.error = text;
    ibp_persist_event out;
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_int_equal(out.error_len, IBP_ERROR_MAX - 1);
    ibp_persist_event_clear(&out);
    free(text);
}

static void test_event_rejected(void **state)
{
    (void)state;
    event_fixture f;

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.id = "";
    expect_event(&f, IBP_E_INVAL, "Event without an id");
    f.ev.id = NULL;
    expect_event(&f, IBP_E_INVAL, "Event without an id");

    char long_id[140];
    memset(long_id, 'i', 129);
    long_id[129] = '\0';
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.id = long_id;
    expect_event(&f, IBP_E_RANGE,
                 "event id of 129 bytes is over the limit of 128 (IBP_EVENT_ID_MAX)");
    long_id[IBP_EVENT_ID_MAX] = '\0';
    expect_event(&f, IBP_OK, NULL);

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.key = NULL;
    expect_event(&f, IBP_E_INVAL, "Event ev-1 has no key or no member");
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.key.member = "";
    expect_event(&f, IBP_E_INVAL, "Event ev-1 has no key or no member");

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.status = IBP__V1__STATUS__STATUS_UNSPECIFIED;
    expect_event(&f, IBP_E_INVAL, "Event ev-1 has status 0 (neither up nor down)");

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.time_ms = IBP_PERSIST_TIME_MAX_MS + 1;
    expect_event(&f, IBP_E_RANGE, "is outside what DATETIME holds");
    f.ev.time_ms = IBP_PERSIST_TIME_MIN_MS - 1;
    expect_event(&f, IBP_E_RANGE, "is outside what DATETIME holds");
    f.ev.time_ms = IBP_PERSIST_TIME_MIN_MS;
    expect_event(&f, IBP_OK, NULL);

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.kind = IBP__V1__EVENT_KIND__EVENT_KIND_UNSPECIFIED;
    expect_event(&f, IBP_E_INVAL, "Event ev-1 has kind 0");
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_UNSPECIFIED);
    expect_event(&f, IBP_E_INVAL, "Event ev-1 has check type 0");

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.key.domain = "rpc.example.org";
    expect_event(&f, IBP_E_INVAL, "Event ev-1: a site key has no a domain and has no an endpoint");
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN);
    f.key.domain = "";
    expect_event(&f, IBP_E_INVAL, "a domain key needs a domain and has no an endpoint");
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT);
    f.key.endpoint = "";
    expect_event(&f, IBP_E_INVAL, "endpoint key needs a domain and needs an endpoint");

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.key.check_name = "c\xff";
    expect_event(&f, IBP_E_INVAL, "check_name is not valid UTF-8");
    /* Every key field at its cap is taken; one byte more is refused, naming it. */
    char name[IBP_NAME_MAX + 2], domain[IBP_DOMAIN_MAX + 2], url[IBP_URL_MAX + 2];
    memset(name, 'n', sizeof name - 1);
    memcpy(name + 10, "\xf0\x9f\x98\x80", 4); /* one character of four bytes */
    name[IBP_NAME_MAX] = '\0';
    memset(domain, 'd', sizeof domain - 1);
    domain[IBP_DOMAIN_MAX] = '\0';
    memset(url, 'u', sizeof url - 1);
    url[IBP_URL_MAX] = '\0';
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT);
    f.key.check_name = name;
    f.key.member = name;
    f.key.domain = domain;
    f.key.endpoint = url;
    expect_event(&f, IBP_OK, NULL);
    struct {
        char *s;
        size_t cap;
        const char *want;
    } over[] = {
        {name, IBP_NAME_MAX, "check_name of 256 bytes is over the limit of 255 (IBP_NAME_MAX)"},
        {domain, IBP_DOMAIN_MAX, "domain of 254 bytes is over the limit of 253 (IBP_DOMAIN_MAX)"},
        {url, IBP_URL_MAX, "endpoint of 2049 bytes is over the limit of 2048 (IBP_URL_MAX)"},
    };
    for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
        over[i].s[over[i].cap] = 'x';
        over[i].s[over[i].cap + 1] = '\0';
        expect_event(&f, IBP_E_RANGE, over[i].want);
        over[i].s[over[i].cap] = '\0';
    }
    char long_member[IBP_NAME_MAX + 2];
    memset(long_member, 'm', IBP_NAME_MAX + 1);
    long_member[IBP_NAME_MAX + 1] = '\0';
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.key.member = long_member;
    expect_event(&f, IBP_E_RANGE,
                 "Event ev-1: member of 256 bytes is over the limit of 255 (IBP_NAME_MAX)");

    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.error = "\xe2\x82"; /* cut in the middle of a character */
    expect_event(&f, IBP_E_INVAL, "Event ev-1: error text is not valid UTF-8");
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.data_json = "{\"x\":\"\xfe\"}";
    expect_event(&f, IBP_E_INVAL, "Event ev-1: data_json is not valid UTF-8");
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.voter[1].node = "mon\x80";
    expect_event(&f, IBP_E_INVAL, "Event ev-1: voter 1 is not valid UTF-8");
}

/* JSON nested deeper than MariaDB takes is stored as a JSON string. */
static void test_event_deep_json(void **state)
{
    (void)state;
    char deep[128];
    size_t o = 0;
    for (int i = 0; i < 33; i++)
        deep[o++] = '[';
    for (int i = 0; i < 33; i++)
        deep[o++] = ']';
    deep[o] = '\0';
    event_fixture f;
    event_init(&f, IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE);
    f.ev.data_json = deep;
    ibp_persist_event out;
    ibp_err err;
    ibp_err_clear(&err);
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_int_equal(out.data_json[0], '"');
    ibp_persist_event_clear(&out);
    deep[32] = '\0'; /* 32 '[' and no ']': not JSON either */
    memset(deep + 32, ']', 32);
    deep[64] = '\0';
    assert_int_equal(ibp_persist_parse_event(&f.ev, &out, &err), IBP_OK);
    assert_string_equal(out.data_json, deep); /* depth 32 is kept as it is */
    ibp_persist_event_clear(&out);
}

/* The parse module stays free of MariaDB, clocks and I/O. */
static void test_source_is_pure(void **state)
{
    (void)state;
    static const char *const banned[] = {
        "mysql", "time(", "clock_gettime", "gettimeofday", "pthread", "IBP_LOG",
        "fopen", "open(", "read(",         "write(",       "nats.h",  "sodium.h",
    };
    static const char *const files[] = {IBP_SOURCE_DIR "/persist/parse.c",
                                        IBP_SOURCE_DIR "/persist/column_text.c"};
    int failures = 0;
    for (size_t fi = 0; fi < sizeof files / sizeof files[0]; fi++) {
        char *src = NULL;
        size_t len = 0;
        ibp_err err;
        assert_int_equal(ibp_file_read_all(files[fi], 1 << 20, &src, &len, &err), IBP_OK);
        for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++) {
            if (strstr(src, banned[i])) {
                print_error("%s contains '%s'\n", files[fi], banned[i]);
                failures++;
            }
        }
        free(src);
    }
    if (failures)
        fail_msg("the persist parse module is not pure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_ok),
        cmocka_unit_test(test_hits_rejected),
        cmocka_unit_test(test_event_down_endpoint),
        cmocka_unit_test(test_event_up_site_and_override),
        cmocka_unit_test(test_event_removed_ends_outage),
        cmocka_unit_test(test_event_error_text_cut),
        cmocka_unit_test(test_event_rejected),
        cmocka_unit_test(test_event_deep_json),
        cmocka_unit_test(test_source_is_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
