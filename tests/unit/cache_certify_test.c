/*
 * Unit tests: the quorum certificate kept with an official cache
 * (ibp/cache.h): saved and loaded with the snapshot, judged again from the
 * roster on load; a tampered certificate or one of another digest is
 * refused, results or overrides that are not the certified snapshot's are
 * refused, and a file written before certificates reads as uncertified.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibp/atomic_file.h"
#include "ibp/cache.h"
#include "ibp/certificate.h"
#include "ibp/codec_snapshot.h"
#include "ibp/data.h"
#include "ibp/log.h"
#include "ibp/official_snapshot.h"
#include "test_util.h"

#define NREP 3

struct fixture {
    char *dir;
    char path[4200];
    ibp_key key[NREP];
    ibp_roster *roster;
    ibp_signer *rep[NREP];
    ibp_epoch_statement good;
    uint8_t *stmt[NREP];
    size_t len[NREP];
    /* The snapshot of epoch 9 (payload bytes) and what the cache holds of it. */
    uint8_t *snap;
    size_t snap_len;
    ibp_official_snapshot os;
    ibp_cache_override ovr[2];
    size_t novr;
};

/* Epoch 9: two results and one disabled member, packed as a replica does. */
static void make_snapshot(struct fixture *f)
{
    static const uint8_t digest[32] = {[0 ... 31] = 0xd9};
    ibp_codec_snapshot_entry e[2] = {
        {.key = {IBP_CHECK_SITE, "ping", "m1", "", "", false},
         .status = IBP_RESULT_UP,
         .check_time_ms = 1700000000000,
         .error = "",
         .data_json = ""},
        {.key = {IBP_CHECK_ENDPOINT, "wss", "m2", "rpc.example.net",
                 "wss://rpc.example.net/polkadot", true},
         .status = IBP_RESULT_DOWN,
         .check_time_ms = 1700000000001,
         .error = "timeout",
         .data_json = "{\"latency_ms\":812,\"peers\":[1,2]}"},
    };
    ibp_codec_snapshot_override o = {.member = "m3", .disabled = true, .reason = "maintenance"};
    ibp_codec_snapshot w = {.epoch = 9,
                            .local_seq = 4711,
                            .applied_ms = 1700000000002,
                            .digest = digest,
                            .digest_len = sizeof digest,
                            .entries = e,
                            .nentries = 2,
                            .overrides = &o,
                            .noverrides = 1};
    ibp_err err;
    assert_int_equal(ibp_codec_snapshot_encode(&w, &f->snap, &f->snap_len, &err), IBP_OK);
    assert_int_equal(ibp_official_snapshot_decode(f->snap, f->snap_len, &f->os, &err), IBP_OK);
    f->novr = f->os.n_overrides;
    for (size_t i = 0; i < f->novr; i++)
        f->ovr[i] = (ibp_cache_override){f->os.overrides[i].member, true,
                                         f->os.overrides[i].reason, f->os.overrides[i].time_ms};
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[4200], id[16];
    ibp_err err;
    ibp_log_set_level(IBP_LOG_OFF);
    f->dir = test_tmpdir();
    assert_int_equal(ibp_roster_new(&f->roster), IBP_OK);
    for (int i = 0; i < NREP; i++) {
        snprintf(id, sizeof id, "rep%d", i + 1);
        assert_int_equal(ibp_key_generate(&f->key[i]), IBP_OK);
        assert_int_equal(ibp_roster_add(f->roster, id, f->key[i].pk, IBP_ROLE_CONSENSUS, &err),
                         IBP_OK);
        test_path(path, sizeof path, f->dir, id);
        assert_int_equal(ibp_signer_new(id, &f->key[i], path, &f->rep[i], &err), IBP_OK);
    }
    test_path(f->path, sizeof f->path, f->dir, "tmp/official.cache.json");
    f->good.epoch = 9;
    f->good.local_seq = 4711;
    memset(f->good.state_digest, 0xd9, sizeof f->good.state_digest);
    memset(f->good.prev_digest, 0xd8, sizeof f->good.prev_digest);
    make_snapshot(f);
    ibp_certificate_snapshot_hash(f->snap, f->snap_len, f->good.snapshot_hash);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < NREP; i++) {
        free(f->stmt[i]);
        ibp_signer_free(f->rep[i]);
    }
    ibp_roster_free(f->roster);
    ibp_official_snapshot_clear(&f->os);
    free(f->snap);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Statements of the first n replicas over s, as certificate bytes (malloc'd). */
static uint8_t *certificate(struct fixture *f, const ibp_epoch_statement *s, size_t n,
                            size_t *len)
{
    ibp_err err;
    uint8_t *out = NULL;
    for (size_t i = 0; i < n; i++) {
        free(f->stmt[i]);
        assert_int_equal(ibp_certificate_statement_seal(f->rep[i], s, 1700000000000,
                                                        &f->stmt[i], &f->len[i], NULL, &err),
                         IBP_OK);
    }
    assert_int_equal(ibp_certificate_encode(s->epoch, (const uint8_t *const *)f->stmt, f->len, n,
                                            &out, len),
                     IBP_OK);
    return out;
}

/* Saves an official cache of epoch 9 holding the snapshot's results and
 * overrides with cert (may be NULL) and loads it again. */
static void save_load(struct fixture *f, const ibp_cache_certificate *cert, ibp_cache_loaded *out)
{
    ibp_err err;
    ibp_cache_contents c = {.kind = IBP_CACHE_OFFICIAL,
                            .saved_at_ms = 1700000000000,
                            .has_epoch = true,
                            .epoch = 9,
                            .results = (const ibp_result *const *)f->os.results.items,
                            .result_count = f->os.results.count,
                            .overrides = f->ovr,
                            .override_count = f->novr,
                            .certificate = cert};
    assert_int_equal(ibp_cache_save(f->path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(f->path, IBP_CACHE_OFFICIAL, out, &err), IBP_OK);
    assert_int_equal(out->outcome, IBP_CACHE_LOADED);
}

static ibp_cache_certificate cert_of(struct fixture *f, const ibp_epoch_statement *s,
                                     const uint8_t *bytes, size_t len)
{
    ibp_cache_certificate c = {.local_seq = s->local_seq,
                               .bytes = bytes,
                               .len = len,
                               .snapshot = f->snap,
                               .snapshot_len = f->snap_len};
    memcpy(c.state_digest, s->state_digest, sizeof c.state_digest);
    memcpy(c.snapshot_hash, s->snapshot_hash, sizeof c.snapshot_hash);
    return c;
}

static void test_roundtrip(void **state)
{
    struct fixture *f = *state;
    size_t len = 0;
    uint8_t *bytes = certificate(f, &f->good, 2, &len);
    ibp_cache_certificate cert = cert_of(f, &f->good, bytes, len);
    ibp_cache_loaded l;
    ibp_certificate_result r;
    char why[256];
    save_load(f, &cert, &l);
    assert_true(l.has_certificate);
    assert_int_equal(l.certificate.local_seq, 4711);
    assert_int_equal(l.certificate.len, len);
    assert_memory_equal(l.certificate.bytes, bytes, len);
    assert_memory_equal(l.certificate.state_digest, f->good.state_digest, 32);
    assert_memory_equal(l.certificate.snapshot_hash, f->good.snapshot_hash, 32);
    assert_int_equal(l.certificate.snapshot_len, f->snap_len);
    assert_memory_equal(l.certificate.snapshot, f->snap, f->snap_len);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, &r, why, sizeof why), IBP_OK);
    assert_true(r.certified);
    assert_int_equal(r.signers, 2);
    /* One statement is not a quorum of 3 consensus nodes' majority (2)... */
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 3, &r, why, sizeof why),
                     IBP_E_BAD_SIGNATURE);
    assert_non_null(strstr(why, "2 of quorum 3"));
    ibp_cache_loaded_free(&l);
    free(bytes);
}

