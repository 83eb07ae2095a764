/*
 * persist end to end on EVENTS (DESIGN.md §7, §8), against the shared
 * nats-server and MariaDB, with a stream, database and request prefix of its
 * own:
 *   - the outage lifecycle: a down opens an event; a flap shorter than the
 *     minimum offline time is deleted; a long outage is closed with its end
 *     time; two outages of one key in a row are two rows; an up with nothing
 *     open and a second down while open change nothing; override disable /
 *     enable is an "override" event;
 *   - evidence (voters) in vote_data, data_json in additional_data;
 *   - an Event id seen before (re-published beyond the duplicate window) is
 *     skipped;
 *   - forged, unknown-signer, undecodable, wrong-role, over-long (one byte
 *     over a cap of ibp/types.h) and wrong-type messages land in
 *     dead_letters and do not block the stream;
 *   - an outage whose every string is at its cap (multi-byte UTF-8 to the
 *     last byte) is stored exactly and closed;
 *   - a restart of persist continues where it stopped;
 *   - get_member_events as a C function and over NATS (JSON), and $SRV.PING.
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

#include "ibp/event.h"
#include "ibp/persist.h"
#include "ibp/persist_query.h"
#include "ibp/persist_service.h"
#include "persist_testlib.h"

/* 2026-01-01T00:00:00Z */
#define T0 INT64_C(1767225600000)

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
} fx;

static fx F;

static void persist_start(void)
{
    ibp_persist_opts o;
    ibp_persist_opts_init(&o);
    o.nc = F.nc;
    o.db = &F.dbo;
    o.roster = F.k.roster;
    o.hits_stream = "";
    o.events_stream = F.stream;
    o.events_durable = "persist-events";
    o.fetch_wait_ms = 100;
    o.batch_size = 7; /* several transactions, boundaries inside the sequences */
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_persist_start(&o, &F.p, &e) != IBP_OK)
        fail_msg("ibp_persist_start: %s", e.msg);
}

