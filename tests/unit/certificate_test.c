/*
 * Unit tests: epoch statements and the pure certificate verifier
 * (ibp/certificate.h): what counts, what does not and why, the quorum rule
 * and the certificate as bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/certificate.h"
#include "ibp/log.h"
#include "test_util.h"

#define NREP 3

struct fixture {
    char *dir;
    ibp_key rep_key[NREP], mon_key, stranger_key;
    ibp_roster *roster;
    ibp_signer *rep[NREP], *mon, *stranger;
    ibp_certificate_claim claim;
    ibp_epoch_statement good; /* what the claim says */
    uint8_t *stmt[16];
    size_t len[16];
    size_t n;
};

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
        assert_int_equal(ibp_key_generate(&f->rep_key[i]), IBP_OK);
        assert_int_equal(ibp_roster_add(f->roster, id, f->rep_key[i].pk, IBP_ROLE_CONSENSUS, &err),
                         IBP_OK);
        test_path(path, sizeof path, f->dir, id);
        assert_int_equal(ibp_signer_new(id, &f->rep_key[i], path, &f->rep[i], &err), IBP_OK);
    }
    assert_int_equal(ibp_key_generate(&f->mon_key), IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "mon1", f->mon_key.pk, IBP_ROLE_MONITOR, &err),
                     IBP_OK);
    test_path(path, sizeof path, f->dir, "mon1");
    assert_int_equal(ibp_signer_new("mon1", &f->mon_key, path, &f->mon, &err), IBP_OK);
    /* A key the roster does not know, using a known node's id. */
    assert_int_equal(ibp_key_generate(&f->stranger_key), IBP_OK);
    test_path(path, sizeof path, f->dir, "stranger");
    assert_int_equal(ibp_signer_new("rep3", &f->stranger_key, path, &f->stranger, &err), IBP_OK);

    f->good.epoch = 7;
    f->good.local_seq = 812;
    memset(f->good.state_digest, 0xd1, sizeof f->good.state_digest);
    memset(f->good.prev_digest, 0xd0, sizeof f->good.prev_digest);
    ibp_certificate_snapshot_hash((const uint8_t *)"snapshot", 8, f->good.snapshot_hash);
    f->claim.epoch = 7;
    f->claim.local_seq = 812;
    memcpy(f->claim.state_digest, f->good.state_digest, 32);
    memcpy(f->claim.snapshot_hash, f->good.snapshot_hash, 32);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < f->n; i++)
        free(f->stmt[i]);
    for (int i = 0; i < NREP; i++)
        ibp_signer_free(f->rep[i]);
    ibp_signer_free(f->mon);
    ibp_signer_free(f->stranger);
    ibp_roster_free(f->roster);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Adds a statement s sealed by signer. */
static void add(struct fixture *f, ibp_signer *signer, const ibp_epoch_statement *s)
{
    ibp_err err;
    assert_true(f->n < 16);
    assert_int_equal(ibp_certificate_statement_seal(signer, s, 1700000000000, &f->stmt[f->n],
                                                    &f->len[f->n], NULL, &err),
                     IBP_OK);
    f->n++;
}

static ibp_certificate_result verify(struct fixture *f, size_t quorum)
{
    ibp_certificate_result r;
    assert_int_equal(ibp_certificate_verify(f->roster, quorum, &f->claim,
                                            (const uint8_t *const *)f->stmt, f->len, f->n, &r),
                     IBP_OK);
    return r;
}

static void test_statement_roundtrip(void **state)
{
    struct fixture *f = *state;
    uint8_t *buf = NULL;
    size_t len = 0;
    ibp_epoch_statement back;
    assert_int_equal(ibp_certificate_statement_encode(&f->good, &buf, &len), IBP_OK);
    assert_int_equal(ibp_certificate_statement_decode(buf, len, &back), IBP_OK);
    assert_memory_equal(&back, &f->good, sizeof back);
    /* A digest cut short is not a statement. */
    Ibp__V1__EpochStatement *m = ibp__v1__epoch_statement__unpack(NULL, len, buf);
    assert_non_null(m);
    m->prev_digest.len = 31;
    uint8_t short_buf[256];
    size_t n = ibp__v1__epoch_statement__pack(m, short_buf);
    assert_int_equal(ibp_certificate_statement_decode(short_buf, n, &back), IBP_E_PAYLOAD_DECODE);
    ibp__v1__epoch_statement__free_unpacked(m, NULL);
    assert_int_equal(ibp_certificate_statement_decode((const uint8_t *)"\xff\xff", 2, &back),
                     IBP_E_PAYLOAD_DECODE);
    free(buf);
}

