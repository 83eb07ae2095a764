/* Unit tests: the usage journal (durable pending HitBatch deltas) and the file sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/atomic_file.h"
#include "ibp/log.h"
#include "ibp/usage_journal.h"
#include "test_util.h"

/* A sink that records what it got and fails on demand. */
typedef struct rec_sink {
    uint64_t seqs[64];
    uint64_t hits[64]; /* hits of the first row */
    size_t n;
    int fail_at; /* 1-based call number that fails; 0 never */
    int calls;
    int fail_all;
} rec_sink;

static ibp_status rec_deliver(void *ctx, const Ibp__V1__HitBatch *batch, const uint8_t *packed,
                              size_t len, ibp_err *err)
{
    rec_sink *r = ctx;
    r->calls++;
    if (r->fail_all || r->calls == r->fail_at)
        return ibp_err_set(err, IBP_E_NATS, "test sink refused call %d", r->calls);
    /* The bytes are the batch. */
    Ibp__V1__HitBatch *again = ibp__v1__hit_batch__unpack(NULL, len, packed);
    assert_non_null(again);
    assert_int_equal(again->flush_seq, batch->flush_seq);
    assert_string_equal(again->node, batch->node);
    assert_int_equal(again->n_rows, batch->n_rows);
    ibp__v1__hit_batch__free_unpacked(again, NULL);
    assert_true(r->n < 64);
    r->seqs[r->n] = batch->flush_seq;
    r->hits[r->n] = batch->n_rows ? batch->rows[0]->hits : 0;
    r->n++;
    return IBP_OK;
}

static ibp_usage_sink sink_of(rec_sink *r)
{
    ibp_usage_sink s = {rec_deliver, NULL, r};
    return s;
}

typedef struct fixture {
    char *dir;
    char jdir[4200];
    char seq[4200];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir();
    test_path(f->jdir, sizeof f->jdir, f->dir, "journal");
    test_path(f->seq, sizeof f->seq, f->dir, "usage.seq");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static ibp_usage_journal *open_journal(fixture *f, const char *node)
{
    ibp_usage_journal *j = NULL;
    ibp_err err;
    if (ibp_usage_journal_open(f->jdir, f->seq, node, &j, &err) != IBP_OK)
        fail_msg("journal open: %s", err.msg);
    return j;
}

/* Appends a one-row batch counting hits; returns its flush_seq. */
static uint64_t append(ibp_usage_journal *j, uint64_t hits)
{
    Ibp__V1__HitRow row = IBP__V1__HIT_ROW__INIT;
    Ibp__V1__HitRow *rows[1] = {&row};
    row.date = "2024-05-01";
    row.domain = "rpc.ibp.network";
    row.member = "Stake Plus";
    row.country_code = "DE";
    row.asn = "AS64500";
    row.network_name = "Example Net";
    row.country_name = "Germany";
    row.hits = hits;
    Ibp__V1__HitBatch b = IBP__V1__HIT_BATCH__INIT;
    b.rows = rows;
    b.n_rows = 1;
    uint64_t seq = 0;
    ibp_err err;
    if (ibp_usage_journal_append(j, &b, &seq, &err) != IBP_OK)
        fail_msg("append: %s", err.msg);
    assert_int_equal(b.flush_seq, seq);
    assert_string_equal(b.node, "dns1");
    return seq;
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

static void entry_file(const fixture *f, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%020" PRIu64 ".hits", f->jdir, seq);
}

static void test_append_then_deliver_in_order(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = open_journal(f, "dns1");
    uint64_t s1 = append(j, 10), s2 = append(j, 20), s3 = append(j, 30);
    assert_true(s1 >= 1 && s2 > s1 && s3 > s2);
    assert_int_equal(count_files(f->jdir, ".hits"), 3);
    ibp_usage_journal_stats st;
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.appended, 3);
    assert_int_equal(st.last_seq, s3);

    rec_sink r = {0};
    ibp_usage_sink sink = sink_of(&r);
    size_t delivered = 0;
    ibp_err err;
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, &delivered, &err), IBP_OK);
    assert_int_equal(delivered, 3);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.seqs[0], s1);
    assert_int_equal(r.seqs[1], s2);
    assert_int_equal(r.seqs[2], s3);
    assert_int_equal(r.hits[0], 10);
    assert_int_equal(r.hits[2], 30);
    /* Confirmed entries are gone and never offered again. */
    assert_int_equal(count_files(f->jdir, ".hits"), 0);
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, &delivered, &err), IBP_OK);
    assert_int_equal(delivered, 0);
    assert_int_equal(r.n, 3);
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.delivered, 3);
    ibp_usage_journal_close(j);
    /* A new run continues above every number handed out. */
    j = open_journal(f, "dns1");
    assert_true(append(j, 1) > s3);
    ibp_usage_journal_close(j);
}

