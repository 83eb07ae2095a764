/*
 * Heartbeat (proto/ibp.proto): "still here" from a monitor, or a consensus
 * replica's progress (epoch and LOCAL stream sequence applied), between a
 * plain C struct and the payload bytes that go inside the signed envelope
 * (ibp/envelope.h).
 *
 * Bytes: epoch, local_seq, then each role name (protobuf-c's encoding;
 * fields at their default are left out).
 *
 * Checks on decode (IBP_E_PAYLOAD_DECODE): at most IBP_CODEC_HEARTBEAT_ROLES_MAX
 * role names of 1..IBP_CODEC_HEARTBEAT_ROLE_MAX bytes each; raw bytes also at
 * most IBP_DECODED_MAX_DEFAULT once decoded. Role names are not matched
 * against the roster's: a newer node may name a role this one does not know.
 */
#ifndef IBP_CODEC_HEARTBEAT_H
#define IBP_CODEC_HEARTBEAT_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

#define IBP_CODEC_HEARTBEAT_ROLES_MAX 32
#define IBP_CODEC_HEARTBEAT_ROLE_MAX 64

struct ibp_verified;

typedef struct ibp_codec_heartbeat {
    uint64_t epoch;           /* a replica's current epoch; 0 from a monitor */
    uint64_t local_seq;       /* a replica's LOCAL sequence applied; 0 from a monitor */
    const char *const *roles; /* the sender's role names ("monitor", "consensus") */
    size_t nroles;
    void *owned; /* decode: what the strings live in; NULL on encode */
} ibp_codec_heartbeat;

/*
 * Packs h (only read, unchecked) into *out (malloc'd, the caller frees) of
 * *out_len bytes. Errors: IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_codec_heartbeat_encode(const ibp_codec_heartbeat *h, uint8_t **out, size_t *out_len,
                                      ibp_err *err);

/* Decodes and checks data[0..len) into *out; release it with ibp_codec_heartbeat_clear(). */
ibp_status ibp_codec_heartbeat_decode(const uint8_t *data, size_t len, ibp_codec_heartbeat *out,
                                      ibp_err *err);

/*
 * The same for a verified envelope of type Heartbeat, without parsing it
 * again: strings are borrowed from vm, which must outlive *out.
 * IBP_E_INVAL for another payload type.
 */
ibp_status ibp_codec_heartbeat_decode_verified(const struct ibp_verified *vm,
                                               ibp_codec_heartbeat *out, ibp_err *err);

/* Frees what a decode made; leaves *h zeroed. Accepts NULL and zeroed structs. */
void ibp_codec_heartbeat_clear(ibp_codec_heartbeat *h);

#endif
