/*
 * persist end to end on HITS (DESIGN.md §7, §8), against the shared servers,
 * with a stream, database and request prefix of its own:
 *   - exactly once under redelivery: the acks of the first committed batches
 *     are dropped (as if lost after the commit); JetStream redelivers those
 *     messages after AckWait and persist skips them: the rows equal the sum
 *     of what was published, key by key;
 *   - a HitBatch published again beyond the duplicate window (same node and
 *     flush_seq, another Nats-Msg-Id) is not counted again (IBP_E_REPLAY in
 *     dead_letters); within the window JetStream drops it;
 *   - messages that can never apply go to dead_letters without blocking;
 *   - a MariaDB data error (BIGINT overflow against an existing row) isolates
 *     the one message and dead-letters it, the rest of the batch applies;
 *   - usage by domain, member and country, IPv4 and IPv6 apart and together,
 *     as C functions and over NATS.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "ibp/persist.h"
#include "ibp/persist_query.h"
#include "ibp/persist_service.h"
#include "persist_testlib.h"

typedef struct fx {
    ibp_testenv env;
    pt_keys k;
    char unique[64], stream[96], subject[160], db_name[96], prefix[128];
    natsConnection *nc;
    jsCtx *js;
    MYSQL *db;
    ibp_persist_db_opts dbo;
    ibp_persist *p;
    ibp_persist_service *svc;
    int acks_to_drop;
    uint64_t dropped_upto;
} fx;

static fx F;

static bool drop_acks(void *user, ibp_persist_kind kind, uint64_t last_seq)
{
    (void)user;
    (void)kind;
    if (F.acks_to_drop > 0) {
        F.acks_to_drop--;
        F.dropped_upto = last_seq;
        return false;
    }
    return true;
}

static int setup(void **state)
{
    (void)state;
    if (ibp_testenv_load(&F.env) != 0)
        return -1;
    ibp_testenv_unique_name("ph", F.unique, sizeof F.unique);
    snprintf(F.stream, sizeof F.stream, "IT_HITS_%s", F.unique);
    snprintf(F.subject, sizeof F.subject, "it.%s.hits", F.unique);
    snprintf(F.db_name, sizeof F.db_name, "%s", F.unique);
    snprintf(F.prefix, sizeof F.prefix, "it.%s.persist", F.unique);
    pt_keys_init(&F.k);
    if (ibp_testenv_nats_connect(&F.env, &F.nc) != NATS_OK)
        return -1;
    natsConnection_JetStream(&F.js, F.nc, NULL);
    char subj[200];
    snprintf(subj, sizeof subj, "%s.>", F.subject);
    pt_stream_create(F.js, F.stream, subj);
    F.db = pt_db_create(&F.env, F.db_name);
    pt_db_opts(&F.env, F.db_name, &F.dbo);
    F.acks_to_drop = 2;
    ibp_persist_opts o;
    ibp_persist_opts_init(&o);
    o.nc = F.nc;
    o.db = &F.dbo;
    o.roster = F.k.roster;
    o.hits_stream = F.stream;
    o.hits_durable = "persist-hits";
    o.events_stream = "";
    o.fetch_wait_ms = 50;
    o.batch_size = 5;
    o.ack_wait_ms = 1000;
    o.ack_hook = drop_acks;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_persist_start(&o, &F.p, &e) != IBP_OK) {
        fprintf(stderr, "start: %s\n", e.msg);
        return -1;
    }
    ibp_persist_service_opts so;
    ibp_persist_service_opts_init(&so);
    so.nc = F.nc;
    so.db = &F.dbo;
    so.subject_prefix = F.prefix;
    if (ibp_persist_service_start(&so, &F.svc, &e) != IBP_OK) {
        fprintf(stderr, "service: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ibp_persist_service_stop(F.svc);
    ibp_persist_stop(F.p);
    if (F.js)
        pt_stream_delete(F.js, F.stream);
    if (F.db)
        mysql_close(F.db);
    pt_db_drop(&F.env, F.db_name);
    jsCtx_Destroy(F.js);
    natsConnection_Destroy(F.nc);
    pt_keys_free(&F.k);
    nats_Close();
    return 0;
}

/* ---- expected aggregate ---------------------------------------------------------- */

typedef struct exp_row {
    char key[512];
    uint64_t hits;
} exp_row;

