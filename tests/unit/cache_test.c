/* Unit tests: cache files of the result stores. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/cache.h"
#include "ibp/log.h"
#include "test_util.h"

#define T0 1700000000000LL

/* ---- helpers ---------------------------------------------------------------------------- */

/* Captures log lines so the tests stay quiet and can check the WARN lines. */
static struct {
    int warns;
    char last[1024];
} logcap;

static void capture_log(ibp_log_level level, const char *component, const char *msg, void *user)
{
    (void)user;
    if (level == IBP_LOG_WARN && strcmp(component, "cache") == 0)
        logcap.warns++;
    snprintf(logcap.last, sizeof logcap.last, "%s", msg);
}

static int setup(void **state)
{
    (void)state;
    memset(&logcap, 0, sizeof logcap);
    ibp_log_set_hook(capture_log, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ibp_log_set_hook(NULL, NULL);
    return 0;
}

/* snprintf that fails the test instead of truncating. */
__attribute__((format(printf, 3, 4))) static void fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(buf, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        fail_msg("path does not fit in %zu bytes", cap);
}

static ibp_result *mk(ibp_check_type type, const char *check, const char *member,
                      const char *domain, const char *endpoint, bool ipv6, bool up, int64_t t,
                      const char *error, const char *data)
{
    ibp_result_key k = {type, check, member, domain, endpoint, ipv6};
    ibp_result *r = NULL;
    ibp_err err;
    ibp_status st = ibp_result_new(&k, up, t, error, data, &r, &err);
    if (st != IBP_OK)
        fail_msg("ibp_result_new: %s", err.msg);
    return r;
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* Compares two data texts as JSON ("" on both sides counts as equal). */
static bool data_equal(const char *a, const char *b)
{
    if (!*a || !*b)
        return !*a && !*b;
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    bool eq = ja && jb && json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return eq;
}

static void assert_result_equal(const ibp_result *a, const ibp_result *b)
{
    ibp_result_key ka = ibp_result_key_of(a), kb = ibp_result_key_of(b);
    if (ibp_result_key_cmp(&ka, &kb) != 0 || a->up != b->up ||
        a->check_time_ms != b->check_time_ms || strcmp(a->error, b->error) != 0 ||
        !data_equal(a->data_json, b->data_json))
        fail_msg("results differ:\n  %s/%s/%s/%s/%s ipv6=%d up=%d t=%lld error='%s' data=%s\n"
                 "  %s/%s/%s/%s/%s ipv6=%d up=%d t=%lld error='%s' data=%s",
                 ibp_check_type_name(a->type), a->check_name, a->member, a->domain, a->endpoint,
                 a->ipv6, a->up, (long long)a->check_time_ms, a->error, a->data_json,
                 ibp_check_type_name(b->type), b->check_name, b->member, b->domain, b->endpoint,
                 b->ipv6, b->up, (long long)b->check_time_ms, b->error, b->data_json);
}

static int cmp_results(const void *a, const void *b)
{
    ibp_result_key ka = ibp_result_key_of(*(ibp_result *const *)a);
    ibp_result_key kb = ibp_result_key_of(*(ibp_result *const *)b);
    return ibp_result_key_cmp(&ka, &kb);
}

/* A set of results covering every check type, both families, unicode, errors and data. */
typedef struct fixture {
    ibp_result *r[12];
    size_t n;
    ibp_cache_override ov[3];
    size_t nov;
} fixture;

static void fixture_make(fixture *f)
{
    memset(f, 0, sizeof *f);
    f->r[f->n++] =
        mk(IBP_CHECK_SITE, "ping", "Stake Plus", NULL, NULL, false, true, T0, NULL, NULL);
    f->r[f->n++] = mk(IBP_CHECK_SITE, "ping", "Stake Plus", NULL, NULL, true, false, T0 + 1,
                      "network unreachable", NULL);
    f->r[f->n++] = mk(IBP_CHECK_DOMAIN, "ssl", "Rotkö Networks", "rpc.ibp.network", NULL, false,
                      false, T0 + 2, "certificate expires in 3 days: \"rpc\" \\ tab\there\nline",
                      "{\"expires_ms\":1700000000000,\"issuer\":\"Let's Encrypt\"}");
    f->r[f->n++] = mk(IBP_CHECK_DOMAIN, "ssl", "Rotkö Networks", "rpc.ibp.network", NULL, true,
                      true, T0 + 3, NULL, "{}");
    f->r[f->n++] = mk(IBP_CHECK_ENDPOINT, "wss", "日本ノード", "sys.dotters.network",
                      "wss://sys.dotters.network/polkadot", false, true, -5, "",
                      "{\"latency_ms\":12.5,\"peers\":[1,2,3],\"nested\":{\"ok\":true,"
                      "\"note\":\"ünïcødé ✓ 🚀\",\"null\":null}}");
    f->r[f->n++] = mk(IBP_CHECK_ENDPOINT, "wss", "日本ノード", "sys.dotters.network",
                      "wss://sys.dotters.network/polkadot", true, false, INT64_MAX,
                      "connect: Connection refused 🚫", NULL);
    f->r[f->n++] = mk(IBP_CHECK_ENDPOINT, "rpc", "m1", "dot-rpc.example.", "https://x/?a=1&b=\"2\"",
                      false, false, INT64_MIN, "HTTP 502", "{\"status\":502}");
    f->ov[f->nov++] = (ibp_cache_override){"m1", true, "maintenance window ✓", T0 + 10};
    f->ov[f->nov++] = (ibp_cache_override){"Stake Plus", false, NULL, T0 + 11};
    f->ov[f->nov++] = (ibp_cache_override){"日本ノード", true, "", -1};
}

static void fixture_free(fixture *f)
{
    for (size_t i = 0; i < f->n; i++)
        ibp_result_free(f->r[i]);
}

static ibp_cache_contents fixture_contents(const fixture *f, ibp_cache_kind kind)
{
    ibp_cache_contents c = {0};
    c.kind = kind;
    c.saved_at_ms = T0 + 100;
    c.has_epoch = kind == IBP_CACHE_OFFICIAL;
    c.epoch = 42;
    c.results = (const ibp_result *const *)f->r;
    c.result_count = f->n;
    c.overrides = f->ov;
    c.override_count = f->nov;
    return c;
}

/* Checks that a loaded cache holds exactly the fixture. */
static void assert_fixture_loaded(const fixture *f, const ibp_cache_loaded *l)
{
    assert_int_equal(l->outcome, IBP_CACHE_LOADED);
    assert_int_equal(l->results.count, f->n);
    ibp_result *sorted[12];
    memcpy(sorted, f->r, f->n * sizeof sorted[0]);
    qsort(sorted, f->n, sizeof sorted[0], cmp_results);
    for (size_t i = 0; i < f->n; i++)
        assert_result_equal(l->results.items[i], sorted[i]);
    assert_int_equal(l->override_count, f->nov);
    for (size_t i = 0; i < f->nov; i++) {
        const ibp_cache_override *want = NULL;
        for (size_t j = 0; j < f->nov; j++)
            if (strcmp(f->ov[j].member, l->overrides[i].member) == 0)
                want = &f->ov[j];
        assert_non_null(want);
        assert_int_equal(l->overrides[i].disabled, want->disabled);
        assert_string_equal(l->overrides[i].reason, want->reason ? want->reason : "");
        assert_int_equal(l->overrides[i].time_ms, want->time_ms);
        if (i > 0)
            assert_true(strcmp(l->overrides[i - 1].member, l->overrides[i].member) < 0);
    }
}

/* Counts the entries of dir whose names match the moved-aside pattern for base. */
static int count_corrupt(const char *dir, const char *base, char *last, size_t cap)
{
    char pattern[512];
    regex_t re;
    int n = 0;
    snprintf(pattern, sizeof pattern, "^%s\\.corrupt-[0-9]{8}T[0-9]{6}Z(\\.[0-9]+)?$", base);
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (regexec(&re, e->d_name, 0, NULL, 0) == 0) {
            n++;
            if (last)
                snprintf(last, cap, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    regfree(&re);
    return n;
}

/* Loads path (which must be rejected) and checks it was moved aside; cleans up after. */
static bool load_expect_discarded(const char *path, ibp_cache_kind kind, const char *name)
{
    ibp_cache_loaded l;
    ibp_err err;
    ibp_status st = ibp_cache_load(path, kind, &l, &err);
    if (st != IBP_OK) {
        print_error("case '%s': load returned %s: %s\n", name, ibp_status_name(st), err.msg);
        return false;
    }
    bool ok = true;
    if (l.outcome != IBP_CACHE_DISCARDED) {
        print_error("case '%s': outcome %s, want discarded\n", name,
                    ibp_cache_outcome_name(l.outcome));
        ok = false;
    } else {
        if (!l.reason[0] || !l.moved_to[0] || exists(path) || !exists(l.moved_to) ||
            l.results.count || l.override_count) {
            print_error("case '%s': reason='%s' moved_to='%s' original %s\n", name, l.reason,
                        l.moved_to, exists(path) ? "still there" : "gone");
            ok = false;
        }
        unlink(l.moved_to);
    }
    ibp_cache_loaded_free(&l);
    return ok;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_paths_and_names(void **state)
{
    (void)state;
    char buf[IBP_CACHE_PATH_MAX], small[16];
    ibp_err err;
    assert_int_equal(ibp_cache_path("/var/lib/ibp", IBP_CACHE_OFFICIAL, buf, sizeof buf, &err),
                     IBP_OK);
    assert_string_equal(buf, "/var/lib/ibp/tmp/official.cache.json");
    assert_int_equal(ibp_cache_path("w", IBP_CACHE_LOCAL, buf, sizeof buf, &err), IBP_OK);
    assert_string_equal(buf, "w/tmp/local.cache.json");
    assert_int_equal(ibp_cache_path("/var/lib/ibp", IBP_CACHE_LOCAL, small, sizeof small, &err),
                     IBP_E_RANGE);
    assert_non_null(strstr(err.msg, "/var/lib/ibp"));
    assert_int_equal(ibp_cache_path("", IBP_CACHE_LOCAL, buf, sizeof buf, &err), IBP_E_INVAL);
    assert_int_equal(ibp_cache_path(NULL, IBP_CACHE_LOCAL, buf, sizeof buf, &err), IBP_E_INVAL);
    assert_int_equal(ibp_cache_path("w", (ibp_cache_kind)7, buf, sizeof buf, &err), IBP_E_INVAL);
    assert_string_equal(ibp_cache_kind_name(IBP_CACHE_OFFICIAL), "official");
    assert_string_equal(ibp_cache_kind_name(IBP_CACHE_LOCAL), "local");
    assert_string_equal(ibp_cache_kind_name((ibp_cache_kind)0), "?");
    assert_string_equal(ibp_cache_outcome_name(IBP_CACHE_LOADED), "loaded");
    assert_string_equal(ibp_cache_outcome_name(IBP_CACHE_MISSING), "missing");
    assert_string_equal(ibp_cache_outcome_name(IBP_CACHE_DISCARDED), "discarded");
    assert_string_equal(ibp_cache_outcome_name((ibp_cache_outcome)9), "?");
}

static void test_round_trip(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[IBP_CACHE_PATH_MAX], tmpdir[IBP_CACHE_PATH_MAX];
    fixture f;
    ibp_err err;
    ibp_cache_loaded l;
    struct stat sb;
    fixture_make(&f);

    for (int k = IBP_CACHE_OFFICIAL; k <= IBP_CACHE_LOCAL; k++) {
        ibp_cache_kind kind = (ibp_cache_kind)k;
        ibp_cache_contents c = fixture_contents(&f, kind);
        assert_int_equal(ibp_cache_path(dir, kind, path, sizeof path, &err), IBP_OK);
        assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
        /* tmp/ is created private, the file is 0600. */
        test_path(tmpdir, sizeof tmpdir, dir, IBP_CACHE_DIR);
        assert_int_equal(stat(tmpdir, &sb), 0);
        assert_true(S_ISDIR(sb.st_mode));
        assert_int_equal(sb.st_mode & 07777, 0700);
        assert_int_equal(stat(path, &sb), 0);
        assert_int_equal(sb.st_mode & 07777, 0600);

        assert_int_equal(ibp_cache_load(path, kind, &l, &err), IBP_OK);
        assert_fixture_loaded(&f, &l);
        assert_int_equal(l.kind, kind);
        assert_int_equal(l.saved_at_ms, T0 + 100);
        assert_int_equal(l.has_epoch, kind == IBP_CACHE_OFFICIAL);
        assert_int_equal(l.epoch, kind == IBP_CACHE_OFFICIAL ? 42 : 0);
        assert_string_equal(l.reason, "");
        assert_string_equal(l.moved_to, "");
        /* A caller may take results out of the list. */
        ibp_result *taken = l.results.items[0];
        l.results.items[0] = NULL;
        ibp_result_free(taken);
        ibp_cache_loaded_free(&l);
        assert_int_equal(l.results.count, 0);
        ibp_cache_loaded_free(&l); /* twice is harmless */
    }
    ibp_cache_loaded_free(NULL);
    assert_int_equal(logcap.warns, 0);
    fixture_free(&f);
    test_rmdir(dir);
}

/* Equal contents in any order give byte-identical files; saved_at_ms 0 means now. */
static void test_deterministic_output(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char p1[4200], p2[4200];
    char *a = NULL, *b = NULL;
    size_t alen, blen;
    fixture f;
    ibp_err err;
    fixture_make(&f);
    test_path(p1, sizeof p1, dir, "a.json");
    test_path(p2, sizeof p2, dir, "b.json");
    ibp_cache_contents c = fixture_contents(&f, IBP_CACHE_OFFICIAL);
    assert_int_equal(ibp_cache_save(p1, &c, &err), IBP_OK);
    /* Reverse both arrays. */
    for (size_t i = 0; i < f.n / 2; i++) {
        ibp_result *t = f.r[i];
        f.r[i] = f.r[f.n - 1 - i];
        f.r[f.n - 1 - i] = t;
    }
    ibp_cache_override t = f.ov[0];
    f.ov[0] = f.ov[2];
    f.ov[2] = t;
    assert_int_equal(ibp_cache_save(p2, &c, &err), IBP_OK);
    assert_int_equal(ibp_file_read_all(p1, 1 << 20, &a, &alen, &err), IBP_OK);
    assert_int_equal(ibp_file_read_all(p2, 1 << 20, &b, &blen, &err), IBP_OK);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    /* One entry per line: header, "results":[, results, ], "overrides":[, overrides, ]}. */
    size_t lines = 0;
    for (size_t i = 0; i < alen; i++)
        lines += a[i] == '\n';
    assert_int_equal(lines, 2 + f.n + 2 + f.nov + 1);
    free(a);
    free(b);

    c.saved_at_ms = 0;
    int64_t before = (int64_t)time(NULL) * 1000;
    assert_int_equal(ibp_cache_save(p1, &c, &err), IBP_OK);
    ibp_cache_loaded l;
    assert_int_equal(ibp_cache_load(p1, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_true(l.saved_at_ms >= before && l.saved_at_ms <= before + 60000);
    ibp_cache_loaded_free(&l);
    fixture_free(&f);
    test_rmdir(dir);
}

static void test_empty_contents_and_missing_file(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err;
    ibp_cache_loaded l;
    test_path(path, sizeof path, dir, "local.cache.json");
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_MISSING);
    assert_int_equal(l.results.count, 0);
    assert_null(l.results.items);
    assert_int_equal(l.override_count, 0);
    assert_false(exists(path));
    ibp_cache_loaded_free(&l);

    ibp_cache_contents c = {.kind = IBP_CACHE_LOCAL, .saved_at_ms = 5};
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    assert_int_equal(l.results.count, 0);
    assert_int_equal(l.override_count, 0);
    assert_int_equal(l.saved_at_ms, 5);
    assert_false(l.has_epoch);
    ibp_cache_loaded_free(&l);
    assert_int_equal(logcap.warns, 0);
    test_rmdir(dir);
}

/* A rejected file moves to <name>.corrupt-<UTC stamp>, keeps its bytes, and is logged. */
static void test_corrupt_file_moved_aside(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200], moved[4200];
    ibp_err err;
    ibp_cache_loaded l;
    char *text = NULL;
    test_path(path, sizeof path, dir, "official.cache.json");
    test_write(path, "{\"format\":\"ibp-results-cache\",", 0600);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_int_equal(l.results.count, 0);
    assert_non_null(strstr(l.reason, "does not parse"));
    assert_false(exists(path));
    assert_int_equal(count_corrupt(dir, "official\\.cache\\.json", moved, sizeof moved), 1);
    assert_string_equal(moved, l.moved_to);
    assert_int_equal(ibp_file_read_all(moved, 1024, &text, NULL, &err), IBP_OK);
    assert_string_equal(text, "{\"format\":\"ibp-results-cache\",");
    free(text);
    assert_int_equal(logcap.warns, 1);
    assert_non_null(strstr(logcap.last, path));
    assert_non_null(strstr(logcap.last, "does not parse"));
    assert_non_null(strstr(logcap.last, l.moved_to));
    ibp_cache_loaded_free(&l);

    /* A second reject (likely in the same second) keeps the first one's evidence. */
    test_write(path, "garbage", 0600);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_int_equal(count_corrupt(dir, "official\\.cache\\.json", NULL, 0), 2);
    assert_false(exists(path));
    ibp_cache_loaded_free(&l);

    /* After a reject, the next save and load work normally. */
    ibp_cache_contents c = {.kind = IBP_CACHE_OFFICIAL, .saved_at_ms = 1};
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    ibp_cache_loaded_free(&l);
    test_rmdir(dir);
}

/* If the file cannot be renamed, it is logged and left; the load still starts empty. */
static void test_move_aside_fails(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200], name[4200];
    ibp_err err;
    ibp_cache_loaded l;
    test_path(path, sizeof path, dir, "official.cache.json");
    test_write(path, "not json", 0600);
    /* Occupy every candidate name with a non-empty directory so rename fails. */
    time_t now = time(NULL);
    for (int d = 0; d <= 2; d++) {
        char stamp[32];
        struct tm tm;
        time_t t = now + d;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        fmt(name, sizeof name, "%s.corrupt-%s", path, stamp);
        assert_int_equal(mkdir(name, 0700), 0);
        for (int i = 1; i < 1000; i++) {
            fmt(name, sizeof name, "%s.corrupt-%s.%d", path, stamp, i);
            assert_int_equal(mkdir(name, 0700), 0);
        }
    }
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_string_equal(l.moved_to, "");
    assert_true(exists(path));
    assert_int_equal(logcap.warns, 1);
    assert_non_null(strstr(logcap.last, "could not move"));
    assert_non_null(strstr(logcap.last, path));
    ibp_cache_loaded_free(&l);
    test_rmdir(dir);
}

static void test_empty_and_garbage_files(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
    } cases[] = {
#define C(name, lit) {name, lit, sizeof(lit) - 1}
        C("empty file", ""),
        C("one newline", "\n"),
        C("null", "null"),
        C("array", "[]"),
        C("number", "42"),
        C("string", "\"ibp-results-cache\""),
        C("empty object", "{}"),
        C("binary", "\xff\xfe\x00\x01\x02\x80\x90"),
        C("NUL byte inside",
          "{\"format\":\"ibp-results-cache\"\0,\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[],\"overrides\":[]}"),
        C("trailing garbage",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[],\"overrides\":[]} xyz"),
        C("two documents", "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
                           "\"saved_at_ms\":1,\"results\":[],\"overrides\":[]}{}"),
        C("invalid UTF-8 in a string",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\xff\","
          "\"ipv6\":false,\"up\":true,\"check_time_ms\":1}],\"overrides\":[]}"),
        C("escaped NUL in a string",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[{\"type\":\"site\",\"check\":\"p\\u0000x\","
          "\"member\":\"m\",\"ipv6\":false,\"up\":true,\"check_time_ms\":1}],\"overrides\":[]}"),
        C("integer overflow",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":9223372036854775808,\"results\":[],\"overrides\":[]}"),
        C("lone surrogate escape",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[{\"type\":\"site\",\"check\":\"\\ud800\","
          "\"member\":\"m\",\"ipv6\":false,\"up\":true,\"check_time_ms\":1}],\"overrides\":[]}"),
        C("duplicate top-level member",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"kind\":\"official\",\"saved_at_ms\":1,\"results\":[],\"overrides\":[]}"),
        C("duplicate member inside a result",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\","
          "\"ipv6\":false,\"up\":true,\"up\":false,\"check_time_ms\":1}],\"overrides\":[]}"),
        C("duplicate member inside data",
          "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
          "\"saved_at_ms\":1,\"results\":[{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\","
          "\"ipv6\":false,\"up\":true,\"check_time_ms\":1,\"data\":{\"a\":1,\"a\":2}}],"
          "\"overrides\":[]}"),
#undef C
    };
    char *dir = test_tmpdir();
    char path[4200];
    int failures = 0;
    test_path(path, sizeof path, dir, "official.cache.json");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_bytes(path, cases[i].bytes, cases[i].len);
        failures += !load_expect_discarded(path, IBP_CACHE_OFFICIAL, cases[i].name);
    }
    /* Deep nesting must not exhaust the stack. */
    size_t depth = 100000;
    char *deep = malloc(2 * depth);
    assert_non_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    write_bytes(path, deep, 2 * depth);
    free(deep);
    failures += !load_expect_discarded(path, IBP_CACHE_OFFICIAL, "deep nesting");
    /* Random bytes, seeded so a failure can be replayed. */
    srand(12345);
    for (int round = 0; round < 200; round++) {
        unsigned char buf[512];
        size_t len = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rand();
        if (len > 0)
            buf[0] = (unsigned char)"{[\"x\xff"[round % 5];
        write_bytes(path, buf, len);
        char name[64];
        snprintf(name, sizeof name, "random bytes round %d", round);
        failures += !load_expect_discarded(path, IBP_CACHE_OFFICIAL, name);
    }
    if (failures)
        fail_msg("%d garbage case(s) failed", failures);
    test_rmdir(dir);
}

/* A file over the size limit is rejected without being read (a sparse file here). */
static void test_too_large(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    test_path(path, sizeof path, dir, "local.cache.json");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)IBP_CACHE_MAX_BYTES + 1), 0);
    close(fd);
    ibp_cache_loaded l;
    ibp_err err;
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_non_null(strstr(l.reason, "larger than"));
    assert_false(exists(path));
    ibp_cache_loaded_free(&l);
    test_rmdir(dir);
}

/* Every prefix of a valid file: never a crash; either loaded in full or moved aside. */
static void test_truncated_at_every_length(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200], full[4200];
    char *text = NULL;
    size_t len = 0;
    fixture f;
    ibp_err err;
    fixture_make(&f);
    test_path(full, sizeof full, dir, "full.json");
    test_path(path, sizeof path, dir, "official.cache.json");
    ibp_cache_contents c = fixture_contents(&f, IBP_CACHE_OFFICIAL);
    assert_int_equal(ibp_cache_save(full, &c, &err), IBP_OK);
    assert_int_equal(ibp_file_read_all(full, 1 << 20, &text, &len, &err), IBP_OK);
    size_t loaded = 0, discarded = 0;
    for (size_t n = 0; n < len; n++) {
        ibp_cache_loaded l;
        write_bytes(path, text, n);
        assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
        if (l.outcome == IBP_CACHE_LOADED) {
            /* Only the final newline may be missing for a prefix to be whole. */
            assert_true(n >= len - 1);
            assert_fixture_loaded(&f, &l);
            loaded++;
        } else {
            if (l.outcome != IBP_CACHE_DISCARDED || exists(path) || !exists(l.moved_to))
                fail_msg("prefix of %zu bytes: outcome %s moved_to '%s'", n,
                         ibp_cache_outcome_name(l.outcome), l.moved_to);
            unlink(l.moved_to);
            discarded++;
        }
        ibp_cache_loaded_free(&l);
    }
    assert_int_equal(loaded, 1);
    assert_int_equal(discarded, len - 1);
    free(text);
    fixture_free(&f);
    test_rmdir(dir);
}

/*
 * Valid JSON of the wrong shape: a good file with one field changed. Each
 * case names the object (top, r0 site, r1 domain, r2 endpoint, o0 override),
 * the member and its new value as JSON text (NULL: removed).
 */
typedef struct shape_case {
    const char *obj;
    const char *key;
    const char *value;
} shape_case;

static const shape_case bad_shapes[] = {
    {"top", "format", NULL},
    {"top", "format", "1"},
    {"top", "format", "null"},
    {"top", "format", "\"ibp-results-cache2\""},
    {"top", "format", "\"\""},
    {"top", "version", NULL},
    {"top", "version", "\"1\""},
    {"top", "version", "1.0"},
    {"top", "version", "true"},
    {"top", "version", "0"},
    {"top", "version", "2"},
    {"top", "version", "-1"},
    {"top", "kind", NULL},
    {"top", "kind", "\"local\""},
    {"top", "kind", "\"Official\""},
    {"top", "kind", "3"},
    {"top", "kind", "[]"},
    {"top", "saved_at_ms", NULL},
    {"top", "saved_at_ms", "\"1700000000000\""},
    {"top", "saved_at_ms", "1.5"},
    {"top", "saved_at_ms", "false"},
    {"top", "epoch", "\"4\""},
    {"top", "epoch", "-1"},
    {"top", "epoch", "4.5"},
    {"top", "epoch", "null"},
    {"top", "results", NULL},
    {"top", "results", "{}"},
    {"top", "results", "null"},
    {"top", "results", "\"x\""},
    {"top", "results", "[1]"},
    {"top", "results", "[null]"},
    {"top", "results", "[[]]"},
    {"top", "overrides", NULL},
    {"top", "overrides", "{}"},
    {"top", "overrides", "null"},
    {"top", "overrides", "[\"m1\"]"},
    {"top", "overrides", "[{}]"},
    {"r0", "type", NULL},
    {"r0", "type", "\"SITE\""},
    {"r0", "type", "\"\""},
    {"r0", "type", "\"dns\""},
    {"r0", "type", "1"},
    {"r0", "check", NULL},
    {"r0", "check", "\"\""},
    {"r0", "check", "1"},
    {"r0", "check", "null"},
    {"r0", "member", NULL},
    {"r0", "member", "\"\""},
    {"r0", "member", "[]"},
    {"r0", "domain", "\"example.com\""},
    {"r0", "domain", "5"},
    {"r0", "domain", "null"},
    {"r0", "endpoint", "\"wss://x\""},
    {"r0", "endpoint", "false"},
    {"r0", "ipv6", NULL},
    {"r0", "ipv6", "\"true\""},
    {"r0", "ipv6", "1"},
    {"r0", "ipv6", "null"},
    {"r0", "up", NULL},
    {"r0", "up", "0"},
    {"r0", "up", "\"up\""},
    {"r0", "check_time_ms", NULL},
    {"r0", "check_time_ms", "\"1\""},
    {"r0", "check_time_ms", "1.5"},
    {"r0", "check_time_ms", "1e30"},
    {"r0", "check_time_ms", "true"},
    {"r0", "error", "5"},
    {"r0", "error", "{}"},
    {"r0", "error", "null"},
    {"r0", "data", "[]"},
    {"r0", "data", "\"{}\""},
    {"r0", "data", "1"},
    {"r0", "data", "null"},
    {"r0", "data", "true"},
    {"r1", "domain", NULL},
    {"r1", "domain", "\"\""},
    {"r1", "endpoint", "\"wss://x\""},
    {"r2", "endpoint", NULL},
    {"r2", "endpoint", "\"\""},
    {"r2", "domain", "\"\""},
    {"o0", "member", NULL},
    {"o0", "member", "\"\""},
    {"o0", "member", "1"},
    {"o0", "disabled", NULL},
    {"o0", "disabled", "\"true\""},
    {"o0", "disabled", "1"},
    {"o0", "reason", "5"},
    {"o0", "reason", "null"},
    {"o0", "time_ms", NULL},
    {"o0", "time_ms", "\"5\""},
    {"o0", "time_ms", "2.5"},
};

/* Changes that are still valid: unknown members, optional fields left out, long texts cut. */
static const shape_case good_shapes[] = {
    {"top", "comment", "\"written by hand\""},
    {"top", "epoch", NULL},
    {"top", "epoch", "0"},
    {"r0", "extra", "{\"x\":[1,2]}"},
    {"r0", "domain", NULL},
    {"r0", "endpoint", NULL},
    {"r0", "error", NULL},
    {"r0", "data", NULL},
    {"r0", "data", "{}"},
    {"o0", "reason", NULL},
    {"o0", "extra", "7"},
};

static json_t *shape_target(json_t *root, const char *obj)
{
    if (strcmp(obj, "top") == 0)
        return root;
    if (obj[0] == 'r')
        return json_array_get(json_object_get(root, "results"), (size_t)(obj[1] - '0'));
    return json_array_get(json_object_get(root, "overrides"), (size_t)(obj[1] - '0'));
}

/* Writes the base document with one change applied. */
static void write_shape(const char *path, const shape_case *sc)
{
    static const char base[] =
        "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
        "\"saved_at_ms\":1700000000000,\"epoch\":3,\"results\":["
        "{\"type\":\"site\",\"check\":\"ping\",\"member\":\"m1\",\"domain\":\"\","
        "\"endpoint\":\"\",\"ipv6\":false,\"up\":true,\"check_time_ms\":1,\"error\":\"\","
        "\"data\":{\"a\":1}},"
        "{\"type\":\"domain\",\"check\":\"ssl\",\"member\":\"m1\",\"domain\":\"d.example\","
        "\"endpoint\":\"\",\"ipv6\":true,\"up\":false,\"check_time_ms\":2,\"error\":\"x\"},"
        "{\"type\":\"endpoint\",\"check\":\"wss\",\"member\":\"m2\",\"domain\":\"d.example\","
        "\"endpoint\":\"wss://d.example/x\",\"ipv6\":false,\"up\":true,\"check_time_ms\":3}],"
        "\"overrides\":[{\"member\":\"m1\",\"disabled\":true,\"reason\":\"r\",\"time_ms\":4}]}";
    json_t *root = json_loads(base, 0, NULL);
    assert_non_null(root);
    json_t *target = shape_target(root, sc->obj);
    assert_non_null(target);
    if (sc->value) {
        json_t *v = json_loads(sc->value, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        assert_int_equal(json_object_set_new(target, sc->key, v), 0);
    } else {
        json_object_del(target, sc->key);
    }
    assert_int_equal(json_dump_file(root, path, JSON_COMPACT), 0);
    json_decref(root);
}

static void test_wrong_shapes(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200], name[256];
    int failures = 0;
    test_path(path, sizeof path, dir, "official.cache.json");
    for (size_t i = 0; i < sizeof bad_shapes / sizeof bad_shapes[0]; i++) {
        const shape_case *sc = &bad_shapes[i];
        snprintf(name, sizeof name, "%s.%s = %s", sc->obj, sc->key,
                 sc->value ? sc->value : "(removed)");
        write_shape(path, sc);
        failures += !load_expect_discarded(path, IBP_CACHE_OFFICIAL, name);
    }
    for (size_t i = 0; i < sizeof good_shapes / sizeof good_shapes[0]; i++) {
        const shape_case *sc = &good_shapes[i];
        ibp_cache_loaded l;
        ibp_err err;
        write_shape(path, sc);
        assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
        if (l.outcome != IBP_CACHE_LOADED || l.results.count != 3 || l.override_count != 1) {
            print_error("case '%s.%s = %s': outcome %s (%s), want loaded\n", sc->obj, sc->key,
                        sc->value ? sc->value : "(removed)", ibp_cache_outcome_name(l.outcome),
                        l.reason);
            failures++;
            if (l.moved_to[0])
                unlink(l.moved_to);
        }
        ibp_cache_loaded_free(&l);
    }
    if (failures)
        fail_msg("%d shape case(s) failed", failures);
    test_rmdir(dir);
}

/* Version, kind and epoch rules, and what the reason says. */
static void test_version_kind_epoch(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err;
    ibp_cache_loaded l;
    fixture f;
    fixture_make(&f);
    test_path(path, sizeof path, dir, "cache.json");

    /* A local cache loaded as official (and the other way round) is the wrong kind. */
    ibp_cache_contents c = fixture_contents(&f, IBP_CACHE_LOCAL);
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_non_null(strstr(l.reason, "kind"));
    unlink(l.moved_to);
    ibp_cache_loaded_free(&l);
    c = fixture_contents(&f, IBP_CACHE_OFFICIAL);
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    unlink(l.moved_to);
    ibp_cache_loaded_free(&l);

    /* A newer version is not guessed at. */
    test_write(path,
               "{\"format\":\"ibp-results-cache\",\"version\":2,\"kind\":\"local\","
               "\"saved_at_ms\":1,\"results\":[],\"overrides\":[]}",
               0600);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_non_null(strstr(l.reason, "version 2"));
    unlink(l.moved_to);
    ibp_cache_loaded_free(&l);

    /* An epoch never belongs in a local cache. */
    test_write(path,
               "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"local\","
               "\"saved_at_ms\":1,\"epoch\":3,\"results\":[],\"overrides\":[]}",
               0600);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    unlink(l.moved_to);
    ibp_cache_loaded_free(&l);

    /* The largest epoch round-trips. */
    c.epoch = (uint64_t)INT64_MAX;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    assert_true(l.has_epoch);
    assert_true(l.epoch == (uint64_t)INT64_MAX);
    ibp_cache_loaded_free(&l);
    fixture_free(&f);
    test_rmdir(dir);
}

/* Duplicate keys are rejected, on load (file moved aside) and on save (IBP_E_INVAL). */
static void test_duplicate_keys(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err;
    ibp_cache_loaded l;
    char *before = NULL, *after = NULL;
    int failures = 0;
    test_path(path, sizeof path, dir, "local.cache.json");
    static const struct {
        const char *name;
        const char *text;
        bool ok;
    } cases[] = {
        {"same result key twice (status differs)",
         "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"local\",\"saved_at_ms\":1,"
         "\"results\":[{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\",\"ipv6\":false,"
         "\"up\":true,\"check_time_ms\":1},{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\","
         "\"ipv6\":false,\"up\":false,\"check_time_ms\":2}],\"overrides\":[]}",
         false},
        {"same override member twice",
         "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"local\",\"saved_at_ms\":1,"
         "\"results\":[],\"overrides\":[{\"member\":\"m\",\"disabled\":true,\"time_ms\":1},"
         "{\"member\":\"m\",\"disabled\":false,\"time_ms\":2}]}",
         false},
        {"same key but ipv4 and ipv6: distinct",
         "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"local\",\"saved_at_ms\":1,"
         "\"results\":[{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\",\"ipv6\":false,"
         "\"up\":true,\"check_time_ms\":1},{\"type\":\"site\",\"check\":\"p\",\"member\":\"m\","
         "\"ipv6\":true,\"up\":false,\"check_time_ms\":2}],\"overrides\":[]}",
         true},
        {"members differing only in case: distinct",
         "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"local\",\"saved_at_ms\":1,"
         "\"results\":[],\"overrides\":[{\"member\":\"m\",\"disabled\":true,\"time_ms\":1},"
         "{\"member\":\"M\",\"disabled\":false,\"time_ms\":2}]}",
         true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        test_write(path, cases[i].text, 0600);
        if (!cases[i].ok) {
            failures += !load_expect_discarded(path, IBP_CACHE_LOCAL, cases[i].name);
            continue;
        }
        assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
        if (l.outcome != IBP_CACHE_LOADED) {
            print_error("case '%s': %s (%s)\n", cases[i].name, ibp_cache_outcome_name(l.outcome),
                        l.reason);
            failures++;
        }
        ibp_cache_loaded_free(&l);
    }
    if (failures)
        fail_msg("%d duplicate case(s) failed", failures);

    /* Saving duplicates is refused and leaves the existing file as it was. */
    ibp_result *a = mk(IBP_CHECK_SITE, "p", "m", NULL, NULL, false, true, 1, NULL, NULL);
    ibp_result *b = mk(IBP_CHECK_SITE, "p", "m", NULL, NULL, false, false, 2, "x", NULL);
    const ibp_result *rs[] = {a, b};
    ibp_cache_override ovs[] = {{"m", true, "x", 1}, {"m", false, "y", 2}};
    ibp_cache_contents c = {.kind = IBP_CACHE_LOCAL, .saved_at_ms = 1};
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &before, NULL, &err), IBP_OK);
    c.results = rs;
    c.result_count = 2;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "twice"));
    c.result_count = 1;
    c.overrides = ovs;
    c.override_count = 2;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &after, NULL, &err), IBP_OK);
    assert_string_equal(before, after);
    free(before);
    free(after);
    ibp_result_free(a);
    ibp_result_free(b);
    test_rmdir(dir);
}

