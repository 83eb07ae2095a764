/* Unit tests: the usage aggregator (record, flush, journal, sink, clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ibp/atomic_file.h"
#include "ibp/log.h"
#include "ibp/usage.h"
#include "test_util.h"

#define MMDB(name) IBP_TEST_MMDB_DIR "/" name
#define FIXTURES IBP_SHARED_DIR "/fixtures/mmdb"
#define DAY_MS IBP_USAGE_DAY_MS
#define T_2024_05_01 INT64_C(1714521600000) /* 2024-05-01T00:00:00Z */
#define HOUR_MS INT64_C(3600000)

/* ---- a sink that remembers every row ----------------------------------------------------------
 */

typedef struct row {
    uint64_t seq;
    char date[11];
    char domain[300], member[300], cc[3], asn[24], net[300], cname[300];
    bool ipv6;
    uint64_t hits;
} row;

typedef struct rec_sink {
    pthread_mutex_t mu;
    row rows[512];
    size_t nrows;
    uint64_t seqs[256]; /* flush_seq of each batch, in delivery order */
    size_t nbatches;
    size_t calls;
    size_t max_len;        /* largest packed batch seen */
    bool fail;             /* refuse every batch */
    const char *check_dir; /* when set: the batch's journal entry must be on disk */
} rec_sink;

static ibp_status rec_deliver(void *ctx, const Ibp__V1__HitBatch *b, const uint8_t *packed,
                              size_t len, ibp_err *err)
{
    rec_sink *r = ctx;
    (void)packed;
    pthread_mutex_lock(&r->mu);
    r->calls++;
    if (len > r->max_len)
        r->max_len = len;
    if (r->check_dir) {
        char path[4300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/usage-journal/%020" PRIu64 ".hits", r->check_dir,
                 b->flush_seq);
        assert_int_equal(stat(path, &sb), 0);
    }
    if (r->fail) {
        pthread_mutex_unlock(&r->mu);
        return ibp_err_set(err, IBP_E_NATS, "test sink is down");
    }
    assert_string_equal(b->node, "dns1");
    assert_true(r->nbatches < 256);
    r->seqs[r->nbatches++] = b->flush_seq;
    for (size_t i = 0; i < b->n_rows; i++) {
        assert_true(r->nrows < 512);
        row *w = &r->rows[r->nrows++];
        const Ibp__V1__HitRow *h = b->rows[i];
        w->seq = b->flush_seq;
        snprintf(w->date, sizeof w->date, "%s", h->date);
        snprintf(w->domain, sizeof w->domain, "%s", h->domain);
        snprintf(w->member, sizeof w->member, "%s", h->member);
        snprintf(w->cc, sizeof w->cc, "%s", h->country_code);
        snprintf(w->asn, sizeof w->asn, "%s", h->asn);
        snprintf(w->net, sizeof w->net, "%s", h->network_name);
        snprintf(w->cname, sizeof w->cname, "%s", h->country_name);
        w->ipv6 = h->ipv6;
        w->hits = h->hits;
        /* Every row of a batch has the batch's date. */
        assert_string_equal(h->date, b->rows[0]->date);
    }
    pthread_mutex_unlock(&r->mu);
    return IBP_OK;
}

static uint64_t total_hits(rec_sink *r)
{
    uint64_t t = 0;
    pthread_mutex_lock(&r->mu);
    for (size_t i = 0; i < r->nrows; i++)
        t += r->rows[i].hits;
    pthread_mutex_unlock(&r->mu);
    return t;
}

/* The row with these strings, or fails the test. */
static const row *find_row(rec_sink *r, const char *date, const char *domain, const char *member,
                           const char *cc, bool ipv6)
{
    for (size_t i = 0; i < r->nrows; i++) {
        const row *w = &r->rows[i];
        if (strcmp(w->date, date) == 0 && strcmp(w->domain, domain) == 0 &&
            strcmp(w->member, member) == 0 && strcmp(w->cc, cc) == 0 && w->ipv6 == ipv6)
            return w;
    }
    fail_msg("no row %s %s %s %s ipv6=%d among %zu rows", date, domain, member, cc, ipv6, r->nrows);
    return NULL;
}

/* ---- fixture -----------------------------------------------------------------------------------
 */

typedef struct fx {
    char *dir;
    ibp_geo *geo;
    rec_sink sink_state;
    ibp_usage_sink sink;
    _Atomic int64_t now;
    ibp_usage_opts opts;
    ibp_usage *u;
} fx;

