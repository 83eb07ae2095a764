/* Unit tests: signing and every verification path of signed status messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/decode_json.h"
#include "ibp/envelope.h"
#include "ibp/log.h"
#include "ibp/status_sig.h"
#include "test_util.h"

#define SUBJECT "ibp.status.Alpha~20Nodes.endpoint.wss.rpc~2Eexample.wss~3A~2F~2Frpc~2Eexample.v4"
#define BODY "{\"member\":\"Alpha Nodes\",\"status\":\"down\",\"epoch\":7}"

struct fixture {
    char *dir;
    ibp_key rep_key, mon_key, other_key;
    ibp_roster *roster;
    ibp_signer *rep; /* "rep1", consensus */
    ibp_signer *mon; /* "mon1", monitor only */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char path[4200];
    ibp_err err;
    ibp_log_set_level(IBP_LOG_OFF);
    f->dir = test_tmpdir();
    assert_int_equal(ibp_key_generate(&f->rep_key), IBP_OK);
    assert_int_equal(ibp_key_generate(&f->mon_key), IBP_OK);
    assert_int_equal(ibp_key_generate(&f->other_key), IBP_OK);
    assert_int_equal(ibp_roster_new(&f->roster), IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "rep1", f->rep_key.pk,
                                    IBP_ROLE_CONSENSUS | IBP_ROLE_MONITOR, &err),
                     IBP_OK);
    assert_int_equal(ibp_roster_add(f->roster, "mon1", f->mon_key.pk, IBP_ROLE_MONITOR, &err),
                     IBP_OK);
    test_path(path, sizeof path, f->dir, "rep1.seq");
    assert_int_equal(ibp_signer_new("rep1", &f->rep_key, path, &f->rep, &err), IBP_OK);
    test_path(path, sizeof path, f->dir, "mon1.seq");
    assert_int_equal(ibp_signer_new("mon1", &f->mon_key, path, &f->mon, &err), IBP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ibp_signer_free(f->rep);
    ibp_signer_free(f->mon);
    ibp_roster_free(f->roster);
    test_rmdir(f->dir);
    free(f);
    return 0;
}

static ibp_status verify(struct fixture *f, const char *subject, const char *signer,
                         const char *sig, const char *body, size_t len)
{
    ibp_err err = {0};
    ibp_status st = ibp_status_sig_verify(f->roster, subject, signer, sig, (const uint8_t *)body,
                                          len, NULL, &err);
    if (st != IBP_OK)
        assert_true(err.msg[0] != '\0'); /* every rejection says why */
    return st;
}

static void sign_rep(struct fixture *f, const char *subject, const char *body, size_t len,
                     char sig[IBP_STATUS_SIG_B64_SIZE])
{
    ibp_err err = {0};
    assert_int_equal(ibp_status_sig_sign(f->rep, subject, (const uint8_t *)body, len, sig, &err),
                     IBP_OK);
}

static void test_round_trip(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    ibp_err err = {0};
    const ibp_roster_node *node = NULL;
    sign_rep(f, SUBJECT, BODY, strlen(BODY), sig);
    assert_int_equal(strlen(sig), 88);
    assert_int_equal(ibp_status_sig_verify(f->roster, SUBJECT, "rep1", sig, (const uint8_t *)BODY,
                                           strlen(BODY), &node, &err),
                     IBP_OK);
    assert_non_null(node);
    assert_string_equal(node->id, "rep1");
    /* An empty body signs and verifies too. */
    sign_rep(f, SUBJECT, "", 0, sig);
    assert_int_equal(verify(f, SUBJECT, "rep1", sig, "", 0), IBP_OK);
    /* The signer path and the bare-key path give the same (deterministic) signature. */
    char a[IBP_STATUS_SIG_B64_SIZE], b[IBP_STATUS_SIG_B64_SIZE];
    sign_rep(f, SUBJECT, BODY, strlen(BODY), a);
    assert_int_equal(ibp_status_sig_sign_key(&f->rep_key, "rep1", SUBJECT, (const uint8_t *)BODY,
                                             strlen(BODY), b, &err),
                     IBP_OK);
    assert_string_equal(a, b);
}