static int setup(void **state)
{
    (void)state;
    if (ibp_testenv_load(&F.env) != 0)
        return -1;
    ibp_testenv_unique_name("pe", F.unique, sizeof F.unique);
    snprintf(F.stream, sizeof F.stream, "IT_EVENTS_%s", F.unique);
    snprintf(F.subject, sizeof F.subject, "it.%s.events", F.unique);
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
    persist_start();
    ibp_persist_service_opts so;
    ibp_persist_service_opts_init(&so);
    so.nc = F.nc;
    so.db = &F.dbo;
    so.subject_prefix = F.prefix;
    so.persist = F.p;
    ibp_err e;
    ibp_err_clear(&e);
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

static uint64_t ev(const char *id, int kind, int type, const char *name, const char *member,
                   const char *domain, const char *endpoint, bool ipv6, bool up, int64_t t,
                   uint64_t epoch, const char *data)
{
    char subject[256];
    snprintf(subject, sizeof subject, "%s.x", F.subject);
    pt_event e = {.id = id,
                  .kind = kind,
                  .check_type = type,
                  .check_name = name,
                  .member = member,
                  .domain = domain,
                  .endpoint = endpoint,
                  .ipv6 = ipv6,
                  .up = up,
                  .error = up ? "" : "connection refused",
                  .data_json = data,
                  .time_ms = t,
                  .epoch = epoch,
                  .nvoters = kind == IBP__V1__EVENT_KIND__EVENT_KIND_STATUS ? 3 : 0};
    return pt_publish_event(F.js, F.k.s_cons, subject, &e, NULL);
}

#define STATUS IBP__V1__EVENT_KIND__EVENT_KIND_STATUS
#define OVERRIDE IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE
#define REMOVED IBP__V1__EVENT_KIND__EVENT_KIND_REMOVED
#define SITE IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE
#define DOMAIN IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN
#define ENDPOINT IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT

static const char *const SP = "Stake Plus";
static const char *const AM = "Amforc";
static const char *const RPC = "rpc.ibp.network";
static const char *const WSS = "wss://rpc.ibp.network/polkadot";

static void check_dump(const char *sql, const char *want)
{
    char *got = pt_db_dump(F.db, sql);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n--- got ---\n%s--- want ---\n%s", sql, got, want);
    free(got);
}

static void test_lifecycle(void **state)
{
    (void)state;
    char subject[256];
    snprintf(subject, sizeof subject, "%s.x", F.subject);
    /* A: down, stays open. */
    ev("1-a", STATUS, SITE, "ping", SP, "", "", false, false, T0, 1, "{\"latency_ms\":12}");
    /* B: a flap of 10 s (< 30 s): deleted. */
    ev("2-b", STATUS, ENDPOINT, "wss", SP, RPC, WSS, true, false, T0 + 1000, 2, "");
    /* A again, down while open: nothing. */
    ev("3-a", STATUS, SITE, "ping", SP, "", "", false, false, T0 + 5000, 3, "");
    ev("4-b", STATUS, ENDPOINT, "wss", SP, RPC, WSS, true, true, T0 + 11000, 4, "");
    /* C: a two-minute outage: closed; its data is not JSON: kept as a JSON string. */
    ev("5-c", STATUS, DOMAIN, "dns", SP, RPC, "", false, false, T0 + 2000, 5, "not json");
    ev("6-c", STATUS, DOMAIN, "dns", SP, RPC, "", false, true, T0 + 122000, 6, "");
    /* D: two outages of one key in a row. */
    ev("7-d", STATUS, SITE, "ping", AM, "", "", false, false, T0 + 3000, 7, "");
    ev("8-d", STATUS, SITE, "ping", AM, "", "", false, true, T0 + 63000, 8, "");
    ev("9-d", STATUS, SITE, "ping", AM, "", "", false, false, T0 + 100000, 9, "");
    ev("10-d", STATUS, SITE, "ping", AM, "", "", false, true, T0 + 200000, 10, "");
    /* U: up with nothing open. */
    ev("11-u", STATUS, SITE, "ping2", AM, "", "", false, true, T0 + 250000, 11, "");
    /* O: override disable / enable. */
    ev("12-o", OVERRIDE, 0, IBP_OVERRIDE_CHECK_NAME, AM, "", "", false, false, T0 + 300000, 12, "");
    ev("13-o", OVERRIDE, 0, IBP_OVERRIDE_CHECK_NAME, AM, "", "", false, true, T0 + 3900000, 13, "");
    /* The first event again under another message id (beyond the duplicate window). */
    pt_event dup = {.id = "1-a",
                    .kind = STATUS,
                    .check_type = SITE,
                    .check_name = "ping",
                    .member = SP,
                    .time_ms = T0,
                    .epoch = 1};
    pt_publish_event(F.js, F.k.s_cons, subject, &dup, "dup-1-a");
    /* ... and the flap's down: a re-opened flap would be a false outage. */
    pt_event dup2 = {.id = "2-b",
                     .kind = STATUS,
                     .check_type = ENDPOINT,
                     .check_name = "wss",
                     .member = SP,
                     .domain = RPC,
                     .endpoint = WSS,
                     .ipv6 = true,
                     .time_ms = T0 + 1000,
                     .epoch = 2};
    pt_publish_event(F.js, F.k.s_cons, subject, &dup2, "dup-2-b");

    /* Messages that can never apply. */
    pt_event bad = {.id = "99-bad",
                    .kind = STATUS,
                    .check_type = SITE,
                    .check_name = "ping",
                    .member = AM,
                    .time_ms = T0 + 1,
                    .epoch = 99};
    pt_publish_event(F.js, F.k.s_evil_cons, subject, &bad, "forged"); /* bad signature */
    pt_publish_event(F.js, F.k.s_unknown, subject, &bad, "unknown");  /* unknown signer */
    pt_publish_raw(F.js, subject, "not an envelope", 15);             /* undecodable */
    pt_publish_event(F.js, F.k.s_mon, subject, &bad, "from-monitor"); /* role */
    char long_member[IBP_NAME_MAX + 2];
    memset(long_member, 'm', IBP_NAME_MAX + 1);
    long_member[IBP_NAME_MAX + 1] = '\0';
    pt_event toolong = bad;
    toolong.id = "98-long";
    toolong.member = long_member;
    pt_publish_event(F.js, F.k.s_cons, subject, &toolong, NULL); /* 256 > 255 bytes */
    pt_row row = {"2026-01-01", "x", "y", "DE", "", "", "", false, 1};
    pt_publish_hits(F.js, F.k.s_dns, subject, PT_DNS, 1, &row, 1, NULL); /* wrong stream */
    /* E: after all of them, still applied. */
    ev("14-e", STATUS, DOMAIN, "dns", AM, "x.ibp.network", "", false, false, T0 + 400000, 14, "{}");
    /* R: down, then the key expires out of the official state (still down): closed. */
    static const char *const GONE = "Gone Nodes", *const GONE_DOMAIN = "gone.ibp.network";
    ev("15-r", STATUS, DOMAIN, "dns", GONE, GONE_DOMAIN, "", false, false, T0 + 410000, 15, "");
    uint64_t last = ev("16-r", REMOVED, DOMAIN, "dns", GONE, GONE_DOMAIN, "", false, false,
                       T0 + 4010000, 16, "");

    pt_wait_applied(F.p, IBP_PERSIST_EVENTS, last, 20000);

    check_dump("SELECT check_type, check_name, member_name, domain_name, endpoint, status, "
               "is_ipv6, start_time, end_time, event_id, end_event_id FROM member_events "
               "ORDER BY start_time, id",
               "site\tping\tStake Plus\t\t\t0\t0\t2026-01-01 00:00:00.000\tNULL\t1-a\tNULL\n"
               "domain\tdns\tStake Plus\trpc.ibp.network\t\t0\t0\t2026-01-01 00:00:02.000\t"
               "2026-01-01 00:02:02.000\t5-c\t6-c\n"
               "site\tping\tAmforc\t\t\t0\t0\t2026-01-01 00:00:03.000\t2026-01-01 "
               "00:01:03.000\t7-d\t8-d\n"
               "site\tping\tAmforc\t\t\t0\t0\t2026-01-01 00:01:40.000\t2026-01-01 "
               "00:03:20.000\t9-d\t10-d\n"
               "override\toverride\tAmforc\t\t\t0\t0\t2026-01-01 00:05:00.000\t2026-01-01 "
               "01:05:00.000\t12-o\t13-o\n"
               "domain\tdns\tAmforc\tx.ibp.network\t\t0\t0\t2026-01-01 00:06:40.000\tNULL\t"
               "14-e\tNULL\n"
               "domain\tdns\tGone Nodes\tgone.ibp.network\t\t0\t0\t2026-01-01 00:06:50.000\t"
               "2026-01-01 01:06:50.000\t15-r\t16-r\n");
    /* Evidence and extra data. */
    check_dump("SELECT error, vote_data, additional_data FROM member_events WHERE event_id IN "
               "('1-a', '5-c', '12-o') ORDER BY start_time",
               "connection refused\t{\"epoch\":1,\"voters\":[{\"node\":\"mon1\",\"local_seq\":100,"
               "\"batch_seq\":10,\"status\":\"down\"},{\"node\":\"mon2\",\"local_seq\":101,"
               "\"batch_seq\":11,\"status\":\"down\"},{\"node\":\"mon3\",\"local_seq\":102,"
               "\"batch_seq\":12,\"status\":\"down\"}]}\t{\"latency_ms\":12}\n"
               "connection refused\t{\"epoch\": 5, \"voters\": [{\"node\": \"mon1\", "
               "\"local_seq\": 100, \"batch_seq\": 10, \"status\": \"down\"}, {\"node\": "
               "\"mon2\", \"local_seq\": 101, \"batch_seq\": 11, \"status\": \"down\"}, "
               "{\"node\": \"mon3\", \"local_seq\": 102, \"batch_seq\": 12, \"status\": "
               "\"down\"}], \"end_epoch\": 6, \"end_voters\": [{\"node\": \"mon1\", "
               "\"local_seq\": 100, \"batch_seq\": 10, \"status\": \"up\"}, {\"node\": \"mon2\", "
               "\"local_seq\": 101, \"batch_seq\": 11, \"status\": \"up\"}, {\"node\": \"mon3\", "
               "\"local_seq\": 102, \"batch_seq\": 12, \"status\": \"up\"}]}\t\"not json\"\n"
               "connection refused\tNULL\tNULL\n");
    check_dump("SELECT seq, reason FROM dead_letters ORDER BY seq", "16\tIBP_E_BAD_SIGNATURE\n"
                                                                    "17\tIBP_E_UNKNOWN_SIGNER\n"
                                                                    "18\tIBP_E_DECODE\n"
                                                                    "19\tIBP_E_ROLE_DENIED\n"
                                                                    "20\tIBP_E_RANGE\n"
                                                                    "21\tIBP_E_INVAL\n");
    check_dump("SELECT detail FROM dead_letters WHERE seq = 20",
               "Event 98-long: member of 256 bytes is over the limit of 255 (IBP_NAME_MAX)\n");
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM persist_event_ids"), 16);
    assert_int_equal(
        pt_db_int(F.db, "SELECT last_seq FROM persist_offsets WHERE stream = '%s'", F.stream),
        (long long)last);
    ibp_persist_stats s;
    ibp_persist_stats_get(F.p, &s);
    assert_int_equal(s.events.stale, 2);
    assert_int_equal(s.events.dead_lettered, 6);
}

static void test_restart(void **state)
{
    (void)state;
    /* Stop and start: the consumer is reused, nothing is applied twice. */
    ibp_persist_service_stop(F.svc);
    F.svc = NULL;
    ibp_persist_stop(F.p);
    F.p = NULL;
    long long rows = pt_db_int(F.db, "SELECT COUNT(*) FROM member_events");
    uint64_t last = ev("15-e", STATUS, DOMAIN, "dns", AM, "x.ibp.network", "", false, true,
                       T0 + 500000, 15, "");
    persist_start();
    pt_wait_applied(F.p, IBP_PERSIST_EVENTS, last, 20000);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM member_events"), rows);
    check_dump("SELECT end_time FROM member_events WHERE event_id = '14-e'",
               "2026-01-01 00:08:20.000\n");
    ibp_persist_stats s;
    ibp_persist_stats_get(F.p, &s);
    assert_int_equal(s.events.applied, 1);
    assert_int_equal(s.events.consumer_resets, 0);
    ibp_persist_service_opts so;
    ibp_persist_service_opts_init(&so);
    so.nc = F.nc;
    so.db = &F.dbo;
    so.subject_prefix = F.prefix;
    so.persist = F.p;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_persist_service_start(&so, &F.svc, &e) != IBP_OK)
        fail_msg("service: %s", e.msg);
}