static int64_t fake_clock(void *user)
{
    return atomic_load(&((fx *)user)->now);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    ibp_geo_opts go;
    ibp_err err;
    f->dir = test_tmpdir();
    ibp_geo_opts_init(&go);
    go.city_db = MMDB("test-city.mmdb");
    go.asn_db = MMDB("test-asn.mmdb");
    if (ibp_geo_open(&go, &f->geo, &err) != IBP_OK)
        fail_msg("geo: %s", err.msg);
    pthread_mutex_init(&f->sink_state.mu, NULL);
    f->sink.deliver = rec_deliver;
    f->sink.ctx = &f->sink_state;
    atomic_init(&f->now, T_2024_05_01 + 10 * HOUR_MS);
    ibp_usage_opts_init(&f->opts);
    f->opts.node_id = "dns1";
    f->opts.work_dir = f->dir;
    f->opts.geo = f->geo;
    f->opts.sink = &f->sink;
    f->opts.clock = fake_clock;
    f->opts.clock_user = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ibp_usage_close(f->u, NULL);
    ibp_geo_close(f->geo);
    pthread_mutex_destroy(&f->sink_state.mu);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static void open_usage(fx *f)
{
    ibp_err err;
    if (ibp_usage_open(&f->opts, &f->u, &err) != IBP_OK)
        fail_msg("usage open: %s", err.msg);
}

static void hit(fx *f, bool ipv6, const char *ip, const char *domain, const char *member, int n)
{
    for (int i = 0; i < n; i++)
        assert_int_equal(ibp_usage_record_dns_hit(f->u, ipv6, ip, domain, member), IBP_OK);
}

static void flush_ok(fx *f)
{
    ibp_err err;
    if (ibp_usage_flush(f->u, &err) != IBP_OK)
        fail_msg("flush: %s", err.msg);
}

static size_t count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *de;
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), sl = strlen(suffix);
        n += l > sl && strcmp(de->d_name + l - sl, suffix) == 0;
    }
    closedir(d);
    return n;
}

/* ---- tests -------------------------------------------------------------------------------------
 */

/* Log capture. */
static char last_log[2048];
static int log_lines;

static void capture_log(ibp_log_level level, const char *component, const char *msg, void *user)
{
    (void)level;
    (void)user;
    snprintf(last_log, sizeof last_log, "%s %s", component, msg);
    log_lines++;
}

static void test_record_and_flush_totals(void **state)
{
    fx *f = *state;
    open_usage(f);
    hit(f, false, "192.0.2.1", "RPC.ibp.network.", "Stake Plus", 3);
    hit(f, false, "192.0.2.9", "rpc.ibp.network", "Stake Plus", 2); /* same network, same row */
    hit(f, true, "2001:db8:1::1", "rpc.ibp.network", "Stake Plus", 1);
    hit(f, false, "198.51.100.7", "rpc.ibp.network", "Stake Plus", 2);
    hit(f, false, "203.0.113.5", "rpc.dotters.network", "Dotters", 4);
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.hits, 12);
    assert_int_equal(st.keys, 4); /* 192.0.2.1 and .9 share their records */
    flush_ok(f);

    rec_sink *r = &f->sink_state;
    assert_int_equal(r->nbatches, 1);
    assert_true(r->seqs[0] >= 1);
    assert_int_equal(r->nrows, 4);
    const row *w = find_row(r, "2024-05-01", "rpc.ibp.network", "Stake Plus", "DE", false);
    assert_int_equal(w->hits, 5);
    assert_string_equal(w->asn, "AS64500");
    assert_string_equal(w->net, "Example Net");
    assert_string_equal(w->cname, "Germany");
    w = find_row(r, "2024-05-01", "rpc.ibp.network", "Stake Plus", "NL", true);
    assert_int_equal(w->hits, 1);
    assert_string_equal(w->asn, "AS64502");
    w = find_row(r, "2024-05-01", "rpc.ibp.network", "Stake Plus", "??", false);
    assert_int_equal(w->hits, 2);
    assert_string_equal(w->cname, "Unknown");
    assert_string_equal(w->asn, "AS64501");
    assert_string_equal(w->net, "");
    w = find_row(r, "2024-05-01", "rpc.dotters.network", "Dotters", "FR", false);
    assert_int_equal(w->hits, 4);
    assert_string_equal(w->cname, "");
    assert_int_equal(total_hits(r), 12);
    /* Rows are sorted: domain first. */
    assert_string_equal(r->rows[0].domain, "rpc.dotters.network");

    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.unjournaled_hits, 0);
    assert_int_equal(st.journal.pending, 0);
    assert_int_equal(st.journal.delivered, 1);
    assert_int_equal(st.flushes, 1);
    /* Nothing new: no batch. */
    flush_ok(f);
    assert_int_equal(r->nbatches, 1);
    /* Counting goes on after a flush, into a new delta. */
    hit(f, false, "192.0.2.1", "rpc.ibp.network", "Stake Plus", 7);
    flush_ok(f);
    assert_int_equal(r->nbatches, 2);
    assert_true(r->seqs[1] > r->seqs[0]);
    assert_int_equal(r->rows[4].hits, 7);
    assert_int_equal(total_hits(r), 19);
}

