/*
 * The streams keep what they promise (ibp_bus_ensure_streams against a
 * private nats-server with authentication):
 *   - created with the defaults: LOCAL 7 days, EVENTS and HITS 400 days,
 *     OFFICIAL the last IBP_BUS_OFFICIAL_KEEP_DEFAULT snapshots with no age
 *     limit, STATUS the last message per subject with no age limit;
 *   - a daemon's settings (update_existing) bring existing streams to new
 *     limits, and a second pass with the same settings changes nothing;
 *   - without update_existing an existing stream is left as it is;
 *   - a storage type that differs is reported with one WARN naming both and
 *     how to switch, never "fixed" by deleting;
 *   - OFFICIAL is in memory by default, with a byte limit; a memory stream
 *     the server has no room for fails naming max_memory_store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/log.h"
#include "ibp/subject.h"
#include "testenv.h"

#define NS_PER_MS INT64_C(1000000)
#define DAY_MS INT64_C(86400000)

typedef struct fixture {
    ibp_testenv_private srv;
    natsConnection *nc;
    jsCtx *js;
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    if (ibp_testenv_private_start(&f.srv) != 0)
        return -1;
    if (ibp_testenv_nats_connect(&f.srv.env, &f.nc) != NATS_OK ||
        natsConnection_JetStream(&f.js, f.nc, NULL) != NATS_OK)
        return -1;
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    jsCtx_Destroy(f->js);
    natsConnection_Destroy(f->nc);
    ibp_testenv_private_stop(&f->srv);
    return 0;
}

/* WARN lines of the bus about a storage that differs, counted by the log
 * hook; the last one kept, and whether one named each stream of OFFICIAL's
 * storage (OFFICIAL and COSIGN). */
static int storage_warnings;
static char storage_warning[2048];
static bool warned_official, warned_cosign;

static void capture_log(ibp_log_level level, const char *component, const char *msg, void *user)
{
    (void)user;
    fprintf(stderr, "%s %s %s\n", ibp_log_level_name(level), component, msg);
    if (level == IBP_LOG_WARN && strcmp(component, "bus") == 0 &&
        strstr(msg, "JetStream cannot change the storage")) {
        storage_warnings++;
        snprintf(storage_warning, sizeof storage_warning, "%s", msg);
        warned_official |= strstr(msg, "nats stream rm " IBP_STREAM_OFFICIAL "`") != NULL;
        warned_cosign |= strstr(msg, "nats stream rm " IBP_STREAM_COSIGN "`") != NULL;
    }
}

static void expect_storage_warning(const char *have, const char *want)
{
    char a[64], b[64];
    printf("  warning: %s\n", storage_warning);
    /* One per stream: OFFICIAL and its statements' stream. */
    assert_int_equal(storage_warnings, 2);
    assert_true(warned_official && warned_cosign);
    snprintf(a, sizeof a, "storage=%s", have);
    snprintf(b, sizeof b, "wanted=%s", want);
    assert_non_null(strstr(storage_warning, a));
    assert_non_null(strstr(storage_warning, b));
    assert_non_null(strstr(storage_warning, "nats.official_memory"));
    storage_warnings = 0;
    storage_warning[0] = '\0';
    warned_official = warned_cosign = false;
}

static jsStreamConfig *info(fixture *f, const char *name, jsStreamInfo **si)
{
    jsErrCode jerr = 0;
    assert_int_equal(js_GetStreamInfo(si, f->js, name, NULL, &jerr), NATS_OK);
    return (*si)->Config;
}

static void expect_limits(fixture *f, const char *name, int64_t age_ms, int64_t per_subject,
                          jsStorageType storage)
{
    jsStreamInfo *si = NULL;
    jsStreamConfig *c = info(f, name, &si);
    printf("  %-8s max_age=%lld ms per_subject=%lld storage=%s\n", name,
           (long long)(c->MaxAge / NS_PER_MS), (long long)c->MaxMsgsPerSubject,
           c->Storage == js_MemoryStorage ? "memory" : "file");
    assert_int_equal(c->MaxAge, age_ms * NS_PER_MS);
    assert_int_equal(c->MaxMsgsPerSubject > 0 ? c->MaxMsgsPerSubject : -1, per_subject);
    assert_int_equal(c->Storage, storage);
    jsStreamInfo_Destroy(si);
}

