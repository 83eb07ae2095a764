/*
 * Unit tests: the ObservationBatch codec (proto/codec_observation_batch.c):
 * a batch packs and decodes back equal, from bytes and from a verified
 * envelope's parsed payload; the size estimate bounds what an observation
 * adds; each receive check refuses a malformed batch whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_observation_batch.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"

static const ibp_codec_observation obs[] = {
    {{IBP_CHECK_ENDPOINT, "wss", "Stake Plus", "rpc.example.net", "wss://rpc.example.net/dot",
      true},
     IBP_RESULT_DOWN,
     1700000000000,
     "timeout",
     "{\"ms\":12}"},
    {{IBP_CHECK_SITE, "ping", "Amforc", NULL, NULL, false}, IBP_RESULT_UP, 5, NULL, NULL},
};

static void test_round_trip(void **state)
{
    (void)state;
    ibp_codec_observation_batch b = {.batch_seq = 42, .full = true, .obs = obs, .nobs = 2};
    uint8_t *buf;
    size_t len;
    ibp_err err;
    assert_int_equal(ibp_codec_observation_batch_encode(&b, &buf, &len, &err), IBP_OK);
    assert_true(len <=
                32 + ibp_codec_observation_size(&obs[0]) + ibp_codec_observation_size(&obs[1]));

    ibp_codec_observation_batch d;
    if (ibp_codec_observation_batch_decode(buf, len, &d, &err) != IBP_OK)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(d.batch_seq, 42);
    assert_true(d.full);
    assert_int_equal(d.nobs, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ibp_codec_key_cmp(&d.obs[i].key, &obs[i].key), 0);
        assert_int_equal(d.obs[i].status, obs[i].status);
        assert_int_equal(d.obs[i].check_time_ms, obs[i].check_time_ms);
        assert_string_equal(d.obs[i].error, obs[i].error ? obs[i].error : "");
        assert_string_equal(d.obs[i].data_json, obs[i].data_json ? obs[i].data_json : "");
    }
    assert_string_equal(d.obs[1].key.domain, "");
    assert_true(d.obs[0].key.ipv6);

    /* Packing the decoded batch again gives the same bytes. */
    uint8_t *b2;
    size_t l2;
    assert_int_equal(ibp_codec_observation_batch_encode(&d, &b2, &l2, &err), IBP_OK);
    assert_int_equal(l2, len);
    assert_memory_equal(b2, buf, len);
    free(b2);
    ibp_codec_observation_batch_clear(&d);

    /* From a verified envelope: the same, strings borrowed from the payload. */
    Ibp__V1__ObservationBatch *pb = ibp__v1__observation_batch__unpack(NULL, len, buf);
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH;
    ibp_verified vm = {&env, &pb->base, NULL};
    assert_int_equal(ibp_codec_observation_batch_decode_verified(&vm, &d, &err), IBP_OK);
    assert_int_equal(d.nobs, 2);
    assert_ptr_equal(d.obs[0].key.member, pb->observations[0]->key->member);
    ibp_codec_observation_batch_clear(&d);
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT;
    assert_int_equal(ibp_codec_observation_batch_decode_verified(&vm, &d, &err), IBP_E_INVAL);
    ibp__v1__observation_batch__free_unpacked(pb, NULL);
    free(buf);

    /* An empty batch packs and decodes. */
    ibp_codec_observation_batch e = {.batch_seq = 1};
    assert_int_equal(ibp_codec_observation_batch_encode(&e, &buf, &len, &err), IBP_OK);
    assert_int_equal(ibp_codec_observation_batch_decode(buf, len, &d, &err), IBP_OK);
    assert_int_equal(d.nobs, 0);
    ibp_codec_observation_batch_clear(&d);
    free(buf);
}