static exp_row EXP[4096];
static size_t NEXP;

static void expect(const char *node, const pt_row *r)
{
    char key[512];
    snprintf(key, sizeof key, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d", r->date, node, r->domain,
             r->member, r->asn ? r->asn : "", r->net ? r->net : "", r->cc,
             r->country ? r->country : "", r->ipv6 ? 1 : 0);
    for (size_t i = 0; i < NEXP; i++) {
        if (strcmp(EXP[i].key, key) == 0) {
            EXP[i].hits += r->hits;
            return;
        }
    }
    assert_true(NEXP < sizeof EXP / sizeof EXP[0]);
    snprintf(EXP[NEXP].key, sizeof EXP[NEXP].key, "%s", key);
    EXP[NEXP++].hits = r->hits;
}

static int exp_cmp(const void *a, const void *b)
{
    return strcmp(((const exp_row *)a)->key, ((const exp_row *)b)->key);
}

static char *expected_dump(void)
{
    qsort(EXP, NEXP, sizeof EXP[0], exp_cmp);
    size_t cap = NEXP * 600 + 1, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    for (size_t i = 0; i < NEXP; i++)
        if (EXP[i].hits > 0)
            len += (size_t)snprintf(out + len, cap - len, "%s\t%" PRIu64 "\n", EXP[i].key,
                                    EXP[i].hits);
    return out;
}

static const char *const DATES[] = {"2026-03-01", "2026-03-02"};
static const char *const DOMAINS[] = {"rpc.ibp.network", "rpc.dotters.network", "sys.ibp.network",
                                      "a.example", "b.example"};
static const char *const MEMBERS[] = {"Stake Plus", "Amforc", "(none)", "Zürich Nodes"};
static const char *const CCS[][2] = {{"DE", "Germany"}, {"FR", "France"},        {"??", "Unknown"},
                                     {"JP", "Japan"},   {"US", "United States"}, {"CH", "Schweiz"}};

static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static uint64_t publish_random(ibp_signer *s, const char *node, uint64_t flush_seq, size_t nrows,
                               uint64_t *sum)
{
    pt_row rows[64];
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s", F.subject, node);
    for (size_t i = 0; i < nrows; i++) {
        const char *const *cc = CCS[rnd() % 6];
        rows[i] = (pt_row){.date = DATES[rnd() % 2],
                           .domain = DOMAINS[rnd() % 5],
                           .member = MEMBERS[rnd() % 4],
                           .cc = cc[0],
                           .asn = rnd() % 2 ? "AS3320" : "",
                           .net = rnd() % 2 ? "Deutsche Telekom AG" : "",
                           .country = cc[1],
                           .ipv6 = rnd() % 2,
                           .hits = 1 + rnd() % 1000};
        expect(node, &rows[i]);
        *sum += rows[i].hits;
    }
    return pt_publish_hits(F.js, s, subject, node, flush_seq, rows, nrows, NULL);
}

static const char DUMP_SQL[] =
    "SELECT date, node_id, domain_name, member_name, network_asn, network_name, country_code, "
    "country_name, is_ipv6, hits FROM requests ORDER BY date, node_id, domain_name, member_name, "
    "network_asn, network_name, country_code, country_name, is_ipv6";

static void check_rows(void)
{
    char *want = expected_dump();
    char *got = pt_db_dump(F.db, DUMP_SQL);
    if (strcmp(got, want) != 0)
        fail_msg("requests differ from what was published\n--- got ---\n%.3000s\n--- want "
                 "---\n%.3000s",
                 got, want);
    free(want);
    free(got);
}

static uint64_t SUM;
static uint64_t LAST;

