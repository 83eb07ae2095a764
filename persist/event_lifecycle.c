/* Outage event lifecycle; see ibp/event_lifecycle.h. Pure: no clock, I/O or allocation. */
#include "ibp/event_lifecycle.h"

/*
 * end - start, 0 when end < start (clock skew counts as no time offline), and
 * INT64_MAX when the true difference does not fit. Done in uint64_t so extreme
 * inputs (INT64_MIN .. INT64_MAX) cannot overflow.
 */
static int64_t elapsed_ms(int64_t start_ms, int64_t end_ms)
{
    if (end_ms <= start_ms)
        return 0;
    uint64_t d = (uint64_t)end_ms - (uint64_t)start_ms;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

ibp_event_decision ibp_event_lifecycle_step(ibp_event_open current, ibp_event_status_record record,
                                            int64_t min_offline_ms)
{
    ibp_event_decision d = {0};
    if (min_offline_ms < 0)
        min_offline_ms = 0;
    d.action = IBP_EVENT_ACTION_NONE;
    d.next = current.open ? current : (ibp_event_open){0};
    d.start_ms = current.open ? current.start_ms : 0;

    if (!record.up) {
        /* A down opens an event unless one is open; the open one keeps its start. */
        if (!current.open) {
            d.action = IBP_EVENT_ACTION_INSERT;
            d.start_ms = record.time_ms;
            d.next = (ibp_event_open){.open = true, .start_ms = record.time_ms};
        }
        return d;
    }
    if (!current.open)
        return d; /* up with nothing open: nothing to end */

    d.duration_ms = elapsed_ms(current.start_ms, record.time_ms);
    d.next = (ibp_event_open){0};
    if (d.duration_ms >= min_offline_ms) {
        d.action = IBP_EVENT_ACTION_CLOSE;
        /* Only reachable with time < start when min is 0: never end before the start. */
        d.end_ms = record.time_ms < current.start_ms ? current.start_ms : record.time_ms;
    } else {
        d.action = IBP_EVENT_ACTION_DELETE_FLAP;
    }
    return d;
}

const char *ibp_event_lifecycle_action_name(ibp_event_action action)
{
    switch (action) {
    case IBP_EVENT_ACTION_NONE:
        return "none";
    case IBP_EVENT_ACTION_INSERT:
        return "insert";
    case IBP_EVENT_ACTION_CLOSE:
        return "close";
    case IBP_EVENT_ACTION_DELETE_FLAP:
        return "delete_flap";
    }
    return "?";
}