static void test_member_none_and_bad_ips(void **state)
{
    fx *f = *state;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "", 1);
    hit(f, false, "192.0.2.1", "a.example", NULL, 2);
    hit(f, false, "garbage", "a.example", "M", 1);
    hit(f, false, NULL, "a.example", "M", 1);
    hit(f, false, "", "a.example", "M", 1);
    hit(f, false, "192.0.2.1 ", "a.example", "M", 1);
    hit(f, false, "10.9.9.9", "a.example", "M", 1); /* valid but unknown: same strings */
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.bad_ip_hits, 4);
    assert_int_equal(st.hits, 8);
    /* Logged by the flusher as one summary line, at most once a minute. */
    ibp_log_set_hook(capture_log, NULL);
    ibp_log_set_level(IBP_LOG_WARN);
    log_lines = 0;
    flush_ok(f);
    assert_int_equal(log_lines, 0); /* a flush collects; the tick logs */
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(log_lines, 1);
    assert_non_null(strstr(last_log, "count=4"));
    assert_non_null(strstr(last_log, "example=\"garbage\""));
    hit(f, false, "bad again", "a.example", "M", 1);
    flush_ok(f);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(log_lines, 1);
    atomic_store(&f->now, atomic_load(&f->now) + 60000);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(log_lines, 2);
    assert_non_null(strstr(last_log, "count=1"));
    ibp_log_set_level(IBP_LOG_OFF);
    ibp_log_set_hook(NULL, NULL);
    rec_sink *r = &f->sink_state;
    const row *w = find_row(r, "2024-05-01", "a.example", IBP_USAGE_NO_MEMBER, "DE", false);
    assert_int_equal(w->hits, 3);
    w = find_row(r, "2024-05-01", "a.example", "M", "??", false);
    assert_int_equal(w->hits, 5);
    assert_string_equal(w->cname, "Unknown");
    assert_string_equal(w->asn, "");
    assert_string_equal(w->net, "");
    assert_int_equal(r->nrows, 3);
    assert_int_equal(total_hits(r), 9);
}

static void test_refused_arguments(void **state)
{
    fx *f = *state;
    open_usage(f);
    char longdom[300];
    memset(longdom, 'a', sizeof longdom - 1);
    longdom[sizeof longdom - 1] = '\0';
    assert_int_equal(ibp_usage_record_dns_hit(f->u, false, "192.0.2.1", longdom, "M"), IBP_E_RANGE);
    assert_int_equal(ibp_usage_record_dns_hit(f->u, false, "192.0.2.1", "a.example", longdom),
                     IBP_E_RANGE);
    assert_int_equal(ibp_usage_record_dns_hit(f->u, false, "192.0.2.1", NULL, "M"), IBP_E_INVAL);
    assert_int_equal(ibp_usage_record_dns_hit(NULL, false, "192.0.2.1", "a", "M"), IBP_E_INVAL);
    /* Bytes that are not UTF-8 reach the wire as '?'. */
    hit(f, false, "192.0.2.1", "\xff\xfe.Example", "Caf\xc3\xa9 \xc3", 1);
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.rejected, 2);
    assert_int_equal(st.hits, 1);
    flush_ok(f);
    find_row(&f->sink_state, "2024-05-01", "??.example", "Caf\xc3\xa9 ?", "DE", false);

    ibp_err err;
    assert_int_equal(ibp_usage_flush_date(f->u, "2024-13-01", &err), IBP_E_INVAL);
    assert_int_equal(ibp_usage_flush_date(f->u, "2023-02-29", &err), IBP_E_INVAL);
    assert_int_equal(ibp_usage_flush_date(f->u, NULL, &err), IBP_E_INVAL);
    assert_int_equal(ibp_usage_flush(NULL, &err), IBP_E_INVAL);
}

static void test_bad_options(void **state)
{
    fx *f = *state;
    ibp_usage *u = NULL;
    ibp_err err;
    ibp_usage_opts o = f->opts;
    o.node_id = "no spaces";
    assert_int_equal(ibp_usage_open(&o, &u, &err), IBP_E_INVAL);
    o = f->opts;
    o.sink = NULL;
    assert_int_equal(ibp_usage_open(&o, &u, &err), IBP_E_INVAL);
    o = f->opts;
    o.max_keys = 0;
    assert_int_equal(ibp_usage_open(&o, &u, &err), IBP_E_INVAL);
    o = f->opts;
    o.work_dir = NULL;
    assert_int_equal(ibp_usage_open(&o, &u, &err), IBP_E_INVAL);
    /* A work dir under a regular file: the journal cannot be made. */
    char file[4200], under[4300];
    test_path(file, sizeof file, f->dir, "plain");
    test_write(file, "x", 0644);
    snprintf(under, sizeof under, "%s/work", file);
    o = f->opts;
    o.work_dir = under;
    assert_int_equal(ibp_usage_open(&o, &u, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, under));
    assert_null(u);
    assert_int_equal(ibp_usage_close(NULL, NULL), IBP_OK);
}

