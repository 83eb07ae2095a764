/* Unit tests: sealing and every verification path of the signed envelope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/envelope.h"
#include "ibp/log.h"
#include "test_util.h"

struct fixture {
    char *dir;
    ibp_key mon_key, admin_key, stranger_key;
    ibp_roster *roster;
    ibp_signer *mon;      /* monitor "mon1" */
    ibp_signer *admin;    /* admin "ops" */
    ibp_signer *stranger; /* "ghost", not in the roster */
    ibp_verifier *verifier;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[4200];
    ibp_err err;
    ibp_log_set_level(IBP_LOG_OFF);
    f->dir = test_tmpdir();
    assert_int_equal(ibp_key_generate(&f->mon_key), IBP_OK);
    assert_int_equal(ibp_key_generate(&f->admin_key), IBP_OK);
    assert_int_equal(ibp_key_generate(&f->stranger_key), IBP_OK);
    assert_int_equal(ibp_roster_new(&f->roster), IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "mon1", f->mon_key.pk, IBP_ROLE_MONITOR, &err),
                     IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "ops", f->admin_key.pk, IBP_ROLE_ADMIN, &err),
                     IBP_OK);
    test_path(path, sizeof path, f->dir, "mon1.seq");
    assert_int_equal(ibp_signer_new("mon1", &f->mon_key, path, &f->mon, &err), IBP_OK);
    test_path(path, sizeof path, f->dir, "ops.seq");
    assert_int_equal(ibp_signer_new("ops", &f->admin_key, path, &f->admin, &err), IBP_OK);
    test_path(path, sizeof path, f->dir, "ghost.seq");
    assert_int_equal(ibp_signer_new("ghost", &f->stranger_key, path, &f->stranger, &err), IBP_OK);
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &f->verifier), IBP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibp_verifier_free(f->verifier);
    ibp_signer_free(f->mon);
    ibp_signer_free(f->admin);
    ibp_signer_free(f->stranger);
    ibp_roster_free(f->roster);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

/* Seals a one-observation batch from signer s. */
static void seal_batch(ibp_signer *s, uint8_t **out, size_t *len, uint64_t *seq)
{
    Ibp__V1__ResultKey key = IBP__V1__RESULT_KEY__INIT;
    key.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    key.check_name = "wss";
    key.member = "Stake Plus";
    key.domain = "rpc.ibp.network";
    key.endpoint = "wss://rpc.ibp.network/polkadot";
    Ibp__V1__Observation obs = IBP__V1__OBSERVATION__INIT;
    obs.key = &key;
    obs.status = IBP__V1__STATUS__STATUS_DOWN;
    obs.check_time_ms = 1700000000000;
    obs.error = "timeout";
    obs.data_json = "{\"latency_ms\":5000}";
    Ibp__V1__Observation *list[1] = {&obs};
    Ibp__V1__ObservationBatch batch = IBP__V1__OBSERVATION_BATCH__INIT;
    batch.batch_seq = 7;
    batch.n_observations = 1;
    batch.observations = list;
    ibp_err err;
    ibp_status st = ibp_signer_seal(s, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                                    &batch.base, 1700000000123, out, len, seq, &err);
    assert_int_equal(st, IBP_OK);
}

static void test_seal_and_verify(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg;
    size_t len;
    uint64_t seq;
    ibp_verified vm = {0};
    ibp_err err;
    seal_batch(f->mon, &msg, &len, &seq);
    assert_int_equal(seq, 1);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_OK);
    assert_string_equal(vm.envelope->signer, "mon1");
    assert_int_equal(vm.envelope->seq, 1);
    assert_int_equal(vm.envelope->created_ms, 1700000000123);
    assert_ptr_equal(vm.signer, ibp_roster_find(f->roster, "mon1"));
    Ibp__V1__ObservationBatch *b = (Ibp__V1__ObservationBatch *)vm.payload;
    assert_int_equal(b->batch_seq, 7);
    assert_int_equal(b->n_observations, 1);
    assert_string_equal(b->observations[0]->key->member, "Stake Plus");
    assert_string_equal(b->observations[0]->error, "timeout");
    assert_int_equal(ibp_verifier_accepted(f->verifier), 1);
    assert_int_equal(ibp_verifier_last_seq(f->verifier, "mon1"), 1);
    ibp_verified_clear(&vm);
    free(msg);
}

