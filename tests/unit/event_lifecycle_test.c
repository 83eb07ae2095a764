/* Unit tests: the outage event lifecycle (pure state machine). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/event_lifecycle.h"

#define NONE IBP_EVENT_ACTION_NONE
#define INSERT IBP_EVENT_ACTION_INSERT
#define CLOSE IBP_EVENT_ACTION_CLOSE
#define FLAP IBP_EVENT_ACTION_DELETE_FLAP
#define MIN_DEF IBP_EVENT_MIN_OFFLINE_MS_DEFAULT
#define T0 1700000000000LL

typedef struct step_case {
    const char *name;
    bool open;
    int64_t start_ms;
    bool up;
    int64_t time_ms;
    int64_t min_offline_ms;
    ibp_event_action action;
    int64_t want_start_ms, want_end_ms, want_duration_ms;
    bool want_open;
    int64_t want_next_start_ms;
} step_case;

static const step_case cases[] = {
    /* name, open, start, up, time, min -> action, start, end, duration, next open, next start */
    {"down, nothing open: insert at the record time", false, 0, false, T0, MIN_DEF, INSERT, T0, 0,
     0, true, T0},
    {"down, nothing open, stale start field ignored", false, 12345, false, T0, MIN_DEF, INSERT, T0,
     0, 0, true, T0},
    {"down, nothing open, negative time", false, 0, false, -5, MIN_DEF, INSERT, -5, 0, 0, true, -5},
    {"down, nothing open, min 0", false, 0, false, T0, 0, INSERT, T0, 0, 0, true, T0},
    {"repeated down while open: none, start kept", true, T0, false, T0 + 60000, MIN_DEF, NONE, T0,
     0, 0, true, T0},
    {"down while open, older than the start: none, start kept", true, T0, false, T0 - 60000,
     MIN_DEF, NONE, T0, 0, 0, true, T0},
    {"down while open at the same time: none", true, T0, false, T0, MIN_DEF, NONE, T0, 0, 0, true,
     T0},
    {"up, nothing open: none", false, 0, true, T0, MIN_DEF, NONE, 0, 0, 0, false, 0},
    {"up, nothing open, min 0: none", false, 0, true, T0, 0, NONE, 0, 0, 0, false, 0},
    {"up long after the start: close", true, T0, true, T0 + 3600000, MIN_DEF, CLOSE, T0,
     T0 + 3600000, 3600000, false, 0},
    {"up exactly at start + min: close (>= min closes)", true, T0, true, T0 + MIN_DEF, MIN_DEF,
     CLOSE, T0, T0 + MIN_DEF, MIN_DEF, false, 0},
    {"up 1 ms after start + min: close", true, T0, true, T0 + MIN_DEF + 1, MIN_DEF, CLOSE, T0,
     T0 + MIN_DEF + 1, MIN_DEF + 1, false, 0},
    {"up 1 ms before start + min: flap", true, T0, true, T0 + MIN_DEF - 1, MIN_DEF, FLAP, T0, 0,
     MIN_DEF - 1, false, 0},
    {"up at the start: flap", true, T0, true, T0, MIN_DEF, FLAP, T0, 0, 0, false, 0},
    {"up before the start (clock skew): flap, duration 0", true, T0, true, T0 - 5000, MIN_DEF, FLAP,
     T0, 0, 0, false, 0},
    {"configured min 5 s: up after 5 s closes", true, T0, true, T0 + 5000, 5000, CLOSE, T0,
     T0 + 5000, 5000, false, 0},
    {"configured min 5 s: up after 4.999 s flaps", true, T0, true, T0 + 4999, 5000, FLAP, T0, 0,
     4999, false, 0},
    {"min 1 ms: up at the start flaps", true, T0, true, T0, 1, FLAP, T0, 0, 0, false, 0},
    {"min 0 (never flap): up at the start closes", true, T0, true, T0, 0, CLOSE, T0, T0, 0, false,
     0},
    {"min 0: up 1 ms later closes", true, T0, true, T0 + 1, 0, CLOSE, T0, T0 + 1, 1, false, 0},
    {"min 0: up before the start closes, end clamped to start", true, T0, true, T0 - 5000, 0, CLOSE,
     T0, T0, 0, false, 0},
    {"negative min treated as 0: up at the start closes", true, T0, true, T0, -30000, CLOSE, T0, T0,
     0, false, 0},
    {"INT64_MIN min treated as 0: up before the start closes", true, T0, true, T0 - 1, INT64_MIN,
     CLOSE, T0, T0, 0, false, 0},
    {"INT64_MAX min: up a year later still flaps", true, T0, true, T0 + 31536000000LL, INT64_MAX,
     FLAP, T0, 0, 31536000000LL, false, 0},
    {"extreme times: duration saturates at INT64_MAX and closes", true, INT64_MIN, true, INT64_MAX,
     MIN_DEF, CLOSE, INT64_MIN, INT64_MAX, INT64_MAX, false, 0},
    {"extreme times, INT64_MAX min: saturated duration closes", true, INT64_MIN, true, INT64_MAX,
     INT64_MAX, CLOSE, INT64_MIN, INT64_MAX, INT64_MAX, false, 0},
    {"extreme skew: start INT64_MAX, up at INT64_MIN flaps", true, INT64_MAX, true, INT64_MIN,
     MIN_DEF, FLAP, INT64_MAX, 0, 0, false, 0},
    {"negative times: up after min closes", true, -100000, true, -100000 + MIN_DEF, MIN_DEF, CLOSE,
     -100000, -100000 + MIN_DEF, MIN_DEF, false, 0},
};

