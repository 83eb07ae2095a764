/* Helpers shared by the persist sources; see persist_util.h. */
#include "persist_util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t ibp_persist_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ibp_persist_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
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

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

void ibp_persist_ms_to_mysql_time(int64_t ms, MYSQL_TIME *t)
{
    int64_t days = floor_div(ms, 86400000);
    int64_t rem = ms - days * 86400000;
    int64_t y;
    unsigned mo, d;
    ibp_persist_civil_from_days(days, &y, &mo, &d);
    memset(t, 0, sizeof *t);
    t->year = (unsigned)y;
    t->month = mo;
    t->day = d;
    t->hour = (unsigned)(rem / 3600000);
    t->minute = (unsigned)(rem / 60000 % 60);
    t->second = (unsigned)(rem / 1000 % 60);
    t->second_part = (unsigned long)(rem % 1000) * 1000;
    t->time_type = MYSQL_TIMESTAMP_DATETIME;
}

int64_t ibp_persist_mysql_time_to_ms(const MYSQL_TIME *t)
{
    int64_t days = ibp_persist_days_from_civil(t->year, t->month, t->day);
    return days * 86400000 + (int64_t)t->hour * 3600000 + (int64_t)t->minute * 60000 +
           (int64_t)t->second * 1000 + (int64_t)(t->second_part / 1000);
}

void ibp_persist_format_rfc3339_ms(int64_t ms, char *buf, size_t cap)
{
    MYSQL_TIME t;
    ibp_persist_ms_to_mysql_time(ms, &t);
    snprintf(buf, cap, "%04u-%02u-%02uT%02u:%02u:%02u.%03luZ", t.year, t.month, t.day, t.hour,
             t.minute, t.second, t.second_part / 1000);
}

/* Reads exactly n digits at *p into *v, advancing *p. */
static int digits(const char **p, int n, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        x = x * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *v = x;
    return 0;
}

int ibp_persist_parse_time_ms(const char *text, int64_t *ms)
{
    static const unsigned dim[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = text;
    unsigned y, mo, d, h = 0, mi = 0, s = 0, frac_ms = 0;
    if (p == NULL || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > dim[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    int64_t offset_min = 0;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return -1;
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
            digits(&p, 2, &s))
            return -1;
        if (h > 23 || mi > 59 || s > 60)
            return -1;
        if (*p == '.') {
            p++;
            int n = 0;
            unsigned scale = 100;
            while (isdigit((unsigned char)*p)) {
                if (n < 3) {
                    frac_ms += (unsigned)(*p - '0') * scale;
                    scale /= 10;
                }
                n++;
                p++;
            }
            if (n == 0)
                return -1;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            unsigned oh, om;
            p++;
            if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
                return -1;
            offset_min = sign * (int64_t)(oh * 60 + om);
        } else {
            return -1;
        }
        if (*p != '\0')
            return -1;
    }
    int64_t days = ibp_persist_days_from_civil(y, mo, d);
    *ms = days * 86400000 + (int64_t)h * 3600000 + (int64_t)mi * 60000 + (int64_t)s * 1000 +
          frac_ms - offset_min * 60000;
    return 0;
}

int64_t ibp_persist_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ibp_persist_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool ibp_persist_sleep_ms(int64_t ms, const atomic_bool *stop)
{
    int64_t end = ibp_persist_mono_ms() + ms;
    for (;;) {
        if (stop && atomic_load(stop))
            return true;
        int64_t left = end - ibp_persist_mono_ms();
        if (left <= 0)
            return false;
        int64_t step = left < 50 ? left : 50;
        struct timespec ts = {.tv_sec = step / 1000, .tv_nsec = (long)(step % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}
