/* Unit tests: subject token encoding and subject builders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/subject.h"

static void check_round_trip(const char *in, size_t len, const char *expect)
{
    char tok[1024], back[1024];
    size_t tlen = 0, blen = 0;
    assert_int_equal(ibp_token_encode(in, len, tok, sizeof tok, &tlen), IBP_OK);
    if (expect)
        assert_string_equal(tok, expect);
    assert_int_equal(strlen(tok), tlen);
    assert_true(tlen <= IBP_TOKEN_MAX_LEN(len));
    for (size_t i = 0; i < tlen; i++) {
        unsigned char c = (unsigned char)tok[i];
        assert_true(c > ' ' && c < 127 && c != '.' && c != '*' && c != '>');
    }
    assert_int_equal(ibp_token_decode(tok, back, sizeof back, &blen), IBP_OK);
    assert_int_equal(blen, len);
    assert_memory_equal(back, in, len);
}

static void test_known_tokens(void **state)
{
    (void)state;
    check_round_trip("Stake Plus", 10, "Stake~20Plus");
    check_round_trip("rpc.ibp.network", 15, "rpc~2Eibp~2Enetwork");
    check_round_trip("wss://rpc.ibp.network/polkadot", 30,
                     "wss~3A~2F~2Frpc~2Eibp~2Enetwork~2Fpolkadot");
    check_round_trip("", 0, "~");
    check_round_trip("a~b", 3, "a~7Eb");
    check_round_trip("*>", 2, "~2A~3E");
    check_round_trip("Rotko_Networks-1", 16, "Rotko_Networks-1");
    check_round_trip("\xc3\xa9", 2, "~C3~A9"); /* UTF-8 é */
}

static void test_random_round_trips(void **state)
{
    (void)state;
    unsigned seed = 12345;
    char in[200];
    for (int iter = 0; iter < 5000; iter++) {
        size_t len = (size_t)(rand_r(&seed) % (int)sizeof in);
        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand_r(&seed) % 255 + 1); /* tokens are C strings: no NUL */
        check_round_trip(in, len, NULL);
    }
}

static void test_decode_rejects_non_canonical(void **state)
{
    (void)state;
    char out[64];
    const char *bad[] = {"",  "a.b", "a b", "~2e", "~41", /* 'A' must be literal */
                         "~", "~4",  "~G0", "x~",  "a*",  ">", "~~", "a~2", "\x7f"};
    for (size_t i = 1; i < sizeof bad / sizeof bad[0]; i++) {
        if (strcmp(bad[i], "~") == 0)
            continue; /* "~" is the empty string */
        if (ibp_token_decode(bad[i], out, sizeof out, NULL) == IBP_OK)
            fail_msg("decode accepted non-canonical token '%s'", bad[i]);
    }
    assert_int_equal(ibp_token_decode("", out, sizeof out, NULL), IBP_E_INVAL);
}

static void test_buffer_limits(void **state)
{
    (void)state;
    char small[4];
    assert_int_equal(ibp_token_encode("a.b", 3, small, sizeof small, NULL), IBP_E_RANGE);
    assert_int_equal(ibp_token_encode("abc", 3, small, sizeof small, NULL), IBP_OK);
    assert_int_equal(ibp_token_encode("abcd", 4, small, sizeof small, NULL), IBP_E_RANGE);
    assert_int_equal(ibp_token_decode("abcd", small, sizeof small, NULL), IBP_E_RANGE);
    char subj[12];
    assert_int_equal(ibp_subject_local("monitor-long-name", subj, sizeof subj), IBP_E_RANGE);
    assert_string_equal(subj, "");
}

static void test_subject_builders(void **state)
{
    (void)state;
    char s[512];
    assert_int_equal(ibp_subject_local("mon1", s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.local.mon1");
    assert_int_equal(ibp_subject_local("bad.id", s, sizeof s), IBP_E_INVAL);
    assert_int_equal(ibp_subject_hits("dns1", s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.hits.dns1");
    assert_int_equal(ibp_subject_official_heartbeat("mon2", s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.official.heartbeat.mon2");
    assert_int_equal(ibp_subject_checkpoint("rep1", s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.consensus.checkpoint.rep1");
    assert_int_equal(ibp_subject_checkpoint("a.b", s, sizeof s), IBP_E_INVAL);
    assert_int_equal(ibp_subject_events("Stake Plus", s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.events.Stake~20Plus");
    assert_int_equal(ibp_subject_status_override("Stake Plus", s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.status.Stake~20Plus.override");

    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.member = "Stake Plus";
    k.check_name = "ping";
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    assert_int_equal(ibp_subject_status(&k, s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.status.Stake~20Plus.site.ping.v4");
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN;
    k.check_name = "ssl";
    k.domain = "rpc.ibp.network";
    k.ipv6 = 1;
    assert_int_equal(ibp_subject_status(&k, s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.status.Stake~20Plus.domain.ssl.rpc~2Eibp~2Enetwork.v6");
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = "wss";
    k.endpoint = "wss://rpc.ibp.network/polkadot";
    k.ipv6 = 0;
    assert_int_equal(ibp_subject_status(&k, s, sizeof s), IBP_OK);
    assert_string_equal(s, "ibp.status.Stake~20Plus.endpoint.wss.rpc~2Eibp~2Enetwork."
                           "wss~3A~2F~2Frpc~2Eibp~2Enetwork~2Fpolkadot.v4");
    k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_UNSPECIFIED;
    assert_int_equal(ibp_subject_status(&k, s, sizeof s), IBP_E_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_tokens),
        cmocka_unit_test(test_random_round_trips),
        cmocka_unit_test(test_decode_rejects_non_canonical),
        cmocka_unit_test(test_buffer_limits),
        cmocka_unit_test(test_subject_builders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
