/*
 * Unit tests: a replica's state as bytes (ibp/replica_state.h: encode and
 * decode apart from the file, import, sequences) and the pure rules that
 * judge another replica's checkpoint (ibp/checkpoint.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/checkpoint.h"
#include "ibp/log.h"
#include "ibp/replica_state.h"
#include "ibp/subject.h"
#include "test_util.h"

struct fixture {
    char *dir;
    ibp_key mon_key, rep_key;
    ibp_roster *roster;
    ibp_signer *mon, *rep;
    ibp_verifier *v;
    ibp_vote_config cfg;
    ibp_vote *e; /* mon1 and mon2 made one key official (epoch 1) */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[4200];
    ibp_err err;
    ibp_log_set_level(IBP_LOG_OFF);
    f->dir = test_tmpdir();
    assert_int_equal(ibp_key_generate(&f->mon_key), IBP_OK);
    assert_int_equal(ibp_key_generate(&f->rep_key), IBP_OK);
    assert_int_equal(ibp_roster_new(&f->roster), IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "mon1", f->mon_key.pk, IBP_ROLE_MONITOR, &err),
                     IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "rep1", f->rep_key.pk, IBP_ROLE_CONSENSUS, &err),
                     IBP_OK);
    test_path(path, sizeof path, f->dir, "mon1.seq");
    assert_int_equal(ibp_signer_new("mon1", &f->mon_key, path, &f->mon, &err), IBP_OK);
    test_path(path, sizeof path, f->dir, "rep1.seq");
    assert_int_equal(ibp_signer_new("rep1", &f->rep_key, path, &f->rep, &err), IBP_OK);
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &f->v), IBP_OK);
    assert_int_equal(ibp_verifier_set_last_seq(f->v, "mon1", 41), IBP_OK);

    ibp_vote_config_init(&f->cfg);
    assert_int_equal(ibp_vote_new(&f->cfg, &f->e), IBP_VOTE_OK);
    ibp_vote_obs o = {{IBP_VOTE_SITE, "ping", "Stake Plus", "", "", false},
                      IBP_VOTE_DOWN,
                      1700000000000,
                      "timeout",
                      ""};
    for (uint64_t seq = 1; seq <= 2; seq++) {
        ibp_vote_msg m = {.kind = IBP_VOTE_MSG_OBSERVATION_BATCH,
                          .signer = seq == 1 ? "mon1" : "mon2",
                          .local_seq = seq + 10,
                          .stream_ms = 1700000000000 + (int64_t)seq,
                          .batch_seq = seq,
                          .obs = &o,
                          .nobs = 1};
        ibp_vote_update u;
        assert_int_equal(ibp_vote_apply(f->e, &m, &u), IBP_VOTE_OK);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibp_vote_free(f->e);
    ibp_verifier_free(f->v);
    ibp_signer_free(f->mon);
    ibp_signer_free(f->rep);
    ibp_roster_free(f->roster);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static Ibp__V1__ReplicaState *encode_decode(struct fixture *f)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    ibp_err err;
    Ibp__V1__ReplicaState *rs = NULL;
    assert_int_equal(ibp_replica_state_encode(f->e, f->v, f->roster, NULL, &buf, &len, &err), IBP_OK);
    assert_int_equal(ibp_replica_state_decode(buf, len, &rs, &err), IBP_OK);
    free(buf);
    return rs;
}

/* ---- the state as bytes ------------------------------------------------------ */

static void test_state_round_trip(void **state)
{
    struct fixture *f = *state;
    ibp_err err;
    Ibp__V1__ReplicaState *rs = encode_decode(f);
    ibp_vote_info a, b;
    ibp_vote_get_info(f->e, &a);
    assert_int_equal(rs->epoch, 1);
    assert_int_equal(rs->local_seq, 12);
    assert_int_equal(rs->n_signer_seqs, 1);
    assert_string_equal(rs->signer_seqs[0]->signer, "mon1");

    ibp_vote *copy = NULL;
    assert_int_equal(ibp_replica_state_import(rs, &f->cfg, &copy, &err), IBP_OK);
    ibp_vote_get_info(copy, &b);
    assert_int_equal(b.epoch, a.epoch);
    assert_int_equal(b.local_seq, a.local_seq);
    assert_memory_equal(b.digest, a.digest, IBP_VOTE_DIGEST_SIZE);
    ibp_verifier *v2;
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &v2), IBP_OK);
    ibp_replica_state_set_seqs(rs, v2);
    assert_int_equal(ibp_verifier_last_seq(v2, "mon1"), 41);
    ibp_verifier_free(v2);
    ibp_vote_free(copy);

    /* The file holds the same bytes. */
    char path[4200];
    test_path(path, sizeof path, f->dir, "consensus.state");
    assert_int_equal(ibp_replica_state_save(path, f->e, f->v, f->roster, NULL, &err), IBP_OK);
    ibp_verifier *v3;
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &v3), IBP_OK);
    assert_int_equal(ibp_replica_state_load(path, &f->cfg, &copy, v3, NULL, &err), IBP_OK);
    ibp_vote_get_info(copy, &b);
    assert_memory_equal(b.digest, a.digest, IBP_VOTE_DIGEST_SIZE);
    assert_int_equal(ibp_verifier_last_seq(v3, "mon1"), 41);
    ibp_verifier_free(v3);
    ibp_vote_free(copy);

    /* The digest of the epoch before, when the replica knew it, comes back;
     * a file without one says it is not known. */
    ibp_replica_prev prev = {true, {0}}, back;
    memset(prev.digest, 0xab, sizeof prev.digest);
    assert_int_equal(ibp_replica_state_save(path, f->e, f->v, f->roster, &prev, &err), IBP_OK);
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &v3), IBP_OK);
    assert_int_equal(ibp_replica_state_load(path, &f->cfg, &copy, v3, &back, &err), IBP_OK);
    assert_true(back.known);
    assert_memory_equal(back.digest, prev.digest, sizeof prev.digest);
    ibp_verifier_free(v3);
    ibp_vote_free(copy);
    assert_int_equal(ibp_replica_state_save(path, f->e, f->v, f->roster, NULL, &err), IBP_OK);
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &v3), IBP_OK);
    assert_int_equal(ibp_replica_state_load(path, &f->cfg, &copy, v3, &back, &err), IBP_OK);
    assert_false(back.known);
    ibp_verifier_free(v3);
    ibp_vote_free(copy);
    ibp__v1__replica_state__free_unpacked(rs, NULL);
}

