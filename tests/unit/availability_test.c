/* Unit tests: availability over a window from outages (ibp/availability.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/availability.h"

#define H (3600 * 1000LL)
#define DAY (24 * H)

static ibp_outage closed(int64_t s, int64_t e)
{
    ibp_outage o = {s, e, false};
    return o;
}

static ibp_outage open_at(int64_t s)
{
    ibp_outage o = {s, 0, true};
    return o;
}

static ibp_availability run(ibp_outage *o, size_t n, int64_t from, int64_t to)
{
    ibp_availability a;
    memset(&a, 0xff, sizeof a);
    ibp_availability_compute(o, n, from, to, &a);
    return a;
}

static void test_no_outages(void **state)
{
    (void)state;
    ibp_availability a = run(NULL, 0, 0, DAY);
    assert_int_equal(a.window_ms, DAY);
    assert_int_equal(a.downtime_ms, 0);
    assert_int_equal(a.outages, 0);
    assert_true(a.ratio == 1.0);
    /* An empty or inverted window: nothing to judge, fully available. */
    ibp_outage o[] = {closed(0, H)};
    a = run(o, 1, DAY, DAY);
    assert_int_equal(a.window_ms, 0);
    assert_int_equal(a.downtime_ms, 0);
    assert_true(a.ratio == 1.0);
    a = run(o, 1, DAY, 0);
    assert_int_equal(a.window_ms, 0);
    assert_int_equal(a.outages, 0);
}

/* Disjoint outages add up; overlapping and nested ones count once. */
static void test_union(void **state)
{
    (void)state;
    ibp_outage o[] = {
        closed(10 * H, 11 * H),          /* 1 h */
        closed(2 * H, 4 * H),            /* 2 h ... */
        closed(3 * H, 5 * H),            /* ... overlapping: 2-5 = 3 h */
        closed(3 * H + 1, 3 * H + 1000), /* nested in it */
        closed(5 * H, 6 * H),            /* touching at 5 h: 2-6 = 4 h */
        closed(20 * H, 20 * H),          /* 0 ms: not an outage */
        closed(22 * H, 21 * H),          /* end before start: 0 ms */
    };
    ibp_availability a = run(o, sizeof o / sizeof o[0], 0, DAY);
    assert_int_equal(a.downtime_ms, 5 * H);
    assert_int_equal(a.outages, 5);
    assert_int_equal(a.open, 0);
    assert_true(a.ratio > 0.79166 && a.ratio < 0.79167); /* 19 / 24 */
    /* Sorted in place by start. */
    for (size_t i = 1; i < sizeof o / sizeof o[0]; i++)
        assert_true(o[i - 1].start_ms <= o[i].start_ms);
}

/* Outages are clipped to the window: before, after, across either edge. */
static void test_window_edges(void **state)
{
    (void)state;
    int64_t from = DAY, to = 2 * DAY;
    ibp_outage o[] = {
        closed(0, DAY),                       /* ends exactly at the start: 0 ms inside */
        closed(2 * DAY, 3 * DAY),             /* starts exactly at the end: outside */
        closed(DAY - H, DAY + H),             /* across the start: 1 h inside */
        closed(2 * DAY - 2 * H, 2 * DAY + H), /* across the end: 2 h inside */
        closed(0, 10),                        /* long before */
    };
    ibp_availability a = run(o, sizeof o / sizeof o[0], from, to);
    assert_int_equal(a.window_ms, DAY);
    assert_int_equal(a.downtime_ms, 3 * H);
    assert_int_equal(a.outages, 2);
    /* One outage covering the whole window and more: 0 % available. */
    ibp_outage all[] = {closed(0, 3 * DAY)};
    a = run(all, 1, from, to);
    assert_int_equal(a.downtime_ms, DAY);
    assert_true(a.ratio == 0.0);
    /* A window of 1 ms inside an outage. */
    a = run(all, 1, from, from + 1);
    assert_int_equal(a.downtime_ms, 1);
}

