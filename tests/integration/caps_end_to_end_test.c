/*
 * Integration: one set of caps (ibp/types.h) from a check result to
 * member_events, on a private nats-server and MariaDB. A monitor (its local
 * store and the real monitor publisher), a consensus replica and persist run
 * in this process, on the real stream names:
 *
 *   - a result whose member and check names are 255 bytes, domain 253
 *     (labels of 63), endpoint URL 2048 and error text 4096 bytes, with
 *     multi-byte UTF-8 up to the last byte of each, goes officially down:
 *     the outage is in member_events with every field equal to what the
 *     monitor saw; it comes back up: the outage is closed;
 *   - one byte over a cap is refused where it enters: ibp_result_new at the
 *     monitor (naming the field, its length and the cap), and the replica for
 *     a batch a monitor sealed by hand (its WARN names them too; nothing
 *     reaches member_events or dead_letters).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ibp/bus.h"
#include "ibp/local_msg.h"
#include "ibp/log.h"
#include "ibp/monitor_publisher.h"
#include "ibp/persist.h"
#include "ibp/replica.h"
#include "ibp/result.h"
#include "ibp/store.h"
#include "ibp/subject.h"
#include "persist_testlib.h"

static ibp_testenv_private servers;

/* The replica's WARN about a refused payload (logged on its thread). */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char refused_line[1024];

static void capture_log(ibp_log_level level, const char *component, const char *msg, void *user)
{
    (void)user;
    if (level >= IBP_LOG_WARN && strcmp(component, "replica") == 0 &&
        strstr(msg, "payload refused") != NULL) {
        pthread_mutex_lock(&log_lock);
        snprintf(refused_line, sizeof refused_line, "%s", msg);
        pthread_mutex_unlock(&log_lock);
    }
    if (level >= IBP_LOG_ERROR)
        fprintf(stderr, "%s: %s\n", component, msg);
}

static void must(ibp_status st, const ibp_err *err)
{
    if (st != IBP_OK)
        fail_msg("%s: %s", ibp_status_name(st), err ? err->msg : "");
}

static ibp_signer *make_signer(const char *dir, const char *id, const ibp_key *key)
{
    char path[1200];
    ibp_signer *s;
    ibp_err err;
    snprintf(path, sizeof path, "%s/%s.seq", dir, id);
    must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
}

/* Puts the monitor's own result for key into its local store (what its checker does). */
static void observe(ibp_store *store, const ibp_result_key *key, bool up, const char *error)
{
    ibp_result *r = NULL;
    ibp_err err;
    must(ibp_result_new(key, up, pt_now_ms(), error, up ? "" : "{\"latency_ms\":2048}", &r, &err),
         &err);
    must(ibp_store_update_local(store, r, &err), &err);
    ibp_result_free(r);
}

/* Waits until SQL's first column is want (an integer), or fails after timeout_ms. */
static void wait_db_int(MYSQL *db, long long want, int timeout_ms, const char *sql)
{
    long long end = pt_now_ms() + timeout_ms, got = -1;
    while (pt_now_ms() < end) {
        got = pt_db_int(db, "%s", sql);
        if (got == want)
            return;
        pt_sleep_ms(50);
    }
    fail_msg("%s: %lld after %d ms, want %lld", sql, got, timeout_ms, want);
}

/* Waits for the next message on sub whose subject is want; fails after timeout_ms. */
static void wait_subject(natsSubscription *sub, const char *want, int timeout_ms)
{
    long long end = pt_now_ms() + timeout_ms;
    while (pt_now_ms() < end) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
            continue;
        bool same = strcmp(natsMsg_GetSubject(m), want) == 0;
        natsMsg_Destroy(m);
        if (same)
            return;
    }
    fail_msg("no status message on the %zu-byte subject after %d ms", strlen(want), timeout_ms);
}

