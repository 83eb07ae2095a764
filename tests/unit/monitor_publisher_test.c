/*
 * Unit tests: the monitor publisher's pure parts (no NATS): results to wire
 * observations (normalised domains), batch packing and splitting by count
 * and by bytes, and option checks. Publishing itself, in order and across
 * reconnects, is tested against a real server in
 * tests/integration/monitor_publisher_it_test.c and by the cluster test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/log.h"
#include "ibp/monitor_publisher.h"

static ibp_result *endpoint(const char *member, const char *domain, bool up, size_t errlen)
{
    ibp_result_key k = {IBP_CHECK_ENDPOINT,          "wss", member, domain,
                        "wss://rpc.example.net/dot", false};
    char *error = calloc(errlen + 1, 1);
    memset(error, 'e', errlen);
    ibp_result *r;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, up, 1700000000000, error, "{\"ms\":12}", &r, &err), IBP_OK);
    free(error);
    return r;
}

static void test_observation_normalises_domain(void **state)
{
    (void)state;
    ibp_result *r = endpoint("Stake Plus", "RPC.Example.NET.", false, 7);
    ibp_observation_buf b;
    ibp_err err;
    assert_int_equal(ibp_observation_from_result(r, &b, &err), IBP_OK);
    assert_string_equal(b.obs.key.domain, "rpc.example.net");
    assert_int_equal(b.obs.key.type, IBP_CHECK_ENDPOINT);
    assert_string_equal(b.obs.key.member, "Stake Plus");
    assert_string_equal(b.obs.key.endpoint, "wss://rpc.example.net/dot");
    assert_int_equal(b.obs.status, IBP_RESULT_DOWN);
    assert_int_equal(b.obs.check_time_ms, 1700000000000);
    assert_string_equal(b.obs.error, "eeeeeee");
    assert_string_equal(b.obs.data_json, "{\"ms\":12}");
    ibp_result_free(r);

    ibp_result_key ks = {IBP_CHECK_SITE, "ping", "Alpha", NULL, NULL, true};
    assert_int_equal(ibp_result_new(&ks, true, 5, "", "", &r, &err), IBP_OK);
    assert_int_equal(ibp_observation_from_result(r, &b, &err), IBP_OK);
    assert_string_equal(b.obs.key.domain, "");
    assert_true(b.obs.key.ipv6);
    assert_int_equal(b.obs.status, IBP_RESULT_UP);
    ibp_result_free(r);
    assert_int_equal(ibp_observation_from_result(NULL, &b, &err), IBP_E_INVAL);
}

static void test_pack_roundtrip(void **state)
{
    (void)state;
    ibp_result *rs[3] = {endpoint("A", "One.Example", true, 0),
                         endpoint("B", "two.example.", false, 3),
                         endpoint("C", "three.example", true, 0)};
    uint8_t *data = NULL;
    size_t len = 0;
    ibp_err err;
    assert_int_equal(
        ibp_observation_batch_pack((const ibp_result *const *)rs, 3, 42, true, &data, &len, &err),
        IBP_OK);
    Ibp__V1__ObservationBatch *b = ibp__v1__observation_batch__unpack(NULL, len, data);
    assert_non_null(b);
    assert_int_equal(b->batch_seq, 42);
    assert_true(b->full);
    assert_int_equal(b->n_observations, 3);
    assert_string_equal(b->observations[0]->key->domain, "one.example");
    assert_string_equal(b->observations[1]->key->domain, "two.example");
    assert_int_equal(b->observations[1]->status, IBP__V1__STATUS__STATUS_DOWN);
    assert_string_equal(b->observations[1]->error, "eee");
    assert_string_equal(b->observations[2]->key->member, "C");
    ibp__v1__observation_batch__free_unpacked(b, NULL);
    free(data);

    /* An empty batch packs too (not that the publisher sends one). */
    assert_int_equal(ibp_observation_batch_pack(NULL, 0, 1, false, &data, &len, &err), IBP_OK);
    free(data);
    for (int i = 0; i < 3; i++)
        ibp_result_free(rs[i]);
}