/* Entries that break the rules of ibp_result_new: the file is rejected as a whole. */
static void test_entry_validation(void **state)
{
    (void)state;
    char long_name[IBP_NAME_MAX + 2], long_domain[IBP_DOMAIN_MAX + 3];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    memset(long_domain, 'd', sizeof long_domain - 1);
    long_domain[sizeof long_domain - 1] = '\0';
    char *dir = test_tmpdir();
    char path[4200];
    int failures = 0;
    test_path(path, sizeof path, dir, "official.cache.json");
    const shape_case cases[] = {
        {"r0", "check", NULL},
        {"r0", "member", NULL},
        {"r1", "domain", NULL},
    };
    const char *values[] = {"check", "member", "domain"};
    for (size_t i = 0; i < 3; i++) {
        char json[600];
        snprintf(json, sizeof json, "\"%s\"", i == 2 ? long_domain : long_name);
        shape_case sc = {cases[i].obj, cases[i].key, json};
        write_shape(path, &sc);
        char name[64];
        snprintf(name, sizeof name, "%s over its cap", values[i]);
        failures += !load_expect_discarded(path, IBP_CACHE_OFFICIAL, name);
    }
    /* Data over IBP_DATA_MAX. */
    size_t big = IBP_DATA_MAX + 100;
    char *data = malloc(big + 16);
    assert_non_null(data);
    strcpy(data, "{\"x\":\"");
    memset(data + 6, 'y', big);
    strcpy(data + 6 + big, "\"}");
    shape_case sc = {"r0", "data", data};
    write_shape(path, &sc);
    failures += !load_expect_discarded(path, IBP_CACHE_OFFICIAL, "data over its cap");
    free(data);
    if (failures)
        fail_msg("%d validation case(s) failed", failures);

    /* Error texts and reasons over IBP_ERROR_MAX are cut, as ibp_result_new does, not refused. */
    char *error = malloc(IBP_ERROR_MAX + 200);
    assert_non_null(error);
    error[0] = '"';
    memset(error + 1, 'e', IBP_ERROR_MAX + 100);
    strcpy(error + 1 + IBP_ERROR_MAX + 100, "\"");
    sc = (shape_case){"r0", "error", error};
    write_shape(path, &sc);
    ibp_cache_loaded l;
    ibp_err err;
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    for (size_t i = 0; i < l.results.count; i++)
        if (l.results.items[i]->type == IBP_CHECK_SITE)
            assert_int_equal(strlen(l.results.items[i]->error), IBP_ERROR_MAX);
    ibp_cache_loaded_free(&l);
    sc = (shape_case){"o0", "reason", error};
    write_shape(path, &sc);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    assert_int_equal(strlen(l.overrides[0].reason), IBP_ERROR_MAX);
    ibp_cache_loaded_free(&l);
    free(error);
    test_rmdir(dir);
}

