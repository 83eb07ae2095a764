/*
 * Availability over a time window from a set of outages (DESIGN.md §7: the
 * member_events an SLA report is made of). Outages that overlap are counted
 * once: the downtime is the length of the union of the outages, each clipped
 * to the window; an outage still open runs to the end of the window.
 *
 * Pure: no clock, no I/O, no allocation. Thread-safe.
 */
#ifndef IBP_AVAILABILITY_H
#define IBP_AVAILABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One outage: [start_ms, end_ms), Unix ms; end_ms is ignored while open. */
typedef struct ibp_outage {
    int64_t start_ms;
    int64_t end_ms;
    bool open;
} ibp_outage;

typedef struct ibp_availability {
    int64_t window_ms;   /* to_ms - from_ms (0 when the window is empty or inverted) */
    int64_t downtime_ms; /* length of the union of the outages within the window */
    size_t outages;      /* outages that overlap the window by more than 0 ms */
    size_t open;         /* of those, still open */
    double ratio;        /* (window - downtime) / window; 1.0 for an empty window */
} ibp_availability;

/*
 * Computes *out for the window [from_ms, to_ms) from the n outages in o,
 * which it sorts in place by start (then end). An outage whose end is before
 * its start counts as 0 ms long. o may be NULL when n is 0.
 */
void ibp_availability_compute(ibp_outage *o, size_t n, int64_t from_ms, int64_t to_ms,
                              ibp_availability *out);

/*
 * The duration of one outage: end - start when closed, now_ms - start while
 * open; never negative.
 */
int64_t ibp_outage_duration_ms(const ibp_outage *o, int64_t now_ms);

#endif
