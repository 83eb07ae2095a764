/*
 * Stress test of the assembled data library under concurrency (TSan:
 * tests/run.sh --tsan -R data_stress). Writer threads update official and
 * local results and toggle overrides, reader threads ask member status and
 * copy the stores, recorder threads count DNS hits, while the main thread
 * ticks the library (cache saves every few milliseconds, usage flushes) and
 * flushes on demand. At the end the hits delivered to the sink equal the
 * hits recorded, exactly, and the saved caches load back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>

#include "ibp/data.h"
#include "ibp/log.h"
#include "test_util.h"

#define RECORDERS 2
#define HITS_PER_RECORDER 40000
#define MEMBERS 8

static ibp_data *data;
static atomic_int stop;
static atomic_ullong recorded;

struct sink_state {
    pthread_mutex_t lock;
    uint64_t hits;
};

static ibp_status deliver(void *ctx, const Ibp__V1__HitBatch *batch, const uint8_t *packed,
                          size_t len, ibp_err *err)
{
    (void)packed;
    (void)len;
    (void)err;
    struct sink_state *s = ctx;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < batch->n_rows; i++)
        s->hits += batch->rows[i]->hits;
    pthread_mutex_unlock(&s->lock);
    return IBP_OK;
}

static const char *member_name(int i)
{
    static const char *const names[MEMBERS] = {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7"};
    return names[i % MEMBERS];
}

static void *writer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    ibp_store *s = ibp_data_store(data);
    ibp_err err;
    while (!atomic_load(&stop)) {
        int m = rand_r(&seed) % MEMBERS;
        ibp_result_key k = {IBP_CHECK_DOMAIN,  "ssl", member_name(m),
                            "rpc.ibp.network", NULL,  rand_r(&seed) % 2};
        ibp_result *r;
        if (ibp_result_new(&k, rand_r(&seed) % 3 != 0, 1, NULL, NULL, &r, &err) != IBP_OK)
            abort();
        ibp_store_update_official(s, r, &err);
        ibp_store_update_local(s, r, &err);
        ibp_result_free(r);
        if (rand_r(&seed) % 16 == 0)
            ibp_store_member_disable(s, member_name(m), "stress", &err);
        if (rand_r(&seed) % 16 == 0)
            ibp_store_member_enable(s, member_name(m), &err);
    }
    return NULL;
}

static void *reader(void *arg)
{
    (void)arg;
    ibp_store *s = ibp_data_store(data);
    const char *cands[MEMBERS], *online[MEMBERS];
    for (int i = 0; i < MEMBERS; i++)
        cands[i] = member_name(i);
    while (!atomic_load(&stop)) {
        size_t n;
        bool last;
        ibp_store_online_members(s, "rpc.ibp.network", false, cands, MEMBERS, online, &n, &last);
        ibp_result_list list = {0};
        if (ibp_store_official_all(s, &list) == IBP_OK)
            ibp_result_list_free(&list);
    }
    return NULL;
}

static void *recorder(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    ibp_usage *u = ibp_data_usage(data);
    char ip[32];
    for (int i = 0; i < HITS_PER_RECORDER; i++) {
        snprintf(ip, sizeof ip, "198.51.100.%d", rand_r(&seed) % 256);
        if (ibp_usage_record_dns_hit(u, i % 2, ip, "rpc.ibp.network", member_name(i)) == IBP_OK)
            atomic_fetch_add(&recorded, 1);
    }
    return NULL;
}

static void test_everything_at_once(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    struct sink_state sink_state = {PTHREAD_MUTEX_INITIALIZER, 0};
    ibp_usage_sink sink = {deliver, NULL, &sink_state};
    ibp_usage_opts uo;
    ibp_data_opts o;
    ibp_err err;
    ibp_log_set_level(IBP_LOG_ERROR);
    ibp_usage_opts_init(&uo);
    uo.node_id = "dns1";
    uo.sink = &sink;
    uo.flush_interval_ms = 1;
    ibp_data_opts_init(&o);
    o.work_dir = dir;
    o.use_official_cache = true;
    o.use_local_cache = true;
    o.cache_save_ms = 1;
    o.usage = &uo;
    if (ibp_data_open(&o, &data, &err) != IBP_OK)
        fail_msg("open: %s", err.msg);

    pthread_t w[2], r[2], rec[RECORDERS];
    for (int i = 0; i < 2; i++) {
        pthread_create(&w[i], NULL, writer, (void *)(uintptr_t)(i + 1));
        pthread_create(&r[i], NULL, reader, NULL);
    }
    for (int i = 0; i < RECORDERS; i++)
        pthread_create(&rec[i], NULL, recorder, (void *)(uintptr_t)(i + 7));
    int ticks = 0;
    for (int done = 0; !done;) {
        ibp_data_tick(data, &err); /* cache saves and usage flushes */
        if (++ticks % 8 == 0)
            ibp_usage_flush(ibp_data_usage(data), &err);
        done = atomic_load(&recorded) == (unsigned long long)RECORDERS * HITS_PER_RECORDER &&
               ticks > 200;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < RECORDERS; i++)
        pthread_join(rec[i], NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++) {
        pthread_join(w[i], NULL);
        pthread_join(r[i], NULL);
    }
    assert_int_equal(ibp_data_close(data, &err), IBP_OK);
    printf("ticks=%d recorded=%llu delivered=%llu\n", ticks,
           (unsigned long long)atomic_load(&recorded), (unsigned long long)sink_state.hits);
    assert_int_equal(sink_state.hits, (uint64_t)RECORDERS * HITS_PER_RECORDER);

    /* The caches written under load load back. */
    o.usage = NULL;
    assert_int_equal(ibp_data_open(&o, &data, &err), IBP_OK);
    assert_true(ibp_store_official_count(ibp_data_store(data)) > 0);
    ibp_data_close(data, NULL);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_everything_at_once)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
