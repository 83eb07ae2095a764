/*
 * Turning a received OfficialSnapshot into what the store takes. The wire
 * and its checks are the codec's (ibp/codec_snapshot.h: every string index
 * in range, every entry a valid result, no key twice, no override member
 * twice); this adds the conversion into ibp_result. A snapshot that fails any
 * check is refused whole (IBP_E_PAYLOAD_DECODE with the reason;
 * IBP_E_TOO_LARGE when a key string, data or an override member is over its
 * cap), never half applied.
 *
 * The snapshot carries the whole official state: swap it into the store with
 * ibp_official_snapshot_apply(), which uses one ibp_store_set_snapshot() call,
 * so readers see the old epoch or the new one, never a mix.
 */
#ifndef IBP_OFFICIAL_SNAPSHOT_H
#define IBP_OFFICIAL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/codec_snapshot.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/result.h"
#include "ibp/status.h"
#include "ibp/store.h"

typedef struct ibp_official_snapshot {
    uint64_t epoch;
    uint64_t local_seq;
    int64_t applied_ms;
    uint8_t digest[64];
    size_t digest_len;
    ibp_result_list results; /* owned */
    ibp_override *overrides; /* owned, free with ibp_official_snapshot_clear */
    size_t n_overrides;
} ibp_official_snapshot;

/*
 * Decodes an OfficialSnapshot payload (ibp/codec_snapshot.h: every check of the
 * wire) into *out (zeroed first); each entry then becomes an ibp_result
 * (ibp_result_new rules; error texts cut at IBP_ERROR_MAX), sorted in the
 * store's order; overrides keep only disabled members. Errors:
 * IBP_E_PAYLOAD_DECODE, IBP_E_TOO_LARGE, IBP_E_NOMEM.
 */
ibp_status ibp_official_snapshot_decode(const uint8_t *data, size_t len,
                                        ibp_official_snapshot *out, ibp_err *err);

/* The same from a verified envelope of type OfficialSnapshot (not parsed again). */
ibp_status ibp_official_snapshot_from_verified(const ibp_verified *vm, ibp_official_snapshot *out,
                                               ibp_err *err);

/* The same from a snapshot the codec has decoded; s is only read. */
ibp_status ibp_official_snapshot_from_wire(const ibp_codec_snapshot *s, ibp_official_snapshot *out,
                                           ibp_err *err);

/*
 * The same from a parsed protobuf message, for tools and tests that build or
 * hold one (all checks of ibp_official_snapshot_decode apply).
 */
ibp_status ibp_official_snapshot_from_proto(const Ibp__V1__OfficialSnapshot *s,
                                            ibp_official_snapshot *out, ibp_err *err);

/* Swaps the snapshot into the store in one step (no events: consensus emits them). */
ibp_status ibp_official_snapshot_apply(ibp_store *store, const ibp_official_snapshot *snap,
                                       ibp_err *err);

/* Frees what from_proto made; leaves *snap zeroed. Accepts NULL. */
void ibp_official_snapshot_clear(ibp_official_snapshot *snap);

#endif
