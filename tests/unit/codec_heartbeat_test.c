/*
 * Unit tests: the Heartbeat codec (proto/codec_heartbeat.c): round trip from
 * bytes and from a verified envelope, the monitor publisher's old bytes, and
 * refusal of too many or empty role names and of junk bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_heartbeat.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"

static void test_round_trip(void **state)
{
    (void)state;
    const char *roles[] = {"monitor", "consensus"};
    ibp_codec_heartbeat h = {.epoch = 12, .local_seq = 345, .roles = roles, .nroles = 2}, d;
    uint8_t *buf;
    size_t len;
    ibp_err err;
    assert_int_equal(ibp_codec_heartbeat_encode(&h, &buf, &len, &err), IBP_OK);
    /* The bytes protobuf-c makes of the same message. */
    Ibp__V1__Heartbeat pb = IBP__V1__HEARTBEAT__INIT;
    pb.epoch = 12;
    pb.local_seq = 345;
    pb.roles = (char **)roles;
    pb.n_roles = 2;
    uint8_t ref[64];
    assert_int_equal(ibp__v1__heartbeat__pack(&pb, ref), len);
    assert_memory_equal(ref, buf, len);

    assert_int_equal(ibp_codec_heartbeat_decode(buf, len, &d, &err), IBP_OK);
    assert_int_equal(d.epoch, 12);
    assert_int_equal(d.local_seq, 345);
    assert_int_equal(d.nroles, 2);
    assert_string_equal(d.roles[1], "consensus");
    ibp_codec_heartbeat_clear(&d);
    ibp_codec_heartbeat_clear(&d);
    free(buf);

    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT;
    ibp_verified vm = {&env, &pb.base, NULL};
    assert_int_equal(ibp_codec_heartbeat_decode_verified(&vm, &d, &err), IBP_OK);
    assert_int_equal(d.local_seq, 345);
    ibp_codec_heartbeat_clear(&d);
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH;
    assert_int_equal(ibp_codec_heartbeat_decode_verified(&vm, &d, &err), IBP_E_INVAL);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    const char *many[IBP_CODEC_HEARTBEAT_ROLES_MAX + 1];
    for (size_t i = 0; i < IBP_CODEC_HEARTBEAT_ROLES_MAX + 1; i++)
        many[i] = "monitor";
    const char *empty[] = {""};
    ibp_codec_heartbeat cases[] = {{.roles = many, .nroles = IBP_CODEC_HEARTBEAT_ROLES_MAX + 1},
                                   {.roles = empty, .nroles = 1}};
    for (size_t i = 0; i < 2; i++) {
        uint8_t *buf;
        size_t len;
        ibp_err err;
        ibp_codec_heartbeat d;
        assert_int_equal(ibp_codec_heartbeat_encode(&cases[i], &buf, &len, &err), IBP_OK);
        assert_int_equal(ibp_codec_heartbeat_decode(buf, len, &d, &err), IBP_E_PAYLOAD_DECODE);
        assert_null(d.owned);
        free(buf);
    }
    static const uint8_t junk[] = {0x08};
    ibp_codec_heartbeat d;
    ibp_err err;
    assert_int_equal(ibp_codec_heartbeat_decode(junk, sizeof junk, &d, &err), IBP_E_PAYLOAD_DECODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refuses_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