static void test_exactly_once_redelivery(void **state)
{
    (void)state;
    uint64_t last = 0;
    for (uint64_t i = 1; i <= 40; i++) {
        last = publish_random(F.k.s_dns, PT_DNS, i, 1 + rnd() % 40, &SUM);
        if (i % 4 == 0)
            last = publish_random(F.k.s_dns2, PT_DNS2, i / 4, 1 + rnd() % 10, &SUM);
    }
    pt_wait_applied(F.p, IBP_PERSIST_HITS, last, 30000);
    /* The dropped acks come back after AckWait (1 s) and are skipped. */
    long long end = pt_now_ms() + 15000;
    ibp_persist_stats s;
    for (;;) {
        ibp_persist_stats_get(F.p, &s);
        if (s.hits.skipped >= F.dropped_upto || pt_now_ms() > end)
            break;
        pt_sleep_ms(50);
    }
    printf("redelivery: acks dropped up to seq %" PRIu64 ", skipped %" PRIu64 ", applied %" PRIu64
           ", transactions %" PRIu64 "\n",
           F.dropped_upto, s.hits.skipped, s.hits.applied, s.hits.batches);
    assert_int_equal(F.acks_to_drop, 0);
    assert_true(s.hits.skipped >= F.dropped_upto);
    assert_int_equal(s.hits.applied, last);
    assert_int_equal(pt_db_int(F.db, "SELECT CAST(SUM(hits) AS UNSIGNED) FROM requests"),
                     (long long)SUM);
    check_rows();
    assert_int_equal(pt_db_int(F.db, "SELECT last_flush_seq FROM persist_hit_flushes WHERE "
                                     "node_id = 'dns1'"),
                     40);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM dead_letters"), 0);
    LAST = last;
}

static void test_republished(void **state)
{
    (void)state;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s", F.subject, PT_DNS);
    pt_row row = {"2026-03-01", "rpc.ibp.network", "Amforc", "DE", "", "", "Germany", false, 77};
    /* Same Nats-Msg-Id within the window: JetStream drops it (PubAck duplicate). */
    uint64_t seq = pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 5, &row, 1, NULL);
    assert_true(seq <= LAST);
    /* Another message id (as beyond the window): stored, and persist skips it. */
    uint64_t s2 = pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 5, &row, 1, "dns1-5-again");
    assert_int_equal(s2, LAST + 1);
    pt_wait_applied(F.p, IBP_PERSIST_HITS, s2, 20000);
    assert_int_equal(pt_db_int(F.db, "SELECT CAST(SUM(hits) AS UNSIGNED) FROM requests"),
                     (long long)SUM);
    assert_int_equal(pt_db_int(F.db,
                               "SELECT COUNT(*) FROM dead_letters WHERE seq = %" PRIu64
                               " AND reason = 'IBP_E_REPLAY'",
                               s2),
                     1);
    LAST = s2;
}

static void test_dead_letters(void **state)
{
    (void)state;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s", F.subject, PT_DNS);
    char long_domain[300];
    memset(long_domain, 'd', 254);
    long_domain[254] = '\0';
    pt_row ok = {"2026-03-01", "ok.example", "Amforc", "DE", "", "", "Germany", false, 5};
    pt_row r;
    uint64_t first = 0;
    /* role: a monitor may not send hits */
    first = pt_publish_hits(F.js, F.k.s_mon, subject, PT_MON, 1, &ok, 1, NULL);
    /* a node reporting another node's hits */
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS2, 99, &ok, 1, NULL);
    r = ok;
    r.domain = long_domain;
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 41, &r, 1, NULL); /* 254 > 253 */
    r = ok;
    r.date = "2026-02-30";
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 42, &r, 1, NULL); /* not a date */
    r = ok;
    r.hits = UINT64_C(2000000000000);
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 43, &r, 1, NULL); /* implausible */
    r = ok;
    r.member = "bad\xff";
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 44, &r, 1, NULL); /* not UTF-8 */
    r = ok;
    r.cc = "DEU";
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 45, &r, 1, NULL); /* 3 > 2 */
    /* After them, a good one applies. */
    uint64_t last = pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 46, &ok, 1, NULL);
    expect(PT_DNS, &ok);
    SUM += ok.hits;
    pt_wait_applied(F.p, IBP_PERSIST_HITS, last, 20000);
    char *got = pt_db_dump(F.db, "SELECT reason FROM dead_letters WHERE reason <> "
                                 "'IBP_E_REPLAY' ORDER BY seq");
    assert_string_equal(got, "IBP_E_ROLE_DENIED\nIBP_E_ROLE_DENIED\nIBP_E_RANGE\nIBP_E_INVAL\n"
                             "IBP_E_RANGE\nIBP_E_INVAL\nIBP_E_RANGE\n");
    free(got);
    assert_int_equal(pt_db_int(F.db, "SELECT MIN(seq) FROM dead_letters WHERE reason <> "
                                     "'IBP_E_REPLAY'"),
                     (long long)first);
    /* The payload is kept as received. */
    assert_true(pt_db_int(F.db, "SELECT MIN(LENGTH(payload)) FROM dead_letters") > 64);
    check_rows();
    LAST = last;
}