/* Text that is not UTF-8: error texts are repaired, bad keys skipped, a bad member refused. */
static void test_non_utf8_on_save(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err;
    ibp_cache_loaded l;
    test_path(path, sizeof path, dir, "local.cache.json");
    /* An error text cut by ibp_result_new in the middle of a two-byte character. */
    char *cut = malloc(IBP_ERROR_MAX + 16);
    assert_non_null(cut);
    cut[0] = 'a';
    for (size_t i = 1; i + 1 < IBP_ERROR_MAX + 10; i += 2)
        memcpy(cut + i, "\xc3\xa9", 2);
    cut[IBP_ERROR_MAX + 9] = '\0';
    ibp_result *rs[] = {
        mk(IBP_CHECK_SITE, "p", "good", NULL, NULL, false, false, 1, "bad \xff\xfe byte \xc3",
           NULL),
        mk(IBP_CHECK_SITE, "p", "bad\xff member", NULL, NULL, false, true, 1, NULL, NULL),
        mk(IBP_CHECK_SITE, "p", "cut", NULL, NULL, false, true, 1, cut, NULL),
    };
    free(cut);
    ibp_cache_override ov = {"m", true, "reason \xed\xa0\x80 surrogate", 3};
    ibp_cache_contents c = {.kind = IBP_CACHE_LOCAL,
                            .saved_at_ms = 1,
                            .results = (const ibp_result *const *)rs,
                            .result_count = 3,
                            .overrides = &ov,
                            .override_count = 1};
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    assert_int_equal(logcap.warns, 1);
    assert_non_null(strstr(logcap.last, "skipped=1"));
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    assert_int_equal(l.results.count, 2);
    assert_string_equal(l.results.items[0]->member, "cut");
    assert_int_equal(strlen(l.results.items[0]->error), IBP_ERROR_MAX);
    assert_int_equal(l.results.items[0]->error[IBP_ERROR_MAX - 1], '?');
    assert_string_equal(l.results.items[1]->member, "good");
    assert_string_equal(l.results.items[1]->error, "bad ?? byte ?");
    assert_string_equal(l.overrides[0].reason, "reason ??? surrogate");

    /* Saving what was loaded gives the same bytes: the repair is stable. */
    char *first = NULL, *second = NULL;
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &first, NULL, &err), IBP_OK);
    ibp_cache_contents again = {.kind = IBP_CACHE_LOCAL,
                                .saved_at_ms = 1,
                                .results = (const ibp_result *const *)l.results.items,
                                .result_count = l.results.count,
                                .overrides = l.overrides,
                                .override_count = l.override_count};
    assert_int_equal(ibp_cache_save(path, &again, &err), IBP_OK);
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &second, NULL, &err), IBP_OK);
    assert_string_equal(first, second);
    free(first);
    free(second);
    ibp_cache_loaded_free(&l);

    /* An override member that is not UTF-8 cannot be written: refused. */
    ov.member = "bad\xff";
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    assert_non_null(strstr(err.msg, path));
    for (size_t i = 0; i < 3; i++)
        ibp_result_free(rs[i]);
    test_rmdir(dir);
}

