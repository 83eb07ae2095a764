/*
 * Unit tests: the ResultKey codec (proto/codec_result_key.c): the canonical
 * key order (the one a snapshot is packed in; its agreement with the store's
 * order is in snapshot_codec_test.c) and the key checks a received key must
 * pass, at and past each cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_result_key.h"

static void test_order(void **state)
{
    (void)state;
    /* type, check name, domain, endpoint, ipv6, member */
    const ibp_codec_key keys[] = {
        {IBP_CHECK_SITE, "ping", "B", "", "", false},
        {IBP_CHECK_SITE, "ping", "A", "", "", true},
        {IBP_CHECK_DOMAIN, "ssl", "A", "a.example", "", false},
        {IBP_CHECK_DOMAIN, "ssl", "A", "b.example", "", false},
        {IBP_CHECK_ENDPOINT, "wss", "Z", "a.example", "wss://a.example/x", false},
        {IBP_CHECK_ENDPOINT, "wss", "A", "a.example", "wss://a.example/y", false},
        {IBP_CHECK_ENDPOINT, "wss", "A", "a.example", "wss://a.example/y", true},
        {IBP_CHECK_ENDPOINT, "wss", "B", "a.example", "wss://a.example/y", true},
    };
    size_t n = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = ibp_codec_key_cmp(&keys[i], &keys[j]);
            if ((i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0))
                fail_msg("keys %zu and %zu compare %d", i, j, c);
        }
    ibp_codec_key nulls = {IBP_CHECK_SITE, "ping", "A", NULL, NULL, false};
    ibp_codec_key empty = {IBP_CHECK_SITE, "ping", "A", "", "", false};
    assert_int_equal(ibp_codec_key_cmp(&nulls, &empty), 0);
}

static char *filled(size_t n)
{
    char *s = malloc(n + 1);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

static void test_check(void **state)
{
    (void)state;
    ibp_err err;
    ibp_codec_key k = {IBP_CHECK_ENDPOINT, "wss", "A", "a.example", "wss://a.example/", false};
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_OK);
    k.endpoint = "";
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_E_INVAL);
    k = (ibp_codec_key){IBP_CHECK_DOMAIN, "ssl", "A", "a.example", "x", false};
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_E_INVAL);
    k = (ibp_codec_key){IBP_CHECK_SITE, "ping", "A", "a.example", NULL, false};
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_E_INVAL);
    k = (ibp_codec_key){IBP_CHECK_SITE, "", "A", NULL, NULL, false};
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_E_INVAL);
    k = (ibp_codec_key){IBP_CHECK_SITE, "ping", NULL, NULL, NULL, false};
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_E_INVAL);
    k = (ibp_codec_key){(ibp_check_type)4, "ping", "A", NULL, NULL, false};
    assert_int_equal(ibp_codec_key_check(&k, &err), IBP_E_INVAL);

    struct {
        size_t cap;
        int field;
    } caps[] = {{IBP_NAME_MAX, 0}, {IBP_NAME_MAX, 1}, {IBP_DOMAIN_MAX, 2}, {IBP_URL_MAX, 3}};
    for (size_t i = 0; i < 4; i++) {
        for (size_t extra = 0; extra < 2; extra++) {
            char *s = filled(caps[i].cap + extra);
            ibp_codec_key e = {IBP_CHECK_ENDPOINT, "wss", "A", "a.example", "wss://a/", false};
            const char **f[] = {&e.check_name, &e.member, &e.domain, &e.endpoint};
            *f[caps[i].field] = s;
            ibp_status st = ibp_codec_key_check(&e, &err);
            if (st != (extra ? IBP_E_TOO_LARGE : IBP_OK))
                fail_msg("field %d of %zu bytes: %s (%s)", caps[i].field, caps[i].cap + extra,
                         ibp_status_name(st), err.msg);
            if (extra && strstr(err.msg, "xxxx"))
                fail_msg("the text is echoed: %s", err.msg);
            free(s);
        }
    }
    assert_string_equal(ibp_codec_check_name(IBP_CHECK_DOMAIN), "domain");
    assert_string_equal(ibp_codec_check_name((ibp_check_type)0), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
