/*
 * Stress test of the usage aggregator (run it under TSan: -DIBP_TSAN=ON).
 *
 * Waves of recording threads (new threads, so shards of exited threads are
 * freed while others record) count hits over many keys, past the key cap,
 * across UTC midnights (the clock is moved by the flusher), with some bad
 * addresses; another thread flushes, flushes single dates and ticks without
 * pause into a sink that refuses every third batch. At the end, the hits the
 * sink confirmed equal the hits recorded, exactly, and per date.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "ibp/log.h"
#include "ibp/usage.h"
#include "test_util.h"

#define MMDB(name) IBP_TEST_MMDB_DIR "/" name
#define WAVES 3
#define THREADS 4
#define HITS_PER_THREAD 20000
#define NIPS 512
#define DAYS 8
#define T0 INT64_C(1714564800000) /* 2024-05-01T12:00:00Z */

typedef struct sink_state {
    pthread_mutex_t mu;
    uint64_t total;
    uint64_t per_day[DAYS];
    uint64_t batches;
    uint64_t calls;
    uint64_t last_seq;
    bool refuse_some;
} sink_state;

static ibp_status deliver(void *ctx, const Ibp__V1__HitBatch *b, const uint8_t *packed, size_t len,
                          ibp_err *err)
{
    sink_state *s = ctx;
    (void)packed;
    (void)len;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    if (s->refuse_some && s->calls % 3 == 0) {
        pthread_mutex_unlock(&s->mu);
        return ibp_err_set(err, IBP_E_NATS, "refused");
    }
    /* Delivered in order, each once. */
    assert_true(b->flush_seq > s->last_seq);
    s->last_seq = b->flush_seq;
    for (size_t i = 0; i < b->n_rows; i++) {
        int64_t day;
        assert_int_equal(ibp_usage_parse_date(b->rows[i]->date, &day), 0);
        int64_t d = day - T0 / IBP_USAGE_DAY_MS;
        assert_true(d >= 0 && d < DAYS);
        s->per_day[d] += b->rows[i]->hits;
        s->total += b->rows[i]->hits;
    }
    s->batches++;
    pthread_mutex_unlock(&s->mu);
    return IBP_OK;
}

typedef struct shared {
    ibp_usage *u;
    _Atomic int64_t now;
    char ips[NIPS][64];
    _Atomic uint64_t recorded;
    _Atomic uint64_t per_day[DAYS];
    atomic_bool stop;
} shared;

static int64_t clock_fn(void *user)
{
    return atomic_load(&((shared *)user)->now);
}

typedef struct worker {
    shared *sh;
    unsigned seed;
} worker;

static void *record_main(void *p)
{
    worker *w = p;
    shared *sh = w->sh;
    unsigned x = w->seed;
    const char *members[] = {"Stake Plus", "Dotters", "", "Gatotech", "Amforc"};
    char dom[64];
    for (int i = 0; i < HITS_PER_THREAD; i++) {
        x = x * 1103515245u + 12345u;
        unsigned r = x >> 8;
        snprintf(dom, sizeof dom, "rpc%u.ibp.network", r % 300);
        const char *ip = (r % 97 == 0) ? "not-an-address" : sh->ips[r % NIPS];
        /* The date a hit counts under is the clock's when it is recorded; the
         * test reads it just before, and the flusher moves the clock only
         * between waves, so the two agree. */
        int64_t day = atomic_load(&sh->now) / IBP_USAGE_DAY_MS - T0 / IBP_USAGE_DAY_MS;
        ibp_status st = ibp_usage_record_dns_hit(sh->u, (r >> 3) & 1, ip, dom, members[r % 5]);
        assert_int_equal(st, IBP_OK);
        atomic_fetch_add(&sh->recorded, 1);
        atomic_fetch_add(&sh->per_day[day], 1);
    }
    return NULL;
}