static void test_date_is_the_key(void **state)
{
    fx *f = *state;
    open_usage(f);
    atomic_store(&f->now, T_2024_05_01 + 23 * HOUR_MS);
    hit(f, false, "192.0.2.1", "a.example", "M", 2);
    atomic_store(&f->now, T_2024_05_01 + 25 * HOUR_MS);
    hit(f, false, "192.0.2.1", "a.example", "M", 3);
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    /* One batch per date, the old date first. */
    assert_int_equal(r->nbatches, 2);
    assert_true(r->seqs[0] < r->seqs[1]);
    assert_string_equal(r->rows[0].date, "2024-05-01");
    assert_int_equal(r->rows[0].hits, 2);
    assert_int_equal(r->rows[0].seq, r->seqs[0]);
    assert_string_equal(r->rows[1].date, "2024-05-02");
    assert_int_equal(r->rows[1].hits, 3);
}

static void test_midnight_flushes_old_date_first(void **state)
{
    fx *f = *state;
    f->opts.flush_interval_ms = 5 * 60 * 1000;
    atomic_store(&f->now, T_2024_05_01 + DAY_MS - 10000); /* 23:59:50 */
    open_usage(f);
    rec_sink *r = &f->sink_state;
    hit(f, false, "192.0.2.1", "a.example", "M", 3);
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_OK);
    assert_int_equal(r->nbatches, 0);
    assert_int_equal(ibp_usage_next_due_ms(f->u), 10000); /* midnight comes first */
    /* Just after midnight a thread already counts for the new day. */
    atomic_store(&f->now, T_2024_05_01 + DAY_MS + 500);
    hit(f, false, "192.0.2.1", "a.example", "M", 2);
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_OK);
    assert_int_equal(r->nbatches, 1);
    assert_int_equal(r->nrows, 1);
    assert_string_equal(r->rows[0].date, "2024-05-01");
    assert_int_equal(r->rows[0].hits, 3);
    /* The new day waits for the interval. */
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.unjournaled_hits, 2);
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_OK);
    assert_int_equal(r->nbatches, 1);
    int64_t due = ibp_usage_next_due_ms(f->u);
    assert_true(due > 0 && due <= 5 * 60 * 1000);
    atomic_store(&f->now, T_2024_05_01 + DAY_MS + 500 + due);
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_OK);
    assert_int_equal(r->nbatches, 2);
    assert_string_equal(r->rows[1].date, "2024-05-02");
    assert_int_equal(r->rows[1].hits, 2);
    assert_true(r->seqs[1] > r->seqs[0]);
}

static void test_periodic_flush(void **state)
{
    fx *f = *state;
    f->opts.flush_interval_ms = 1000;
    open_usage(f);
    rec_sink *r = &f->sink_state;
    int64_t t0 = atomic_load(&f->now);
    hit(f, false, "192.0.2.1", "a.example", "M", 1);
    atomic_store(&f->now, t0 + 999);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->nbatches, 0);
    assert_int_equal(ibp_usage_next_due_ms(f->u), 1);
    atomic_store(&f->now, t0 + 1000);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->nbatches, 1);
    hit(f, false, "192.0.2.1", "a.example", "M", 1);
    atomic_store(&f->now, t0 + 1500);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->nbatches, 1);
    atomic_store(&f->now, t0 + 2000);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->nbatches, 2);
    assert_int_equal(total_hits(r), 2);
}

static void test_flush_one_date_on_demand(void **state)
{
    fx *f = *state;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 4); /* 2024-05-01 */
    atomic_store(&f->now, T_2024_05_01 + 30 * HOUR_MS);
    hit(f, false, "192.0.2.1", "a.example", "M", 6); /* 2024-05-02 */
    ibp_err err;
    assert_int_equal(ibp_usage_flush_date(f->u, "2024-05-02", &err), IBP_OK);
    rec_sink *r = &f->sink_state;
    assert_int_equal(r->nbatches, 1);
    assert_string_equal(r->rows[0].date, "2024-05-02");
    assert_int_equal(r->rows[0].hits, 6);
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.unjournaled_hits, 4); /* the other date stays counted */
    assert_int_equal(ibp_usage_flush_date(f->u, "2024-04-30", &err), IBP_OK);
    assert_int_equal(r->nbatches, 1);
    assert_int_equal(ibp_usage_flush_date(f->u, "2024-05-01", &err), IBP_OK);
    assert_int_equal(r->nbatches, 2);
    assert_string_equal(r->rows[1].date, "2024-05-01");
    assert_int_equal(r->rows[1].hits, 4);
}

