/* Helpers shared by the persist sources; see persist_util.h. */
#include "persist_util.h"

#include <string.h>

#include "ibp/clock.h"
#include "ibp/date.h"

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
    ibp_civil_from_days(days, &y, &mo, &d);
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
    int64_t days = ibp_days_from_civil(t->year, t->month, t->day);
    return days * 86400000 + (int64_t)t->hour * 3600000 + (int64_t)t->minute * 60000 +
           (int64_t)t->second * 1000 + (int64_t)(t->second_part / 1000);
}

bool ibp_persist_sleep_ms(int64_t ms, const atomic_bool *stop)
{
    int64_t deadline = ibp_clock_deadline(ms);
    for (;;) {
        if (stop && atomic_load(stop))
            return true;
        int64_t left = ibp_clock_remaining_ms(deadline);
        if (left <= 0)
            return false;
        /* In steps, so that a stop is seen within 50 ms. */
        ibp_clock_sleep_ms(left < 50 ? left : 50);
    }
}