static void test_query(void **state)
{
    (void)state;
    MYSQL *db = NULL;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_persist_db_connect(&F.dbo, NULL, false, &db, &e) != IBP_OK)
        fail_msg("%s", e.msg);
    ibp_persist_event_list l = {0};
    /* Everything of Stake Plus on the day: A (open) and C. */
    assert_int_equal(ibp_persist_query_member_events(db, SP, NULL, T0, T0 + 86400000, &l, &e),
                     IBP_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.rows[0].event_id, "1-a");
    assert_true(l.rows[0].open);
    assert_int_equal(l.rows[0].start_ms, T0);
    assert_string_equal(l.rows[1].check_type, "domain");
    assert_false(l.rows[1].open);
    assert_int_equal(l.rows[1].end_ms, T0 + 122000);
    assert_string_equal(l.rows[1].additional_data, "\"not json\"");
    ibp_persist_event_list_free(&l);
    /* A range after C ended: the open A, which started before the range, only. */
    assert_int_equal(
        ibp_persist_query_member_events(db, SP, NULL, T0 + 500000, T0 + 600000, &l, &e), IBP_OK);
    assert_int_equal(l.count, 1);
    assert_string_equal(l.rows[0].event_id, "1-a");
    ibp_persist_event_list_free(&l);
    /* Amforc on x.ibp.network: its domain event and the member-wide ones. */
    assert_int_equal(
        ibp_persist_query_member_events(db, AM, "x.ibp.network", T0, T0 + 86400000, &l, &e),
        IBP_OK);
    assert_int_equal(l.count, 4);
    assert_string_equal(l.rows[0].event_id, "7-d");
    assert_string_equal(l.rows[1].event_id, "9-d");
    assert_string_equal(l.rows[2].event_id, "12-o");
    assert_string_equal(l.rows[3].event_id, "14-e");
    ibp_persist_event_list_free(&l);
    /* A domain of which nothing happened: only the member-wide ones. */
    assert_int_equal(
        ibp_persist_query_member_events(db, AM, "other.net", T0, T0 + 86400000, &l, &e), IBP_OK);
    assert_int_equal(l.count, 3);
    ibp_persist_event_list_free(&l);
    assert_int_equal(ibp_persist_query_member_events(db, "", NULL, T0, T0, &l, &e), IBP_E_INVAL);
    mysql_close(db);
}