static void test_defaults_then_settings(void **state)
{
    fixture *f = *state;
    ibp_err err = {0};
    ibp_bus_stream_opts o;
    ibp_bus_stream_opts_init(&o);
    o.streams = IBP_BUS_STREAMS_ALL;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &o, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_LOCAL, 7 * DAY_MS, -1, js_FileStorage);
    /* OFFICIAL in memory by default (docs/operations.md, end-to-end latency). */
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, IBP_BUS_OFFICIAL_KEEP_DEFAULT, js_MemoryStorage);
    expect_limits(f, IBP_STREAM_STATUS, 0, 1, js_FileStorage);
    expect_limits(f, IBP_STREAM_EVENTS, 400 * DAY_MS, -1, js_FileStorage);
    expect_limits(f, IBP_STREAM_HITS, 400 * DAY_MS, -1, js_FileStorage);
    expect_limits(f, IBP_STREAM_CHECKPOINT, 0, 1, js_FileStorage);
    /* The statements on OFFICIAL's storage. */
    expect_limits(f, IBP_STREAM_COSIGN, 0, IBP_BUS_OFFICIAL_KEEP_DEFAULT, js_MemoryStorage);
    jsStreamInfo *si = NULL;
    assert_int_equal(info(f, IBP_STREAM_OFFICIAL, &si)->MaxBytes,
                     IBP_BUS_OFFICIAL_MAX_BYTES_DEFAULT);
    jsStreamInfo_Destroy(si);
    assert_true(info(f, IBP_STREAM_LOCAL, &si)->MaxBytes <= 0);
    jsStreamInfo_Destroy(si);

    /* The same daemon settings again: nothing to say about the storage. */
    ibp_bus_stream_opts same = o;
    same.update_existing = true;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &same, &err), IBP_OK);
    assert_int_equal(storage_warnings, 0);

    /* File storage asked for the existing memory stream: one WARN, left alone. */
    same.official_memory = false;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &same, &err), IBP_OK);
    expect_storage_warning("memory", "file");
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, IBP_BUS_OFFICIAL_KEEP_DEFAULT, js_MemoryStorage);

    /* OFFICIAL on file from here on, as the rest of this test had it. */
    jsErrCode jerr = 0;
    assert_int_equal(js_DeleteStream(f->js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    assert_int_equal(js_DeleteStream(f->js, IBP_STREAM_COSIGN, NULL, &jerr), NATS_OK);
    o.official_memory = false;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &o, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, IBP_BUS_OFFICIAL_KEEP_DEFAULT, js_FileStorage);

    /* Other limits without update_existing: nothing changes. */
    ibp_bus_stream_opts changed = o;
    changed.local_max_age_ms = 2 * DAY_MS;
    changed.events_max_age_ms = 30 * DAY_MS;
    changed.hits_max_age_ms = 90 * DAY_MS;
    changed.official_keep = 16;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &changed, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_LOCAL, 7 * DAY_MS, -1, js_FileStorage);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, IBP_BUS_OFFICIAL_KEEP_DEFAULT, js_FileStorage);

    /* A daemon's settings: applied to the existing streams. */
    changed.update_existing = true;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &changed, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_LOCAL, 2 * DAY_MS, -1, js_FileStorage);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, 16, js_FileStorage);
    expect_limits(f, IBP_STREAM_COSIGN, 0, 16, js_FileStorage);
    expect_limits(f, IBP_STREAM_STATUS, 0, 1, js_FileStorage);
    expect_limits(f, IBP_STREAM_EVENTS, 30 * DAY_MS, -1, js_FileStorage);
    expect_limits(f, IBP_STREAM_HITS, 90 * DAY_MS, -1, js_FileStorage);
    /* Applying them again is a no-op (and not an error). */
    assert_int_equal(ibp_bus_ensure_streams(f->js, &changed, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, 16, js_FileStorage);

    assert_int_equal(storage_warnings, 0);

    /* Memory storage asked for an existing file stream: reported, left alone. */
    changed.official_memory = true;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &changed, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, 16, js_FileStorage);
    expect_storage_warning("file", "memory");
    /* Without update_existing (a replica's own check): nothing said. */
    changed.update_existing = false;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &changed, &err), IBP_OK);
    assert_int_equal(storage_warnings, 0);
    changed.update_existing = true;

    /* The same on a fresh stream: created in memory. */
    assert_int_equal(js_DeleteStream(f->js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    changed.streams = IBP_BUS_STREAM_OFFICIAL;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &changed, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, 16, js_MemoryStorage);
}