static void test_data_error_isolated(void **state)
{
    (void)state;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s", F.subject, PT_DNS);
    /* A row MariaDB cannot add to: hits near BIGINT UNSIGNED's maximum. */
    if (ibp_testenv_mysql_exec(F.db,
                               "INSERT INTO requests (date, node_id, domain_name, member_name, "
                               "network_asn, network_name, country_code, country_name, is_ipv6, "
                               "row_key, hits) VALUES ('2026-04-01', 'dns1', 'full.example', "
                               "'Amforc', '', '', 'DE', 'Germany', 0, UNHEX(SHA2('4:dns1"
                               "12:full.example6:Amforc0:0:2:DE7:Germany:0', 256)), "
                               "18446744073709551000)") != 0)
        fail_msg("insert the full row");
    pt_row full = {"2026-04-01", "full.example", "Amforc", "DE", "", "", "Germany", false, 1000};
    pt_row fine = {"2026-04-01", "fine.example", "Amforc", "DE", "", "", "Germany", false, 9};
    pt_row both[2] = {fine, full};
    /* Published back to back: likely one transaction; either way the same result. */
    uint64_t bad = pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 47, both, 2, NULL);
    uint64_t last = pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 48, &fine, 1, NULL);
    pt_wait_applied(F.p, IBP_PERSIST_HITS, last, 20000);
    assert_int_equal(pt_db_int(F.db,
                               "SELECT COUNT(*) FROM dead_letters WHERE seq = %" PRIu64
                               " AND reason = 'IBP_E_DB' AND detail LIKE '%%1690%%'",
                               bad),
                     1);
    /* Only the second batch's row: the first batch is out, whole. */
    assert_int_equal(pt_db_int(F.db, "SELECT hits FROM requests WHERE domain_name = "
                                     "'fine.example'"),
                     9);
    char *full_hits = pt_db_dump(F.db, "SELECT CAST(hits AS CHAR) FROM requests WHERE "
                                       "domain_name = 'full.example'");
    assert_string_equal(full_hits, "18446744073709551000\n");
    free(full_hits);
    /* persist's row_key (C) is the one deploy/sql/003_caps.sql defines (SQL), on every row. */
    assert_int_equal(pt_db_int(F.db,
                               "SELECT COUNT(*) FROM requests WHERE row_key <> UNHEX(SHA2(CONCAT("
                               "LENGTH(RTRIM(node_id)), ':', RTRIM(node_id), "
                               "LENGTH(RTRIM(domain_name)), ':', RTRIM(domain_name), "
                               "LENGTH(RTRIM(member_name)), ':', RTRIM(member_name), "
                               "LENGTH(RTRIM(network_asn)), ':', RTRIM(network_asn), "
                               "LENGTH(RTRIM(network_name)), ':', RTRIM(network_name), "
                               "LENGTH(RTRIM(country_code)), ':', RTRIM(country_code), "
                               "LENGTH(RTRIM(country_name)), ':', RTRIM(country_name), "
                               "':', is_ipv6), 256))"),
                     0);
    ibp_testenv_mysql_exec(F.db, "DELETE FROM requests WHERE date = '2026-04-01'");
    LAST = last;
}

static void publish_usage_rows(void)
{
    char subject[256];
    snprintf(subject, sizeof subject, "%s.%s", F.subject, PT_DNS2);
    pt_row rows[] = {
        {"2030-01-01", "a.net", "M1", "DE", "", "", "Germany", false, 10},
        {"2030-01-01", "a.net", "M1", "DE", "", "", "Germany", true, 5},
        {"2030-01-01", "a.net", "M2", "FR", "", "", "France", false, 7},
        {"2030-01-02", "b.net", "M1", "DE", "AS1", "Net", "Germany", false, 3},
        {"2030-01-02", "a.net", "M2", "FR", "", "", "France", true, 1},
        {"2030-01-03", "a.net", "M1", "DE", "", "", "Germany", false, 1000}, /* out of range */
    };
    uint64_t last = pt_publish_hits(F.js, F.k.s_dns2, subject, PT_DNS2, 100, rows, 6, NULL);
    pt_wait_applied(F.p, IBP_PERSIST_HITS, last, 20000);
}

