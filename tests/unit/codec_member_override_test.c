/*
 * Unit tests: the MemberOverride codec (proto/codec_member_override.c): round
 * trip from bytes and from a verified envelope, and refusal of an override
 * without a member, with a member or reason over its cap, and of junk bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_member_override.h"
#include "ibp/codec_result_key.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"

static ibp_status round_trip(const ibp_codec_member_override *m, ibp_codec_member_override *d)
{
    uint8_t *buf;
    size_t len;
    ibp_err err;
    assert_int_equal(ibp_codec_member_override_encode(m, &buf, &len, &err), IBP_OK);
    ibp_status st = ibp_codec_member_override_decode(buf, len, d, &err);
    free(buf);
    return st;
}

static void test_round_trip(void **state)
{
    (void)state;
    ibp_codec_member_override m = {"Stake Plus", true, "maintenance", NULL}, d;
    assert_int_equal(round_trip(&m, &d), IBP_OK);
    assert_string_equal(d.member, "Stake Plus");
    assert_true(d.disabled);
    assert_string_equal(d.reason, "maintenance");
    ibp_codec_member_override_clear(&d);
    ibp_codec_member_override_clear(&d);

    m = (ibp_codec_member_override){"Amforc", false, NULL, NULL};
    assert_int_equal(round_trip(&m, &d), IBP_OK);
    assert_false(d.disabled);
    assert_string_equal(d.reason, "");
    ibp_codec_member_override_clear(&d);

    Ibp__V1__MemberOverride pb = IBP__V1__MEMBER_OVERRIDE__INIT;
    pb.member = "Alpha";
    pb.disabled = true;
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE;
    ibp_verified vm = {&env, &pb.base, NULL};
    ibp_err err;
    assert_int_equal(ibp_codec_member_override_decode_verified(&vm, &d, &err), IBP_OK);
    assert_string_equal(d.member, "Alpha");
    assert_true(d.disabled);
    ibp_codec_member_override_clear(&d);
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT;
    assert_int_equal(ibp_codec_member_override_decode_verified(&vm, &d, &err), IBP_E_INVAL);
}

static void test_refuses_malformed(void **state)
{
    (void)state;
    char *big = malloc(IBP_ERROR_MAX + 2);
    memset(big, 'r', IBP_ERROR_MAX + 1);
    big[IBP_ERROR_MAX + 1] = '\0';
    ibp_codec_member_override d;
    ibp_codec_member_override m = {"", true, "x", NULL};
    assert_int_equal(round_trip(&m, &d), IBP_E_PAYLOAD_DECODE);
    assert_null(d.owned);
    m = (ibp_codec_member_override){big + IBP_ERROR_MAX - IBP_NAME_MAX, true, "", NULL};
    assert_int_equal(round_trip(&m, &d), IBP_E_TOO_LARGE);
    m = (ibp_codec_member_override){"A", true, big, NULL};
    assert_int_equal(round_trip(&m, &d), IBP_E_TOO_LARGE);
    m = (ibp_codec_member_override){big + IBP_ERROR_MAX + 1 - IBP_NAME_MAX, true, big + 1, NULL};
    assert_int_equal(round_trip(&m, &d), IBP_OK); /* at the caps */
    ibp_codec_member_override_clear(&d);
    free(big);
    static const uint8_t junk[] = {0x0a, 0x09, 'a'};
    ibp_err err;
    assert_int_equal(ibp_codec_member_override_decode(junk, sizeof junk, &d, &err),
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