static void test_refused_delivery_keeps_order(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = open_journal(f, "dns1");
    uint64_t s[4];
    for (int i = 0; i < 4; i++)
        s[i] = append(j, (uint64_t)i + 1);
    rec_sink r = {0};
    r.fail_at = 2;
    ibp_usage_sink sink = sink_of(&r);
    size_t delivered = 0;
    ibp_err err;
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, &delivered, &err), IBP_E_NATS);
    assert_non_null(strstr(err.msg, "test sink refused"));
    assert_int_equal(delivered, 1);
    assert_int_equal(r.n, 1);
    ibp_usage_journal_stats st;
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.deliver_errors, 1);
    /* The refused one comes first next time, then the rest, in order. */
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, &delivered, &err), IBP_OK);
    assert_int_equal(delivered, 3);
    assert_int_equal(r.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.seqs[i], s[i]);
    ibp_usage_journal_close(j);
}

static void test_restart_resends_exactly_once(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = open_journal(f, "dns1");
    uint64_t s1 = append(j, 5), s2 = append(j, 6), s3 = append(j, 7);
    /* The first is confirmed before the "crash". */
    rec_sink r = {0};
    r.fail_at = 2;
    ibp_usage_sink sink = sink_of(&r);
    ibp_usage_journal_deliver(j, &sink, NULL, NULL);
    assert_int_equal(r.n, 1);
    ibp_usage_journal_close(j); /* as if killed: entries stay on disk */

    j = open_journal(f, "dns1");
    ibp_usage_journal_stats st;
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.pending, 2);
    rec_sink r2 = {0};
    sink = sink_of(&r2);
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, NULL, NULL), IBP_OK);
    assert_int_equal(r2.n, 2);
    assert_int_equal(r2.seqs[0], s2);
    assert_int_equal(r2.seqs[1], s3);
    assert_true(s1 < s2);
    ibp_usage_journal_close(j);

    j = open_journal(f, "dns1");
    rec_sink r3 = {0};
    sink = sink_of(&r3);
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, NULL, NULL), IBP_OK);
    assert_int_equal(r3.n, 0);
    ibp_usage_journal_close(j);
}

