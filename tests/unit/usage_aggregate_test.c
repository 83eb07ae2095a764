/* Unit tests: the pure usage aggregator (ibp/usage_aggregate.h); no journal, no sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/usage_aggregate.h"

static char *block(const char *dom, const char *mem, const char *cc, size_t *blen)
{
    const char *f[IBP_USAGE_FIELDS] = {dom, mem, cc, "AS1", "Net", "Country"};
    char *b = ibp__usage_block_new(f, blen);
    assert_non_null(b);
    return b;
}

static void add(ibp_usage_agg *a, int32_t day, bool ipv6, const char *dom, const char *mem,
                const char *cc, uint64_t count)
{
    size_t blen;
    char *b = block(dom, mem, cc, &blen);
    assert_int_equal(ibp__usage_agg_add(a, day, ipv6, b, blen, count), 0);
}

static void test_block_round_trip(void **state)
{
    (void)state;
    size_t blen;
    char *b = block("rpc.example.org", "alice", "DE", &blen);
    assert_int_equal(blen, strlen("rpc.example.org") + strlen("alice") + 2 + 3 + 4 + 4 + 8);
    const char *f[IBP_USAGE_FIELDS];
    ibp__usage_block_fields(b, f);
    assert_string_equal(f[0], "rpc.example.org");
    assert_string_equal(f[1], "alice");
    assert_string_equal(f[2], "DE");
    assert_string_equal(f[3], "AS1");
    assert_string_equal(f[4], "Net");
    assert_string_equal(f[5], "Country");
    ibp_usage_fields lf = {.f = {"abcdef", "m", "", "", "", ""}, .len = {3, 1, 0, 0, 0, 0}};
    assert_int_equal(ibp__usage_block_size(&lf), 3 + 1 + 6);
    char out[16];
    ibp__usage_block_pack(out, &lf);
    assert_memory_equal(out, "abc\0m\0\0\0\0\0", 10);
    free(b);
}

static void test_same_key_folds_into_one_row(void **state)
{
    (void)state;
    ibp_usage_agg a;
    ibp__usage_agg_init(&a, 42);
    add(&a, 19844, false, "a.org", "alice", "DE", 3);
    add(&a, 19844, false, "a.org", "alice", "DE", 4);
    add(&a, 19844, true, "a.org", "alice", "DE", 1);   /* ipv6 differs */
    add(&a, 19845, false, "a.org", "alice", "DE", 10); /* day differs */
    add(&a, 19844, false, "a.org", "alice", "FR", 2);  /* country differs */
    assert_int_equal(a.used, 4);
    assert_int_equal(ibp__usage_agg_hits(&a), 20);

    ibp_usage_row **sel;
    size_t n;
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_ALL, 0, &sel, &n), 0);
    assert_int_equal(n, 4);
    /* Sorted by (day, block, ipv6). */
    assert_int_equal(sel[0]->day, 19844);
    assert_string_equal(sel[0]->block, "a.org");
    assert_int_equal(sel[0]->ipv6, 0);
    assert_int_equal(sel[0]->count, 7);
    assert_int_equal(sel[1]->ipv6, 1);
    assert_int_equal(sel[1]->count, 1);
    const char *f[IBP_USAGE_FIELDS];
    ibp__usage_block_fields(sel[2]->block, f);
    assert_string_equal(f[2], "FR");
    assert_int_equal(sel[2]->count, 2);
    assert_int_equal(sel[3]->day, 19845);
    assert_int_equal(sel[3]->count, 10);
    free(sel);
    ibp__usage_agg_free(&a);
}

static void test_select_by_date(void **state)
{
    (void)state;
    ibp_usage_agg a;
    ibp__usage_agg_init(&a, 7);
    for (int32_t d = 100; d < 105; d++)
        add(&a, d, false, "x.org", "m", "??", (uint64_t)d);
    ibp_usage_row **sel;
    size_t n;
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_DAY, 102, &sel, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sel[0]->day, 102);
    free(sel);
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_BEFORE, 103, &sel, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(sel[0]->day, 100);
    assert_int_equal(sel[2]->day, 102);
    free(sel);
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_DAY, 99, &sel, &n), 0);
    assert_int_equal(n, 0);
    assert_null(sel);
    ibp__usage_agg_free(&a);
}

static void test_journaled_rows_are_dropped_at_compaction(void **state)
{
    (void)state;
    ibp_usage_agg a;
    ibp__usage_agg_init(&a, 1);
    char dom[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(dom, sizeof dom, "d%d.org", i);
        add(&a, 200 + i % 2, false, dom, "m", "??", 1);
    }
    assert_int_equal(a.used, 1000);
    size_t big = a.cap;
    ibp_usage_row **sel;
    size_t n;
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_DAY, 200, &sel, &n), 0);
    assert_int_equal(n, 500);
    for (size_t i = 0; i < n; i++)
        sel[i]->count = 0; /* journaled */
    free(sel);
    /* A journaled row is no longer selected, even before compaction. */
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_ALL, 0, &sel, &n), 0);
    assert_int_equal(n, 500);
    free(sel);
    ibp__usage_agg_compact(&a);
    assert_int_equal(a.used, 500);
    assert_true(a.cap < big);
    assert_int_equal(ibp__usage_agg_hits(&a), 500);
    /* A key whose row was dropped starts a new row. */
    add(&a, 200, false, "d0.org", "m", "??", 5);
    assert_int_equal(a.used, 501);
    assert_int_equal(ibp__usage_agg_hits(&a), 505);
    ibp__usage_agg_free(&a);
    assert_int_equal(a.used, 0);
    assert_null(a.slots);
}

static void test_invalid_utf8_is_cleaned_before_folding(void **state)
{
    (void)state;
    ibp_usage_agg a;
    ibp__usage_agg_init(&a, 3);
    /* Two different invalid bytes clean to the same string: one row. */
    add(&a, 1, false, "a\xff.org", "m\xc0", "??", 1);
    add(&a, 1, false, "a\xfe.org", "m\xc1", "??", 2);
    ibp_usage_row **sel;
    size_t n;
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_ALL, 0, &sel, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sel[0]->count, 3);
    const char *f[IBP_USAGE_FIELDS];
    ibp__usage_block_fields(sel[0]->block, f);
    assert_int_equal(strlen(f[0]), strlen("a?.org"));
    for (const char *p = f[0]; *p; p++)
        assert_true((unsigned char)*p < 0x80);
    free(sel);
    ibp__usage_agg_free(&a);
}

static void test_empty_aggregate(void **state)
{
    (void)state;
    ibp_usage_agg a;
    ibp__usage_agg_init(&a, 0);
    ibp_usage_row **sel = (ibp_usage_row **)&a; /* must be overwritten */
    size_t n = 99;
    assert_int_equal(ibp__usage_agg_select(&a, IBP_USAGE_SELECT_ALL, 0, &sel, &n), 0);
    assert_int_equal(n, 0);
    assert_null(sel);
    ibp__usage_agg_compact(&a);
    assert_int_equal(ibp__usage_agg_hits(&a), 0);
    ibp__usage_agg_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_round_trip),
        cmocka_unit_test(test_same_key_folds_into_one_row),
        cmocka_unit_test(test_select_by_date),
        cmocka_unit_test(test_journaled_rows_are_dropped_at_compaction),
        cmocka_unit_test(test_invalid_utf8_is_cleaned_before_folding),
        cmocka_unit_test(test_empty_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
