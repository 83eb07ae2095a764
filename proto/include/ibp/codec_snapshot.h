/*
 * OfficialSnapshot (proto/ibp.proto): the whole official state at one epoch,
 * between a plain C struct and the payload bytes that go inside the signed
 * envelope (the envelope itself is ibp/envelope.h).
 *
 * Bytes. Repeated strings are interned: the string table holds each distinct
 * string once, index 0 is "", and entries, overrides and votes refer to it by
 * index. The table is built in this order: "", then for each entry check
 * name, member, domain, endpoint (or its scheme and path, see below), error,
 * data; then each override's member and reason; then each vote's node.
 * Entries are packed in the canonical key order (ibp_codec_key_cmp), so the
 * same state always packs to the same bytes, whoever packs it.
 * An endpoint URL of the form scheme "://" domain [path], where path is empty
 * or starts with '/', ':' or '?', goes in split form: endpoint_scheme =
 * index of "wss://", endpoint_path = index of "/polkadot", endpoint = 0.
 *
 * Limits checked on decode (a snapshot that fails any is refused whole):
 *   - at most IBP_DECODED_MAX_DEFAULT bytes once decoded (raw bytes only; a
 *     verified envelope was bounded by the verifier);
 *   - the string table starts with "" and every index is in range;
 *   - a split endpoint has endpoint 0 and rebuilds to at most IBP_URL_MAX;
 *   - every entry's status is up or down, its key passes ibp_codec_key_check,
 *     its data is "" or a JSON object of at most IBP_DATA_MAX bytes
 *     (error texts are not refused for length: receivers cut them);
 *   - no key twice;
 *   - every override names a member (1..IBP_NAME_MAX bytes); no member
 *     is disabled twice;
 *   - evidence points at an entry in range or carries a valid removed key;
 *     votes name a node in the table and report up or down.
 * Errors: IBP_E_PAYLOAD_DECODE with the reason; IBP_E_TOO_LARGE when a
 * string or the decoded size is over its cap; IBP_E_NOMEM.
 */
#ifndef IBP_CODEC_SNAPSHOT_H
#define IBP_CODEC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/codec_result_key.h"
#include "ibp/status.h"

struct ibp_verified;

typedef struct ibp_codec_snapshot_entry {
    ibp_codec_key key;
    ibp_result_status status; /* UP or DOWN */
    int64_t check_time_ms;
    const char *error;     /* "" when none */
    const char *data_json; /* a JSON object as text, "" when none */
} ibp_codec_snapshot_entry;

typedef struct ibp_codec_snapshot_override {
    const char *member;
    bool disabled;
    const char *reason;
} ibp_codec_snapshot_override;

typedef struct ibp_codec_snapshot_vote {
    const char *node;   /* monitor node id */
    uint64_t local_seq; /* LOCAL sequence of the batch that carried the vote */
    uint64_t batch_seq; /* the monitor's batch counter */
    ibp_result_status status;
} ibp_codec_snapshot_vote;

/* Why a key changed at this epoch. */
typedef struct ibp_codec_snapshot_evidence {
    bool removed;      /* the change removed key */
    ibp_codec_key key; /* encode: the changed key (looked up among the entries unless
                          removed); decode: the entry's key, or the removed key */
    size_t entry;      /* decode: index into entries when not removed */
    const ibp_codec_snapshot_vote *votes;
    size_t nvotes;
} ibp_codec_snapshot_evidence;

typedef struct ibp_codec_snapshot {
    uint64_t epoch;
    uint64_t local_seq; /* last LOCAL stream sequence applied */
    int64_t applied_ms; /* stream time of that message */
    const uint8_t *digest;
    size_t digest_len;
    const ibp_codec_snapshot_entry *entries; /* encode: any order */
    size_t nentries;
    const ibp_codec_snapshot_override *overrides;
    size_t noverrides;
    const ibp_codec_snapshot_evidence *evidence;
    size_t nevidence;
    void *owned; /* decode: what the strings and arrays live in; NULL on encode */
} ibp_codec_snapshot;

/*
 * Packs s (borrowed, only read) into *out (malloc'd, the caller frees) of
 * *out_len bytes, entries in the canonical order. Changed keys of the
 * evidence that are not among the entries point at entry 0. Errors:
 * IBP_E_INVAL (two entries with one key), IBP_E_TOO_LARGE (over the message
 * limit, IBP_MESSAGE_MAX_DEFAULT less 1 KiB for the envelope; the message
 * says how large), IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_codec_snapshot_encode(const ibp_codec_snapshot *s, uint8_t **out, size_t *out_len,
                                     ibp_err *err);

/*
 * Decodes and checks data[0..len) (see the limits above) into *out, which
 * owns everything it points to: release it with ibp_codec_snapshot_clear().
 * Entries keep their wire order. *out is zeroed on failure. Thread-safe.
 */
ibp_status ibp_codec_snapshot_decode(const uint8_t *data, size_t len, ibp_codec_snapshot *out,
                                     ibp_err *err);

/*
 * The same for the payload of a verified envelope of type OfficialSnapshot,
 * without parsing it again: *out borrows strings from vm, which must outlive
 * it; release *out with ibp_codec_snapshot_clear() all the same. IBP_E_INVAL
 * for another payload type.
 */
ibp_status ibp_codec_snapshot_decode_verified(const struct ibp_verified *vm,
                                              ibp_codec_snapshot *out, ibp_err *err);

/* Frees what a decode made; leaves *s zeroed. Accepts NULL and zeroed structs. */
void ibp_codec_snapshot_clear(ibp_codec_snapshot *s);

#endif