static void test_too_large(void **state)
{
    struct fixture *f = *state;
    ibp_verifier_opts opts;
    ibp_verifier *small;
    uint8_t *msg;
    size_t len;
    ibp_verified vm = {0};
    ibp_err err;
    ibp_verifier_opts_init(&opts);
    opts.max_message_bytes = 64;
    assert_int_equal(ibp_verifier_new(f->roster, &opts, &small), IBP_OK);
    seal_batch(f->mon, &msg, &len, NULL);
    assert_true(len > 64);
    assert_int_equal(ibp_verifier_check(small, msg, len, &vm, &err), IBP_E_TOO_LARGE);
    assert_int_equal(err.code, IBP_E_TOO_LARGE);
    assert_int_equal(ibp_verifier_rejected(small, IBP_E_TOO_LARGE), 1);
    assert_null(vm.envelope);
    ibp_verifier_free(small);
    free(msg);
}

static void test_garbage_does_not_decode(void **state)
{
    struct fixture *f = *state;
    ibp_verified vm = {0};
    ibp_err err;
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    assert_int_equal(ibp_verifier_check(f->verifier, junk, sizeof junk, &vm, &err), IBP_E_DECODE);
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_DECODE), 1);
    /* Truncating a valid message never passes either. */
    uint8_t *msg;
    size_t len;
    seal_batch(f->mon, &msg, &len, NULL);
    for (size_t cut = 0; cut < len; cut++) {
        ibp_status st = ibp_verifier_check_stateless(f->verifier, msg, cut, &vm, &err);
        assert_int_not_equal(st, IBP_OK);
    }
    free(msg);
}

static void test_unknown_signer(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg;
    size_t len;
    ibp_verified vm = {0};
    ibp_err err;
    seal_batch(f->stranger, &msg, &len, NULL);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_E_UNKNOWN_SIGNER);
    assert_non_null(strstr(err.msg, "ghost"));
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_UNKNOWN_SIGNER), 1);
    free(msg);
}

/* Re-encodes a sealed envelope after fn has changed it. */
static void tamper(const uint8_t *msg, size_t len, void (*fn)(Ibp__V1__Envelope *), uint8_t **out,
                   size_t *out_len)
{
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, msg);
    assert_non_null(env);
    fn(env);
    *out_len = ibp__v1__envelope__get_packed_size(env);
    *out = malloc(*out_len);
    ibp__v1__envelope__pack(env, *out);
    ibp__v1__envelope__free_unpacked(env, NULL);
}

static void flip_payload_bit(Ibp__V1__Envelope *env)
{
    env->payload.data[env->payload.len / 2] ^= 0x01;
}
static void bump_seq(Ibp__V1__Envelope *env)
{
    env->seq += 100;
}
static void change_time(Ibp__V1__Envelope *env)
{
    env->created_ms += 1;
}
static void change_type(Ibp__V1__Envelope *env)
{
    env->type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT;
}
static void claim_admin(Ibp__V1__Envelope *env)
{
    env->signer = "ops"; /* the caller restores the original before freeing */
}
static void short_signature(Ibp__V1__Envelope *env)
{
    env->signature.len = 10;
}