static void test_no_geo(void **state)
{
    fx *f = *state;
    f->opts.geo = NULL;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 2);
    hit(f, true, "2001:db8:1::1", "a.example", "M", 1);
    hit(f, false, "bad", "a.example", "M", 1);
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    assert_int_equal(r->nrows, 2);
    const row *w = find_row(r, "2024-05-01", "a.example", "M", "??", false);
    assert_int_equal(w->hits, 3);
    assert_string_equal(w->cname, "Unknown");
    assert_string_equal(w->asn, "");
    w = find_row(r, "2024-05-01", "a.example", "M", "??", true);
    assert_int_equal(w->hits, 1);
    ibp_usage_close(f->u, NULL);
    f->u = NULL;

    /* A geo opened with no database behaves the same. */
    ibp_geo_opts go;
    ibp_geo *none = NULL;
    ibp_geo_opts_init(&go);
    assert_int_equal(ibp_geo_open(&go, &none, NULL), IBP_OK);
    f->opts.geo = none;
    open_usage(f);
    hit(f, false, "192.0.2.1", "b.example", "M", 1);
    flush_ok(f);
    w = find_row(r, "2024-05-01", "b.example", "M", "??", false);
    assert_int_equal(w->hits, 1);
    ibp_usage_close(f->u, NULL);
    f->u = NULL;
    ibp_geo_close(none);
}

static void test_key_cap_counts_into_overflow(void **state)
{
    fx *f = *state;
    f->opts.max_keys = 4;
    open_usage(f);
    char dom[32];
    for (int i = 0; i < 10; i++) {
        snprintf(dom, sizeof dom, "d%d.example", i);
        hit(f, false, "192.0.2.1", dom, "M", i + 1);
    }
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.hits, 55);
    assert_int_equal(st.keys, 10); /* 4 keys + 6 overflow keys */
    assert_int_equal(st.overflow_hits, 5 + 6 + 7 + 8 + 9 + 10);
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    assert_int_equal(total_hits(r), 55);
    for (int i = 0; i < 10; i++) {
        snprintf(dom, sizeof dom, "d%d.example", i);
        const row *w = find_row(r, "2024-05-01", dom, "M", i < 4 ? "DE" : "??", false);
        assert_int_equal(w->hits, (uint64_t)i + 1);
        if (i >= 4) {
            assert_string_equal(w->cname, "Unknown");
            assert_string_equal(w->asn, "");
            assert_string_equal(w->net, "");
        }
    }
    /* After a flush the keys are free again. */
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.keys, 0);
    hit(f, false, "192.0.2.1", "d9.example", "M", 1);
    flush_ok(f);
    assert_string_equal(r->rows[r->nrows - 1].cc, "DE");
}

static void test_key_cap_last_resort(void **state)
{
    fx *f = *state;
    f->opts.max_keys = 1; /* overflow keys: 1/16 + 64 = 64 more */
    open_usage(f);
    char dom[32];
    for (int i = 0; i < 100; i++) {
        snprintf(dom, sizeof dom, "d%d.example", i);
        hit(f, i % 2, "192.0.2.1", dom, "M", 1);
    }
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.hits, 100);
    assert_int_equal(st.overflow_hits, 99);
    assert_true(st.keys <= 1 + 64 + 2);
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    assert_int_equal(total_hits(r), 100);
    const row *a = find_row(r, "2024-05-01", IBP_USAGE_OVERFLOW, IBP_USAGE_OVERFLOW, "??", false);
    const row *b = find_row(r, "2024-05-01", IBP_USAGE_OVERFLOW, IBP_USAGE_OVERFLOW, "??", true);
    assert_int_equal(a->hits + b->hits, 100 - 1 - 64);
}

static void test_rows_per_batch(void **state)
{
    fx *f = *state;
    f->opts.max_rows_per_batch = 3;
    open_usage(f);
    char dom[32];
    for (int i = 0; i < 7; i++) {
        snprintf(dom, sizeof dom, "d%d.example", i);
        hit(f, false, "192.0.2.1", dom, "M", 1);
    }
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    assert_int_equal(r->nbatches, 3);
    assert_true(r->seqs[0] < r->seqs[1] && r->seqs[1] < r->seqs[2]);
    assert_int_equal(r->nrows, 7);
    assert_int_equal(r->rows[6].seq, r->seqs[2]);
    assert_string_equal(r->rows[0].domain, "d0.example");
    assert_string_equal(r->rows[6].domain, "d6.example");
}