static void test_quorum_of_honest(void **state)
{
    struct fixture *f = *state;
    add(f, f->rep[0], &f->good);
    ibp_certificate_result r = verify(f, 2);
    assert_false(r.certified);
    assert_int_equal(r.signers, 1);
    add(f, f->rep[1], &f->good);
    r = verify(f, 2);
    assert_true(r.certified);
    assert_int_equal(r.signers, 2);
    assert_int_equal(r.by_verdict[IBP_CERT_OK], 2);
    assert_int_equal(r.first_refusal, IBP_CERT_OK);
    assert_memory_equal(r.prev_digest, f->good.prev_digest, 32);
    /* Below quorum: three asked for. */
    r = verify(f, 3);
    assert_false(r.certified);
}

static void test_wrong_signer_role(void **state)
{
    struct fixture *f = *state;
    add(f, f->rep[0], &f->good);
    add(f, f->mon, &f->good); /* a monitor's key, validly signed */
    ibp_certificate_result r = verify(f, 2);
    assert_false(r.certified);
    assert_int_equal(r.signers, 1);
    assert_int_equal(r.by_verdict[IBP_CERT_NOT_CONSENSUS], 1);
    assert_int_equal(r.first_refusal, IBP_CERT_NOT_CONSENSUS);
    assert_string_equal(r.first_refusal_signer, "mon1");
}

static void test_duplicate_signer(void **state)
{
    struct fixture *f = *state;
    add(f, f->rep[0], &f->good);
    add(f, f->rep[0], &f->good); /* the same node again, another sequence number */
    ibp_certificate_result r = verify(f, 2);
    assert_false(r.certified);
    assert_int_equal(r.signers, 1);
    assert_int_equal(r.by_verdict[IBP_CERT_DUPLICATE_SIGNER], 1);
}

static void test_digest_mismatch(void **state)
{
    struct fixture *f = *state;
    ibp_epoch_statement other = f->good;
    other.state_digest[5] ^= 1;
    add(f, f->rep[0], &f->good);
    add(f, f->rep[1], &other);
    ibp_epoch_statement bytes = f->good;
    bytes.snapshot_hash[0] ^= 1; /* same digest, other snapshot bytes */
    add(f, f->rep[2], &bytes);
    ibp_epoch_statement seq = f->good;
    seq.local_seq++;
    add(f, f->rep[1], &seq);
    ibp_epoch_statement epoch = f->good;
    epoch.epoch++;
    add(f, f->rep[2], &epoch);
    ibp_certificate_result r = verify(f, 2);
    assert_false(r.certified);
    assert_int_equal(r.signers, 1);
    assert_int_equal(r.by_verdict[IBP_CERT_DIGEST_MISMATCH], 3);
    assert_int_equal(r.by_verdict[IBP_CERT_HASH_MISMATCH], 1);
}