static void test_nats_endpoints(void **state)
{
    (void)state;
    char subject[200];
    natsMsg *reply = NULL;
    snprintf(subject, sizeof subject, "%s.events", F.prefix);
    const char *req = "{\"member\": \"Stake Plus\", \"start\": \"2026-01-01T00:00:00Z\", "
                      "\"end\": \"2026-01-02\"}";
    natsStatus s = natsConnection_RequestString(&reply, F.nc, subject, req, 5000);
    if (s != NATS_OK)
        fail_msg("request %s: %s", subject, natsStatus_GetText(s));
    json_error_t jerr;
    json_t *j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
    assert_non_null(j);
    json_t *events = json_object_get(j, "events");
    if (json_array_size(events) != 2)
        fail_msg("events answer: %.*s", natsMsg_GetDataLength(reply), natsMsg_GetData(reply));
    json_t *a = json_array_get(events, 0);
    assert_string_equal(json_string_value(json_object_get(a, "start_time")),
                        "2026-01-01T00:00:00.000Z");
    assert_true(json_is_null(json_object_get(a, "end_time")));
    assert_string_equal(json_string_value(json_object_get(a, "check_type")), "site");
    assert_int_equal(json_array_size(json_object_get(json_object_get(a, "vote_data"), "voters")),
                     3);
    json_t *c = json_array_get(events, 1);
    assert_string_equal(json_string_value(json_object_get(c, "end_time")),
                        "2026-01-01T00:02:02.000Z");
    json_decref(j);
    natsMsg_Destroy(reply);

    /* A bad request: an error document and the ADR-32 headers. */
    s = natsConnection_RequestString(&reply, F.nc, subject, "{\"start\": 1}", 5000);
    assert_int_equal(s, NATS_OK);
    const char *code = NULL;
    assert_int_equal(natsMsgHeader_Get(reply, "Nats-Service-Error-Code", &code), NATS_OK);
    assert_string_equal(code, "400");
    j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        "IBP_E_INVAL");
    json_decref(j);
    natsMsg_Destroy(reply);

    /* Discovery. */
    char ping[200];
    snprintf(ping, sizeof ping, "$SRV.PING.%s.%s", IBP_PERSIST_SERVICE_NAME,
             ibp_persist_service_id(F.svc));
    s = natsConnection_RequestString(&reply, F.nc, ping, "", 5000);
    assert_int_equal(s, NATS_OK);
    j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
    assert_string_equal(json_string_value(json_object_get(j, "type")),
                        "io.nats.micro.v1.ping_response");
    assert_string_equal(json_string_value(json_object_get(j, "name")), "ibp-persist");
    json_decref(j);
    natsMsg_Destroy(reply);
    snprintf(ping, sizeof ping, "$SRV.STATS.%s.%s", IBP_PERSIST_SERVICE_NAME,
             ibp_persist_service_id(F.svc));
    s = natsConnection_RequestString(&reply, F.nc, ping, "", 5000);
    assert_int_equal(s, NATS_OK);
    j = json_loadb(natsMsg_GetData(reply), (size_t)natsMsg_GetDataLength(reply), 0, &jerr);
    json_t *eps = json_object_get(j, "endpoints");
    assert_int_equal(json_array_size(eps), 4); /* events, usage, sla, hit_flushes */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(eps, 0), "num_requests")),
                     2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(eps, 0), "num_errors")), 1);
    assert_true(json_integer_value(json_object_get(
                    json_object_get(json_object_get(j, "data"), "events"), "last_seq")) > 0);
    json_decref(j);
    natsMsg_Destroy(reply);
}

