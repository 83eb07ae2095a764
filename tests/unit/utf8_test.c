/* Unit tests: strict UTF-8 checks (ibp/utf8.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ibp/utf8.h"

#define V(lit) ibp_utf8_valid(lit, sizeof(lit) - 1)

static void expect_valid(const char *s, size_t len, bool ok)
{
    bool r = ibp_utf8_valid(s, len);
    if (r != ok) {
        fprintf(stderr, "ibp_utf8_valid(");
        for (size_t i = 0; i < len; i++)
            fprintf(stderr, "%02x", (unsigned char)s[i]);
        fprintf(stderr, ") = %d, want %d\n", r, ok);
    }
    assert_int_equal(r, ok);
    assert_int_equal(ibp_utf8_count(s, len, NULL), ok);
}

static void test_valid(void **state)
{
    (void)state;
    expect_valid("", 0, true);
    expect_valid(NULL, 0, true);
    expect_valid("Stake Plus", 10, true);
    expect_valid("\x00", 1, true); /* NUL is U+0000: the caller decides about it */
    expect_valid("a\x00"
                 "b",
                 3, true);
    expect_valid("\x7f", 1, true);
    expect_valid("\xc2\x80", 2, true);         /* U+0080 */
    expect_valid("\xdf\xbf", 2, true);         /* U+07FF */
    expect_valid("\xe0\xa0\x80", 3, true);     /* U+0800 */
    expect_valid("\xed\x9f\xbf", 3, true);     /* U+D7FF */
    expect_valid("\xee\x80\x80", 3, true);     /* U+E000 */
    expect_valid("\xef\xbf\xbf", 3, true);     /* U+FFFF */
    expect_valid("\xf0\x90\x80\x80", 4, true); /* U+10000 */
    expect_valid("\xf4\x8f\xbf\xbf", 4, true); /* U+10FFFF */
    expect_valid("Z\xc3\xbcrich \xe2\x82\xac \xf0\x9f\x98\x80", 16, true);
}

static void test_invalid(void **state)
{
    (void)state;
    /* Overlong forms. */
    expect_valid("\xc0\x80", 2, false);
    expect_valid("\xc1\xbf", 2, false);
    expect_valid("\xe0\x80\x80", 3, false);
    expect_valid("\xe0\x9f\xbf", 3, false);
    expect_valid("\xf0\x80\x80\x80", 4, false);
    expect_valid("\xf0\x8f\xbf\xbf", 4, false);
    /* Surrogates. */
    expect_valid("\xed\xa0\x80", 3, false);
    expect_valid("\xed\xbf\xbf", 3, false);
    /* Above U+10FFFF, and leads that can only start such values. */
    expect_valid("\xf4\x90\x80\x80", 4, false);
    expect_valid("\xf5\x80\x80\x80", 4, false);
    expect_valid("\xff", 1, false);
    expect_valid("\xfe", 1, false);
    /* Lone continuation bytes, truncated and interrupted sequences. */
    expect_valid("\x80", 1, false);
    expect_valid("a\xbf", 2, false);
    expect_valid("\xc3", 1, false);
    expect_valid("\xe2\x82", 2, false);
    expect_valid("\xf0\x9f\x98", 3, false);
    expect_valid("\xe2\x28\xa1", 3, false);
    expect_valid("\xc3\x00", 2, false);
    /* The length bounds the check: a valid sequence cut by len is invalid. */
    expect_valid("\xc3\xbc", 1, false);
    assert_true(V("\xc3\xbc"));
}

static void test_seq_len_and_count(void **state)
{
    (void)state;
    assert_int_equal(ibp_utf8_seq_len("a", 1), 1);
    assert_int_equal(ibp_utf8_seq_len("a", 0), 0);
    assert_int_equal(ibp_utf8_seq_len("\xc3\xbc", 2), 2);
    assert_int_equal(ibp_utf8_seq_len("\xe2\x82\xac", 3), 3);
    assert_int_equal(ibp_utf8_seq_len("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(ibp_utf8_seq_len("\xf0\x9f\x98\x80", 3), 0);
    assert_int_equal(ibp_utf8_seq_len("\xed\xa0\x80", 3), 0);
    size_t chars = 99;
    assert_true(ibp_utf8_count("Z\xc3\xbcrich \xe2\x82\xac \xf0\x9f\x98\x80", 16, &chars));
    assert_int_equal(chars, 10);
    chars = 99;
    assert_false(ibp_utf8_count("ab\xff", 3, &chars));
    assert_int_equal(chars, 99);
    assert_true(ibp_utf8_count("", 0, &chars));
    assert_int_equal(chars, 0);
}

/* Every 1..3 byte string agrees with a decoder written from the definition. */
static bool reference_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n = c < 0x80                ? 1
                   : c >= 0xC0 && c < 0xE0 ? 2
                   : c >= 0xE0 && c < 0xF0 ? 3
                   : c >= 0xF0 && c < 0xF8 ? 4
                                           : 0;
        if (n == 0 || i + n > len)
            return false;
        uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n;
    }
    return true;
}

static void test_exhaustive_short(void **state)
{
    (void)state;
    unsigned char b[3];
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        assert_int_equal(ibp_utf8_valid((char *)b, 1), reference_valid(b, 1));
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            assert_int_equal(ibp_utf8_valid((char *)b, 2), reference_valid(b, 2));
            if (x < 0xE0 || x > 0xF4)
                continue;
            for (unsigned z = 0x70; z < 0xD0; z++) {
                b[2] = (unsigned char)z;
                assert_int_equal(ibp_utf8_valid((char *)b, 3), reference_valid(b, 3));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_seq_len_and_count),
        cmocka_unit_test(test_exhaustive_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