static void test_usage_queries(void **state)
{
    (void)state;
    publish_usage_rows();
    MYSQL *db = NULL;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_persist_db_connect(&F.dbo, NULL, false, &db, &e) != IBP_OK)
        fail_msg("%s", e.msg);
    ibp_persist_usage_query q = {
        .by = IBP_PERSIST_USAGE_BY_DOMAIN, .start_date = "2030-01-01", .end_date = "2030-01-02"};
    ibp_persist_usage_result r = {0};
    assert_int_equal(ibp_persist_query_usage(db, &q, &r, &e), IBP_OK);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.rows[0].key, "a.net");
    assert_int_equal(r.rows[0].hits_ipv4, 17);
    assert_int_equal(r.rows[0].hits_ipv6, 6);
    assert_int_equal(r.rows[0].hits, 23);
    assert_string_equal(r.rows[1].key, "b.net");
    assert_int_equal(r.rows[1].hits, 3);
    assert_int_equal(r.total, 26);
    assert_int_equal(r.total_ipv6, 6);
    ibp_persist_usage_result_free(&r);

    q.by = IBP_PERSIST_USAGE_BY_MEMBER;
    q.domain = "a.net";
    assert_int_equal(ibp_persist_query_usage(db, &q, &r, &e), IBP_OK);
    assert_int_equal(r.count, 2);
    assert_string_equal(r.rows[0].key, "M1");
    assert_int_equal(r.rows[0].hits_ipv4, 10);
    assert_int_equal(r.rows[0].hits_ipv6, 5);
    assert_string_equal(r.rows[1].key, "M2");
    assert_int_equal(r.rows[1].hits, 8);
    ibp_persist_usage_result_free(&r);

    q.by = IBP_PERSIST_USAGE_BY_COUNTRY;
    q.domain = NULL;
    q.per_day = true;
    assert_int_equal(ibp_persist_query_usage(db, &q, &r, &e), IBP_OK);
    assert_int_equal(r.count, 4); /* (01, DE) (01, FR) (02, DE) (02, FR) */
    assert_string_equal(r.rows[0].date, "2030-01-01");
    assert_string_equal(r.rows[0].key, "DE");
    assert_string_equal(r.rows[0].country_name, "Germany");
    assert_int_equal(r.rows[0].hits, 15);
    assert_string_equal(r.rows[3].date, "2030-01-02");
    assert_string_equal(r.rows[3].key, "FR");
    assert_int_equal(r.rows[3].hits_ipv6, 1);
    ibp_persist_usage_result_free(&r);

    q.start_date = "2030-01-05";
    q.end_date = "2030-01-04";
    assert_int_equal(ibp_persist_query_usage(db, &q, &r, &e), IBP_E_INVAL);
    mysql_close(db);

    /* Over NATS. */
    char subject[200];
    natsMsg *reply = NULL;
    snprintf(subject, sizeof subject, "%s.usage", F.prefix);
    const char *req = "{\"by\": \"member\", \"start\": \"2030-01-01\", \"end\": \"2030-01-02\", "
                      "\"country\": \"DE\"}";
    natsStatus s = natsConnection_RequestString(&reply, F.nc, subject, req, 5000);
    if (s != NATS_OK)
        fail_msg("request: %s", natsStatus_GetText(s));
    json_error_t jerr;
    json_t *j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
    assert_non_null(j);
    json_t *rows = json_object_get(j, "rows");
    if (json_array_size(rows) != 1)
        fail_msg("usage answer: %.*s", natsMsg_GetDataLength(reply), natsMsg_GetData(reply));
    json_t *m1 = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(m1, "member")), "M1");
    assert_int_equal(json_integer_value(json_object_get(m1, "ipv4")), 13);
    assert_int_equal(json_integer_value(json_object_get(m1, "ipv6")), 5);
    assert_int_equal(json_integer_value(json_object_get(m1, "total")), 18);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "total"), "total")), 18);
    json_decref(j);
    natsMsg_Destroy(reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exactly_once_redelivery),
        cmocka_unit_test(test_republished),
        cmocka_unit_test(test_dead_letters),
        cmocka_unit_test(test_data_error_isolated),
        cmocka_unit_test(test_usage_queries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