/* Seals an ObservationBatch of one down observation of member and publishes it as signer. */
static uint64_t publish_by_hand(jsCtx *js, ibp_signer *signer, const char *member)
{
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    k.check_name = "ping";
    k.member = (char *)member;
    Ibp__V1__Observation o = IBP__V1__OBSERVATION__INIT;
    o.key = &k;
    o.status = IBP__V1__STATUS__STATUS_DOWN;
    o.check_time_ms = pt_now_ms();
    Ibp__V1__Observation *list[] = {&o};
    Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
    b.batch_seq = 1;
    b.n_observations = 1;
    b.observations = list;
    uint8_t *msg;
    size_t len;
    uint64_t seq, stream_seq = 0;
    ibp_err err;
    char subject[128];
    must(ibp_signer_seal(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base, 1,
                         &msg, &len, &seq, &err),
         &err);
    ibp_subject_local(ibp_signer_id(signer), subject, sizeof subject);
    must(ibp_bus_publish_envelope(
             js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
             ibp_signer_id(signer), seq, msg, len, NULL, 0, &stream_seq, NULL, &err),
         &err);
    free(msg);
    return stream_seq;
}

static void test_caps_end_to_end(void **state)
{
    (void)state;
    ibp_err err;
    char dir[1024], wd[1200], db_name[64];
    ibp_log_set_level(IBP_LOG_WARN);
    ibp_log_set_hook(capture_log, NULL);
    assert_int_equal(ibp_testenv_private_start(&servers), 0);
    assert_int_equal(ibp_testenv_mkdtemp(dir, sizeof dir), 0);

    /* mon1 publishes through the monitor publisher; mon2 seals a batch by hand. */
    ibp_key mon_key, mon2_key, rep_key;
    ibp_roster *roster = NULL;
    ibp_roster_new(&roster);
    ibp_key_generate(&mon_key);
    ibp_key_generate(&mon2_key);
    ibp_key_generate(&rep_key);
    must(ibp_roster_add(roster, "mon1", mon_key.pk, IBP_ROLE_MONITOR, &err), &err);
    must(ibp_roster_add(roster, "mon2", mon2_key.pk, IBP_ROLE_MONITOR, &err), &err);
    must(ibp_roster_add(roster, "rep1", rep_key.pk, IBP_ROLE_CONSENSUS, &err), &err);
    ibp_signer *mon = make_signer(dir, "mon1", &mon_key);
    ibp_signer *mon2 = make_signer(dir, "mon2", &mon2_key);
    ibp_signer *rep = make_signer(dir, "rep1", &rep_key);

    natsConnection *nc = NULL, *rep_nc = NULL;
    jsCtx *js = NULL;
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "test", &nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    must(ibp_bus_connect_url(servers.env.nats_auth_url, "replica", &rep_nc, &err), &err);

    ibp_replica_opts ro;
    ibp_replica_opts_init(&ro);
    ro.nc = rep_nc;
    ro.roster = roster;
    ro.signer = rep;
    snprintf(wd, sizeof wd, "%s/rep1", dir);
    mkdir(wd, 0700);
    ro.work_dir = wd;
    ro.heartbeat_ms = 200;
    ro.vote.quorum_min = 1; /* one monitor decides */
    ibp_replica *replica = NULL;
    must(ibp_replica_start(&ro, &replica, &err), &err);

    ibp_testenv_unique_name("caps", db_name, sizeof db_name);
    MYSQL *db = pt_db_create(&servers.env, db_name);
    ibp_persist_db_opts dbo;
    pt_db_opts(&servers.env, db_name, &dbo);
    ibp_persist_opts po;
    ibp_persist_opts_init(&po);
    po.nc = nc;
    po.db = &dbo;
    po.roster = roster;
    po.hits_stream = "";
    po.events_stream = IBP_STREAM_EVENTS;
    po.fetch_wait_ms = 100;
    po.min_offline_ms = 1; /* the outage below lasts a second or two: not a flap */
    ibp_persist *persist = NULL;
    must(ibp_persist_start(&po, &persist, &err), &err);

    ibp_store_opts so;
    ibp_store_opts_init(&so);
    ibp_store *store = NULL;
    assert_int_equal(ibp_store_new(&so, &store), IBP_OK);
    ibp_monitor_publisher_opts mo;
    ibp_monitor_publisher_opts_init(&mo);
    mo.nc = nc;
    mo.signer = mon;
    mo.store = store;
    snprintf(wd, sizeof wd, "%s/mon1", dir);
    mkdir(wd, 0700);
    mo.work_dir = wd;
    mo.publish_ms = 100;
    mo.heartbeat_ms = 200;
    ibp_monitor_publisher *pub = NULL;
    must(ibp_monitor_publisher_start(&mo, &pub, &err), &err);

    /* Every string at its cap. */
    pt_caps *c = calloc(1, sizeof *c);
    assert_non_null(c);
    pt_caps_fill(c, 'A');
    ibp_result_key key = {IBP_CHECK_ENDPOINT, c->check_name, c->member,
                          c->domain,          c->endpoint,   true};

    /* One byte over a cap never enters the monitor's store; the error names it. */
    char *over = malloc(IBP_NAME_MAX + 2);
    assert_non_null(over);
    memcpy(over, c->member, IBP_NAME_MAX);
    memcpy(over + IBP_NAME_MAX, "m", 2);
    ibp_result_key over_key = key;
    over_key.member = over;
    ibp_result *r = NULL;
    ibp_err_clear(&err);
    assert_int_equal(ibp_result_new(&over_key, false, pt_now_ms(), "", "", &r, &err),
                     IBP_E_TOO_LARGE);
    assert_null(r);
    if (!strstr(err.msg, "endpoint result: member of 256 bytes is over the limit of 255 "
                         "(IBP_NAME_MAX)"))
        fail_msg("ibp_result_new: %s", err.msg);

    /* Up first (the key becomes official: nothing to record), then down: one open outage. */
    observe(store, &key, true, "");
    long long end = pt_now_ms() + 20000;
    ibp_replica_stats rs;
    do {
        pt_sleep_ms(50);
        ibp_replica_stats_get(replica, &rs);
    } while (rs.epoch < 1 && pt_now_ms() < end);
    assert_true(rs.epoch >= 1);
    observe(store, &key, false, c->error);
    wait_db_int(db, 1, 20000, "SELECT COUNT(*) FROM member_events WHERE end_time IS NULL");

    /* Every field exactly as the monitor saw it (binary comparison, lengths in bytes). */
    char *want = malloc(16384);
    assert_non_null(want);
    snprintf(want, 16384, "endpoint\t%s\t%s\t%s\t%s\t1\t0\t%s\t{\"latency_ms\":2048}\n",
             c->check_name, c->member, c->domain, c->endpoint, c->error);
    char *got = pt_db_dump(db, "SELECT check_type, check_name, member_name, domain_name, "
                               "endpoint, is_ipv6, status, error, additional_data "
                               "FROM member_events");
    if (strcmp(got, want) != 0)
        fail_msg("member_events:\n%s\nwant:\n%s", got, want);
    free(got);
    assert_int_equal(pt_db_int(db, "SELECT LENGTH(check_name) + LENGTH(member_name) + "
                                   "LENGTH(domain_name) + LENGTH(endpoint) + LENGTH(error) "
                                   "FROM member_events"),
                     2 * IBP_NAME_MAX + IBP_DOMAIN_MAX + IBP_URL_MAX + IBP_ERROR_MAX);

    /* Back up: the outage is closed, still one row. */
    observe(store, &key, true, "");
    wait_db_int(db, 1, 20000, "SELECT COUNT(*) FROM member_events WHERE end_time IS NOT NULL");
    assert_int_equal(pt_db_int(db, "SELECT COUNT(*) FROM member_events"), 1);

    /* A monitor that sends one byte over a cap anyway: the replica refuses the batch. */
    ibp_replica_stats before;
    ibp_replica_stats_get(replica, &before);
    uint64_t seq = publish_by_hand(js, mon2, over);
    end = pt_now_ms() + 20000;
    do {
        pt_sleep_ms(50);
        ibp_replica_stats_get(replica, &rs);
    } while (rs.local_seq < seq && pt_now_ms() < end);
    assert_true(rs.local_seq >= seq);
    /* Refused by the ObservationBatch codec before the engine, logged with the field. */
    char line[1024] = "";
    end = pt_now_ms() + 5000;
    while (line[0] == '\0' && pt_now_ms() < end) {
        pthread_mutex_lock(&log_lock);
        snprintf(line, sizeof line, "%s", refused_line);
        pthread_mutex_unlock(&log_lock);
        pt_sleep_ms(20);
    }
    if (!strstr(line, "signer=mon2") ||
        !strstr(line, "member of 256 bytes is over the limit of 255 (IBP_NAME_MAX)"))
        fail_msg("replica WARN: '%s'", line);
    ibp_replica_stats_get(replica, &rs);
    assert_int_equal(rs.messages_applied, before.messages_applied);
    /* Counted as refused, under the codec's reason. */
    assert_int_equal(rs.rejected[IBP_E_TOO_LARGE], before.rejected[IBP_E_TOO_LARGE] + 1);
    pt_sleep_ms(500);
    assert_int_equal(pt_db_int(db, "SELECT COUNT(*) FROM member_events"), 1);
    assert_int_equal(pt_db_int(db, "SELECT COUNT(*) FROM dead_letters"), 0);

    /* The longest status subject: every byte of every field escaped (three
     * characters each), over 8 KiB. The server's control line must take it
     * and the replica must publish it like any other. */
    natsSubscription *status_sub = NULL;
    assert_int_equal(natsConnection_SubscribeSync(&status_sub, nc, "ibp.status.>"), NATS_OK);
    char *wide = calloc(4, IBP_URL_MAX + 1);
    assert_non_null(wide);
    char *w_member = wide, *w_check = wide + IBP_URL_MAX + 1;
    char *w_domain = wide + 2 * (IBP_URL_MAX + 1), *w_endpoint = wide + 3 * (IBP_URL_MAX + 1);
    memset(w_member, '.', IBP_NAME_MAX);
    memset(w_check, ' ', IBP_NAME_MAX);
    memset(w_domain, '~', IBP_DOMAIN_MAX); /* lower-case, no trailing dot */
    memset(w_endpoint, '/', IBP_URL_MAX);
    ibp_result_key wide_key = {IBP_CHECK_ENDPOINT, w_check, w_member, w_domain, w_endpoint, true};
    /* The subject as the replica builds it from the engine's key. */
    ibp_vote_key vk = {IBP_VOTE_ENDPOINT, w_check, w_member, w_domain, w_endpoint, true};
    Ibp__V1__ResultKey wk;
    ibp_local_key_to_wire(&wk, &vk);
    char wide_subject[IBP_SUBJECT_STATUS_MAX];
    assert_int_equal(ibp_subject_status(&wk, wide_subject, sizeof wide_subject), IBP_OK);
    assert_int_equal(strlen(wide_subject) + 1, IBP_SUBJECT_STATUS_MAX);
    observe(store, &wide_key, true, "");
    wait_subject(status_sub, wide_subject, 20000);
    observe(store, &wide_key, false, "down");
    wait_subject(status_sub, wide_subject, 20000);
    natsMsg *last = NULL;
    assert_int_equal(js_GetLastMsg(&last, js, IBP_STREAM_STATUS, wide_subject, NULL, NULL),
                     NATS_OK);
    assert_non_null(strstr((const char *)natsMsg_GetData(last), "\"status\":\"down\""));
    natsMsg_Destroy(last);
    natsSubscription_Destroy(status_sub);
    free(wide);

    free(want);
    free(over);
    free(c);
    ibp_monitor_publisher_stop(pub);
    ibp_store_free(store);
    ibp_persist_stop(persist);
    ibp_replica_stop(replica);
    mysql_close(db);
    pt_db_drop(&servers.env, db_name);
    jsCtx_Destroy(js);
    natsConnection_Destroy(rep_nc);
    natsConnection_Destroy(nc);
    ibp_signer_free(mon);
    ibp_signer_free(mon2);
    ibp_signer_free(rep);
    ibp_roster_free(roster);
    ibp_testenv_rmtree(dir);
    ibp_log_set_hook(NULL, NULL);
    ibp_testenv_private_stop(&servers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_caps_end_to_end)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (servers.started)
        ibp_testenv_private_stop(&servers);
    nats_Close();
    return rc;
}