/* A memory OFFICIAL larger than the server's max_memory_store: a clear error. */
static void test_official_memory_too_large(void **state)
{
    fixture *f = *state;
    ibp_err err = {0};
    jsErrCode jerr = 0;
    js_DeleteStream(f->js, IBP_STREAM_OFFICIAL, NULL, &jerr);
    ibp_bus_stream_opts o;
    ibp_bus_stream_opts_init(&o);
    o.streams = IBP_BUS_STREAM_OFFICIAL;
    o.official_max_bytes = INT64_C(1) << 40; /* 1 TiB: more than any test server has */
    assert_int_equal(ibp_bus_ensure_streams(f->js, &o, &err), IBP_E_NATS);
    printf("  error: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "OFFICIAL"));
    assert_non_null(strstr(err.msg, "max_memory_store"));
    assert_non_null(strstr(err.msg, "nats.official_max_bytes"));
    assert_non_null(strstr(err.msg, "nats.official_memory=false"));
    /* What the server has room for works. */
    o.official_max_bytes = IBP_BUS_OFFICIAL_MAX_BYTES_DEFAULT;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &o, &err), IBP_OK);
    expect_limits(f, IBP_STREAM_OFFICIAL, 0, IBP_BUS_OFFICIAL_KEEP_DEFAULT, js_MemoryStorage);
}

/* OFFICIAL keeps the last N snapshots however old, and no more. */
static void test_official_keeps_last_n(void **state)
{
    fixture *f = *state;
    ibp_err err = {0};
    jsErrCode jerr = 0;
    js_DeleteStream(f->js, IBP_STREAM_OFFICIAL, NULL, &jerr);
    ibp_bus_stream_opts o;
    ibp_bus_stream_opts_init(&o);
    o.streams = IBP_BUS_STREAM_OFFICIAL;
    o.official_keep = 5;
    assert_int_equal(ibp_bus_ensure_streams(f->js, &o, &err), IBP_OK);
    for (int i = 1; i <= 12; i++) {
        char body[16];
        int n = snprintf(body, sizeof body, "m%d", i);
        jsPubAck *pa = NULL;
        assert_int_equal(js_Publish(&pa, f->js, IBP_SUBJECT_OFFICIAL_SNAPSHOT, body, n, NULL, &jerr),
                         NATS_OK);
        jsPubAck_Destroy(pa);
    }
    jsStreamInfo *si = NULL;
    assert_int_equal(js_GetStreamInfo(&si, f->js, IBP_STREAM_OFFICIAL, NULL, &jerr), NATS_OK);
    assert_int_equal(si->State.Msgs, 5);
    assert_int_equal(si->State.FirstSeq, 8);
    assert_int_equal(si->State.LastSeq, 12);
    jsStreamInfo_Destroy(si);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_then_settings),
        cmocka_unit_test(test_official_keeps_last_n),
        cmocka_unit_test(test_official_memory_too_large),
    };
    ibp_log_set_hook(capture_log, NULL);
    return cmocka_run_group_tests(tests, setup, teardown);
}