/* Checks one field; prints the case name with both sides and counts the failure. */
#define EXPECT_I64(c, field, got, want)                                                            \
    do {                                                                                           \
        if ((int64_t)(got) != (int64_t)(want)) {                                                   \
            print_error("case '%s': %s = %" PRId64 ", want %" PRId64 "\n", (c)->name, field,       \
                        (int64_t)(got), (int64_t)(want));                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void test_step_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const step_case *c = &cases[i];
        ibp_event_open cur = {c->open, c->start_ms};
        ibp_event_status_record rec = {c->up, c->time_ms};
        ibp_event_decision d = ibp_event_lifecycle_step(cur, rec, c->min_offline_ms);
        if (d.action != c->action) {
            print_error("case '%s': action = %s, want %s\n", c->name,
                        ibp_event_lifecycle_action_name(d.action),
                        ibp_event_lifecycle_action_name(c->action));
            failures++;
        }
        EXPECT_I64(c, "start_ms", d.start_ms, c->want_start_ms);
        EXPECT_I64(c, "end_ms", d.end_ms, c->want_end_ms);
        EXPECT_I64(c, "duration_ms", d.duration_ms, c->want_duration_ms);
        EXPECT_I64(c, "next.open", d.next.open, c->want_open);
        EXPECT_I64(c, "next.start_ms", d.next.start_ms, c->want_next_start_ms);
        /* Invariants that hold for every input. */
        if (d.action == CLOSE && d.end_ms < d.start_ms) {
            print_error("case '%s': closed with end %" PRId64 " before start %" PRId64 "\n",
                        c->name, d.end_ms, d.start_ms);
            failures++;
        }
        if (d.duration_ms < 0) {
            print_error("case '%s': negative duration\n", c->name);
            failures++;
        }
    }
    if (failures)
        fail_msg("%d check(s) failed in the step table", failures);
}

/* A sequence of records for one key, fed through step and next: the trace persist would see. */
static void test_sequence_trace(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool up;
        int64_t time_ms;
        ibp_event_action want;
    } seq[] = {
        {"first up: nothing open", true, T0, NONE},
        {"down opens", false, T0 + 1000, INSERT},
        {"down again: already open", false, T0 + 2000, NONE},
        {"up after 10 s: flap deleted", true, T0 + 11000, FLAP},
        {"up again: nothing open", true, T0 + 12000, NONE},
        {"down opens again", false, T0 + 20000, INSERT},
        {"up after 45 s: closed", true, T0 + 65000, CLOSE},
        {"down opens a third time", false, T0 + 70000, INSERT},
        {"up exactly 30 s later: closed", true, T0 + 100000, CLOSE},
    };
    ibp_event_open cur = {0};
    int failures = 0;
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        ibp_event_status_record rec = {seq[i].up, seq[i].time_ms};
        ibp_event_decision d = ibp_event_lifecycle_step(cur, rec, MIN_DEF);
        if (d.action != seq[i].want) {
            print_error("step %zu '%s': action = %s, want %s\n", i, seq[i].name,
                        ibp_event_lifecycle_action_name(d.action),
                        ibp_event_lifecycle_action_name(seq[i].want));
            failures++;
        }
        cur = d.next;
    }
    assert_false(cur.open);
    if (failures)
        fail_msg("%d step(s) of the trace failed", failures);
}

static void test_action_names(void **state)
{
    (void)state;
    assert_string_equal(ibp_event_lifecycle_action_name(NONE), "none");
    assert_string_equal(ibp_event_lifecycle_action_name(INSERT), "insert");
    assert_string_equal(ibp_event_lifecycle_action_name(CLOSE), "close");
    assert_string_equal(ibp_event_lifecycle_action_name(FLAP), "delete_flap");
    assert_string_equal(ibp_event_lifecycle_action_name((ibp_event_action)99), "?");
    assert_int_equal(IBP_EVENT_MIN_OFFLINE_MS_DEFAULT, 30000);
}

/* Keeps the core honest: no clock, I/O, allocation, threads or bus in its source. */
static void test_source_is_pure(void **state)
{
    (void)state;
    static const char *const banned[] = {
        "time(",  "clock_gettime", "gettimeofday", "malloc",  "calloc",  "realloc", "free(",
        "fopen",  "open(",         "read(",        "write(",  "pthread", "IBP_LOG", "stdio.h",
        "nats.h", "jansson.h",     "sodium.h",     "mysql.h", "rand(",
    };
    char *src = NULL;
    size_t len = 0;
    ibp_err err;
    assert_int_equal(
        ibp_file_read_all(IBP_SOURCE_DIR "/persist/event_lifecycle.c", 1 << 20, &src, &len, &err),
        IBP_OK);
    int failures = 0;
    for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++) {
        if (strstr(src, banned[i])) {
            print_error("persist/event_lifecycle.c contains '%s'\n", banned[i]);
            failures++;
        }
    }
    free(src);
    if (failures)
        fail_msg("the event lifecycle core is not pure");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_table),
        cmocka_unit_test(test_sequence_trace),
        cmocka_unit_test(test_action_names),
        cmocka_unit_test(test_source_is_pure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