static void test_split(void **state)
{
    (void)state;
    enum { N = 10 };
    ibp_result *rs[N];
    for (int i = 0; i < N; i++)
        rs[i] = endpoint("Member", "rpc.example.net", i % 2, 1000);
    const ibp_result *const *list = (const ibp_result *const *)rs;

    assert_int_equal(ibp_observation_batch_split(list, 0, 5000, 900000), 0);
    assert_int_equal(ibp_observation_batch_split(list, N, 5000, 900000), N);
    assert_int_equal(ibp_observation_batch_split(list, N, 4, 900000), 4);
    /* Each observation is a little over 1000 bytes: three fit in 3500. */
    assert_int_equal(ibp_observation_batch_split(list, N, 5000, 3500), 3);
    /* One that does not fit alone still makes a batch of one. */
    assert_int_equal(ibp_observation_batch_split(list, N, 5000, 100), 1);

    /* Every split packs within its limit. */
    size_t at = 0, batches = 0;
    while (at < N) {
        size_t k = ibp_observation_batch_split(list + at, N - at, 5000, 3500);
        uint8_t *data;
        size_t len;
        ibp_err err;
        assert_int_equal(
            ibp_observation_batch_pack(list + at, k, batches + 1, false, &data, &len, &err),
            IBP_OK);
        if (len > 3500)
            fail_msg("batch %zu of %zu observations is %zu bytes, over 3500", batches, k, len);
        free(data);
        at += k;
        batches++;
    }
    assert_int_equal(batches, 4);
    for (int i = 0; i < N; i++)
        ibp_result_free(rs[i]);
}

static void test_bad_options(void **state)
{
    (void)state;
    ibp_monitor_publisher_opts o;
    ibp_monitor_publisher *p = NULL;
    ibp_err err;
    ibp_monitor_publisher_opts_init(&o);
    assert_int_equal(o.publish_ms, 5000);
    assert_int_equal(o.refresh_ms, 60000);
    assert_int_equal(o.max_batch_obs, IBP_MONITOR_MAX_BATCH_OBS_DEFAULT);
    assert_int_equal(ibp_monitor_publisher_start(&o, &p, &err), IBP_E_INVAL);
    assert_null(p);
    assert_int_equal(ibp_monitor_publisher_start(NULL, &p, &err), IBP_E_INVAL);
    assert_int_equal(ibp_monitor_publisher_flush(NULL, 0, &err), IBP_E_INVAL);
    ibp_monitor_publisher_stop(NULL);
}

static ibp_result *aged(const char *member, int64_t check_time_ms)
{
    ibp_result_key k = {IBP_CHECK_SITE, "ping", member, "", "", false};
    ibp_result *r;
    ibp_err err;
    assert_int_equal(ibp_result_new(&k, true, check_time_ms, "", "", &r, &err), IBP_OK);
    return r;
}

static bool not_gone(const ibp_result *r, void *user)
{
    (void)user;
    return strcmp(r->member, "Gone") != 0;
}

/* Fresh votes only: nothing older than the staleness limit, nothing the checker disowns. */
static void test_filter(void **state)
{
    (void)state;
    const int64_t now = 1700000000000;
    ibp_result *items[] = {aged("A", now - 1000), aged("B", now - 181000), aged("Gone", now),
                           aged("C", now - 180000), aged("Gone", now - 999999)};
    ibp_result_list list = {.items = malloc(sizeof items), .count = 5};
    memcpy(list.items, items, sizeof items);
    uint64_t stale = 0, unwanted = 0;
    ibp_monitor_publisher_filter(&list, now, 180000, not_gone, NULL, &stale, &unwanted);
    assert_int_equal(list.count, 2);
    assert_string_equal(list.items[0]->member, "A");
    assert_string_equal(list.items[1]->member, "C"); /* exactly at the limit: still fresh */
    assert_int_equal(stale, 2);
    assert_int_equal(unwanted, 1);
    /* No limit and no filter: everything stays. */
    ibp_monitor_publisher_filter(&list, now + 86400000, 0, NULL, NULL, NULL, NULL);
    assert_int_equal(list.count, 2);
    ibp_result_list_free(&list);
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observation_normalises_domain),
        cmocka_unit_test(test_pack_roundtrip),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
