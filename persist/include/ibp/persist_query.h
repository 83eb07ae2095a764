/*
 * Queries over what persist wrote (DESIGN.md §7, §8): a member's outage
 * events in a time range, and DNS usage by domain, member or country for a
 * date range, IPv4 and IPv6 apart and together. The same queries in JSON
 * (request and response) are what the NATS endpoints of ibp-persist answer
 * (ibp/persist_service.h).
 *
 * Every call takes a connection made by ibp_persist_db_connect (UTC
 * session); reads run in their own short transaction, ended before return.
 * Results are owned by the caller and freed with the matching _free, which
 * accepts NULL and zeroed structs. Not thread-safe on one MYSQL handle.
 */
#ifndef IBP_PERSIST_QUERY_H
#define IBP_PERSIST_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "ibp/status.h"

/* Most rows one query returns; a larger answer is IBP_E_RANGE (narrow the range). */
#define IBP_PERSIST_QUERY_MAX_ROWS 100000

/* One member_events row: the seed's fields, plus the evidence and event ids. */
typedef struct ibp_persist_event_row {
    uint64_t id;
    char *member_name;
    char *check_type; /* site, domain, endpoint, override */
    char *check_name;
    char *domain_name;
    char *endpoint;
    bool status; /* the status the event records: false (down) */
    bool is_ipv6;
    int64_t start_ms;      /* UTC Unix ms */
    int64_t end_ms;        /* meaningful when !open */
    bool open;             /* end_time IS NULL: still going on */
    char *error;           /* NULL when NULL in the table */
    char *vote_data;       /* JSON text or NULL */
    char *additional_data; /* JSON text or NULL */
    char *event_id;        /* NULL when NULL */
    char *end_event_id;    /* NULL when NULL */
} ibp_persist_event_row;

typedef struct ibp_persist_event_list {
    ibp_persist_event_row *rows;
    size_t count;
} ibp_persist_event_list;

/*
 * get_member_events: every event of member that overlaps [start_ms, end_ms]
 * (started at or before end_ms, and ended at or after start_ms or still
 * open: an outage that began before the range and is still going on is
 * included), ordered by start time (then id). With domain (NULL or "" for
 * all), the events of that domain plus the member-wide ones (site checks and
 * overrides, whose domain_name is ''): those take the member out of DNS for
 * every domain (DESIGN.md §3). Errors: IBP_E_INVAL (no member, start after
 * end), IBP_E_RANGE (more than IBP_PERSIST_QUERY_MAX_ROWS rows), IBP_E_DB,
 * IBP_E_NOMEM. *out is set only on success.
 */
ibp_status ibp_persist_query_member_events(MYSQL *db, const char *member, const char *domain,
                                           int64_t start_ms, int64_t end_ms,
                                           ibp_persist_event_list *out, ibp_err *err);

void ibp_persist_event_list_free(ibp_persist_event_list *list);

typedef enum ibp_persist_usage_by {
    IBP_PERSIST_USAGE_BY_DOMAIN = 1,
    IBP_PERSIST_USAGE_BY_MEMBER = 2,
    IBP_PERSIST_USAGE_BY_COUNTRY = 3,
} ibp_persist_usage_by;

/* "domain", "member", "country"; and back (0 for an unknown name). */
const char *ibp_persist_usage_by_name(ibp_persist_usage_by by);
ibp_persist_usage_by ibp_persist_usage_by_parse(const char *name);

typedef struct ibp_persist_usage_query {
    ibp_persist_usage_by by;
    const char *start_date;   /* required, "YYYY-MM-DD", inclusive */
    const char *end_date;     /* required, inclusive */
    const char *domain;       /* filter; NULL or "" for all */
    const char *member;       /* filter */
    const char *country_code; /* filter */
    bool per_day;             /* one row per date and key; false: totals over the range */
} ibp_persist_usage_query;

typedef struct ibp_persist_usage_row {
    char date[11];      /* "YYYY-MM-DD" when per_day, else "" */
    char *key;          /* the domain, member or country code */
    char *country_name; /* BY_COUNTRY: a name of that code; else NULL */
    uint64_t hits_ipv4;
    uint64_t hits_ipv6;
    uint64_t hits; /* both */
} ibp_persist_usage_row;

typedef struct ibp_persist_usage_result {
    ibp_persist_usage_row *rows; /* ordered by date (when per_day), then hits descending, key */
    size_t count;
    uint64_t total_ipv4, total_ipv6, total; /* over every row */
} ibp_persist_usage_result;

/*
 * Sums requests.hits over [start_date, end_date] grouped by q->by (and date
 * when per_day), restricted by the filters. Errors: IBP_E_INVAL (bad dates,
 * unknown grouping), IBP_E_RANGE (too many rows), IBP_E_DB, IBP_E_NOMEM.
 */
