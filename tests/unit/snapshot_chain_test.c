/*
 * The chain of official snapshots (ibp/snapshot_chain.h): finding the head
 * among foreign messages, and live following.
 *
 * A stream is written as a string of tokens, oldest first: "1 2 3" are
 * valid snapshots of those epochs, "x" a message that does not verify,
 * "-" a deleted sequence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ibp/snapshot_chain.h"

#define STREAM_MAX 256

typedef struct fake_stream {
    int kind[STREAM_MAX]; /* 0 deleted, 1 valid, 2 invalid */
    uint64_t epoch[STREAM_MAX];
    uint64_t n; /* sequences 1..n */
    uint64_t fetches;
    uint64_t fail_at; /* a fetch of this sequence fails with IBP_E_NATS */
} fake_stream;

static void parse(fake_stream *fs, const char *spec)
{
    memset(fs, 0, sizeof *fs);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *t = strtok_r(buf, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        uint64_t seq = ++fs->n;
        if (strcmp(t, "x") == 0) {
            fs->kind[seq] = 2;
        } else if (strcmp(t, "-") == 0) {
            fs->kind[seq] = 0;
        } else {
            fs->kind[seq] = 1;
            fs->epoch[seq] = strtoull(t, NULL, 10);
        }
    }
}

static ibp_status fetch(void *ctx, uint64_t seq, ibp_chain_msg *out)
{
    fake_stream *fs = ctx;
    fs->fetches++;
    if (seq == fs->fail_at)
        return IBP_E_NATS;
    if (seq == 0 || seq > fs->n || fs->kind[seq] == 0)
        return IBP_E_NOT_FOUND;
    memset(out, 0, sizeof *out);
    out->stream_seq = seq;
    if (fs->kind[seq] == 2) {
        out->why = IBP_E_BAD_SIGNATURE;
        return IBP_OK;
    }
    out->valid = true;
    out->epoch = fs->epoch[seq];
    out->digest_len = 1;
    out->digest[0] = (uint8_t)seq; /* tells copies apart */
    return IBP_OK;
}

/* Head of spec: its epoch and sequence (0, 0 when none). */
static void head_of(const char *spec, uint64_t *epoch, uint64_t *seq, uint64_t *foreign)
{
    fake_stream fs;
    parse(&fs, spec);
    ibp_chain_head h;
    assert_int_equal(ibp_chain_find_head(fetch, &fs, 1, fs.n, 4096, &h), IBP_OK);
    assert_int_equal(h.last_seq, fs.n);
    *epoch = h.found ? h.head.epoch : 0;
    *seq = h.found ? h.head.stream_seq : 0;
    if (foreign)
        *foreign = h.foreign;
}

static void expect_head(const char *spec, uint64_t epoch, uint64_t seq)
{
    uint64_t e, s;
    head_of(spec, &e, &s, NULL);
    if (e != epoch || s != seq)
        fail_msg("stream \"%s\": head epoch %llu at seq %llu, expected epoch %llu at seq %llu",
                 spec, (unsigned long long)e, (unsigned long long)s, (unsigned long long)epoch,
                 (unsigned long long)seq);
}

static void test_empty_and_single(void **state)
{
    (void)state;
    fake_stream fs;
    parse(&fs, "");
    ibp_chain_head h;
    assert_int_equal(ibp_chain_find_head(fetch, &fs, 1, 0, 10, &h), IBP_OK);
    assert_false(h.found);
    assert_int_equal(h.last_seq, 0);
    assert_int_equal(fs.fetches, 0);
    expect_head("1", 1, 1);
    expect_head("7", 7, 1); /* a trimmed stream: the only snapshot is the anchor */
    expect_head("x", 0, 0);
    expect_head("x x -", 0, 0);
}

static void test_plain_chain(void **state)
{
    (void)state;
    expect_head("1 2 3 4", 4, 4);
    uint64_t e, s, foreign;
    head_of("1 2 3 4", &e, &s, &foreign);
    assert_int_equal(foreign, 0);
}

static void test_garbage_after_head(void **state)
{
    (void)state;
    uint64_t e, s, foreign;
    head_of("1 2 3 x", &e, &s, &foreign);
    assert_int_equal(e, 3);
    assert_int_equal(s, 3);
    assert_int_equal(foreign, 1);
    expect_head("1 2 3 x x x", 3, 3);
    expect_head("1 2 x 3 x 4 x", 4, 6); /* the chain goes on after foreign messages */
}