static void test_batch_bytes_limit(void **state)
{
    fx *f = *state;
    f->opts.max_batch_bytes = 4096;
    open_usage(f);
    char dom[256];
    for (int i = 0; i < 40; i++) {
        memset(dom, 'a' + i % 26, 200);
        snprintf(dom + 200, sizeof dom - 200, ".d%d.example", i);
        hit(f, false, "192.0.2.1", dom, "M", 1);
    }
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    assert_int_equal(total_hits(r), 40);
    assert_int_equal(r->nrows, 40);
    assert_true(r->nbatches >= 40 * 250 / 4096);
    assert_true(r->max_len <= 4096);
    print_message("%zu batches, largest %zu bytes\n", r->nbatches, r->max_len);
}

static void test_journaled_before_forgotten(void **state)
{
    fx *f = *state;
    rec_sink *r = &f->sink_state;
    r->check_dir = f->dir; /* the sink sees each batch already on disk */
    r->fail = true;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 5);
    flush_ok(f); /* journaled: OK even though the sink refused */
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.unjournaled_hits, 0);
    assert_int_equal(st.journal.pending, 1);
    assert_int_equal(st.journal.deliver_errors, 1);
    char jdir[4200];
    test_path(jdir, sizeof jdir, f->dir, "usage-journal");
    assert_int_equal(count_files(jdir, ".hits"), 1);
    /* The entry holds the counts. */
    DIR *d = opendir(jdir);
    struct dirent *de;
    char path[4600], *data = NULL;
    size_t len = 0;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, ".hits"))
            assert_true(snprintf(path, sizeof path, "%s/%s", jdir, de->d_name) > 0);
    closedir(d);
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &data, &len, NULL), IBP_OK);
    Ibp__V1__HitBatch *b = ibp__v1__hit_batch__unpack(NULL, len - 16, (uint8_t *)data + 16);
    assert_non_null(b);
    assert_int_equal(b->n_rows, 1);
    assert_int_equal(b->rows[0]->hits, 5);
    ibp__v1__hit_batch__free_unpacked(b, NULL);
    free(data);
    /* When the sink is back, the batch goes out once and leaves the journal. */
    r->fail = false;
    ibp_err err;
    assert_int_equal(ibp_usage_deliver(f->u, &err), IBP_OK);
    assert_int_equal(r->nbatches, 1);
    assert_int_equal(total_hits(r), 5);
    assert_int_equal(count_files(jdir, ".hits"), 0);
    assert_int_equal(ibp_usage_deliver(f->u, &err), IBP_OK);
    assert_int_equal(r->nbatches, 1);
}

static void test_journal_failure_puts_counts_back(void **state)
{
    fx *f = *state;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 5);
    hit(f, true, "2001:db8:1::1", "a.example", "M", 1);
    /* The journal directory becomes a regular file: writes fail, even as root. */
    char jdir[4200];
    test_path(jdir, sizeof jdir, f->dir, "usage-journal");
    assert_int_equal(rmdir(jdir), 0);
    test_write(jdir, "in the way\n", 0644);
    ibp_err err;
    assert_int_equal(ibp_usage_flush(f->u, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, jdir));
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.unjournaled_hits, 6);
    assert_int_equal(st.flush_errors, 1);
    assert_int_equal(f->sink_state.calls, 0);
    /* The tick retries (with a backoff) and fails again; counting goes on meanwhile. */
    hit(f, false, "192.0.2.1", "a.example", "M", 2);
    atomic_store(&f->now, atomic_load(&f->now) + 10 * 60 * 1000);
    assert_int_equal(ibp_usage_tick(f->u, &err), IBP_E_IO);
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.unjournaled_hits, 8);
    /* Back to normal: everything goes out, exactly once, aggregated. */
    unlink(jdir);
    assert_int_equal(mkdir(jdir, 0700), 0);
    int64_t due = ibp_usage_next_due_ms(f->u);
    assert_true(due > 0 && due <= 2000); /* retry backoff, not the 5-minute interval */
    atomic_store(&f->now, atomic_load(&f->now) + due);
    assert_int_equal(ibp_usage_tick(f->u, &err), IBP_OK);
    rec_sink *r = &f->sink_state;
    assert_int_equal(total_hits(r), 8);
    assert_int_equal(find_row(r, "2024-05-01", "a.example", "M", "DE", false)->hits, 7);
    assert_int_equal(find_row(r, "2024-05-01", "a.example", "M", "NL", true)->hits, 1);
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.unjournaled_hits, 0);
    flush_ok(f);
    assert_int_equal(total_hits(r), 8);
}

static void test_delivery_retry_backoff(void **state)
{
    fx *f = *state;
    f->opts.retry_min_ms = 1000;
    f->opts.retry_max_ms = 4000;
    rec_sink *r = &f->sink_state;
    r->fail = true;
    open_usage(f);
    int64_t t = atomic_load(&f->now);
    hit(f, false, "192.0.2.1", "a.example", "M", 1);
    flush_ok(f); /* tries once: refused, backoff 1 s */
    assert_int_equal(r->calls, 1);
    atomic_store(&f->now, t + 999);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->calls, 1);
    atomic_store(&f->now, t + 1000);
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_E_NATS);
    assert_int_equal(r->calls, 2); /* next: 2 s */
    atomic_store(&f->now, t + 2999);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->calls, 2);
    atomic_store(&f->now, t + 3000);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->calls, 3); /* next: 4 s (the maximum) */
    atomic_store(&f->now, t + 7000);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->calls, 4);
    atomic_store(&f->now, t + 11000);
    r->fail = false;
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_OK);
    assert_int_equal(r->nbatches, 1);
    assert_int_equal(total_hits(r), 1);
}