static void test_tampered_refused(void **state)
{
    struct fixture *f = *state;
    size_t len = 0;
    uint8_t *bytes = certificate(f, &f->good, 2, &len);
    ibp_cache_certificate cert = cert_of(f, &f->good, bytes, len);
    ibp_cache_loaded l;
    char why[256];
    /* A flipped byte near the end lands in the last statement's signature. */
    bytes[len - 3] ^= 0x40;
    save_load(f, &cert, &l);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, NULL, why, sizeof why),
                     IBP_E_BAD_SIGNATURE);
    assert_non_null(strstr(why, "1 of quorum 2"));
    ibp_cache_loaded_free(&l);
    /* Garbage is not a certificate at all. */
    memset(bytes, 0xff, len);
    save_load(f, &cert, &l);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, NULL, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_string_equal(why, "certificate does not decode");
    ibp_cache_loaded_free(&l);
    free(bytes);
}

static void test_other_digest_refused(void **state)
{
    struct fixture *f = *state;
    size_t len = 0;
    ibp_epoch_statement other = f->good;
    memset(other.state_digest, 0x77, sizeof other.state_digest);
    uint8_t *bytes = certificate(f, &other, 3, &len);
    /* The cache claims the good digest; every statement certifies another. */
    ibp_cache_certificate cert = cert_of(f, &f->good, bytes, len);
    ibp_cache_loaded l;
    ibp_certificate_result r;
    char why[256];
    save_load(f, &cert, &l);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, &r, why, sizeof why),
                     IBP_E_BAD_SIGNATURE);
    assert_false(r.certified);
    assert_int_equal(r.by_verdict[IBP_CERT_DIGEST_MISMATCH], 3);
    assert_non_null(strstr(why, "statement differs from the snapshot"));
    ibp_cache_loaded_free(&l);
    free(bytes);
    /* A certificate of another epoch. */
    other = f->good;
    other.epoch = 8;
    bytes = certificate(f, &other, 3, &len);
    cert = cert_of(f, &f->good, bytes, len);
    save_load(f, &cert, &l);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, NULL, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_string_equal(why, "certificate of epoch 8, cache holds 9");
    ibp_cache_loaded_free(&l);
    free(bytes);
}

