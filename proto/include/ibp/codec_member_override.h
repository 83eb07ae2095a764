/*
 * MemberOverride (proto/ibp.proto): an admin's command to take a member out
 * of DNS (disabled) or put it back, between a plain C struct and the payload
 * bytes that go inside the signed envelope (ibp/envelope.h).
 *
 * Bytes: member, disabled, reason (protobuf-c's encoding; fields at their
 * default are left out).
 *
 * Checks on decode (IBP_E_PAYLOAD_DECODE, or IBP_E_TOO_LARGE for a string
 * over its cap): a member of 1..IBP_NAME_MAX bytes, a reason of at most
 * IBP_ERROR_MAX bytes; raw bytes also at most IBP_DECODED_MAX_DEFAULT
 * once decoded. The vote engine refuses exactly these too.
 */
#ifndef IBP_CODEC_MEMBER_OVERRIDE_H
#define IBP_CODEC_MEMBER_OVERRIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

struct ibp_verified;

typedef struct ibp_codec_member_override {
    const char *member; /* borrowed; NULL means "" */
    bool disabled;      /* true: out of DNS; false: back in */
    const char *reason; /* "" when none */
    void *owned;        /* decode: what the strings live in; NULL on encode */
} ibp_codec_member_override;

/*
 * Packs m (only read, unchecked) into *out (malloc'd, the caller frees) of
 * *out_len bytes. Errors: IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_codec_member_override_encode(const ibp_codec_member_override *m, uint8_t **out,
                                            size_t *out_len, ibp_err *err);

/* Decodes and checks data[0..len) into *out; release it with ibp_codec_member_override_clear(). */
ibp_status ibp_codec_member_override_decode(const uint8_t *data, size_t len,
                                            ibp_codec_member_override *out, ibp_err *err);

/*
 * The same for a verified envelope of type MemberOverride, without parsing it
 * again: strings are borrowed from vm, which must outlive *out.
 * IBP_E_INVAL for another payload type.
 */
ibp_status ibp_codec_member_override_decode_verified(const struct ibp_verified *vm,
                                                     ibp_codec_member_override *out, ibp_err *err);

/* Frees what a decode made; leaves *m zeroed. Accepts NULL and zeroed structs. */
void ibp_codec_member_override_clear(ibp_codec_member_override *m);

#endif