static void test_bad_signature(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg, *bad;
    size_t len, bad_len;
    ibp_verified vm = {0};
    ibp_err err;
    void (*mutations[])(Ibp__V1__Envelope *) = {flip_payload_bit, bump_seq, change_time,
                                                change_type, short_signature};
    seal_batch(f->mon, &msg, &len, NULL);
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        tamper(msg, len, mutations[i], &bad, &bad_len);
        ibp_status st = ibp_verifier_check(f->verifier, bad, bad_len, &vm, &err);
        if (st != IBP_E_BAD_SIGNATURE)
            fail_msg("mutation %zu: expected IBP_E_BAD_SIGNATURE, got %s (%s)", i,
                     ibp_status_name(st), err.msg);
        free(bad);
    }
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_BAD_SIGNATURE), 5);
    /* The untouched message still verifies: rejections did not advance the sequence. */
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_OK);
    ibp_verified_clear(&vm);
    free(msg);
}

static void test_signer_swap_is_bad_signature(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg;
    size_t len;
    ibp_verified vm = {0};
    ibp_err err;
    seal_batch(f->mon, &msg, &len, NULL);
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(NULL, len, msg);
    char *orig = env->signer;
    claim_admin(env);
    size_t blen = ibp__v1__envelope__get_packed_size(env);
    uint8_t *bad = malloc(blen);
    ibp__v1__envelope__pack(env, bad);
    env->signer = orig;
    ibp__v1__envelope__free_unpacked(env, NULL);
    assert_int_equal(ibp_verifier_check(f->verifier, bad, blen, &vm, &err), IBP_E_BAD_SIGNATURE);
    free(bad);
    free(msg);
}

static void test_role_denied(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg;
    size_t len;
    ibp_verified vm = {0};
    ibp_err err;
    /* An admin may not send observations ... */
    seal_batch(f->admin, &msg, &len, NULL);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_E_ROLE_DENIED);
    assert_non_null(strstr(err.msg, "ObservationBatch"));
    free(msg);
    /* ... and a monitor may not send overrides or snapshots. */
    Ibp__V1__MemberOverride ov = IBP__V1__MEMBER_OVERRIDE__INIT;
    ov.member = "Amforc";
    ov.disabled = 1;
    assert_int_equal(ibp_signer_seal(f->mon, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE,
                                     &ov.base, 1, &msg, &len, NULL, &err),
                     IBP_OK);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_E_ROLE_DENIED);
    free(msg);
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_ROLE_DENIED), 2);
    /* The admin's override is fine. */
    assert_int_equal(ibp_signer_seal(f->admin, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE,
                                     &ov.base, 1, &msg, &len, NULL, &err),
                     IBP_OK);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_OK);
    assert_string_equal(((Ibp__V1__MemberOverride *)vm.payload)->member, "Amforc");
    ibp_verified_clear(&vm);
    free(msg);
}

static void test_replay_and_older(void **state)
{
    struct fixture *f = *state;
    uint8_t *m1, *m2;
    size_t l1, l2;
    uint64_t s1, s2;
    ibp_verified vm = {0};
    ibp_err err;
    seal_batch(f->mon, &m1, &l1, &s1);
    seal_batch(f->mon, &m2, &l2, &s2);
    assert_true(s2 > s1);
    assert_int_equal(ibp_verifier_check(f->verifier, m2, l2, &vm, &err), IBP_OK);
    ibp_verified_clear(&vm);
    /* The same message again: replay. */
    assert_int_equal(ibp_verifier_check(f->verifier, m2, l2, &vm, &err), IBP_E_REPLAY);
    /* An older one arriving late: also refused. */
    assert_int_equal(ibp_verifier_check(f->verifier, m1, l1, &vm, &err), IBP_E_REPLAY);
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_REPLAY), 2);
    /* The stateless check (for decode tools) accepts it. */
    assert_int_equal(ibp_verifier_check_stateless(f->verifier, m1, l1, &vm, &err), IBP_OK);
    ibp_verified_clear(&vm);
    /* Restoring state after a restart keeps refusing old messages. */
    ibp_verifier *fresh;
    assert_int_equal(ibp_verifier_new(f->roster, NULL, &fresh), IBP_OK);
    assert_int_equal(ibp_verifier_set_last_seq(fresh, "mon1", s2), IBP_OK);
    assert_int_equal(ibp_verifier_check(fresh, m2, l2, &vm, &err), IBP_E_REPLAY);
    assert_int_equal(ibp_verifier_set_last_seq(fresh, "ghost", 1), IBP_E_UNKNOWN_SIGNER);
    ibp_verifier_free(fresh);
    free(m1);
    free(m2);
}