/* Saves epoch 9 with these results and overrides and cert, loads it, and judges it. */
static ibp_status judge_contents(struct fixture *f, const ibp_result *const *results, size_t n,
                                 const ibp_cache_override *ovr, size_t novr,
                                 const ibp_cache_certificate *cert, char *why, size_t cap)
{
    ibp_err err;
    ibp_cache_loaded l;
    ibp_cache_contents c = {.kind = IBP_CACHE_OFFICIAL,
                            .saved_at_ms = 1700000000000,
                            .has_epoch = true,
                            .epoch = 9,
                            .results = results,
                            .result_count = n,
                            .overrides = ovr,
                            .override_count = novr,
                            .certificate = cert};
    assert_int_equal(ibp_cache_save(f->path, &c, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(f->path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    ibp_status st = ibp_cache_certificate_check(&l, f->roster, 2, NULL, why, cap);
    ibp_cache_loaded_free(&l);
    return st;
}

/* The certificate vouches for the snapshot bytes, and they for every results line. */
static void test_contents_bound(void **state)
{
    struct fixture *f = *state;
    size_t len = 0;
    uint8_t *bytes = certificate(f, &f->good, 2, &len);
    ibp_cache_certificate cert = cert_of(f, &f->good, bytes, len);
    const ibp_result *const *items = (const ibp_result *const *)f->os.results.items;
    char why[320];
    ibp_err err;
    assert_int_equal(judge_contents(f, items, 2, f->ovr, f->novr, &cert, why, sizeof why),
                     IBP_OK);

    /* A member marked up by hand. */
    ibp_result *flipped = ibp_result_dup(items[1]);
    assert_non_null(flipped);
    flipped->up = !flipped->up;
    const ibp_result *edited[2] = {items[0], flipped};
    assert_int_equal(judge_contents(f, edited, 2, f->ovr, f->novr, &cert, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_non_null(strstr(why, "results differ from the certified snapshot"));
    assert_non_null(strstr(why, "member=m2"));
    assert_non_null(strstr(why, "has other values"));
    ibp_result_free(flipped);
    /* A result dropped, and one added in its place. */
    assert_int_equal(judge_contents(f, items, 1, f->ovr, f->novr, &cert, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_non_null(strstr(why, "1 in the file, 2 in the snapshot"));
    ibp_result *other = NULL;
    ibp_result_key k = {IBP_CHECK_SITE, "ping", "m9", "", "", false};
    assert_int_equal(ibp_result_new(&k, true, 1700000000000, "", "", &other, &err), IBP_OK);
    const ibp_result *swapped[2] = {items[0], other};
    assert_int_equal(judge_contents(f, swapped, 2, f->ovr, f->novr, &cert, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_non_null(strstr(why, "is missing from the file"));
    ibp_result_free(other);
    /* The disabled member enabled again, or another one disabled. */
    assert_int_equal(judge_contents(f, items, 2, f->ovr, 0, &cert, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_non_null(strstr(why, "0 disabled in the file, 1 in the snapshot"));
    ibp_cache_override more[2] = {f->ovr[0], {"m1", true, "", 1}};
    assert_int_equal(judge_contents(f, items, 2, more, 2, &cert, why, sizeof why),
                     IBP_E_PAYLOAD_DECODE);
    assert_non_null(strstr(why, "overrides differ from the certified snapshot: member m1"));

    /* Snapshot bytes that are not the certified ones. */
    uint8_t *snap = malloc(f->snap_len);
    memcpy(snap, f->snap, f->snap_len);
    snap[f->snap_len / 2] ^= 0x01;
    cert.snapshot = snap;
    assert_int_equal(judge_contents(f, items, 2, f->ovr, f->novr, &cert, why, sizeof why),
                     IBP_E_BAD_SIGNATURE);
    assert_non_null(strstr(why, "not the ones certified"));
    free(snap);
    cert.snapshot = f->snap;

    /* A certificate without its snapshot (as an older writer left it): uncertified. */
    assert_int_equal(judge_contents(f, items, 2, f->ovr, f->novr, &cert, why, sizeof why),
                     IBP_OK);
    size_t flen = 0;
    char *text = NULL;
    assert_int_equal(ibp_file_read_all(f->path, 1 << 20, &text, &flen, &err), IBP_OK);
    char *at = strstr(text, ",\"snapshot\":\"");
    assert_non_null(at);
    char *end = strchr(at + 13, '"');
    memmove(at, end + 1, strlen(end + 1) + 1);
    assert_int_equal(ibp_file_write_atomic(f->path, text, strlen(text), 0600, &err), IBP_OK);
    free(text);
    ibp_cache_loaded l;
    assert_int_equal(ibp_cache_load(f->path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_LOADED);
    assert_true(l.has_certificate);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, NULL, why, sizeof why),
                     IBP_E_NOT_FOUND);
    assert_string_equal(why, "no snapshot bytes with the certificate");
    ibp_cache_loaded_free(&l);
    free(bytes);
}

static void test_without_certificate(void **state)
{
    struct fixture *f = *state;
    ibp_cache_loaded l;
    char why[256];
    ibp_err err;
    /* A file as written before certificates: loads, and is uncertified. */
    save_load(f, NULL, &l);
    assert_false(l.has_certificate);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, NULL, why, sizeof why),
                     IBP_E_NOT_FOUND);
    assert_string_equal(why, "no certificate");
    ibp_cache_loaded_free(&l);
    /* A certificate needs an epoch; a bad hex digest is a corrupt file. */
    uint8_t one = 1;
    ibp_cache_certificate cert = cert_of(f, &f->good, &one, 1);
    ibp_cache_contents c = {.kind = IBP_CACHE_OFFICIAL, .certificate = &cert};
    assert_int_equal(ibp_cache_save(f->path, &c, &err), IBP_E_INVAL);
    const char *bad = "{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\","
                      "\"saved_at_ms\":1,\"epoch\":9,\"results\":[],\"overrides\":[],"
                      "\"certificate\":{\"local_seq\":1,\"state_digest\":\"zz\","
                      "\"snapshot_hash\":\"00\",\"bytes\":\"00\"}}";
    assert_int_equal(ibp_file_write_atomic(f->path, bad, strlen(bad), 0600, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(f->path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_int_equal(l.outcome, IBP_CACHE_DISCARDED);
    assert_non_null(strstr(l.reason, "state_digest"));
    ibp_cache_loaded_free(&l);
}

/* Files of tmp/ moved aside as refused. */
static int refused_files(struct fixture *f)
{
    char dir[4200];
    test_path(dir, sizeof dir, f->dir, "tmp");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strncmp(e->d_name, "official.cache.json.refused-", 28) == 0;
    closedir(d);
    return n;
}

/* ibp_data_open with a roster: a certified cache is loaded, any other refused and counted,
 * as is one whose contents do not load. */
static void test_data_open_checks(void **state)
{
    struct fixture *f = *state;
    size_t len = 0;
    uint8_t *bytes = certificate(f, &f->good, 2, &len);
    ibp_cache_certificate cert = cert_of(f, &f->good, bytes, len);
    ibp_cache_loaded l;
    ibp_data_opts o;
    ibp_data *d = NULL;
    ibp_err err;
    save_load(f, &cert, &l);
    ibp_cache_loaded_free(&l);
    ibp_data_opts_init(&o);
    o.work_dir = f->dir;
    o.use_official_cache = true;
    o.certificate_roster = f->roster;
    o.certificate_quorum = 2;
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_OK);
    assert_int_equal(ibp_store_official_epoch(ibp_data_store(d)), 9);
    assert_int_equal(ibp_data_official_cache_refused(d), 0);
    /* Saved again with its certificate. */
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);
    assert_int_equal(ibp_cache_load(f->path, IBP_CACHE_OFFICIAL, &l, &err), IBP_OK);
    assert_true(l.has_certificate);
    assert_int_equal(ibp_cache_certificate_check(&l, f->roster, 2, NULL, NULL, 0), IBP_OK);
    ibp_cache_loaded_free(&l);

    /* A results line edited by hand: refused, empty, counted. */
    ibp_result *flipped = ibp_result_dup(f->os.results.items[0]);
    assert_non_null(flipped);
    flipped->up = !flipped->up;
    const ibp_result *edited[2] = {flipped, f->os.results.items[1]};
    ibp_cache_contents ec = {.kind = IBP_CACHE_OFFICIAL,
                             .saved_at_ms = 1700000000000,
                             .has_epoch = true,
                             .epoch = 9,
                             .results = edited,
                             .result_count = 2,
                             .overrides = f->ovr,
                             .override_count = f->novr,
                             .certificate = &cert};
    assert_int_equal(ibp_cache_save(f->path, &ec, &err), IBP_OK);
    ibp_result_free(flipped);
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_OK);
    assert_int_equal(ibp_store_official_epoch(ibp_data_store(d)), 0);
    assert_int_equal(ibp_store_official_count(ibp_data_store(d)), 0);
    assert_int_equal(ibp_data_official_cache_refused(d), 1);
    /* Moved aside for a human before the next save replaces it. */
    assert_int_not_equal(access(f->path, F_OK), 0);
    assert_true(refused_files(f) >= 1);
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);
    save_load(f, &cert, &l);
    ibp_cache_loaded_free(&l);

    /* Quorum 3 is more than the certificate holds: refused, empty, counted. */
    o.certificate_quorum = 3;
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_OK);
    assert_int_equal(ibp_store_official_epoch(ibp_data_store(d)), 0);
    assert_int_equal(ibp_data_official_cache_refused(d), 1);
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);
    /* A file of epoch 9 written before certificates: refused too. */
    save_load(f, NULL, &l);
    ibp_cache_loaded_free(&l);
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_OK);
    assert_int_equal(ibp_data_official_cache_refused(d), 1);
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);
    /* A file whose contents do not load (moved aside by the loader): counted the same. */
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("{\"format\":\"ibp-results-cache\",\"version\":1,\"kind\":\"official\",", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(ibp_data_open(&o, &d, &err), IBP_OK);
    assert_int_equal(ibp_store_official_epoch(ibp_data_store(d)), 0);
    assert_int_equal(ibp_data_official_cache_refused(d), 1);
    assert_int_equal(ibp_data_close(d, &err), IBP_OK);
    free(bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_digest_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contents_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_open_checks, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