static void test_future_epoch(void **state)
{
    (void)state;
    expect_head("1 2 3 1000", 3, 3);
    expect_head("1 2 3 1000 4", 4, 5);
    expect_head("1 2 3 1000 x 4 5", 5, 7);
    /* A far future epoch as the only valid message after genesis. */
    expect_head("1 1000", 1, 1);
}

static void test_replayed_old(void **state)
{
    (void)state;
    expect_head("1 2 3 1", 3, 3);
    expect_head("1 2 3 2", 3, 3);
    expect_head("1 2 3 1 4", 4, 5);
    /* A copy of the head itself: same epoch, harmless either way. */
    uint64_t e, s;
    head_of("1 2 3 3", &e, &s, NULL);
    assert_int_equal(e, 3);
}

static void test_deleted_and_gaps(void **state)
{
    (void)state;
    expect_head("1 2 - 3", 3, 4);
    /* An epoch that never made it to the stream: the one after the gap
     * waits for its successor to confirm it. */
    expect_head("1 2 4", 2, 2);
    expect_head("1 2 4 5", 5, 4);
}

static void test_scan_limit_and_errors(void **state)
{
    (void)state;
    fake_stream fs;
    parse(&fs, "1 2 x x x x x x x x");
    ibp_chain_head h;
    assert_int_equal(ibp_chain_find_head(fetch, &fs, 1, fs.n, 3, &h), IBP_OK);
    assert_int_equal(fs.fetches, 3);
    assert_false(h.found); /* nothing valid within the limit */
    assert_int_equal(h.last_seq, 10);

    parse(&fs, "1 2 3");
    fs.fail_at = 2;
    assert_int_equal(ibp_chain_find_head(fetch, &fs, 1, fs.n, 100, &h), IBP_E_NATS);
    assert_int_equal(ibp_chain_find_head(NULL, &fs, 1, 3, 100, &h), IBP_E_INVAL);
}

/* Many forged candidates do not hide the real head. */
static void test_many_forged_candidates(void **state)
{
    (void)state;
    char spec[2048] = "1 2 3";
    for (int i = 0; i < 100; i++) {
        char t[16];
        snprintf(t, sizeof t, " %d", 1000 + 2 * i);
        strcat(spec, t);
    }
    expect_head(spec, 3, 3);
}

static ibp_chain_msg valid(uint64_t epoch)
{
    ibp_chain_msg m;
    memset(&m, 0, sizeof m);
    m.valid = true;
    m.epoch = epoch;
    return m;
}

static void test_follow(void **state)
{
    (void)state;
    ibp_chain_follower f;
    ibp_chain_follow_init(&f, 3);
    ibp_chain_msg bad;
    memset(&bad, 0, sizeof bad);
    assert_int_equal(ibp_chain_follow(&f, &bad), IBP_CHAIN_FOREIGN);
    ibp_chain_msg m = valid(4);
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_APPLY);
    assert_int_equal(f.applied_epoch, 4);
    m = valid(4); /* the same epoch again (a copy) */
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_OLD);
    m = valid(2); /* replayed */
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_OLD);
    m = valid(1000); /* far future */
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_FOREIGN);
    assert_int_equal(f.applied_epoch, 4);
    m = valid(5);
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_APPLY);
    /* A gap in the stream: 7 comes without 6; 8 right after 7 confirms 8. */
    m = valid(7);
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_FOREIGN);
    m = valid(8);
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_APPLY);
    assert_int_equal(f.applied_epoch, 8);
    /* The reader's store moved on by another path (a cache load). */
    ibp_chain_follow_applied(&f, 20);
    m = valid(9);
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_OLD);
    m = valid(21);
    assert_int_equal(ibp_chain_follow(&f, &m), IBP_CHAIN_APPLY);
    assert_string_equal(ibp_chain_verdict_name(IBP_CHAIN_FOREIGN), "foreign");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_single),
        cmocka_unit_test(test_plain_chain),
        cmocka_unit_test(test_garbage_after_head),
        cmocka_unit_test(test_future_epoch),
        cmocka_unit_test(test_replayed_old),
        cmocka_unit_test(test_deleted_and_gaps),
        cmocka_unit_test(test_scan_limit_and_errors),
        cmocka_unit_test(test_many_forged_candidates),
        cmocka_unit_test(test_follow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