/* Every kind of statement once, judged one by one in the order given. */
static void test_verify_each(void **state)
{
    struct fixture *f = *state;
    ibp_err err;
    ibp_epoch_statement digest = f->good, hash = f->good, fork = f->good;
    digest.state_digest[0] ^= 1;
    hash.snapshot_hash[0] ^= 1;
    fork.prev_digest[0] ^= 1;
    add(f, f->rep[0], &f->good);   /* 0: counted */
    add(f, f->stranger, &f->good); /* 1: rep3's id, another key */
    add(f, f->mon, &f->good);      /* 2: not a consensus node */
    add(f, f->rep[1], &digest);    /* 3: another state */
    add(f, f->rep[1], &hash);      /* 4: other snapshot bytes */
    add(f, f->rep[2], &fork);      /* 5: another previous epoch */
    add(f, f->rep[0], &f->good);   /* 6: rep1 again */
    add(f, f->rep[1], &f->good);   /* 7: counted */
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    assert_int_equal(ibp_signer_seal(f->rep[2], IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                     &hb.base, 1, &f->stmt[f->n], &f->len[f->n], NULL, &err),
                     IBP_OK);
    f->n++; /* 8: signed by a consensus node, no statement */
    f->stmt[f->n] = (uint8_t *)strdup("garbage");
    f->len[f->n] = strlen("garbage");
    f->n++; /* 9: not an envelope */
    f->claim.have_prev = true;
    memcpy(f->claim.prev_digest, f->good.prev_digest, 32);

    ibp_certificate_judgement each[10];
    ibp_certificate_result r;
    assert_int_equal(ibp_certificate_verify_each(f->roster, 2, &f->claim,
                                                 (const uint8_t *const *)f->stmt, f->len, f->n, &r,
                                                 each),
                     IBP_OK);
    assert_true(r.certified);
    assert_int_equal(r.signers, 2);
    static const struct {
        ibp_certificate_verdict verdict;
        const char *signer;
        bool verified, decoded;
    } want[] = {
        {IBP_CERT_OK, "rep1", true, true},
        {IBP_CERT_BAD_SIGNATURE, "rep3", false, false},
        {IBP_CERT_NOT_CONSENSUS, "mon1", true, false},
        {IBP_CERT_DIGEST_MISMATCH, "rep2", true, true},
        {IBP_CERT_HASH_MISMATCH, "rep2", true, true},
        {IBP_CERT_CHAIN_MISMATCH, "rep3", true, true},
        {IBP_CERT_DUPLICATE_SIGNER, "rep1", true, true},
        {IBP_CERT_OK, "rep2", true, true},
        {IBP_CERT_WRONG_TYPE, "rep3", true, false},
        {IBP_CERT_BAD_ENVELOPE, "", false, false},
    };
    for (size_t i = 0; i < f->n; i++) {
        if (each[i].verdict != want[i].verdict)
            fail_msg("statement %zu: verdict %s, want %s", i,
                     ibp_certificate_verdict_key(each[i].verdict),
                     ibp_certificate_verdict_key(want[i].verdict));
        assert_string_equal(each[i].signer, want[i].signer);
        assert_int_equal(each[i].signer_verified, want[i].verified);
        assert_int_equal(each[i].decoded, want[i].decoded);
        assert_int_equal(r.by_verdict[want[i].verdict], want[i].verdict == IBP_CERT_OK ? 2 : 1);
    }
    /* What a statement said is there to report why it was refused. */
    assert_memory_equal(each[3].statement.state_digest, digest.state_digest, 32);
    assert_memory_equal(each[5].statement.prev_digest, fork.prev_digest, 32);
    assert_int_equal(each[4].statement.epoch, 7);
    /* The same totals as the plain verifier. */
    ibp_certificate_result plain = verify(f, 2);
    assert_memory_equal(plain.by_verdict, r.by_verdict, sizeof r.by_verdict);
    assert_int_equal(plain.first_refusal, IBP_CERT_BAD_SIGNATURE);
    /* Keys and texts. */
    assert_string_equal(ibp_certificate_verdict_key(IBP_CERT_OK), "counted");
    assert_string_equal(ibp_certificate_verdict_key(IBP_CERT_HASH_MISMATCH), "other_hash");
    assert_string_equal(ibp_certificate_verdict_key(IBP_CERT_CHAIN_MISMATCH), "other_prev");
    assert_string_equal(ibp_certificate_verdict_key(IBP_CERT_VERDICT_COUNT), "?");
    assert_string_equal(ibp_certificate_verdict_text(IBP_CERT_NOT_CONSENSUS),
                        "signer is not a consensus node");
    /* Refused arguments leave each alone. */
    each[0].verdict = IBP_CERT_WRONG_TYPE;
    assert_int_equal(ibp_certificate_verify_each(f->roster, 0, &f->claim,
                                                 (const uint8_t *const *)f->stmt, f->len, f->n, &r,
                                                 each),
                     IBP_E_INVAL);
    assert_int_equal(each[0].verdict, IBP_CERT_WRONG_TYPE);
}

