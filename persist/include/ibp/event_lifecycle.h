/*
 * Outage event lifecycle: the pure state machine persist drives (DESIGN.md §7).
 *
 * For each key (a result key, or a member for overrides) persist holds at most
 * one open event. Each official status record for that key is stepped through
 * ibp_event_lifecycle_step(), which says what to do with the events table:
 *
 *   current        record   action                 next state
 *   none           down     INSERT (start = time)  open, start = time
 *   open           down     NONE (already open)    unchanged
 *   none           up       NONE (nothing to end)  none
 *   open           up       duration >= min:       none
 *                             CLOSE (end = time)
 *                           duration <  min:       none
 *                             DELETE_FLAP
 *
 * where duration = record time - start of the open event.
 *
 * Edge cases, decided here once so every caller agrees:
 * - An up exactly min_offline_ms after the start closes (">= min closes").
 * - An up whose time is before the open event's start (clock skew between the
 *   monitors, or records applied out of order) counts as duration 0: a flap
 *   when min_offline_ms > 0. With min_offline_ms <= 0 it closes, and end_ms is
 *   clamped to start_ms so an event never ends before it starts.
 * - min_offline_ms == 0 means "never flap": every up closes. A negative value
 *   is treated as 0.
 * - A down that is older than the open event's start is still "down while
 *   open": NONE. The start of an open event never moves.
 * - Any int64_t times are accepted; differences are computed without overflow
 *   and duration_ms saturates at INT64_MAX.
 *
 * Override events use the same machine: a disable is a down, an enable an up.
 *
 * No clock, no I/O, no allocation, no global state: every function here is
 * thread-safe and deterministic.
 */
#ifndef IBP_EVENT_LIFECYCLE_H
#define IBP_EVENT_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>

/* An up within this long of the down that opened an event deletes it as a flap. */
#define IBP_EVENT_MIN_OFFLINE_MS_DEFAULT 30000

typedef enum ibp_event_action {
    IBP_EVENT_ACTION_NONE = 0,        /* leave the events table as it is */
    IBP_EVENT_ACTION_INSERT = 1,      /* open an event starting at start_ms */
    IBP_EVENT_ACTION_CLOSE = 2,       /* set the open event's end time to end_ms */
    IBP_EVENT_ACTION_DELETE_FLAP = 3, /* delete the open event: it was a flap */
} ibp_event_action;

/* The open event of one key, as persist holds it. {false, 0} is "none". */
typedef struct ibp_event_open {
    bool open;
    int64_t start_ms; /* Unix ms, UTC; meaningful only when open */
} ibp_event_open;

/* One status record for the key. */
typedef struct ibp_event_status_record {
    bool up;
    int64_t time_ms; /* Unix ms, UTC: the official check time of the record */
} ibp_event_status_record;

typedef struct ibp_event_decision {
    ibp_event_action action;
    /* INSERT: the record's time. CLOSE, DELETE_FLAP: the open event's start.
     * NONE: the open event's start, or 0 when none is open. */
    int64_t start_ms;
    /* CLOSE: the end time (the record's time, never below start_ms). Else 0. */
    int64_t end_ms;
    /* CLOSE, DELETE_FLAP: record time - start, 0 when negative, saturating. Else 0. */
    int64_t duration_ms;
    /* The state of the key after the action is applied. */
    ibp_event_open next;
} ibp_event_decision;

/*
 * Decides what a status record does to the key's open event; see the table at
 * the top. current is the key's open event ({.open = false} when none);
 * min_offline_ms is the flap threshold (IBP_EVENT_MIN_OFFLINE_MS_DEFAULT
 * unless configured; <= 0 means never flap). Pure: no errors, no side effects.
 */
ibp_event_decision ibp_event_lifecycle_step(ibp_event_open current, ibp_event_status_record record,
                                            int64_t min_offline_ms);

/* "none", "insert", "close", "delete_flap"; "?" for anything else. Never NULL. */
const char *ibp_event_lifecycle_action_name(ibp_event_action action);

#endif
