/* Calendar dates and RFC 3339 times; see ibp/date.h. */
#include "ibp/date.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DAY_MS INT64_C(86400000)

/*
 * Howard Hinnant's days_from_civil / civil_from_days: the year is shifted to
 * start on March 1st so the leap day is the last day of the year, then split
 * into 400-year eras of 146097 days each. Exact for every int64 year that
 * does not overflow, without tables or loops.
 */
int64_t ibp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ibp_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads exactly n digits at *p into *v, advancing *p. */
static bool digits(const char **p, int n, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i]))
            return false;
        x = x * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return true;
}

static bool real_day(unsigned y, unsigned m, unsigned d)
{
    static const unsigned dim[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m >= 1 && m <= 12 && d >= 1 && d <= dim[m - 1] && !(m == 2 && d == 29 && !leap);
}

/* "YYYY-MM-DD" at *p, a real day; advances *p past it. */
static bool civil_at(const char **p, unsigned *y, unsigned *m, unsigned *d)
{
    const char *q = *p;
    if (!digits(&q, 4, y) || *q++ != '-' || !digits(&q, 2, m) || *q++ != '-' || !digits(&q, 2, d))
        return false;
    if (!real_day(*y, *m, *d))
        return false;
    *p = q;
    return true;
}

bool ibp_date_parse(const char *s, int64_t *days)
{
    unsigned y, m, d;
    if (!s || !civil_at(&s, &y, &m, &d) || *s != '\0')
        return false;
    *days = ibp_days_from_civil(y, m, d);
    return true;
}

void ibp_date_format(int64_t days, char out[IBP_DATE_BUF])
{
    int64_t y;
    unsigned m, d;
    ibp_civil_from_days(days, &y, &m, &d);
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    unsigned yy = (unsigned)y;
    out[0] = (char)('0' + yy / 1000);
    out[1] = (char)('0' + yy / 100 % 10);
    out[2] = (char)('0' + yy / 10 % 10);
    out[3] = (char)('0' + yy % 10);
    out[4] = '-';
    out[5] = (char)('0' + m / 10);
    out[6] = (char)('0' + m % 10);
    out[7] = '-';
    out[8] = (char)('0' + d / 10);
    out[9] = (char)('0' + d % 10);
    out[10] = '\0';
}

bool ibp_rfc3339_parse_ms(const char *s, int64_t *unix_ms)
{
    const char *p = s;
    unsigned y, mo, d, h = 0, mi = 0, sec = 0, frac_ms = 0;
    if (!p || !civil_at(&p, &y, &mo, &d))
        return false;
    int64_t offset_min = 0;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return false;
        p++;
        if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) || *p++ != ':' ||
            !digits(&p, 2, &sec))
            return false;
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (*p == '.') {
            p++;
            int n = 0;
            unsigned scale = 100;
            for (; is_digit(*p); p++, n++) {
                if (n < 3) {
                    frac_ms += (unsigned)(*p - '0') * scale;
                    scale /= 10;
                }
            }
            if (n == 0)
                return false;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            unsigned oh, om;
            p++;
            if (!digits(&p, 2, &oh) || *p++ != ':' || !digits(&p, 2, &om) || oh > 23 || om > 59)
                return false;
            offset_min = sign * (int64_t)(oh * 60 + om);
        } else {
            return false;
        }
        if (*p != '\0')
            return false;
    }
    *unix_ms = ibp_days_from_civil(y, mo, d) * DAY_MS + (int64_t)h * 3600000 + (int64_t)mi * 60000 +
               (int64_t)sec * 1000 + frac_ms - offset_min * 60000;
    return true;
}

size_t ibp_rfc3339_format_ms(int64_t unix_ms, char *out, size_t cap)
{
    /* Floor division, so 1969 instants get a positive time of day. */
    int64_t days = unix_ms / DAY_MS;
    if (unix_ms % DAY_MS < 0)
        days--;
    int64_t rem = unix_ms - days * DAY_MS;
    int64_t y;
    unsigned m, d;
    ibp_civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, cap, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u.%03uZ", y, m, d,
                     (unsigned)(rem / 3600000), (unsigned)(rem / 60000 % 60),
                     (unsigned)(rem / 1000 % 60), (unsigned)(rem % 1000));
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}