static void test_payload_does_not_decode(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg;
    size_t len;
    ibp_verified vm = {0};
    ibp_err err;
    /* A correctly signed envelope whose payload is not an ObservationBatch. */
    const uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    assert_int_equal(ibp_signer_seal_bytes(f->mon,
                                           IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
                                           junk, sizeof junk, 1, &msg, &len, NULL, &err),
                     IBP_OK);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_E_PAYLOAD_DECODE);
    assert_int_equal(ibp_verifier_rejected(f->verifier, IBP_E_PAYLOAD_DECODE), 1);
    free(msg);
    /* An unknown payload type, signed by hand. */
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    uint8_t sig[IBP_SIGNATURE_BYTES];
    env.signer = "mon1";
    env.seq = 1000;
    env.type = 99;
    env.payload.data = (uint8_t *)junk;
    env.payload.len = sizeof junk;
    assert_int_equal(ibp_envelope_sign_fields(&env, &f->mon_key, sig), IBP_OK);
    env.signature.data = sig;
    env.signature.len = sizeof sig;
    len = ibp__v1__envelope__get_packed_size(&env);
    msg = malloc(len);
    ibp__v1__envelope__pack(&env, msg);
    assert_int_equal(ibp_verifier_check(f->verifier, msg, len, &vm, &err), IBP_E_PAYLOAD_DECODE);
    free(msg);
}

static void test_every_payload_type_round_trips(void **state)
{
    struct fixture *f = *state;
    const ibp_payload_type types[] = {
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH,
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE,
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT,
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT,
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH,
        IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT,
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const char *name = ibp_payload_type_name(types[i]);
        assert_non_null(name);
        assert_int_equal(ibp_payload_type_parse(name), types[i]);
        assert_non_null(ibp_payload_descriptor(types[i]));
        assert_int_not_equal(ibp_payload_allowed_roles(types[i]), 0);
    }
    assert_null(ibp_payload_type_name(99));
    assert_int_equal(ibp_payload_type_parse("Nope"), 0);
    assert_int_equal(ibp_payload_allowed_roles(IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH),
                     IBP_ROLE_DNS);
    assert_int_equal(ibp_payload_allowed_roles(IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT),
                     IBP_ROLE_CONSENSUS);
    (void)f;
}

static void test_seal_rejects_mismatched_payload(void **state)
{
    struct fixture *f = *state;
    uint8_t *msg = NULL;
    size_t len;
    ibp_err err;
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    assert_int_equal(ibp_signer_seal(f->mon, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, &hb.base, 1,
                                     &msg, &len, NULL, &err),
                     IBP_E_INVAL);
    assert_null(msg);
}

static void test_sequence_survives_restart(void **state)
{
    struct fixture *f = *state;
    char path[4200];
    uint8_t *msg;
    size_t len;
    uint64_t seq_before, seq_after;
    ibp_err err;
    test_path(path, sizeof path, f->dir, "restart.seq");
    ibp_signer *s;
    assert_int_equal(ibp_signer_new("mon1", &f->mon_key, path, &s, &err), IBP_OK);
    for (int i = 0; i < 5; i++) {
        seal_batch(s, &msg, &len, &seq_before);
        free(msg);
    }
    ibp_signer_free(s); /* a crash: nothing flushed beyond the reservation */
    assert_int_equal(ibp_signer_new("mon1", &f->mon_key, path, &s, &err), IBP_OK);
    seal_batch(s, &msg, &len, &seq_after);
    free(msg);
    ibp_signer_free(s);
    assert_true(seq_after > seq_before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seal_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_does_not_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signer_swap_is_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_and_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_payload_does_not_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_payload_type_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_rejects_mismatched_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequence_survives_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
