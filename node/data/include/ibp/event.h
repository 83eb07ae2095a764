/*
 * Event records: official status changes and member overrides (DESIGN.md §7).
 *
 * The stores hand each record to the event sink the program set; strings are
 * borrowed for the duration of the callback only (copy what you keep).
 */
#ifndef IBP_EVENT_H
#define IBP_EVENT_H

#include <stdbool.h>
#include <stdint.h>

#include "ibp/result.h"

/* The check name of override events: one name for the disable that opens an
 * outage and the enable that closes it. */
#define IBP_OVERRIDE_CHECK_NAME "override"

typedef enum ibp_event_kind {
    IBP_EVENT_STATUS = 1,   /* an official result changed status (or arrived down) */
    IBP_EVENT_OVERRIDE = 2, /* a member was disabled (up=false) or enabled (up=true) */
} ibp_event_kind;

typedef struct ibp_event_record {
    ibp_event_kind kind;
    ibp_check_type type;    /* 0 for overrides */
    const char *check_name; /* IBP_OVERRIDE_CHECK_NAME for overrides */
    const char *member;
    const char *domain;   /* "" when not applicable */
    const char *endpoint; /* "" when not applicable */
    bool up;
    const char *error;
    const char *data_json;
    bool ipv6;
    int64_t time_ms;
} ibp_event_record;

/* Called synchronously by the thread that made the change. Must not call back
 * into the store that emitted it. */
typedef void (*ibp_event_sink_fn)(const ibp_event_record *ev, void *user);

#endif
