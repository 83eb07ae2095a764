/* Unit tests: the assembled data library (store + caches + usage). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/data.h"
#include "ibp/log.h"
#include "test_util.h"

static int64_t clock_ms(void *user)
{
    return *(int64_t *)user;
}

static ibp_result *site(const char *member, bool ipv6, bool up)
{
    ibp_result_key k = {IBP_CHECK_SITE, "ping", member, NULL, NULL, ipv6};
    ibp_result *r;
    ibp_err err;
    assert_int_equal(
        ibp_result_new(&k, up, 1700000000000, up ? "" : "timeout", "{\"rtt_ms\":3}", &r, &err),
        IBP_OK);
    return r;
}

static ibp_data *open_data(const char *dir, int64_t *clock, const ibp_usage_opts *usage)
{
    ibp_data_opts o;
    ibp_data *d;
    ibp_err err;
    ibp_data_opts_init(&o);
    o.work_dir = dir;
    o.use_official_cache = true;
    o.use_local_cache = true;
    o.cache_save_ms = 1000;
    o.now_ms = clock_ms;
    o.clock_user = clock;
    o.usage = usage;
    ibp_status st = ibp_data_open(&o, &d, &err);
    if (st != IBP_OK)
        fail_msg("open: %s", err.msg);
    return d;
}

static void test_caches_survive_restart(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    int64_t now = 1700000000000;
    ibp_err err;
    ibp_data *d = open_data(dir, &now, NULL);
    ibp_store *s = ibp_data_store(d);
    ibp_result *rs[] = {site("Alpha", false, false), site("Beta", true, true)};
    assert_int_equal(ibp_store_set_official(s, (const ibp_result *const *)rs, 2, 42, false, &err),
                     IBP_OK);
    assert_int_equal(ibp_store_member_disable(s, "Gamma", "maintenance", &err), IBP_OK);
    assert_int_equal(ibp_store_update_local(s, rs[1], &err), IBP_OK);
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);

    d = open_data(dir, &now, NULL);
    s = ibp_data_store(d);
    assert_int_equal(ibp_store_official_epoch(s), 42);
    assert_int_equal(ibp_store_official_count(s), 2);
    assert_false(ibp_store_member_online(s, "x.example", "Alpha", false));
    assert_true(ibp_store_member_overridden(s, "Gamma"));
    bool found = false, up = false;
    ibp_result_key k = ibp_result_key_of(rs[1]);
    ibp_store_local_status(s, &k, &found, &up);
    assert_true(found);
    assert_true(up);
    ibp_result *got;
    k = ibp_result_key_of(rs[0]);
    assert_int_equal(ibp_store_official_get(s, &k, &got), IBP_OK);
    assert_string_equal(got->error, "timeout");
    assert_string_equal(got->data_json, "{\"rtt_ms\":3}");
    ibp_result_free(got);

    /* Periodic saves follow the clock. */
    assert_int_equal(ibp_store_member_enable(s, "Gamma", &err), IBP_OK);
    now += 500;
    assert_int_equal(ibp_data_tick(d, &err), IBP_OK);
    char path[4200];
    struct stat before, after;
    test_path(path, sizeof path, dir, "tmp/official.cache.json");
    assert_int_equal(stat(path, &before), 0);
    now += 1000;
    assert_int_equal(ibp_data_tick(d, &err), IBP_OK);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_mode & 0777, 0600);
    ibp_data_close(d, &err);
    d = open_data(dir, &now, NULL);
    assert_false(ibp_store_member_overridden(ibp_data_store(d), "Gamma"));
    ibp_data_close(d, NULL);
    ibp_result_free(rs[0]);
    ibp_result_free(rs[1]);
    test_rmdir(dir);
}

static void test_corrupt_cache_starts_empty(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    int64_t now = 1700000000000;
    ibp_log_set_level(IBP_LOG_OFF);
    test_path(path, sizeof path, dir, "tmp");
    mkdir(path, 0700);
    test_path(path, sizeof path, dir, "tmp/official.cache.json");
    test_write(path, "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"off", 0600);
    ibp_data *d = open_data(dir, &now, NULL);
    assert_int_equal(ibp_store_official_count(ibp_data_store(d)), 0);
    struct stat sb;
    assert_int_not_equal(stat(path, &sb), 0); /* moved aside */
    ibp_data_close(d, NULL);
    ibp_log_set_level(IBP_LOG_INFO);
    test_rmdir(dir);
}

static void test_needs_work_dir(void **state)
{
    (void)state;
    ibp_data_opts o;
    ibp_data *d;
    ibp_err err;
    ibp_data_opts_init(&o);
    o.use_local_cache = true;
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_E_INVAL);
    /* Without caches or usage a work dir is not needed. */
    o.use_local_cache = false;
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_OK);
    assert_null(ibp_data_usage(d));
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);
    assert_int_equal(ibp_data_close(NULL, &err), IBP_OK);
}

struct counting_sink {
    uint64_t hits;
    size_t batches;
};

static ibp_status count_deliver(void *ctx, const Ibp__V1__HitBatch *batch, const uint8_t *packed,
                                size_t len, ibp_err *err)
{
    (void)packed;
    (void)len;
    (void)err;
    struct counting_sink *c = ctx;
    for (size_t i = 0; i < batch->n_rows; i++)
        c->hits += batch->rows[i]->hits;
    c->batches++;
    return IBP_OK;
}

static void test_usage_is_flushed_at_close(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    int64_t now = 1700000000000;
    struct counting_sink counter = {0};
    ibp_usage_sink sink = {count_deliver, NULL, &counter};
    ibp_usage_opts uo;
    ibp_usage_opts_init(&uo);
    uo.node_id = "dns1";
    uo.sink = &sink;
    uo.clock = clock_ms;
    uo.clock_user = &now;
    ibp_data *d = open_data(dir, &now, &uo);
    assert_non_null(ibp_data_usage(d));
    for (int i = 0; i < 100; i++)
        assert_int_equal(ibp_usage_record_dns_hit(ibp_data_usage(d), i % 2, "192.0.2.1",
                                                  "rpc.ibp.network", i % 3 ? "Alpha" : ""),
                         IBP_OK);
    assert_int_equal(ibp_data_close(d, NULL), IBP_OK);
    assert_int_equal(counter.hits, 100);
    assert_true(counter.batches >= 1);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_caches_survive_restart),
        cmocka_unit_test(test_corrupt_cache_starts_empty),
        cmocka_unit_test(test_needs_work_dir),
        cmocka_unit_test(test_usage_is_flushed_at_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
