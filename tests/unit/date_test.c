/* Unit tests: calendar dates and RFC 3339 times (ibp/date.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ibp/date.h"

#define DAY_MS INT64_C(86400000)

static void expect_civil(int64_t days, int64_t y, unsigned m, unsigned d)
{
    int64_t gy;
    unsigned gm, gd;
    ibp_civil_from_days(days, &gy, &gm, &gd);
    assert_int_equal(gy, y);
    assert_int_equal(gm, m);
    assert_int_equal(gd, d);
    assert_int_equal(ibp_days_from_civil(y, m, d), days);
}

static void test_civil_known_days(void **state)
{
    (void)state;
    expect_civil(0, 1970, 1, 1);
    expect_civil(-1, 1969, 12, 31);
    expect_civil(59, 1970, 3, 1);
    expect_civil(10957, 2000, 1, 1);
    expect_civil(11016, 2000, 2, 29); /* divisible by 400: leap */
    expect_civil(19782, 2024, 2, 29);
    expect_civil(-719528, 0, 1, 1); /* year 0 (1 BC) */
    expect_civil(-719468, 0, 3, 1); /* year 0 is a leap year */
    expect_civil(2932896, 9999, 12, 31);
    expect_civil(-719529, -1, 12, 31);
}

/* Every day of 1600..2400 round-trips and follows the day before it. */
static void test_civil_round_trip_and_continuity(void **state)
{
    (void)state;
    int64_t from = ibp_days_from_civil(1600, 1, 1), to = ibp_days_from_civil(2400, 12, 31);
    int64_t py;
    unsigned pm, pd;
    ibp_civil_from_days(from - 1, &py, &pm, &pd);
    for (int64_t z = from; z <= to; z++) {
        int64_t y;
        unsigned m, d;
        ibp_civil_from_days(z, &y, &m, &d);
        assert_int_equal(ibp_days_from_civil(y, m, d), z);
        if (d == pd + 1) {
            assert_int_equal(m, pm);
            assert_int_equal(y, py);
        } else {
            assert_int_equal(d, 1);
            assert_true(m == pm + 1 || (m == 1 && pm == 12 && y == py + 1));
        }
        py = y;
        pm = m;
        pd = d;
    }
}

static void expect_date(const char *s, bool ok, int64_t days)
{
    int64_t got = 12345;
    bool r = ibp_date_parse(s, &got);
    if (r != ok)
        fprintf(stderr, "ibp_date_parse(\"%s\") = %d, want %d\n", s ? s : "(null)", r, ok);
    assert_int_equal(r, ok);
    assert_int_equal(got, ok ? days : 12345);
}

static void test_date_parse(void **state)
{
    (void)state;
    expect_date("1970-01-01", true, 0);
    expect_date("2024-02-29", true, 19782);
    expect_date("2000-02-29", true, 11016);
    expect_date("0000-01-01", true, -719528);
    expect_date("0000-02-29", true, -719469);
    expect_date("9999-12-31", true, 2932896);
    expect_date("2023-02-29", false, 0);
    expect_date("1900-02-29", false, 0); /* divisible by 100, not 400 */
    expect_date("2023-04-31", false, 0);
    expect_date("2023-00-10", false, 0);
    expect_date("2023-13-01", false, 0);
    expect_date("2023-01-00", false, 0);
    expect_date("2023-01-32", false, 0);
    expect_date("2023-1-01", false, 0);
    expect_date("2023-01-01 ", false, 0);
    expect_date(" 2023-01-01", false, 0);
    expect_date("2023-01-01T00:00:00Z", false, 0);
    expect_date("2023/01/01", false, 0);
    expect_date("+023-01-01", false, 0);
    expect_date("", false, 0);
    expect_date(NULL, false, 0);
}

static void test_date_format(void **state)
{
    (void)state;
    char buf[IBP_DATE_BUF];
    ibp_date_format(0, buf);
    assert_string_equal(buf, "1970-01-01");
    ibp_date_format(19782, buf);
    assert_string_equal(buf, "2024-02-29");
    ibp_date_format(-719528, buf);
    assert_string_equal(buf, "0000-01-01");
    ibp_date_format(2932896, buf);
    assert_string_equal(buf, "9999-12-31");
    /* Out of range: the year clamps, the text stays ten characters. */
    ibp_date_format(2932897, buf);
    assert_string_equal(buf, "9999-01-01");
    ibp_date_format(-719529, buf);
    assert_string_equal(buf, "0000-12-31");
    /* Parse and format are inverse over 0000..9999. */
    for (int64_t z = -719528; z <= 2932896; z += 97) {
        int64_t back;
        ibp_date_format(z, buf);
        assert_true(ibp_date_parse(buf, &back));
        assert_int_equal(back, z);
    }
}

