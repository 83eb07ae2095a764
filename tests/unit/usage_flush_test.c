/* Unit tests: the pure usage flush scheduler (ibp/usage_flush.h); times are passed in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/usage.h"
#include "ibp/usage_flush.h"

#define DAY_MS IBP_USAGE_DAY_MS
#define T0 INT64_C(1714521600000) /* 2024-05-01T00:00:00Z */
#define MIN_MS INT64_C(60000)
#define INTERVAL (5 * MIN_MS)

static ibp_usage_sched fresh(int64_t now)
{
    ibp_usage_sched s;
    ibp__usage_sched_init(&s, INTERVAL, 1000, 300000, now);
    return s;
}

static void test_day_of(void **state)
{
    (void)state;
    assert_int_equal(ibp__usage_day_of(0), 0);
    assert_int_equal(ibp__usage_day_of(DAY_MS - 1), 0);
    assert_int_equal(ibp__usage_day_of(DAY_MS), 1);
    assert_int_equal(ibp__usage_day_of(-1), -1);
    assert_int_equal(ibp__usage_day_of(-DAY_MS), -1);
    assert_int_equal(ibp__usage_day_of(-DAY_MS - 1), -2);
    assert_int_equal(ibp__usage_day_of(T0), T0 / DAY_MS);
}

static void test_interval_flush(void **state)
{
    (void)state;
    int64_t now = T0 + 3600000;
    ibp_usage_sched s = fresh(now);
    assert_false(ibp__usage_sched_flush_due(&s, now));
    assert_false(ibp__usage_sched_flush_due(&s, now + INTERVAL - 1));
    assert_true(ibp__usage_sched_flush_due(&s, now + INTERVAL));
    assert_int_equal(ibp__usage_sched_next_due_ms(&s, now, false, 0), INTERVAL);
    ibp__usage_sched_flushed(&s, now + INTERVAL, true);
    assert_false(ibp__usage_sched_flush_due(&s, now + INTERVAL + 1));
    assert_true(ibp__usage_sched_flush_due(&s, now + 2 * INTERVAL));
}

static void test_midnight(void **state)
{
    (void)state;
    int64_t now = T0 + DAY_MS - 2 * MIN_MS; /* 23:58 */
    ibp_usage_sched s = fresh(now);
    int64_t today = -1;
    assert_false(ibp__usage_sched_new_day(&s, now + MIN_MS, &today));
    assert_int_equal(today, -1);
    /* Midnight comes before the interval flush. */
    assert_int_equal(ibp__usage_sched_next_due_ms(&s, now, false, 0), 2 * MIN_MS);
    assert_true(ibp__usage_sched_new_day(&s, T0 + DAY_MS, &today));
    assert_int_equal(today, T0 / DAY_MS + 1);
    assert_false(ibp__usage_sched_new_day(&s, T0 + DAY_MS + 1000, &today));
    /* A clock that steps back is no new day. */
    assert_false(ibp__usage_sched_new_day(&s, T0, &today));
    /* Several days skipped: one new day, the latest. */
    assert_true(ibp__usage_sched_new_day(&s, T0 + 5 * DAY_MS, &today));
    assert_int_equal(today, T0 / DAY_MS + 5);
}

static void test_journal_backoff(void **state)
{
    (void)state;
    int64_t now = T0;
    ibp_usage_sched s = fresh(now);
    now += INTERVAL;
    int64_t expect[] = {1000,  2000,   4000,   8000,     16000,   32000,
                        64000, 128000, 256000, INTERVAL, INTERVAL};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        ibp__usage_sched_flushed(&s, now, false);
        assert_int_equal(s.flush_backoff_ms, expect[i]);
        assert_false(ibp__usage_sched_flush_due(&s, now + expect[i] - 1));
        assert_true(ibp__usage_sched_flush_due(&s, now + expect[i]));
        now += expect[i];
    }
    ibp__usage_sched_flushed(&s, now, true);
    assert_int_equal(s.flush_backoff_ms, 0);
    assert_int_equal(s.next_flush_ms, now + INTERVAL);
}