static void test_state_refused(void **state)
{
    struct fixture *f = *state;
    ibp_err err;
    Ibp__V1__ReplicaState *rs = NULL;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    assert_int_equal(ibp_replica_state_decode(garbage, sizeof garbage, &rs, &err),
                     IBP_E_PAYLOAD_DECODE);
    assert_null(rs);

    rs = encode_decode(f);
    ibp_vote *copy = NULL;
    /* A digest that is not the entries' own: the import recomputes it. */
    rs->digest.data[0] ^= 1;
    assert_int_equal(ibp_replica_state_import(rs, &f->cfg, &copy, &err), IBP_E_CONFIG);
    assert_null(copy);
    printf("tampered digest: %s\n", err.msg);
    rs->digest.data[0] ^= 1;
    /* Another version. */
    rs->version = 2;
    assert_int_equal(ibp_replica_state_check(rs, &err), IBP_E_PAYLOAD_DECODE);
    assert_int_equal(ibp_replica_state_import(rs, &f->cfg, &copy, &err), IBP_E_CONFIG);
    ibp__v1__replica_state__free_unpacked(rs, NULL);

    /* A state file that does not decode is the operator's (IBP_E_CONFIG). */
    char path[4200];
    test_path(path, sizeof path, f->dir, "bad.state");
    test_write(path, "not a state", 0600);
    ibp_verifier *v;
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &v), IBP_OK);
    assert_int_equal(ibp_replica_state_load(path, &f->cfg, &copy, v, NULL, &err), IBP_E_CONFIG);
    assert_non_null(strstr(err.msg, path));
    test_path(path, sizeof path, f->dir, "missing.state");
    assert_int_equal(ibp_replica_state_load(path, &f->cfg, &copy, v, NULL, &err), IBP_E_NOT_FOUND);
    ibp_verifier_free(v);
}

/* ---- the rules ------------------------------------------------------------------- */

/* Seals the fixture's state as a checkpoint signed by s and verifies it (stateless). */
static ibp_status seal_verify(struct fixture *f, ibp_signer *s, ibp_verified *vm)
{
    uint8_t *buf = NULL, *sealed = NULL;
    size_t len = 0, slen = 0;
    ibp_err err;
    assert_int_equal(ibp_replica_state_encode(f->e, f->v, f->roster, NULL, &buf, &len, &err), IBP_OK);
    assert_int_equal(ibp_signer_seal_bytes(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT, buf,
                                           len, 1, &sealed, &slen, NULL, &err),
                     IBP_OK);
    ibp_status st = ibp_verifier_check_stateless(f->v, sealed, slen, vm, &err);
    free(buf);
    free(sealed);
    return st;
}