static void write_bytes(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static void test_corrupt_entries_are_moved_aside(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = open_journal(f, "dns1");
    uint64_t s[7];
    for (int i = 0; i < 7; i++)
        s[i] = append(j, (uint64_t)i + 100);
    ibp_usage_journal_close(j);

    char path[4300], *data = NULL;
    size_t len = 0;
    /* s[0]: garbage */
    entry_file(f, s[0], path, sizeof path);
    write_bytes(path, "garbage\n", 8);
    /* s[1]: cut short */
    entry_file(f, s[1], path, sizeof path);
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &data, &len, NULL), IBP_OK);
    write_bytes(path, data, len - 3);
    free(data);
    /* s[2]: one payload bit flipped (checksum) */
    entry_file(f, s[2], path, sizeof path);
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &data, &len, NULL), IBP_OK);
    data[len - 2] ^= 0x10;
    write_bytes(path, data, len);
    free(data);
    /* s[3] stays good. s[4]: empty file. */
    entry_file(f, s[4], path, sizeof path);
    write_bytes(path, "", 0);
    /* s[5]: a good entry of another node (same numbers, other journal). */
    {
        fixture other;
        char *odir = test_tmpdir();
        test_path(other.jdir, sizeof other.jdir, odir, "journal");
        test_path(other.seq, sizeof other.seq, odir, "usage.seq");
        other.dir = odir;
        ibp_usage_journal *oj = NULL;
        assert_int_equal(ibp_usage_journal_open(other.jdir, other.seq, "dns2", &oj, NULL), IBP_OK);
        Ibp__V1__HitBatch b = IBP__V1__HIT_BATCH__INIT;
        uint64_t oseq = 0;
        while (oseq < s[5])
            assert_int_equal(ibp_usage_journal_append(oj, &b, &oseq, NULL), IBP_OK);
        assert_int_equal(oseq, s[5]);
        char opath[4300];
        entry_file(&other, oseq, opath, sizeof opath);
        assert_int_equal(ibp_file_read_all(opath, 1 << 20, &data, &len, NULL), IBP_OK);
        entry_file(f, s[5], path, sizeof path);
        write_bytes(path, data, len);
        free(data);
        ibp_usage_journal_close(oj);
        test_rmdir(odir);
    }
    /* s[6]: a good entry under another number (flush_seq differs from the name). */
    char from[4300], to[4300];
    entry_file(f, s[3], from, sizeof from);
    assert_int_equal(ibp_file_read_all(from, 1 << 20, &data, &len, NULL), IBP_OK);
    entry_file(f, s[6], to, sizeof to);
    write_bytes(to, data, len); /* s[6] now holds s[3]'s batch */
    free(data);
    /* A leftover of an interrupted atomic write is cleaned up at open. */
    snprintf(path, sizeof path, "%s/%020" PRIu64 ".hits.tmp.4242", f->jdir, s[6] + 1);
    write_bytes(path, "half", 4);

    j = open_journal(f, "dns1");
    assert_int_equal(count_files(f->jdir, ".4242"), 0);
    rec_sink r = {0};
    ibp_usage_sink sink = sink_of(&r);
    size_t delivered = 0;
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, &delivered, NULL), IBP_OK);
    assert_int_equal(delivered, 1);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.seqs[0], s[3]);
    assert_int_equal(r.hits[0], 103);
    ibp_usage_journal_stats st;
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.corrupt, 6);
    assert_int_equal(st.pending, 0);
    assert_int_equal(count_files(f->jdir, ".corrupt"), 6);
    assert_int_equal(count_files(f->jdir, ".hits"), 0);
    ibp_usage_journal_close(j);
    /* Moved-aside entries are not pending after a restart either. */
    j = open_journal(f, "dns1");
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.pending, 0);
    ibp_usage_journal_close(j);
}

static void test_append_failure_leaves_nothing_pending(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = open_journal(f, "dns1");
    uint64_t s1 = append(j, 1);
    /* Replace the directory by a regular file: every write fails (also as root). */
    char path[4300];
    entry_file(f, s1, path, sizeof path);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(f->jdir), 0);
    test_write(f->jdir, "not a directory\n", 0644);
    Ibp__V1__HitBatch b = IBP__V1__HIT_BATCH__INIT;
    ibp_err err;
    uint64_t seq = 0;
    assert_int_equal(ibp_usage_journal_append(j, &b, &seq, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, f->jdir));
    ibp_usage_journal_stats st;
    ibp_usage_journal_stats_get(j, &st);
    assert_int_equal(st.append_errors, 1);
    assert_int_equal(st.pending, 1); /* s1 only: the failed one is not pending */
    /* Once the directory is back, appends work again with a fresh number. */
    unlink(f->jdir);
    assert_int_equal(mkdir(f->jdir, 0700), 0);
    uint64_t s3 = append(j, 3);
    assert_true(s3 > s1 + 1);
    /* s1 vanished with the directory: skipped (logged); s3 is delivered. */
    rec_sink r = {0};
    ibp_usage_sink sink = sink_of(&r);
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, NULL, &err), IBP_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.seqs[0], s3);
    ibp_usage_journal_close(j);
}