static void test_save_errors(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char file[4200], path[4200];
    ibp_err err;
    fixture f;
    fixture_make(&f);
    ibp_cache_contents c = fixture_contents(&f, IBP_CACHE_OFFICIAL);

    /* Tests run as root: a path under a regular file is what cannot be created. */
    test_path(file, sizeof file, dir, "work");
    test_write(file, "a regular file", 0600);
    assert_int_equal(ibp_cache_path(file, IBP_CACHE_OFFICIAL, path, sizeof path, &err), IBP_OK);
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, path));
    /* The directory exists but the file's place is a regular file's child. */
    fmt(path, sizeof path, "%s/official.cache.json", file);
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, path));
    /* Only one level is created: the work dir must exist. */
    fmt(path, sizeof path, "%s/missing/tmp/official.cache.json", dir);
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, path));

    test_path(path, sizeof path, dir, "official.cache.json");
    assert_int_equal(ibp_cache_save(NULL, &c, &err), IBP_E_INVAL);
    assert_int_equal(ibp_cache_save("", &c, &err), IBP_E_INVAL);
    assert_int_equal(ibp_cache_save(path, NULL, &err), IBP_E_INVAL);
    c.kind = (ibp_cache_kind)9;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    assert_non_null(strstr(err.msg, path));
    c.kind = IBP_CACHE_LOCAL; /* with has_epoch still set */
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    c.kind = IBP_CACHE_OFFICIAL;
    c.epoch = (uint64_t)INT64_MAX + 1;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    c.epoch = 1;
    const ibp_result *holes[] = {f.r[0], NULL};
    c.results = holes;
    c.result_count = 2;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    c.results = NULL;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    c.result_count = 0;
    ibp_cache_override bad[] = {{"", true, NULL, 1}};
    c.overrides = bad;
    c.override_count = 1;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    bad[0].member = NULL;
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_E_INVAL);
    assert_false(exists(path));
    fixture_free(&f);
    test_rmdir(dir);
}