static void test_early_flush(void **state)
{
    (void)state;
    int64_t now = T0 + 1000;
    ibp_usage_sched s = fresh(now);
    assert_true(ibp__usage_sched_early_ok(&s, now + 10));
    assert_int_equal(ibp__usage_sched_next_due_ms(&s, now, true, 0), 0);
    /* Once the interval flush is due, no separate early flush. */
    assert_false(ibp__usage_sched_early_ok(&s, now + INTERVAL));
    /* A journal backoff holds the early flush back too. */
    ibp__usage_sched_flushed(&s, now, false);
    assert_false(ibp__usage_sched_early_ok(&s, now + 10));
    assert_int_equal(ibp__usage_sched_next_due_ms(&s, now, true, 0), 1000);
}

static void test_delivery_backoff(void **state)
{
    (void)state;
    int64_t now = T0 + 1000;
    ibp_usage_sched s = fresh(now);
    assert_false(ibp__usage_sched_deliver_due(&s, now, false, 0));
    assert_false(ibp__usage_sched_deliver_due(&s, now, true, 0));
    assert_true(ibp__usage_sched_deliver_due(&s, now, false, 1));
    assert_int_equal(ibp__usage_sched_delivered(&s, now, false), 1000);
    assert_false(ibp__usage_sched_deliver_due(&s, now + 999, false, 1));
    assert_true(ibp__usage_sched_deliver_due(&s, now + 999, true, 1)); /* forced */
    assert_true(ibp__usage_sched_deliver_due(&s, now + 1000, false, 1));
    assert_int_equal(ibp__usage_sched_next_due_ms(&s, now, false, 1), 1000);
    assert_int_equal(ibp__usage_sched_next_due_ms(&s, now, false, 0), INTERVAL);
    assert_int_equal(ibp__usage_sched_delivered(&s, now, false), 2000);
    for (int i = 0; i < 20; i++)
        ibp__usage_sched_delivered(&s, now, false);
    assert_int_equal(s.deliver_backoff_ms, 300000);
    assert_int_equal(ibp__usage_sched_delivered(&s, now, true), 0);
    assert_true(ibp__usage_sched_deliver_due(&s, now, false, 1));
}

static void test_summary_rate(void **state)
{
    (void)state;
    int64_t now = T0;
    ibp_usage_sched s = fresh(now);
    assert_true(ibp__usage_sched_summary_due(&s, now, false)); /* the first goes at once */
    assert_false(ibp__usage_sched_summary_due(&s, now + 59999, false));
    assert_true(ibp__usage_sched_summary_due(&s, now + 59999, true));
    assert_false(ibp__usage_sched_summary_due(&s, now + 60000, false));
    assert_true(ibp__usage_sched_summary_due(&s, now + 59999 + 60000, false));
}

/*
 * Keeps the pure usage cores honest: the scheduler and the aggregator read no
 * clock, do no I/O, take no lock and start no thread.
 */
static void test_sources_are_pure(void **state)
{
    (void)state;
    static const char *const files[] = {
        IBP_SOURCE_DIR "/node/data/usage_flush.c",
        IBP_SOURCE_DIR "/node/data/include/ibp/usage_flush.h",
        IBP_SOURCE_DIR "/node/data/usage_aggregate.c",
        IBP_SOURCE_DIR "/node/data/include/ibp/usage_aggregate.h",
    };
    static const char *const banned[] = {
        "time(",  "clock_gettime", "gettimeofday", "time.h",  "fopen",  "open(", "read(",
        "write(", "pthread",       "IBP_LOG",      "stdio.h", "atomic", "rand(", "getrandom",
    };
    int failures = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char *src = NULL;
        size_t len = 0;
        ibp_err err;
        assert_int_equal(ibp_file_read_all(files[f], 1 << 20, &src, &len, &err), IBP_OK);
        for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++) {
            if (strstr(src, banned[i])) {
                print_error("%s contains '%s'\n", files[f], banned[i]);
                failures++;
            }
        }
        free(src);
    }
    if (failures)
        fail_msg("a pure usage core is not pure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_of),       cmocka_unit_test(test_interval_flush),
        cmocka_unit_test(test_midnight),     cmocka_unit_test(test_journal_backoff),
        cmocka_unit_test(test_early_flush),  cmocka_unit_test(test_delivery_backoff),
        cmocka_unit_test(test_summary_rate), cmocka_unit_test(test_sources_are_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