static void expect_refused(const ibp_codec_observation *o, ibp_status want, const char *what)
{
    ibp_codec_observation_batch b = {.batch_seq = 7, .obs = o, .nobs = 1};
    uint8_t *buf;
    size_t len;
    ibp_err err = {0};
    assert_int_equal(ibp_codec_observation_batch_encode(&b, &buf, &len, &err), IBP_OK);
    ibp_codec_observation_batch d;
    ibp_status st = ibp_codec_observation_batch_decode(buf, len, &d, &err);
    if (st != want)
        fail_msg("%s: got %s (%s), want %s", what, ibp_status_name(st), err.msg,
                 ibp_status_name(want));
    assert_null(d.obs);
    assert_null(d.owned);
    free(buf);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    char *big = malloc(IBP_DATA_MAX + 2);
    memset(big, 'x', IBP_DATA_MAX + 1);
    big[IBP_DATA_MAX + 1] = '\0';
    ibp_codec_observation o;

    o = obs[1];
    o.status = IBP_RESULT_NONE;
    expect_refused(&o, IBP_E_PAYLOAD_DECODE, "status unspecified");
    o = obs[1];
    o.status = (ibp_result_status)9;
    expect_refused(&o, IBP_E_PAYLOAD_DECODE, "unknown status");
    o = obs[1];
    o.key.type = (ibp_check_type)0;
    expect_refused(&o, IBP_E_PAYLOAD_DECODE, "check type unspecified");
    o = obs[1];
    o.key.member = "";
    expect_refused(&o, IBP_E_PAYLOAD_DECODE, "empty member");
    o = obs[1];
    o.key.domain = "x.example";
    expect_refused(&o, IBP_E_PAYLOAD_DECODE, "site key with a domain");
    o = obs[0];
    o.key.endpoint = "";
    expect_refused(&o, IBP_E_PAYLOAD_DECODE, "endpoint key without endpoint");
    o = obs[1];
    o.key.check_name = big + IBP_DATA_MAX - IBP_NAME_MAX; /* NAME_MAX + 1 bytes */
    expect_refused(&o, IBP_E_TOO_LARGE, "check name over its cap");
    o = obs[1];
    o.error = big + IBP_DATA_MAX - IBP_ERROR_MAX;
    expect_refused(&o, IBP_E_TOO_LARGE, "error over its cap");
    o = obs[1];
    o.data_json = big;
    expect_refused(&o, IBP_E_TOO_LARGE, "data over its cap");
    /* At the caps, accepted. */
    o = obs[1];
    o.error = big + IBP_DATA_MAX + 1 - IBP_ERROR_MAX;
    o.data_json = big + 1;
    ibp_codec_observation_batch b = {.obs = &o, .nobs = 1}, d;
    uint8_t *buf;
    size_t len;
    ibp_err err;
    assert_int_equal(ibp_codec_observation_batch_encode(&b, &buf, &len, &err), IBP_OK);
    assert_int_equal(ibp_codec_observation_batch_decode(buf, len, &d, &err), IBP_OK);
    ibp_codec_observation_batch_clear(&d);
    free(buf);
    free(big);

    /* An observation without a key. */
    Ibp__V1__Observation po = IBP__V1__OBSERVATION__INIT;
    po.status = IBP__V1__STATUS__STATUS_UP;
    Ibp__V1__Observation *pop[] = {&po};
    Ibp__V1__ObservationBatch pb = IBP__V1__OBSERVATION_BATCH__INIT;
    pb.observations = pop;
    pb.n_observations = 1;
    len = ibp__v1__observation_batch__get_packed_size(&pb);
    buf = malloc(len);
    ibp__v1__observation_batch__pack(&pb, buf);
    assert_int_equal(ibp_codec_observation_batch_decode(buf, len, &d, &err), IBP_E_PAYLOAD_DECODE);
    free(buf);

    /* Bytes that are not protobuf. */
    static const uint8_t junk[] = {0x1a, 0x05, 0x01};
    assert_int_equal(ibp_codec_observation_batch_decode(junk, sizeof junk, &d, &err),
                     IBP_E_PAYLOAD_DECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