static void test_load_errors(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err;
    ibp_cache_loaded l;
    memset(&l, 0x5a, sizeof l);
    assert_int_equal(ibp_cache_load(NULL, IBP_CACHE_LOCAL, &l, &err), IBP_E_INVAL);
    assert_int_equal(ibp_cache_load("x", IBP_CACHE_LOCAL, NULL, &err), IBP_E_INVAL);
    assert_int_equal(ibp_cache_load("x", (ibp_cache_kind)0, &l, &err), IBP_E_INVAL);
    /* A directory where the file should be is unreadable, not corrupt: left alone. */
    test_path(path, sizeof path, dir, "local.cache.json");
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, path));
    assert_true(exists(path));
    assert_int_equal(count_corrupt(dir, "local\\.cache\\.json", NULL, 0), 0);
    /* *out was not touched by any failure. */
    unsigned char *p = (unsigned char *)&l;
    for (size_t i = 0; i < sizeof l; i++)
        assert_int_equal(p[i], 0x5a);
    test_rmdir(dir);
}

/* Many entries: correctness at size (timing belongs in a benchmark). */
static void test_many_entries(void **state)
{
    (void)state;
    enum { N = 20000, NOV = 500 };
    char *dir = test_tmpdir();
    char path[4200];
    ibp_err err;
    ibp_result **rs = calloc(N, sizeof *rs);
    ibp_cache_override *ovs = calloc(NOV, sizeof *ovs);
    char(*names)[32] = calloc(NOV, sizeof *names);
    assert_non_null(rs);
    assert_non_null(ovs);
    assert_non_null(names);
    for (size_t i = 0; i < N; i++) {
        char member[32], domain[64], endpoint[128], data[64], error[32];
        snprintf(member, sizeof member, "member-%zu", i % 97);
        snprintf(domain, sizeof domain, "d%zu.example.net", i / 97);
        snprintf(endpoint, sizeof endpoint, "wss://d%zu.example.net/%zu", i / 97, i);
        snprintf(data, sizeof data, "{\"i\":%zu}", i);
        error[0] = '\0';
        if (i % 3 == 0)
            snprintf(error, sizeof error, "err %zu", i);
        ibp_check_type t = (ibp_check_type)(1 + i % 3);
        rs[i] = mk(t, "c", member, t == IBP_CHECK_SITE ? NULL : domain,
                   t == IBP_CHECK_ENDPOINT ? endpoint : NULL, (i / 3) % 2, i % 5 != 0,
                   T0 + (int64_t)i, error, i % 2 ? data : NULL);
    }
    for (size_t i = 0; i < NOV; i++) {
        snprintf(names[i], sizeof names[i], "member-%zu", i);
        ovs[i] = (ibp_cache_override){names[i], i % 2, "r", (int64_t)i};
    }
    /* Site keys repeat across i with the same member/ipv6: keep only unique keys. */
    size_t n = 0;
    qsort(rs, N, sizeof *rs, cmp_results);
    for (size_t i = 0; i < N; i++) {
        if (n > 0 && cmp_results(&rs[n - 1], &rs[i]) == 0) {
            ibp_result_free(rs[i]);
            continue;
        }
        rs[n++] = rs[i];
    }
    assert_true(n > N / 2);
    ibp_cache_contents c = {.kind = IBP_CACHE_LOCAL,
                            .saved_at_ms = 1,
                            .results = (const ibp_result *const *)rs,
                            .result_count = n,
                            .overrides = ovs,
                            .override_count = NOV};
    test_path(path, sizeof path, dir, "local.cache.json");
    assert_int_equal(ibp_cache_save(path, &c, &err), IBP_OK);
    ibp_cache_loaded l;
    assert_int_equal(ibp_cache_load(path, IBP_CACHE_LOCAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    assert_int_equal(l.results.count, n);
    assert_int_equal(l.override_count, NOV);
    for (size_t i = 0; i < n; i++)
        assert_result_equal(l.results.items[i], rs[i]);
    ibp_cache_loaded_free(&l);
    for (size_t i = 0; i < n; i++)
        ibp_result_free(rs[i]);
    free(rs);
    free(ovs);
    free(names);
    test_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_paths_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_contents_and_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_aside_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_garbage_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_at_every_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_version_kind_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_utf8_on_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_save_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
