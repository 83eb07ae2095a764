/*
 * ObservationBatch (proto/ibp.proto): a monitor's batch of observations,
 * between a plain C struct and the payload bytes that go inside the signed
 * envelope (ibp/envelope.h). An Observation has no payload type of its own:
 * it only travels inside a batch, so both live here.
 *
 * Bytes: batch_seq, full, then each observation with its ResultKey, status,
 * check time, error and data, in the order given (protobuf-c's encoding;
 * fields at their default are left out).
 *
 * Checks on decode (a batch that fails any is refused whole, IBP_E_PAYLOAD_DECODE
 * with the reason, IBP_E_TOO_LARGE for a string over its cap):
 *   - at most IBP_DECODED_MAX_DEFAULT bytes once decoded (raw bytes only; a
 *     verified envelope was bounded by the verifier);
 *   - every observation has a key that passes ibp_codec_key_check;
 *   - status up or down;
 *   - error at most IBP_ERROR_MAX bytes, data at most IBP_DATA_MAX.
 * Each of these is also a reason for the vote engine to refuse the batch
 * whole, so a replica that decodes with this codec skips exactly the batches
 * an older one skipped. The engine's own further checks (lower-case domains,
 * its configured count limits) stay with the engine. Texts are not checked
 * for UTF-8 and data is not parsed: the engine never did, and a replica that
 * refused more than the others would diverge from them.
 */
#ifndef IBP_CODEC_OBSERVATION_BATCH_H
#define IBP_CODEC_OBSERVATION_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/codec_result_key.h"
#include "ibp/status.h"

struct ibp_verified;

/* One monitor's latest observation of one key. Strings borrowed; NULL means "". */
typedef struct ibp_codec_observation {
    ibp_codec_key key;
    ibp_result_status status; /* UP or DOWN */
    int64_t check_time_ms;    /* the monitor's clock */
    const char *error;        /* "" when none */
    const char *data_json;    /* a JSON object as text, "" when none */
} ibp_codec_observation;

typedef struct ibp_codec_observation_batch {
    uint64_t batch_seq; /* the monitor's own batch counter */
    bool full;          /* the monitor's whole local state, not only changes */
    const ibp_codec_observation *obs;
    size_t nobs;
    void *owned; /* decode: what the strings and arrays live in; NULL on encode */
} ibp_codec_observation_batch;

/*
 * Packs b (only read) into *out (malloc'd, the caller frees) of *out_len
 * bytes. Values are packed as given, unchecked (the receivers check).
 * Errors: IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_codec_observation_batch_encode(const ibp_codec_observation_batch *b, uint8_t **out,
                                              size_t *out_len, ibp_err *err);

/*
 * Bytes one observation adds to a packed batch at most: the packed
 * Observation, its field tag and its length prefix. Thread-safe.
 */
size_t ibp_codec_observation_size(const ibp_codec_observation *o);

/*
 * Decodes and checks data[0..len) (see above) into *out, which owns what it
 * points to: release it with ibp_codec_observation_batch_clear(). *out is
 * zeroed on failure. Thread-safe.
 */
ibp_status ibp_codec_observation_batch_decode(const uint8_t *data, size_t len,
                                              ibp_codec_observation_batch *out, ibp_err *err);

/*
 * The same for the payload of a verified envelope of type ObservationBatch,
 * without parsing it again: strings are borrowed from vm, which must outlive
 * *out. IBP_E_INVAL for another payload type.
 */
ibp_status ibp_codec_observation_batch_decode_verified(const struct ibp_verified *vm,
                                                       ibp_codec_observation_batch *out,
                                                       ibp_err *err);

/* Frees what a decode made; leaves *b zeroed. Accepts NULL and zeroed structs. */
void ibp_codec_observation_batch_clear(ibp_codec_observation_batch *b);

#endif