/* A database ahead of its stream (a re-created stream, say): persist refuses to skip. */
static void test_stream_behind_database(void **state)
{
    (void)state;
    ibp_persist_service_stop(F.svc);
    F.svc = NULL;
    ibp_persist_stop(F.p);
    F.p = NULL;
    assert_int_equal(ibp_testenv_mysql_exec(F.db,
                                            "UPDATE persist_offsets SET last_seq = last_seq "
                                            "+ 1000 WHERE stream = '%s'",
                                            F.stream),
                     0);
    uint64_t last = ev("16-f", STATUS, SITE, "ping", "Behind", "", "", false, false, T0, 16, "");
    persist_start();
    pt_sleep_ms(1500);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM persist_event_ids WHERE event_id = "
                                     "'16-f'"),
                     0);
    /* Put right by hand: persist notices and goes on. */
    assert_int_equal(ibp_testenv_mysql_exec(F.db,
                                            "UPDATE persist_offsets SET last_seq = last_seq "
                                            "- 1000 WHERE stream = '%s'",
                                            F.stream),
                     0);
    pt_wait_offset(F.db, F.stream, last, 20000);
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM member_events WHERE event_id = "
                                     "'16-f'"),
                     1);
}

/* Every string of an Event at its cap of ibp/types.h: stored byte for byte, then closed. */
static void test_at_caps(void **state)
{
    (void)state;
    pt_caps *c = calloc(1, sizeof *c);
    assert_non_null(c);
    pt_caps_fill(c, 'Z');
    char id[IBP_EVENT_ID_MAX + 1];
    memset(id, 'i', IBP_EVENT_ID_MAX);
    id[IBP_EVENT_ID_MAX] = '\0';
    char subject[256];
    snprintf(subject, sizeof subject, "%s.caps", F.subject);
    pt_event e = {.id = id,
                  .kind = STATUS,
                  .check_type = ENDPOINT,
                  .check_name = c->check_name,
                  .member = c->member,
                  .domain = c->domain,
                  .endpoint = c->endpoint,
                  .ipv6 = true,
                  .error = c->error,
                  .data_json = "{}",
                  .time_ms = T0 + 7200000,
                  .epoch = 100,
                  .nvoters = 3};
    pt_publish_event(F.js, F.k.s_cons, subject, &e, NULL);
    e.id = "101-caps";
    e.up = true;
    e.error = "";
    e.time_ms += 60000;
    e.epoch = 101;
    uint64_t last = pt_publish_event(F.js, F.k.s_cons, subject, &e, NULL);
    pt_wait_applied(F.p, IBP_PERSIST_EVENTS, last, 20000);
    char *want = malloc(16384);
    assert_non_null(want);
    snprintf(want, 16384,
             "endpoint\t%s\t%s\t%s\t%s\t1\t%s\t2026-01-01 02:00:00.000\t"
             "2026-01-01 02:01:00.000\t%s\t101-caps\n",
             c->check_name, c->member, c->domain, c->endpoint, c->error, id);
    char *got = pt_db_dump(F.db, "SELECT check_type, check_name, member_name, domain_name, "
                                 "endpoint, is_ipv6, error, start_time, end_time, event_id, "
                                 "end_event_id FROM member_events WHERE end_event_id = "
                                 "'101-caps'");
    if (strcmp(got, want) != 0)
        fail_msg("member_events:\n%s\nwant:\n%s", got, want);
    free(got);
    free(want);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_nats_endpoints),
        cmocka_unit_test(test_stream_behind_database),
        cmocka_unit_test(test_at_caps),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