static void test_crash_resends_in_order_exactly_once(void **state)
{
    fx *f = *state;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child counts, journals two deltas its sink never confirms, counts
         * some more and dies without closing anything. */
        f->sink_state.fail = true;
        ibp_usage *u = NULL;
        if (ibp_usage_open(&f->opts, &u, NULL) != IBP_OK)
            _exit(2);
        for (int i = 0; i < 3; i++)
            ibp_usage_record_dns_hit(u, false, "192.0.2.1", "a.example", "M");
        if (ibp_usage_flush(u, NULL) != IBP_OK)
            _exit(3);
        for (int i = 0; i < 4; i++)
            ibp_usage_record_dns_hit(u, true, "2001:db8:1::1", "b.example", "M");
        if (ibp_usage_flush(u, NULL) != IBP_OK)
            _exit(4);
        ibp_usage_record_dns_hit(u, false, "192.0.2.1", "lost.example", "M");
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    open_usage(f);
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.journal.pending, 2);
    rec_sink *r = &f->sink_state;
    assert_int_equal(r->calls, 0);
    assert_int_equal(ibp_usage_tick(f->u, NULL), IBP_OK); /* the first tick resends */
    assert_int_equal(r->nbatches, 2);
    assert_true(r->seqs[0] < r->seqs[1]);
    assert_string_equal(r->rows[0].domain, "a.example");
    assert_int_equal(r->rows[0].hits, 3);
    assert_string_equal(r->rows[1].domain, "b.example");
    assert_int_equal(r->rows[1].hits, 4);
    /* New deltas are numbered above the resent ones. */
    hit(f, false, "192.0.2.1", "c.example", "M", 1);
    flush_ok(f);
    assert_int_equal(r->nbatches, 3);
    assert_true(r->seqs[2] > r->seqs[1]);
    ibp_usage_close(f->u, NULL);
    f->u = NULL;
    /* Confirmed entries are gone: a restart sends nothing again. */
    open_usage(f);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(r->nbatches, 3);
    assert_int_equal(total_hits(r), 8);
}

static void test_close_flushes(void **state)
{
    fx *f = *state;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 9);
    assert_int_equal(ibp_usage_close(f->u, NULL), IBP_OK);
    f->u = NULL;
    assert_int_equal(total_hits(&f->sink_state), 9);
    /* And with the sink down, the delta waits in the journal for the next run. */
    f->sink_state.fail = true;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 4);
    assert_int_equal(ibp_usage_close(f->u, NULL), IBP_OK);
    f->u = NULL;
    f->sink_state.fail = false;
    open_usage(f);
    ibp_usage_tick(f->u, NULL);
    assert_int_equal(total_hits(&f->sink_state), 13);
}

typedef struct thr_arg {
    fx *f;
    int n;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    for (int i = 0; i < a->n; i++)
        ibp_usage_record_dns_hit(a->f->u, false, "192.0.2.1", "a.example", "M");
    return NULL;
}

static void test_threads_share_rows(void **state)
{
    fx *f = *state;
    open_usage(f);
    pthread_t t[4];
    thr_arg a = {f, 1000};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thr_main, &a);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    ibp_usage_stats st;
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.keys, 4); /* one per thread's shard */
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    assert_int_equal(r->nrows, 1);
    assert_int_equal(r->rows[0].hits, 4000);
    /* The exited threads' shards were freed by that flush; their counts stay in the stats. */
    ibp_usage_stats_get(f->u, &st);
    assert_int_equal(st.hits, 4000);
}

static void test_background_thread(void **state)
{
    fx *f = *state;
    f->opts.clock = NULL; /* the real clock */
    f->opts.background = true;
    f->opts.tick_ms = 5;
    f->opts.flush_interval_ms = 20;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 3);
    for (int i = 0; i < 1000 && total_hits(&f->sink_state) < 3; i++) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(total_hits(&f->sink_state), 3);
    hit(f, false, "192.0.2.1", "a.example", "M", 2);
    assert_int_equal(ibp_usage_close(f->u, NULL), IBP_OK);
    f->u = NULL;
    assert_int_equal(total_hits(&f->sink_state), 5);
}