ibp_status ibp_persist_query_usage(MYSQL *db, const ibp_persist_usage_query *q,
                                   ibp_persist_usage_result *out, ibp_err *err);

void ibp_persist_usage_result_free(ibp_persist_usage_result *r);

/*
 * The JSON forms. Requests:
 *   events  {"member": "Stake Plus", "domain": "rpc.ibp.network" (optional),
 *            "start": "2025-01-01T00:00:00Z", "end": "2025-02-01T00:00:00Z"}
 *           (times RFC 3339, or Unix ms as numbers, or dates "YYYY-MM-DD")
 *   usage   {"by": "domain" | "member" | "country", "start": "2025-01-01",
 *            "end": "2025-01-31", "domain": ..., "member": ..., "country": ...
 *            (filters, optional), "per_day": false}
 * Responses:
 *   events  {"member": ..., "domain": ..., "start": ..., "end": ...,
 *            "events": [{"id", "member_name", "check_type", "check_name",
 *            "domain_name", "endpoint", "status", "is_ipv6", "start_time",
 *            "end_time" (null while open), "open", "duration_ms" (end - start,
 *            or until the query while open), "error", "vote_data",
 *            "additional_data", "event_id", "end_event_id"}]}
 *   usage   {"by": ..., "start": ..., "end": ..., "rows": [{"date" (per_day),
 *            "<by>": key, "country_name" (by country), "ipv4": n, "ipv6": n,
 *            "total": n}], "total": {"ipv4": n, "ipv6": n, "total": n}}
 *   error   {"error": {"code": "IBP_E_INVAL", "message": "..."}}
 * *response (malloc'd, NUL-terminated JSON) is always set on return, to the
 * answer or to the error object; the return value is the status.
 */
ibp_status ibp_persist_query_events_json(MYSQL *db, const char *request, size_t len,
                                         char **response, ibp_err *err);
ibp_status ibp_persist_query_usage_json(MYSQL *db, const char *request, size_t len, char **response,
                                        ibp_err *err);

/*
 * Availability of a member over a window, from its outages in member_events
 * (ibp/availability.h: outages that overlap are counted once).
 *   request  {"member": "Stake Plus", "domain": "rpc.ibp.network" (optional),
 *             "from": T, "to": T}  (times as for events)
 *   response {"member", "domain", "from", "to" (the window, its end clipped
 *             to now_ms: the future is not judged), "window_ms",
 *             "availability" (0..1), "availability_percent", "downtime_ms",
 *             "outages" (outage events that overlap the window), "open",
 *             "ipv4": {...}, "ipv6": {...} (the same figures per family),
 *             "domains": [{"domain", figures}], "checks": [{"check_type",
 *             "check_name", figures}]}
 * The member's figures take every outage (site, domain and endpoint checks,
 * either family); with "domain" only that domain's and the member-wide ones
 * (site checks), as the events query selects them. "domains" lists every
 * domain with an outage in the window (each with the member-wide outages
 * too; a domain without one is 100 % available and not listed unless it is
 * the requested one); "checks" each check type and name. Override events
 * (an operator's decision) are not outages. The events are those of
 * ibp_persist_query_member_events (at most IBP_PERSIST_QUERY_MAX_ROWS).
 */
ibp_status ibp_persist_query_sla_json(MYSQL *db, const char *request, size_t len, int64_t now_ms,
                                      char **response, ibp_err *err);

/*
 * The last usage flush of a dns node that persist has applied
 * (persist_hit_flushes): request {"node": "dns1"}, response {"node",
 * "last_flush_seq", "last_stream_seq"} (0 and 0 when none was applied).
 * `ibpctl usage flush` waits on it until a flush it asked for is stored.
 */
ibp_status ibp_persist_query_hit_flushes_json(MYSQL *db, const char *request, size_t len,
                                              char **response, ibp_err *err);

/*
 * Parses a time as the requests take it: RFC 3339 ("2025-01-31T12:00:00Z",
 * fractions and offsets allowed), a date "YYYY-MM-DD" (midnight UTC), or
 * Unix milliseconds (digits only), into Unix ms. Returns 0, or -1 when the
 * text is none of these. Pure, thread-safe.
 */
int ibp_persist_time_parse_ms(const char *text, int64_t *ms);

/* Formats Unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into buf (cap >= 32). */
void ibp_persist_time_format_ms(int64_t ms, char *buf, size_t cap);

/* The error object above for st and message (malloc'd; NULL only without memory). */
char *ibp_persist_query_error_json(ibp_status st, const char *message);

#endif
