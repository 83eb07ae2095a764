/*
 * Event (proto/ibp.proto): one official status change or member override,
 * between a plain C struct and the payload bytes that go inside the signed
 * envelope (ibp/envelope.h).
 *
 * Bytes: id, kind, key (ResultKey), status, error, data, time, epoch, then
 * each voter (node, LOCAL sequence, batch sequence, status), in the order
 * given (protobuf-c's encoding; fields at their default are left out).
 *
 * Checks on decode (an Event that fails any is refused, IBP_E_INVAL with the
 * reason, as persist dead-letters it; IBP_E_PAYLOAD_DECODE for bytes that are
 * not an Event; IBP_E_TOO_LARGE past IBP_DECODED_MAX_DEFAULT once decoded):
 *   - an id;
 *   - a key with a member;
 *   - status up or down;
 *   - kind STATUS or REMOVED with a site, domain or endpoint key that has
 *     exactly the domain and endpoint its type needs, or kind OVERRIDE (its key carries
 *     the member; check name "override" by convention, other fields ignored);
 *   - every voter reports up or down.
 * Column limits and UTF-8 are the receivers' (persist checks its columns).
 */
#ifndef IBP_CODEC_EVENT_H
#define IBP_CODEC_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/codec_result_key.h"
#include "ibp/status.h"

struct ibp_verified;

/* EventKind of the wire. */
typedef enum ibp_codec_event_kind {
    IBP_CODEC_EVENT_NONE = 0,
    IBP_CODEC_EVENT_STATUS = 1,   /* official status of a key changed */
    IBP_CODEC_EVENT_OVERRIDE = 2, /* member disabled (down) or enabled (up) by an admin */
    IBP_CODEC_EVENT_REMOVED = 3,  /* the key left the official state (expiry) */
} ibp_codec_event_kind;

typedef struct ibp_codec_voter {
    const char *node;
    uint64_t local_seq; /* LOCAL sequence of the batch that carried the vote */
    uint64_t batch_seq; /* the monitor's batch counter */
    ibp_result_status status;
} ibp_codec_voter;

/* Strings borrowed; NULL means "". */
typedef struct ibp_codec_event {
    const char *id; /* deterministic: same change, same id on every replica */
    ibp_codec_event_kind kind;
    ibp_codec_key key;
    ibp_result_status status;
    const char *error;
    const char *data_json;
    int64_t time_ms; /* stream time of the change */
    uint64_t epoch;
    const ibp_codec_voter *voters;
    size_t nvoters;
    void *owned; /* decode: what the strings and arrays live in; NULL on encode */
} ibp_codec_event;

/*
 * Packs e (only read, unchecked) into *out (malloc'd, the caller frees) of
 * *out_len bytes. Errors: IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_codec_event_encode(const ibp_codec_event *e, uint8_t **out, size_t *out_len,
                                  ibp_err *err);

/* Decodes and checks data[0..len) into *out; release it with ibp_codec_event_clear(). */
ibp_status ibp_codec_event_decode(const uint8_t *data, size_t len, ibp_codec_event *out,
                                  ibp_err *err);

/*
 * The same for a verified envelope of type Event, without parsing it again:
 * strings are borrowed from vm, which must outlive *out. IBP_E_INVAL for
 * another payload type.
 */
ibp_status ibp_codec_event_decode_verified(const struct ibp_verified *vm, ibp_codec_event *out,
                                           ibp_err *err);

/* Frees what a decode made; leaves *e zeroed. Accepts NULL and zeroed structs. */
void ibp_codec_event_clear(ibp_codec_event *e);

#endif