/* Open outages run to the end of the window, and still merge with closed ones. */
static void test_open_outages(void **state)
{
    (void)state;
    int64_t from = 0, to = DAY;
    ibp_outage o[] = {open_at(20 * H), closed(19 * H, 21 * H), open_at(22 * H)};
    ibp_availability a = run(o, 3, from, to);
    assert_int_equal(a.downtime_ms, 5 * H); /* 19 h to the end */
    assert_int_equal(a.outages, 3);
    assert_int_equal(a.open, 2);
    /* Open since before the window: all of it is down. */
    ibp_outage b[] = {open_at(-DAY)};
    a = run(b, 1, from, to);
    assert_int_equal(a.downtime_ms, DAY);
    assert_int_equal(a.open, 1);
    /* Opened after the window: nothing. */
    ibp_outage c[] = {open_at(2 * DAY)};
    a = run(c, 1, from, to);
    assert_int_equal(a.downtime_ms, 0);
    assert_int_equal(a.outages, 0);
    /* An open outage opened at the end of the window: 0 ms. */
    ibp_outage d[] = {open_at(to)};
    a = run(d, 1, from, to);
    assert_int_equal(a.outages, 0);
}

static void test_duration(void **state)
{
    (void)state;
    ibp_outage c = closed(1000, 61000), o = open_at(1000), bad = closed(5000, 1000);
    assert_int_equal(ibp_outage_duration_ms(&c, 999999), 60000);
    assert_int_equal(ibp_outage_duration_ms(&o, 31000), 30000);
    assert_int_equal(ibp_outage_duration_ms(&o, 0), 0);
    assert_int_equal(ibp_outage_duration_ms(&bad, 0), 0);
}

/* Many random outages: the union never exceeds the window nor the plain sum,
 * and equals a millisecond-by-millisecond count on a small window. */
static void test_random_against_bitmap(void **state)
{
    (void)state;
    enum { W = 2000, N = 12 };
    unsigned seed = 12345;
    for (int round = 0; round < 500; round++) {
        ibp_outage o[N];
        unsigned char down[W];
        memset(down, 0, sizeof down);
        int64_t sum = 0;
        for (int i = 0; i < N; i++) {
            seed = seed * 1103515245u + 12345u;
            int64_t s = (int64_t)(seed >> 8) % (W + 400) - 200;
            seed = seed * 1103515245u + 12345u;
            int64_t len = (int64_t)(seed >> 8) % 400;
            seed = seed * 1103515245u + 12345u;
            bool is_open = (seed >> 8) % 7 == 0;
            o[i] = is_open ? open_at(s) : closed(s, s + len);
            int64_t e = is_open ? W : s + len;
            for (int64_t t = s < 0 ? 0 : s; t < e && t < W; t++)
                down[t] = 1;
            sum += len;
        }
        ibp_availability a = run(o, N, 0, W);
        int64_t want = 0;
        for (int t = 0; t < W; t++)
            want += down[t];
        if (a.downtime_ms != want)
            fail_msg("round %d: downtime %lld, bitmap %lld", round, (long long)a.downtime_ms,
                     (long long)want);
        assert_true(a.downtime_ms <= W);
        (void)sum;
    }
}

/* The module stays pure: no clock, threads, I/O or servers. */
static void test_purity(void **state)
{
    (void)state;
    FILE *f = fopen(IBP_SOURCE_DIR "/persist/availability.c", "r");
    assert_non_null(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *banned[] = {"time(",   "clock_gettime", "pthread", "nats.h",
                            "mysql.h", "sodium.h",      "fopen",   "printf"};
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++)
        if (strstr(text, banned[i]))
            fail_msg("persist/availability.c uses %s", banned[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_outages),   cmocka_unit_test(test_union),
        cmocka_unit_test(test_window_edges), cmocka_unit_test(test_open_outages),
        cmocka_unit_test(test_duration),     cmocka_unit_test(test_random_against_bitmap),
        cmocka_unit_test(test_purity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
