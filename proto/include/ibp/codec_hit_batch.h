/*
 * HitBatch (proto/ibp.proto): one dns node's usage counter deltas, between a
 * plain C struct and the payload bytes that go inside the signed envelope
 * (ibp/envelope.h).
 *
 * Bytes: node, flush_seq, then each row (date, domain, member, country code,
 * ASN, network name, country name, ipv6, hits) in the order given
 * (protobuf-c's encoding; fields at their default are left out).
 *
 * Checks on decode (IBP_E_INVAL with the reason, as persist dead-letters it;
 * IBP_E_PAYLOAD_DECODE for bytes that are not a HitBatch; IBP_E_TOO_LARGE
 * past IBP_DECODED_MAX_DEFAULT once decoded):
 *   - flush_seq > 0 (with node, the batch's dedup id);
 *   - every row's date is a calendar day written YYYY-MM-DD.
 * Who may report for which node (the signer), column limits, UTF-8 and the
 * plausible number of hits are the receivers' (persist checks its columns).
 */
#ifndef IBP_CODEC_HIT_BATCH_H
#define IBP_CODEC_HIT_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

struct ibp_verified;

/* One counter delta. Strings borrowed; NULL means "". */
typedef struct ibp_codec_hit_row {
    const char *date; /* UTC day, "YYYY-MM-DD" */
    const char *domain;
    const char *member;       /* "(none)" when no member answered */
    const char *country_code; /* ISO 3166 alpha-2 or "??" */
    const char *asn;          /* "AS<number>" or "" */
    const char *network_name;
    const char *country_name;
    bool ipv6;
    uint64_t hits;
} ibp_codec_hit_row;

typedef struct ibp_codec_hit_batch {
    const char *node;   /* the reporting dns node */
    uint64_t flush_seq; /* per node, strictly increasing */
    const ibp_codec_hit_row *rows;
    size_t nrows;
    void *owned; /* decode: what the strings and arrays live in; NULL on encode */
} ibp_codec_hit_batch;

/*
 * Packs b (only read, unchecked) into *out (malloc'd, the caller frees) of
 * *out_len bytes. Errors: IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_codec_hit_batch_encode(const ibp_codec_hit_batch *b, uint8_t **out, size_t *out_len,
                                      ibp_err *err);

/* Bytes one row adds to a packed batch at most (the row, its tag and length prefix). */
size_t ibp_codec_hit_row_size(const ibp_codec_hit_row *r);

/* Decodes and checks data[0..len) into *out; release it with ibp_codec_hit_batch_clear(). */
ibp_status ibp_codec_hit_batch_decode(const uint8_t *data, size_t len, ibp_codec_hit_batch *out,
                                      ibp_err *err);

/*
 * The same for a verified envelope of type HitBatch, without parsing it
 * again: strings are borrowed from vm, which must outlive *out.
 * IBP_E_INVAL for another payload type.
 */
ibp_status ibp_codec_hit_batch_decode_verified(const struct ibp_verified *vm,
                                               ibp_codec_hit_batch *out, ibp_err *err);

/* Frees what a decode made; leaves *b zeroed. Accepts NULL and zeroed structs. */
void ibp_codec_hit_batch_clear(ibp_codec_hit_batch *b);

#endif
