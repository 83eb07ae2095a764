/*
 * Decoding the payload of a HITS or EVENTS message into the plain columns
 * persist writes (DESIGN.md §7, §8). Pure: no MariaDB, no clock, no I/O, no
 * signature check; the caller verified the envelope and decoded its payload
 * with its codec (ibp/codec_hit_batch.h, ibp/codec_event.h), which refuses
 * what can never be right (IBP_E_INVAL: flush_seq 0, a date that is not a
 * calendar day; an Event without id or member, with a status, kind or key
 * shape that is wrong), and passes the codec's plain struct.
 *
 * What is checked here is what MariaDB would refuse, so that such a message
 * is dead-lettered with a clear reason before any transaction starts (the
 * list below includes the codec's checks: the _from_pb forms run both):
 *   HitBatch  node equal to the signer (a dns node reports its own hits),
 *             flush_seq > 0, every date a YYYY-MM-DD from year 1000 on,
 *             hits at most IBP_PERSIST_MAX_ROW_HITS, every string valid
 *             UTF-8 within its cap or column (see below);
 *   Event     an id, a key with a member, status up or down, a time a
 *             DATETIME holds, kind STATUS (site / domain / endpoint key with
 *             exactly the fields its type needs) or OVERRIDE, strings valid
 *             UTF-8 within their caps, error text and data_json valid
 *             UTF-8 (the error text is cut to IBP_ERROR_MAX bytes at a
 *             character boundary).
 * The reasons: IBP_E_ROLE_DENIED (HitBatch of another node), IBP_E_RANGE (a
 * value its column cannot hold), IBP_E_INVAL (anything else malformed),
 * IBP_E_NOMEM; err->msg is the detail stored in dead_letters (e.g. "row 3:
 * domain of 300 bytes is over the limit of 253 (IBP_DOMAIN_MAX)", "row 0:
 * asn has 33 characters, the column holds 32").
 *
 * Ownership: the parsed structs borrow every string from the decoded message
 * (keep it alive while they are used) except the two JSON columns of an
 * Event, which they own; the _clear functions free what they own and accept
 * a zeroed struct. Thread-safe (no shared state).
 */
#ifndef IBP_PERSIST_PARSE_H
#define IBP_PERSIST_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/codec_event.h"
#include "ibp/codec_hit_batch.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/status.h"
#include "ibp/types.h"

/* A hit row delta above this is not plausible (10^12 hits in one flush) and
 * is dead-lettered; it also keeps any sum far from BIGINT UNSIGNED overflow. */
#define IBP_PERSIST_MAX_ROW_HITS UINT64_C(1000000000000)

/* Earliest and latest instants a DATETIME(3) holds (1000-01-01 .. 9999-12-31), in Unix ms. */
#define IBP_PERSIST_TIME_MIN_MS INT64_C(-30610224000000)
#define IBP_PERSIST_TIME_MAX_MS INT64_C(253402300799999)

/*
 * What the columns hold. The strings capped in ibp/types.h (node ids,
 * domains, member and check names, endpoint URLs, Event ids) are checked
 * against their cap, in bytes: each of their columns holds as many
 * characters as the cap (deploy/sql/003_caps.sql), so every value up to the
 * cap is stored and only a longer one (which no correct node sends) is
 * refused. Error texts are cut to IBP_ERROR_MAX bytes. The geo columns of
 * `requests` have no cap of the wire; their widths, in characters, are these.
 */
enum {
    IBP_PERSIST_LIM_ASN = 32,
    IBP_PERSIST_LIM_NETWORK = 255,
    IBP_PERSIST_LIM_CC = 2,
    IBP_PERSIST_LIM_COUNTRY = 64,
};

/* One row of a HitBatch: the columns of `requests`. Strings are never NULL
 * (an absent field is ""). */
typedef struct ibp_persist_hit_row {
    const char *date; /* "YYYY-MM-DD" */
    const char *domain;
    const char *member;
    const char *asn;
    const char *network_name;
    const char *country_code;
    const char *country_name;
    bool ipv6;
    uint64_t hits;
} ibp_persist_hit_row;

typedef struct ibp_persist_hit_batch {
    const char *node;          /* the reporting dns node (== the signer) */
    uint64_t flush_seq;        /* > 0 */
    ibp_persist_hit_row *rows; /* n_rows entries (malloc'd; NULL when none) */
    size_t n_rows;
} ibp_persist_hit_batch;

/* An Event's columns of member_events. */
typedef struct ibp_persist_event {
    const char *id;
    const char *check_type; /* static: "site", "domain", "endpoint", "override" */
    const char *check_name;
    const char *endpoint; /* "" unless an endpoint key */
    const char *member;
    const char *domain; /* "" for site and override keys */
    bool ipv6;
    bool up;
    int64_t time_ms;
    const char *error; /* valid UTF-8, error_len bytes (not NUL-terminated at the cut) */
    size_t error_len;
    char *vote_json; /* owned; NULL when the Event has no voters */
    char *data_json; /* owned; NULL when the Event has no data_json */
    uint64_t epoch;
} ibp_persist_event;

/*
 * Checks hb (decoded by the HitBatch codec), signed by signer, and fills *out
 * (zeroed first, so that ibp_persist_hit_batch_clear may always be called).
 * The rows borrow hb's strings, not its arrays. Errors as at the top; on
 * error *out holds nothing to use but may hold memory to clear.
 */
ibp_status ibp_persist_parse_hits(const ibp_codec_hit_batch *hb, const char *signer,
                                  ibp_persist_hit_batch *out, ibp_err *err);

/* The same from a parsed protobuf message (the codec's checks first), for tools and tests. */
ibp_status ibp_persist_parse_hit_batch(const Ibp__V1__HitBatch *hb, const char *signer,
                                       ibp_persist_hit_batch *out, ibp_err *err);

/* Frees out->rows and zeroes *out; accepts NULL. */
void ibp_persist_hit_batch_clear(ibp_persist_hit_batch *out);

/*
 * Checks ev (decoded by the Event codec) and fills *out (zeroed first): the
 * columns (borrowing ev's strings, not its voters array), the vote_data JSON
 * ({"epoch": E, "voters": [...]} for a down status, {"end_epoch": E,
 * "end_voters": [...]} for an up status, which closes) and additional_data
 * (data_json as it is when it is JSON MariaDB accepts, otherwise the text as
 * a JSON string, so an outage is never lost over its extra data). Errors as
 * at the top.
 */
ibp_status ibp_persist_parse_event_wire(const ibp_codec_event *ev, ibp_persist_event *out,
                                        ibp_err *err);

/* The same from a parsed protobuf message (the codec's checks first), for tools and tests. */
ibp_status ibp_persist_parse_event(const Ibp__V1__Event *ev, ibp_persist_event *out, ibp_err *err);

/* Frees the JSON columns and zeroes *out; accepts NULL. */
void ibp_persist_event_clear(ibp_persist_event *out);

#endif