static void test_sequence_file_behind_is_refused(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = open_journal(f, "dns1");
    append(j, 1);
    ibp_usage_journal_close(j);
    unlink(f->seq);
    ibp_err err;
    assert_int_equal(ibp_usage_journal_open(f->jdir, f->seq, "dns1", &j, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, f->seq));
    /* A corrupt sequence file too. */
    test_write(f->seq, "junk\n", 0600);
    assert_int_equal(ibp_usage_journal_open(f->jdir, f->seq, "dns1", &j, &err), IBP_E_CONFIG);
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    ibp_usage_journal *j = NULL;
    ibp_err err;
    assert_int_equal(ibp_usage_journal_open(f->jdir, f->seq, "bad node", &j, &err), IBP_E_INVAL);
    assert_int_equal(ibp_usage_journal_open(NULL, f->seq, "dns1", &j, &err), IBP_E_INVAL);
    assert_int_equal(ibp_usage_journal_open(f->jdir, "", "dns1", &j, &err), IBP_E_INVAL);
    /* A directory that cannot be created: under a regular file. */
    char file[4200], under[4300];
    test_path(file, sizeof file, f->dir, "plain");
    test_write(file, "x", 0644);
    snprintf(under, sizeof under, "%s/journal", file);
    assert_int_equal(ibp_usage_journal_open(under, f->seq, "dns1", &j, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, under));
    j = open_journal(f, "dns1");
    append(j, 1);
    ibp_usage_sink none = {NULL, NULL, NULL};
    assert_int_equal(ibp_usage_journal_deliver(j, &none, NULL, &err), IBP_E_INVAL);
    assert_int_equal(ibp_usage_journal_deliver(j, NULL, NULL, &err), IBP_E_INVAL);
    ibp_usage_journal_close(j);
    ibp_usage_journal_close(NULL);
    ibp_usage_sink_close(NULL);
}

static void test_file_sink(void **state)
{
    fixture *f = *state;
    char sdir[4200];
    test_path(sdir, sizeof sdir, f->dir, "sink");
    ibp_usage_sink sink;
    ibp_err err;
    assert_int_equal(ibp_usage_file_sink_open(sdir, &sink, &err), IBP_OK);
    ibp_usage_journal *j = open_journal(f, "dns1");
    uint64_t s1 = append(j, 11), s2 = append(j, 22);
    assert_int_equal(ibp_usage_journal_deliver(j, &sink, NULL, &err), IBP_OK);
    assert_int_equal(count_files(sdir, ".hitbatch"), 2);
    char path[4300], *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/dns1.%020" PRIu64 ".hitbatch", sdir, s2);
    assert_int_equal(ibp_file_read_all(path, 1 << 20, &data, &len, NULL), IBP_OK);
    Ibp__V1__HitBatch *b = ibp__v1__hit_batch__unpack(NULL, len, (const uint8_t *)data);
    assert_non_null(b);
    assert_int_equal(b->flush_seq, s2);
    assert_string_equal(b->node, "dns1");
    assert_int_equal(b->n_rows, 1);
    assert_int_equal(b->rows[0]->hits, 22);
    assert_string_equal(b->rows[0]->member, "Stake Plus");
    ibp__v1__hit_batch__free_unpacked(b, NULL);
    free(data);
    /* Delivering the same batch again rewrites the same file (idempotent). */
    Ibp__V1__HitBatch again = IBP__V1__HIT_BATCH__INIT;
    again.node = "dns1";
    again.flush_seq = s1;
    uint8_t buf[64];
    size_t n = ibp__v1__hit_batch__pack(&again, buf);
    assert_int_equal(sink.deliver(sink.ctx, &again, buf, n, &err), IBP_OK);
    assert_int_equal(count_files(sdir, ".hitbatch"), 2);
    ibp_usage_journal_close(j);
    ibp_usage_sink_close(&sink);
    assert_null(sink.deliver);
    /* A directory that cannot be created. */
    char file[4200], under[4300];
    test_path(file, sizeof file, f->dir, "plain");
    test_write(file, "x", 0644);
    snprintf(under, sizeof under, "%s/sink", file);
    assert_int_equal(ibp_usage_file_sink_open(under, &sink, &err), IBP_E_IO);
    assert_non_null(strstr(err.msg, under));
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_then_deliver_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_delivery_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_resends_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_entries_are_moved_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_failure_leaves_nothing_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sequence_file_behind_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_sink, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