static void *flush_main(void *p)
{
    shared *sh = p;
    int round = 0;
    char date[11];
    while (!atomic_load(&sh->stop)) {
        switch (round++ % 3) {
        case 0:
            ibp_usage_flush(sh->u, NULL);
            break;
        case 1:
            ibp_usage_format_date(atomic_load(&sh->now) / IBP_USAGE_DAY_MS, date);
            ibp_usage_flush_date(sh->u, date, NULL);
            break;
        default:
            ibp_usage_tick(sh->u, NULL);
            break;
        }
        ibp_usage_stats st;
        ibp_usage_stats_get(sh->u, &st);
    }
    return NULL;
}

static void test_totals_exact_under_concurrency(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    shared *sh = calloc(1, sizeof *sh);
    sink_state ss;
    memset(&ss, 0, sizeof ss);
    pthread_mutex_init(&ss.mu, NULL);
    ss.refuse_some = true;
    ibp_usage_sink sink = {deliver, NULL, &ss};

    FILE *fp = fopen(MMDB("bench-ips.txt"), "r");
    assert_non_null(fp);
    for (int i = 0; i < NIPS; i++) {
        assert_non_null(fgets(sh->ips[i], sizeof sh->ips[i], fp));
        sh->ips[i][strcspn(sh->ips[i], "\n")] = '\0';
    }
    fclose(fp);
    ibp_geo_opts go;
    ibp_geo *geo = NULL;
    ibp_geo_opts_init(&go);
    go.city_db = MMDB("bench-city.mmdb");
    go.asn_db = MMDB("bench-asn.mmdb");
    assert_int_equal(ibp_geo_open(&go, &geo, NULL), IBP_OK);

    atomic_init(&sh->now, T0);
    ibp_usage_opts o;
    ibp_usage_opts_init(&o);
    o.node_id = "dns1";
    o.work_dir = dir;
    o.geo = geo;
    o.sink = &sink;
    o.max_keys = 20000; /* below the distinct keys: overflow keys are exercised too */
    o.max_rows_per_batch = 500;
    o.retry_min_ms = 1;
    o.retry_max_ms = 1;
    o.flush_interval_ms = 1;
    o.clock = clock_fn;
    o.clock_user = sh;
    ibp_err err;
    assert_int_equal(ibp_usage_open(&o, &sh->u, &err), IBP_OK);

    pthread_t flusher;
    pthread_create(&flusher, NULL, flush_main, sh);
    for (int wave = 0; wave < WAVES; wave++) {
        pthread_t t[THREADS];
        worker w[THREADS];
        for (int i = 0; i < THREADS; i++) {
            w[i].sh = sh;
            w[i].seed = (unsigned)(wave * THREADS + i + 1);
            pthread_create(&t[i], NULL, record_main, &w[i]);
        }
        for (int i = 0; i < THREADS; i++)
            pthread_join(t[i], NULL);
        /* Past the next midnight: the flusher's ticks flush the old date. */
        atomic_store(&sh->now, atomic_load(&sh->now) + IBP_USAGE_DAY_MS);
    }
    atomic_store(&sh->stop, true);
    pthread_join(flusher, NULL);

    ibp_usage_stats st;
    ibp_usage_stats_get(sh->u, &st);
    uint64_t recorded = atomic_load(&sh->recorded);
    assert_int_equal(recorded, (uint64_t)WAVES * THREADS * HITS_PER_THREAD);
    assert_int_equal(st.hits, recorded);
    assert_true(st.overflow_hits > 0);
    assert_true(st.bad_ip_hits > 0);
    pthread_mutex_lock(&ss.mu);
    ss.refuse_some = false;
    pthread_mutex_unlock(&ss.mu);
    assert_int_equal(ibp_usage_close(sh->u, &err), IBP_OK);

    print_message("recorded %" PRIu64 " hits, %" PRIu64 " batches confirmed in %" PRIu64
                  " deliveries, overflow hits %" PRIu64 "\n",
                  recorded, ss.batches, ss.calls, st.overflow_hits);
    assert_int_equal(ss.total, recorded);
    for (int d = 0; d < DAYS; d++)
        assert_int_equal(ss.per_day[d], atomic_load(&sh->per_day[d]));

    ibp_geo_close(geo);
    pthread_mutex_destroy(&ss.mu);
    free(sh);
    test_rmdir(dir);
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals_exact_under_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
