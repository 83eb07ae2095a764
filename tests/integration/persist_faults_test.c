/*
 * persist under server faults, with load (DESIGN.md §8), on private servers:
 *   1. MariaDB killed (SIGKILL, so a COMMIT in flight has an unknown
 *      outcome) and kept down for IBP_DB_OUTAGE_S (default 20) seconds while
 *      a publisher keeps sending HitBatches: persist stops acknowledging,
 *      retries with backoff, reports the lag, and catches up when MariaDB is
 *      back;
 *   2. nats-server stopped and restarted under the same load: persist and the
 *      publisher reconnect (the publisher retries each batch with its
 *      Nats-Msg-Id until it gets a PubAck);
 * and at the end the sum of hits in MariaDB equals the sum published,
 * exactly: nothing lost, nothing doubled.
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ibp/bus.h"
#include "ibp/persist.h"
#include "persist_testlib.h"

typedef struct fx {
    ibp_testenv_private srv;
    pt_keys k;
    natsConnection *nc;  /* persist's (reconnects for ever) */
    natsConnection *pnc; /* the publisher's */
    jsCtx *js;
    jsCtx *pjs;
    MYSQL *db;
    ibp_persist_db_opts dbo;
    ibp_persist *p;
} fx;

static fx F;

typedef struct publisher {
    pthread_t thread;
    atomic_bool stop;
    atomic_uint_fast64_t hits_sum;
    atomic_uint_fast64_t batches;
    atomic_uint_fast64_t retries;
    uint64_t seed;
} publisher;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *publisher_main(void *arg)
{
    publisher *p = arg;
    static const char *const doms[] = {"rpc.ibp.network", "sys.ibp.network", "a.example",
                                       "b.example"};
    uint64_t flush = 0;
    while (!atomic_load(&p->stop)) {
        pt_row rows[20];
        size_t n = 1 + rnd(&p->seed) % 20;
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            rows[i] = (pt_row){.date = "2026-06-01",
                               .domain = doms[rnd(&p->seed) % 4],
                               .member = rnd(&p->seed) % 2 ? "Stake Plus" : "Amforc",
                               .cc = rnd(&p->seed) % 2 ? "DE" : "BR",
                               .ipv6 = rnd(&p->seed) % 2,
                               .hits = 1 + rnd(&p->seed) % 50};
            sum += rows[i].hits;
        }
        uint8_t *env = NULL;
        size_t len = 0;
        uint64_t seq = 0;
        pt_seal_hits(F.k.s_dns, PT_DNS, ++flush, rows, n, &env, &len, &seq);
        char id[64];
        snprintf(id, sizeof id, "%s-%" PRIu64, PT_DNS, flush);
        /* Like the usage journal: the same delta until it is confirmed. */
        for (;;) {
            ibp_err e;
            ibp_err_clear(&e);
            if (ibp_bus_publish_envelope(F.pjs, "ibp.hits.dns1",
                                         IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, PT_DNS, seq,
                                         env, len, id, 0, NULL, NULL, &e) == IBP_OK)
                break;
            atomic_fetch_add(&p->retries, 1);
            pt_sleep_ms(100);
        }
        free(env);
        atomic_fetch_add(&p->hits_sum, sum);
        atomic_fetch_add(&p->batches, 1);
        pt_sleep_ms(3);
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    if (ibp_testenv_private_start(&F.srv) != 0)
        return -1;
    pt_keys_init(&F.k);
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_bus_connect_url(F.srv.env.nats_auth_url, "it-persist", &F.nc, &e) != IBP_OK ||
        ibp_bus_connect_url(F.srv.env.nats_auth_url, "it-publisher", &F.pnc, &e) != IBP_OK) {
        fprintf(stderr, "connect: %s\n", e.msg);
        return -1;
    }
    natsConnection_JetStream(&F.js, F.nc, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000;
    natsConnection_JetStream(&F.pjs, F.pnc, &jo);
    if (ibp_bus_ensure_streams(F.js, NULL, &e) != IBP_OK) {
        fprintf(stderr, "streams: %s\n", e.msg);
        return -1;
    }
    F.db = pt_db_create(&F.srv.env, "ibp");
    mysql_close(F.db);
    F.db = NULL;
    pt_db_opts(&F.srv.env, "ibp", &F.dbo);
    F.dbo.connect_timeout_s = 2;
    ibp_persist_opts o;
    ibp_persist_opts_init(&o);
    o.nc = F.nc;
    o.db = &F.dbo;
    o.roster = F.k.roster;
    o.events_stream = "";
    o.batch_size = 64;
    o.fetch_wait_ms = 100;
    o.retry_max_ms = 2000;
    o.lag_log_interval_ms = 5000;
    if (ibp_persist_start(&o, &F.p, &e) != IBP_OK) {
        fprintf(stderr, "persist: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ibp_persist_stop(F.p);
    if (F.db)
        mysql_close(F.db);
    jsCtx_Destroy(F.js);
    jsCtx_Destroy(F.pjs);
    natsConnection_Destroy(F.nc);
    natsConnection_Destroy(F.pnc);
    pt_keys_free(&F.k);
    ibp_testenv_private_stop(&F.srv);
    nats_Close();
    return 0;
}

static void stats_line(const char *when, const publisher *pub)
{
    ibp_persist_stats s;
    ibp_persist_stats_get(F.p, &s);
    printf("%-28s published %5" PRIu64 " batches (retries %" PRIu64 "); persist last_seq %5" PRIu64
           " lag %5" PRIu64 " db_ok %d db_errors %" PRIu64 " nats_errors %" PRIu64 "\n",
           when, (uint64_t)atomic_load(&pub->batches), (uint64_t)atomic_load(&pub->retries),
           s.hits.last_seq, s.hits.pending, s.hits.db_ok, s.hits.db_errors, s.hits.nats_errors);
    fflush(stdout);
}

static void test_outages_under_load(void **state)
{
    (void)state;
    int outage_s = getenv("IBP_DB_OUTAGE_S") ? atoi(getenv("IBP_DB_OUTAGE_S")) : 60;
    publisher pub;
    memset(&pub, 0, sizeof pub);
    pub.seed = 0x9E3779B97F4A7C15ull ^ (uint64_t)pt_now_ms();
    atomic_init(&pub.stop, false);
    atomic_init(&pub.hits_sum, 0);
    atomic_init(&pub.batches, 0);
    atomic_init(&pub.retries, 0);
    assert_int_equal(pthread_create(&pub.thread, NULL, publisher_main, &pub), 0);
    pt_sleep_ms(2000);
    stats_line("before the MariaDB outage:", &pub);

    /* 1. MariaDB away under load. */
    assert_int_equal(ibp_testenv_private_signal(&F.srv, IBP_TESTENV_MYSQL, SIGKILL), 0);
    long long t_down = pt_now_ms();
    ibp_persist_stats s;
    uint64_t applied_at_kill = 0;
    for (int i = 0; i < outage_s; i++) {
        pt_sleep_ms(1000);
        if (i == 2) {
            ibp_persist_stats_get(F.p, &s);
            applied_at_kill = s.hits.last_seq;
        }
        if (i % 5 == 4)
            stats_line("MariaDB down:", &pub);
    }
    ibp_persist_stats_get(F.p, &s);
    assert_false(s.hits.db_ok);
    assert_true(s.hits.db_errors > 0);
    assert_int_equal(s.hits.last_seq, applied_at_kill); /* nothing committed meanwhile */
    assert_int_equal(ibp_testenv_private_restart(&F.srv, IBP_TESTENV_MYSQL), 0);
    printf("MariaDB was down for %lld ms\n", pt_now_ms() - t_down);
    long long t_up = pt_now_ms();
    uint64_t last = pt_stream_last_seq(F.js, "HITS");
    pt_wait_applied(F.p, IBP_PERSIST_HITS, last, 60000);
    printf("caught up %" PRIu64 " messages in %lld ms after MariaDB returned\n",
           last - applied_at_kill, pt_now_ms() - t_up);
    stats_line("after MariaDB returned:", &pub);

    /* 2. nats-server restarted under load. */
    assert_int_equal(ibp_testenv_private_signal(&F.srv, IBP_TESTENV_NATS, SIGTERM), 0);
    pt_sleep_ms(2000);
    stats_line("NATS down:", &pub);
    assert_int_equal(ibp_testenv_private_restart(&F.srv, IBP_TESTENV_NATS), 0);
    pt_sleep_ms(3000);
    stats_line("NATS back:", &pub);

    atomic_store(&pub.stop, true);
    pthread_join(pub.thread, NULL);
    last = pt_stream_last_seq(F.js, "HITS");
    pt_wait_applied(F.p, IBP_PERSIST_HITS, last, 60000);
    stats_line("end:", &pub);

    F.db = ibp_testenv_mysql_connect(&F.srv.env, "ibp");
    assert_non_null(F.db);
    long long sum = pt_db_int(F.db, "SELECT CAST(COALESCE(SUM(hits), 0) AS UNSIGNED) FROM "
                                    "requests");
    uint64_t want = atomic_load(&pub.hits_sum);
    printf("MariaDB SUM(hits) = %lld, published %" PRIu64 " in %" PRIu64 " batches\n", sum, want,
           (uint64_t)atomic_load(&pub.batches));
    assert_int_equal(sum, (long long)want);
    assert_int_equal(pt_db_int(F.db, "SELECT last_flush_seq FROM persist_hit_flushes"),
                     (long long)atomic_load(&pub.batches));
    /* Re-sent batches either were dropped by JetStream or were skipped by flush_seq. */
    long long replays = pt_db_int(F.db, "SELECT COUNT(*) FROM dead_letters WHERE reason = "
                                        "'IBP_E_REPLAY'");
    assert_int_equal(pt_db_int(F.db, "SELECT COUNT(*) FROM dead_letters"), replays);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outages_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