static void test_envelope_rules(void **state)
{
    struct fixture *f = *state;
    ibp_verified vm = {0};
    assert_int_equal(seal_verify(f, f->rep, &vm), IBP_OK);
    assert_int_equal(ibp_checkpoint_check_envelope(&vm, "ibp.consensus.checkpoint.rep1"),
                     IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_envelope(&vm, "ibp.consensus.checkpoint.rep2"),
                     IBP_CHECKPOINT_WRONG_SUBJECT);
    assert_int_equal(ibp_checkpoint_check_envelope(&vm, NULL), IBP_CHECKPOINT_WRONG_SUBJECT);
    Ibp__V1__ReplicaState *rs = (Ibp__V1__ReplicaState *)vm.payload;
    rs->version = 9;
    assert_int_equal(ibp_checkpoint_check_envelope(&vm, "ibp.consensus.checkpoint.rep1"),
                     IBP_CHECKPOINT_BAD_STATE);
    rs->version = 1;
    rs->local_seq = 0;
    assert_int_equal(ibp_checkpoint_check_envelope(&vm, "ibp.consensus.checkpoint.rep1"),
                     IBP_CHECKPOINT_EMPTY);
    ibp_verified_clear(&vm);

    /* Only consensus nodes may sign a checkpoint: the verifier refuses a monitor's. */
    assert_int_equal(seal_verify(f, f->mon, &vm), IBP_E_ROLE_DENIED);
    /* And a signed message of another type on the subject is not one. */
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    uint8_t *sealed = NULL;
    size_t slen = 0;
    ibp_err err;
    assert_int_equal(ibp_signer_seal(f->rep, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                     &hb.base, 1, &sealed, &slen, NULL, &err),
                     IBP_OK);
    assert_int_equal(ibp_verifier_check_stateless(f->v, sealed, slen, &vm, &err), IBP_OK);
    assert_int_equal(ibp_checkpoint_check_envelope(&vm, "ibp.consensus.checkpoint.rep1"),
                     IBP_CHECKPOINT_NOT_CONSENSUS);
    ibp_verified_clear(&vm);
    free(sealed);
    assert_int_equal(ibp_checkpoint_check_envelope(NULL, "x"), IBP_CHECKPOINT_BAD_ENVELOPE);
}

static void test_local_rule(void **state)
{
    (void)state;
    /* LOCAL holds 1..100: anything up to 100 is complete after it. */
    assert_int_equal(ibp_checkpoint_check_local(50, 1, 100), IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_local(100, 1, 100), IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_local(101, 1, 100), IBP_CHECKPOINT_LOCAL_GONE);
    /* LOCAL holds 51..100: 50 is the last it may cover, 49 missed message 50. */
    assert_int_equal(ibp_checkpoint_check_local(50, 51, 100), IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_local(49, 51, 100), IBP_CHECKPOINT_LOCAL_GONE);
    /* Everything expired (first = last + 1): only a checkpoint of the last will do. */
    assert_int_equal(ibp_checkpoint_check_local(100, 101, 100), IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_local(99, 101, 100), IBP_CHECKPOINT_LOCAL_GONE);

    assert_true(ibp_checkpoint_may_replay_all(0));
    assert_true(ibp_checkpoint_may_replay_all(1));
    assert_false(ibp_checkpoint_may_replay_all(2));
    assert_true(ibp_checkpoint_newer(3, 1, 2, 99));
    assert_true(ibp_checkpoint_newer(3, 10, 3, 9));
    assert_false(ibp_checkpoint_newer(3, 9, 3, 9));
    assert_false(ibp_checkpoint_newer(2, 99, 3, 1));
}

static void test_digest_rule(void **state)
{
    (void)state;
    uint8_t d[IBP_VOTE_DIGEST_SIZE];
    memset(d, 7, sizeof d);
    ibp_chain_msg snap;
    memset(&snap, 0, sizeof snap);
    snap.valid = true;
    snap.epoch = 5;
    snap.digest_len = sizeof d;
    memcpy(snap.digest, d, sizeof d);
    assert_int_equal(ibp_checkpoint_check_digest(5, d, sizeof d, &snap), IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_digest(5, d, sizeof d, NULL), IBP_CHECKPOINT_NO_SNAPSHOT);
    assert_int_equal(ibp_checkpoint_check_digest(6, d, sizeof d, &snap),
                     IBP_CHECKPOINT_NO_SNAPSHOT);
    snap.valid = false;
    assert_int_equal(ibp_checkpoint_check_digest(5, d, sizeof d, &snap),
                     IBP_CHECKPOINT_NO_SNAPSHOT);
    snap.valid = true;
    snap.digest[3] ^= 1;
    assert_int_equal(ibp_checkpoint_check_digest(5, d, sizeof d, &snap),
                     IBP_CHECKPOINT_DIGEST_MISMATCH);
    assert_int_equal(ibp_checkpoint_check_digest(5, d, 31, &snap), IBP_CHECKPOINT_BAD_STATE);
    /* Epoch 0 has no snapshot: the empty state's digest. */
    assert_int_equal(ibp_checkpoint_check_digest(0, ibp_vote_empty_digest, IBP_VOTE_DIGEST_SIZE,
                                                 NULL),
                     IBP_CHECKPOINT_OK);
    assert_int_equal(ibp_checkpoint_check_digest(0, d, sizeof d, NULL),
                     IBP_CHECKPOINT_DIGEST_MISMATCH);
    for (int v = 0; v < IBP_CHECKPOINT_VERDICT_COUNT; v++)
        assert_true(strlen(ibp_checkpoint_verdict_text((ibp_checkpoint_verdict)v)) > 0);
    assert_string_equal(ibp_checkpoint_verdict_text(IBP_CHECKPOINT_VERDICT_COUNT), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_envelope_rules, setup, teardown),
        cmocka_unit_test(test_local_rule),
        cmocka_unit_test(test_digest_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
