/* Availability from outages; see ibp/availability.h. */
#include "ibp/availability.h"

#include <stdlib.h>

static int64_t end_of(const ibp_outage *o, int64_t window_end)
{
    int64_t e = o->open ? window_end : o->end_ms;
    return e < o->start_ms ? o->start_ms : e;
}

/* Sort key: start, then effective end, where open outages run "forever". */
static int by_start(const void *a, const void *b)
{
    const ibp_outage *x = a, *y = b;
    if (x->start_ms != y->start_ms)
        return x->start_ms < y->start_ms ? -1 : 1;
    int64_t ex = end_of(x, INT64_MAX), ey = end_of(y, INT64_MAX);
    return ex < ey ? -1 : ex > ey;
}

void ibp_availability_compute(ibp_outage *o, size_t n, int64_t from_ms, int64_t to_ms,
                              ibp_availability *out)
{
    ibp_availability r = {0};
    r.window_ms = to_ms > from_ms ? to_ms - from_ms : 0;
    if (n > 1)
        qsort(o, n, sizeof *o, by_start);
    /* Sweep the clipped intervals in start order, merging overlaps. */
    int64_t cur_s = 0, cur_e = 0;
    bool have = false;
    for (size_t i = 0; i < n && r.window_ms > 0; i++) {
        int64_t s = o[i].start_ms < from_ms ? from_ms : o[i].start_ms;
        int64_t e = end_of(&o[i], to_ms);
        if (e > to_ms)
            e = to_ms;
        if (e <= s)
            continue; /* outside the window, or 0 ms long */
        r.outages++;
        if (o[i].open)
            r.open++;
        if (have && s <= cur_e) {
            if (e > cur_e)
                cur_e = e;
            continue;
        }
        if (have)
            r.downtime_ms += cur_e - cur_s;
        cur_s = s;
        cur_e = e;
        have = true;
    }
    if (have)
        r.downtime_ms += cur_e - cur_s;
    r.ratio = r.window_ms > 0 ? (double)(r.window_ms - r.downtime_ms) / (double)r.window_ms : 1.0;
    *out = r;
}

int64_t ibp_outage_duration_ms(const ibp_outage *o, int64_t now_ms)
{
    int64_t d = (o->open ? now_ms : o->end_ms) - o->start_ms;
    return d > 0 ? d : 0;
}