/* The signing input as ibp/status_sig.h documents it, built here independently. */
static void test_documented_input(void **state)
{
    struct fixture *f = *state;
    char sig_b64[IBP_STATUS_SIG_B64_SIZE];
    sign_rep(f, SUBJECT, BODY, strlen(BODY), sig_b64);
    uint8_t sig[64];
    size_t sig_len = 0;
    assert_int_equal(sodium_base642bin(sig, sizeof sig, sig_b64, strlen(sig_b64), NULL, &sig_len,
                                       NULL, sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(sig_len, 64);
    uint8_t in[1024];
    size_t n = 0;
    memcpy(in, "ibp.v1.status\0", 14);
    n = 14;
    const char *signer = "rep1";
    uint32_t sl = (uint32_t)strlen(signer), jl = (uint32_t)strlen(SUBJECT);
    uint64_t bl = strlen(BODY);
    for (int i = 3; i >= 0; i--)
        in[n++] = (uint8_t)(sl >> (8 * i));
    memcpy(in + n, signer, sl);
    n += sl;
    for (int i = 3; i >= 0; i--)
        in[n++] = (uint8_t)(jl >> (8 * i));
    memcpy(in + n, SUBJECT, jl);
    n += jl;
    for (int i = 7; i >= 0; i--)
        in[n++] = (uint8_t)(bl >> (8 * i));
    crypto_generichash(in + n, 32, (const uint8_t *)BODY, bl, NULL, 0);
    n += 32;
    assert_int_equal(crypto_sign_verify_detached(sig, in, n, f->rep_key.pk), 0);
}

static void test_unsigned(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    sign_rep(f, SUBJECT, BODY, strlen(BODY), sig);
    assert_int_equal(verify(f, SUBJECT, NULL, NULL, BODY, strlen(BODY)), IBP_E_NOT_FOUND);
    assert_int_equal(verify(f, SUBJECT, "rep1", NULL, BODY, strlen(BODY)), IBP_E_NOT_FOUND);
    assert_int_equal(verify(f, SUBJECT, "rep1", "", BODY, strlen(BODY)), IBP_E_NOT_FOUND);
    assert_int_equal(verify(f, SUBJECT, NULL, sig, BODY, strlen(BODY)), IBP_E_NOT_FOUND);
    assert_int_equal(verify(f, SUBJECT, "", sig, BODY, strlen(BODY)), IBP_E_NOT_FOUND);
}

static void test_unknown_signer(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    ibp_err err = {0};
    assert_int_equal(ibp_status_sig_sign_key(&f->other_key, "ghost", SUBJECT, (const uint8_t *)BODY,
                                             strlen(BODY), sig, &err),
                     IBP_OK);
    assert_int_equal(verify(f, SUBJECT, "ghost", sig, BODY, strlen(BODY)), IBP_E_UNKNOWN_SIGNER);
    assert_int_equal(verify(f, SUBJECT, "a b\n", sig, BODY, strlen(BODY)), IBP_E_UNKNOWN_SIGNER);
}

static void test_bad_signature(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    ibp_err err = {0};
    /* rep1's id, another key. */
    assert_int_equal(ibp_status_sig_sign_key(&f->other_key, "rep1", SUBJECT, (const uint8_t *)BODY,
                                             strlen(BODY), sig, &err),
                     IBP_OK);
    assert_int_equal(verify(f, SUBJECT, "rep1", sig, BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
    /* Not base64, too short, too long, one bit off. */
    sign_rep(f, SUBJECT, BODY, strlen(BODY), sig);
    assert_int_equal(verify(f, SUBJECT, "rep1", "not base64!", BODY, strlen(BODY)),
                     IBP_E_BAD_SIGNATURE);
    assert_int_equal(verify(f, SUBJECT, "rep1", "AAAA", BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
    char longer[200];
    snprintf(longer, sizeof longer, "%sAAAA", sig);
    assert_int_equal(verify(f, SUBJECT, "rep1", longer, BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
    char flipped[IBP_STATUS_SIG_B64_SIZE];
    memcpy(flipped, sig, sizeof flipped);
    flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(f, SUBJECT, "rep1", flipped, BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
    /* The signature binds the signer: rep1's signature claimed by mon1. */
    assert_int_equal(verify(f, SUBJECT, "mon1", sig, BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
}

static void test_role_denied(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    ibp_err err = {0};
    assert_int_equal(
        ibp_status_sig_sign(f->mon, SUBJECT, (const uint8_t *)BODY, strlen(BODY), sig, &err),
        IBP_OK);
    assert_int_equal(verify(f, SUBJECT, "mon1", sig, BODY, strlen(BODY)), IBP_E_ROLE_DENIED);
}

static void test_changed_bytes(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE], subject[256], body[256];
    sign_rep(f, SUBJECT, BODY, strlen(BODY), sig);
    for (size_t i = 0; i < strlen(SUBJECT); i++) {
        snprintf(subject, sizeof subject, "%s", SUBJECT);
        subject[i] ^= 0x01;
        assert_int_equal(verify(f, subject, "rep1", sig, BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
    }
    for (size_t i = 0; i < strlen(BODY); i++) {
        memcpy(body, BODY, strlen(BODY));
        body[i] ^= 0x01;
        assert_int_equal(verify(f, SUBJECT, "rep1", sig, body, strlen(BODY)), IBP_E_BAD_SIGNATURE);
    }
    /* One byte more or less. */
    assert_int_equal(verify(f, SUBJECT, "rep1", sig, BODY, strlen(BODY) - 1), IBP_E_BAD_SIGNATURE);
    snprintf(body, sizeof body, "%s ", BODY);
    assert_int_equal(verify(f, SUBJECT, "rep1", sig, body, strlen(body)), IBP_E_BAD_SIGNATURE);
    snprintf(subject, sizeof subject, "%s.x", SUBJECT);
    assert_int_equal(verify(f, subject, "rep1", sig, BODY, strlen(BODY)), IBP_E_BAD_SIGNATURE);
}

/* Bytes that move between subject and body never keep a signature valid. */
static void test_split_ambiguity(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    sign_rep(f, "ibp.status.ab", "cd", 2, sig);
    assert_int_equal(verify(f, "ibp.status.ab", "rep1", sig, "cd", 2), IBP_OK);
    assert_int_equal(verify(f, "ibp.status.abc", "rep1", sig, "d", 1), IBP_E_BAD_SIGNATURE);
    assert_int_equal(verify(f, "ibp.status.a", "rep1", sig, "bcd", 3), IBP_E_BAD_SIGNATURE);
    assert_int_equal(verify(f, "ibp.status.abcd", "rep1", sig, "", 0), IBP_E_BAD_SIGNATURE);
}

/* A detached signature can never be made over an envelope's signing input. */
static void test_domains(void **state)
{
    struct fixture *f = *state;
    uint8_t sig[IBP_SIGNATURE_BYTES];
    const uint8_t msg[] = "x";
    assert_int_equal(ibp_signer_sign_detached(f->rep, "ibp.v1.envelope", msg, 1, sig), IBP_E_INVAL);
    assert_int_equal(ibp_signer_sign_detached(f->rep, "", msg, 1, sig), IBP_E_INVAL);
    assert_int_equal(ibp_signer_sign_detached(f->rep, NULL, msg, 1, sig), IBP_E_INVAL);
    assert_int_equal(ibp_signer_sign_detached(f->rep, IBP_STATUS_SIG_DOMAIN, msg, 1, sig), IBP_OK);
    /* Signing takes no envelope sequence number: the next seal gets seq 1. */
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    uint8_t *out = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    ibp_err err = {0};
    assert_int_equal(ibp_signer_seal(f->rep, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT,
                                     &hb.base, 1, &out, &len, &seq, &err),
                     IBP_OK);
    assert_int_equal(seq, 1);
    free(out);
}

/* `ibpctl decode` of a status message: verified only with roster, subject and headers. */
static void test_decode_json(void **state)
{
    struct fixture *f = *state;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    json_t *j = NULL;
    bool ok = true;
    ibp_err err = {0};
    const uint8_t *body = (const uint8_t *)BODY;
    sign_rep(f, SUBJECT, BODY, strlen(BODY), sig);
    assert_int_equal(
        ibp_decode_status_json(body, strlen(BODY), SUBJECT, "rep1", sig, f->roster, &j, &ok, &err),
        IBP_OK);
    assert_true(ok);
    assert_true(json_is_true(json_object_get(j, "verified")));
    assert_null(json_object_get(j, "reason"));
    assert_null(json_object_get(j, "status")); /* only under "payload" */
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "payload"), "status")),
                        "down");
    json_decref(j);
    struct {
        const char *subject, *signer, *sig;
        const ibp_roster *roster;
        const char *reason;
    } bad[] = {
        {SUBJECT, "rep1", sig, NULL, "IBP_E_INVAL: no roster"},
        {NULL, "rep1", sig, f->roster, "IBP_E_INVAL: the signature covers the subject"},
        {SUBJECT, NULL, NULL, f->roster, "IBP_E_NOT_FOUND: unsigned"},
        {SUBJECT, "ghost", sig, f->roster, "IBP_E_UNKNOWN_SIGNER"},
        {SUBJECT ".x", "rep1", sig, f->roster, "IBP_E_BAD_SIGNATURE"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ok = true;
        assert_int_equal(ibp_decode_status_json(body, strlen(BODY), bad[i].subject, bad[i].signer,
                                                bad[i].sig, bad[i].roster, &j, &ok, &err),
                         IBP_OK);
        assert_false(ok);
        assert_true(json_is_false(json_object_get(j, "verified")));
        const char *reason = json_string_value(json_object_get(j, "reason"));
        assert_non_null(reason);
        if (strncmp(reason, bad[i].reason, strlen(bad[i].reason)) != 0)
            fail_msg("case %zu: reason '%s', want '%s...'", i, reason, bad[i].reason);
        assert_null(json_object_get(j, "status"));
        json_decref(j);
    }
    /* Not a JSON object: IBP_E_DECODE (the caller tries an envelope). */
    j = (json_t *)1;
    assert_int_equal(ibp_decode_status_json((const uint8_t *)"[1]", 3, SUBJECT, "rep1", sig,
                                            f->roster, &j, &ok, &err),
                     IBP_E_DECODE);
    assert_null(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_documented_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsigned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_signer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_ambiguity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_json, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