static void test_chain_mismatch(void **state)
{
    struct fixture *f = *state;
    ibp_epoch_statement fork = f->good;
    fork.prev_digest[0] ^= 0xff;
    add(f, f->rep[0], &f->good);
    add(f, f->rep[1], &f->good);
    add(f, f->rep[2], &fork);
    /* Without a held previous epoch: the larger group wins, the other is refused. */
    ibp_certificate_result r = verify(f, 2);
    assert_true(r.certified);
    assert_int_equal(r.signers, 2);
    assert_int_equal(r.by_verdict[IBP_CERT_CHAIN_MISMATCH], 1);
    assert_memory_equal(r.prev_digest, f->good.prev_digest, 32);
    /* Holding epoch 6 with the forked digest: only the fork agrees with it. */
    f->claim.have_prev = true;
    memcpy(f->claim.prev_digest, fork.prev_digest, 32);
    r = verify(f, 2);
    assert_false(r.certified);
    assert_int_equal(r.signers, 1);
    assert_int_equal(r.by_verdict[IBP_CERT_CHAIN_MISMATCH], 2);
    /* Holding the honest epoch 6. */
    memcpy(f->claim.prev_digest, f->good.prev_digest, 32);
    r = verify(f, 2);
    assert_true(r.certified);
}

static void test_unknown_key_and_garbage(void **state)
{
    struct fixture *f = *state;
    add(f, f->rep[0], &f->good);
    add(f, f->stranger, &f->good); /* claims to be rep3, signed with another key */
    f->stmt[f->n] = (uint8_t *)strdup("not an envelope");
    f->len[f->n] = strlen("not an envelope");
    f->n++;
    ibp_certificate_result r = verify(f, 2);
    assert_false(r.certified);
    assert_int_equal(r.signers, 1);
    assert_int_equal(r.by_verdict[IBP_CERT_BAD_SIGNATURE], 1);
    assert_int_equal(r.by_verdict[IBP_CERT_BAD_ENVELOPE], 1);
    assert_string_equal(r.first_refusal_signer, ""); /* an unverified name is not reported */
}

/* The _checked variant skips only the signature, which its caller checked. */
static void test_verify_checked(void **state)
{
    struct fixture *f = *state;
    ibp_certificate_result r;
    add(f, f->rep[0], &f->good);
    add(f, f->rep[1], &f->good);
    add(f, f->mon, &f->good);
    ibp_epoch_statement other = f->good;
    other.local_seq++;
    add(f, f->rep[2], &other);
    assert_int_equal(ibp_certificate_verify_checked(f->roster, 2, &f->claim,
                                                    (const uint8_t *const *)f->stmt, f->len, f->n,
                                                    &r),
                     IBP_OK);
    ibp_certificate_result full = verify(f, 2);
    assert_memory_equal(&r, &full, sizeof r);
    assert_true(r.certified);
    assert_int_equal(r.by_verdict[IBP_CERT_NOT_CONSENSUS], 1);
    assert_int_equal(r.by_verdict[IBP_CERT_DIGEST_MISMATCH], 1);
    /* A signature broken after the check is what the caller vouched for:
     * only the full verifier sees it. */
    f->stmt[1][f->len[1] - 1] ^= 1;
    assert_int_equal(ibp_certificate_verify_checked(f->roster, 2, &f->claim,
                                                    (const uint8_t *const *)f->stmt, f->len, f->n,
                                                    &r),
                     IBP_OK);
    assert_true(r.certified);
    full = verify(f, 2);
    assert_false(full.certified);
    assert_int_equal(full.by_verdict[IBP_CERT_BAD_SIGNATURE], 1);
}