static void expect_time(const char *s, bool ok, int64_t ms)
{
    int64_t got = 777;
    bool r = ibp_rfc3339_parse_ms(s, &got);
    if (r != ok || (ok && got != ms))
        fprintf(stderr, "ibp_rfc3339_parse_ms(\"%s\") = %d/%lld, want %d/%lld\n", s ? s : "(null)",
                r, (long long)got, ok, (long long)ms);
    assert_int_equal(r, ok);
    assert_int_equal(got, ok ? ms : 777);
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    const int64_t t = INT64_C(1738324800000); /* 2025-01-31T12:00:00Z */
    expect_time("2025-01-31T12:00:00Z", true, t);
    expect_time("2025-01-31t12:00:00z", true, t);
    expect_time("2025-01-31 12:00:00Z", true, t);
    expect_time("2025-01-31T12:00:00.5Z", true, t + 500);
    expect_time("2025-01-31T12:00:00.123Z", true, t + 123);
    expect_time("2025-01-31T12:00:00.123999Z", true, t + 123); /* truncated */
    expect_time("2025-01-31T14:30:00+02:30", true, t);
    expect_time("2025-01-31T09:00:00-03:00", true, t);
    expect_time("2025-01-31", true, t - 12 * 3600000);
    expect_time("1969-12-31T23:59:59.999Z", true, -1);
    expect_time("2016-12-31T23:59:60Z", true, INT64_C(1483228800000));
    expect_time("2025-01-31T12:00:00", false, 0);   /* no zone */
    expect_time("2025-01-31T12:00:00.Z", false, 0); /* empty fraction */
    expect_time("2025-01-31T24:00:00Z", false, 0);
    expect_time("2025-01-31T12:60:00Z", false, 0);
    expect_time("2025-01-31T12:00:61Z", false, 0);
    expect_time("2025-01-31T12:00:00+0200", false, 0);
    expect_time("2025-01-31T12:00:00+24:00", false, 0);
    expect_time("2025-01-31T12:00:00Zx", false, 0);
    expect_time("2023-02-29T00:00:00Z", false, 0);
    expect_time("2025-01-31T12:00Z", false, 0);
    expect_time("2025-01-31X", false, 0);
    expect_time("", false, 0);
    expect_time(NULL, false, 0);
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    char buf[IBP_RFC3339_MS_BUF];
    assert_int_equal(ibp_rfc3339_format_ms(0, buf, sizeof buf), 24);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_int_equal(ibp_rfc3339_format_ms(INT64_C(1738324800123), buf, sizeof buf), 24);
    assert_string_equal(buf, "2025-01-31T12:00:00.123Z");
    ibp_rfc3339_format_ms(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    ibp_rfc3339_format_ms(INT64_C(253402300799999), buf, sizeof buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
    ibp_rfc3339_format_ms(INT64_C(-30610224000000), buf, sizeof buf);
    assert_string_equal(buf, "1000-01-01T00:00:00.000Z");
    /* Too small: nothing but "". */
    char small[24];
    assert_int_equal(ibp_rfc3339_format_ms(0, small, sizeof small), 0);
    assert_string_equal(small, "");
    assert_int_equal(ibp_rfc3339_format_ms(0, NULL, 0), 0);
    /* Round trip. */
    for (int64_t ms = INT64_C(-62167219200000); ms < INT64_C(253402300799999);
         ms += INT64_C(9876543210987)) {
        int64_t back;
        ibp_rfc3339_format_ms(ms, buf, sizeof buf);
        assert_true(ibp_rfc3339_parse_ms(buf, &back));
        assert_int_equal(back, ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_civil_known_days),
        cmocka_unit_test(test_civil_round_trip_and_continuity),
        cmocka_unit_test(test_date_parse),
        cmocka_unit_test(test_date_format),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