static void test_file_sink_end_to_end(void **state)
{
    fx *f = *state;
    char sdir[4200];
    test_path(sdir, sizeof sdir, f->dir, "sink");
    ibp_usage_sink fs;
    assert_int_equal(ibp_usage_file_sink_open(sdir, &fs, NULL), IBP_OK);
    f->opts.sink = &fs;
    open_usage(f);
    hit(f, false, "192.0.2.1", "a.example", "M", 2);
    flush_ok(f);
    atomic_store(&f->now, atomic_load(&f->now) + DAY_MS);
    hit(f, false, "192.0.2.1", "a.example", "M", 3);
    assert_int_equal(ibp_usage_close(f->u, NULL), IBP_OK);
    f->u = NULL;
    ibp_usage_sink_close(&fs);
    assert_int_equal(count_files(sdir, ".hitbatch"), 2);
}

static void test_with_maxmind_fixtures(void **state)
{
    fx *f = *state;
    struct stat sb;
    if (stat(FIXTURES "/GeoIP2-City-Test.mmdb", &sb) != 0) {
        print_message("no fixtures at %s\n", FIXTURES);
        skip();
    }
    ibp_geo_opts go;
    ibp_geo *g = NULL;
    ibp_geo_opts_init(&go);
    go.city_db = FIXTURES "/GeoIP2-City-Test.mmdb";
    go.asn_db = FIXTURES "/GeoLite2-ASN-Test.mmdb";
    assert_int_equal(ibp_geo_open(&go, &g, NULL), IBP_OK);
    f->opts.geo = g;
    open_usage(f);
    hit(f, false, "81.2.69.142", "rpc.ibp.network", "M", 2);
    hit(f, true, "2001:218::", "rpc.ibp.network", "M", 1);
    hit(f, false, "1.128.0.0", "rpc.ibp.network", "M", 1);
    flush_ok(f);
    rec_sink *r = &f->sink_state;
    const row *w = find_row(r, "2024-05-01", "rpc.ibp.network", "M", "GB", false);
    assert_int_equal(w->hits, 2);
    assert_string_equal(w->cname, "United Kingdom");
    w = find_row(r, "2024-05-01", "rpc.ibp.network", "M", "JP", true);
    assert_int_equal(w->hits, 1);
    w = find_row(r, "2024-05-01", "rpc.ibp.network", "M", "??", false);
    assert_string_equal(w->asn, "AS1221");
    assert_string_equal(w->net, "Telstra Pty Ltd");
    ibp_usage_close(f->u, NULL);
    f->u = NULL;
    ibp_geo_close(g);
}

static void test_dates(void **state)
{
    (void)state;
    char buf[11];
    int64_t d = 0;
    ibp_usage_format_date(0, buf);
    assert_string_equal(buf, "1970-01-01");
    ibp_usage_format_date(T_2024_05_01 / DAY_MS, buf);
    assert_string_equal(buf, "2024-05-01");
    assert_int_equal(ibp_usage_parse_date("2024-05-01", &d), 0);
    assert_int_equal(d, T_2024_05_01 / DAY_MS);
    assert_int_equal(ibp_usage_parse_date("2024-02-29", &d), 0);
    ibp_usage_format_date(d, buf);
    assert_string_equal(buf, "2024-02-29");
    assert_int_equal(ibp_usage_parse_date("2000-02-29", &d), 0);
    assert_int_equal(ibp_usage_parse_date("1900-02-29", &d), -1);
    assert_int_equal(ibp_usage_parse_date("2024-5-01", &d), -1);
    assert_int_equal(ibp_usage_parse_date("2024-05-32", &d), -1);
    assert_int_equal(ibp_usage_parse_date("2024-04-31", &d), -1);
    assert_int_equal(ibp_usage_parse_date("2024-05-01x", &d), -1);
    for (int64_t day = 0; day < 40000; day += 17) {
        ibp_usage_format_date(day, buf);
        assert_int_equal(ibp_usage_parse_date(buf, &d), 0);
        assert_int_equal(d, day);
    }
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_OFF);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_record_and_flush_totals),
        T(test_member_none_and_bad_ips),
        T(test_refused_arguments),
        T(test_bad_options),
        T(test_date_is_the_key),
        T(test_midnight_flushes_old_date_first),
        T(test_periodic_flush),
        T(test_flush_one_date_on_demand),
        T(test_no_geo),
        T(test_key_cap_counts_into_overflow),
        T(test_key_cap_last_resort),
        T(test_rows_per_batch),
        T(test_batch_bytes_limit),
        T(test_journaled_before_forgotten),
        T(test_journal_failure_puts_counts_back),
        T(test_delivery_retry_backoff),
        T(test_crash_resends_in_order_exactly_once),
        T(test_close_flushes),
        T(test_threads_share_rows),
        T(test_background_thread),
        T(test_file_sink_end_to_end),
        T(test_with_maxmind_fixtures),
        cmocka_unit_test(test_dates),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