static void test_unknown_signer_and_wrong_type(void **state)
{
    struct fixture *f = *state;
    char path[4200];
    ibp_err err;
    ibp_signer *ghost = NULL;
    test_path(path, sizeof path, f->dir, "ghost");
    assert_int_equal(ibp_signer_new("rep9", &f->stranger_key, path, &ghost, &err), IBP_OK);
    add(f, ghost, &f->good);
    ibp_signer_free(ghost);
    /* A consensus node's heartbeat is signed, but is no statement. */
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    hb.epoch = 7;
    assert_int_equal(ibp_signer_seal(f->rep[1], IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                     &hb.base, 1, &f->stmt[f->n], &f->len[f->n], NULL, &err),
                     IBP_OK);
    f->n++;
    ibp_certificate_result r = verify(f, 1);
    assert_false(r.certified);
    assert_int_equal(r.signers, 0);
    assert_int_equal(r.by_verdict[IBP_CERT_UNKNOWN_SIGNER], 1);
    assert_int_equal(r.by_verdict[IBP_CERT_WRONG_TYPE], 1);
}

static void test_quorum_rule(void **state)
{
    struct fixture *f = *state;
    size_t q = 0;
    bool single = true;
    ibp_err err;
    assert_int_equal(ibp_certificate_consensus_nodes(f->roster), 3);
    assert_int_equal(ibp_certificate_quorum(f->roster, 0, &q, &single, &err), IBP_OK);
    assert_int_equal(q, 2);
    assert_false(single);
    assert_int_equal(ibp_certificate_quorum(f->roster, 3, &q, NULL, &err), IBP_OK);
    assert_int_equal(q, 3);
    assert_int_equal(ibp_certificate_quorum(f->roster, 4, &q, NULL, &err), IBP_E_CONFIG);
    assert_int_equal(ibp_certificate_quorum(f->roster, 1, &q, NULL, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, "one stolen key"));
    /* One consensus node: quorum 1, said so. */
    ibp_roster *one = NULL;
    assert_int_equal(ibp_roster_new(&one), IBP_OK);
    assert_int_equal(ibp_certificate_quorum(one, 0, &q, NULL, &err), IBP_E_CONFIG);
    assert_int_equal(ibp_roster_add(one, "rep1", f->rep_key[0].pk, IBP_ROLE_CONSENSUS, &err),
                     IBP_OK);
    assert_int_equal(ibp_certificate_quorum(one, 0, &q, &single, &err), IBP_OK);
    assert_int_equal(q, 1);
    assert_true(single);
    ibp_roster_free(one);
    /* The verifier refuses quorum 0. */
    ibp_certificate_result r;
    assert_int_equal(ibp_certificate_verify(f->roster, 0, &f->claim, NULL, NULL, 0, &r),
                     IBP_E_INVAL);
}

static void test_certificate_bytes(void **state)
{
    struct fixture *f = *state;
    add(f, f->rep[0], &f->good);
    add(f, f->rep[2], &f->good);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(
        ibp_certificate_encode(7, (const uint8_t *const *)f->stmt, f->len, f->n, &buf, &len),
        IBP_OK);
    ibp_certificate_blob b;
    assert_int_equal(ibp_certificate_decode(buf, len, &b), IBP_OK);
    assert_int_equal(b.epoch, 7);
    assert_int_equal(b.n, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(b.lens[i], f->len[i]);
        assert_memory_equal(b.statements[i], f->stmt[i], f->len[i]);
    }
    ibp_certificate_result r;
    assert_int_equal(ibp_certificate_verify(f->roster, 2, &f->claim,
                                            (const uint8_t *const *)b.statements, b.lens, b.n, &r),
                     IBP_OK);
    assert_true(r.certified);
    ibp_certificate_blob_free(&b);
    ibp_certificate_blob_free(&b); /* zeroed: a second free is harmless */
    /* An empty certificate decodes to nothing. */
    free(buf);
    assert_int_equal(ibp_certificate_encode(3, NULL, NULL, 0, &buf, &len), IBP_OK);
    assert_int_equal(ibp_certificate_decode(buf, len, &b), IBP_OK);
    assert_int_equal(b.n, 0);
    ibp_certificate_blob_free(&b);
    free(buf);
    assert_int_equal(ibp_certificate_decode((const uint8_t *)"\x12\xff", 2, &b),
                     IBP_E_PAYLOAD_DECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_statement_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_of_honest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_signer_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_and_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_signer_and_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quorum_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certificate_bytes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
