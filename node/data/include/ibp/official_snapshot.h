/*
 * Turning a received OfficialSnapshot (proto/ibp.proto) into what the store
 * takes, and checking it on the way: every string index in range, every entry
 * a valid result (ibp_result_new rules), no key twice, no override member
 * twice. A snapshot that fails any check is refused whole (IBP_E_PAYLOAD_DECODE
 * with the reason; IBP_E_TOO_LARGE when a key string, data or an override
 * member is over its cap in ibp/result.h), never half applied.
 *
 * The snapshot carries the whole official state: swap it into the store with
 * ibp_official_snapshot_apply(), which uses one ibp_store_set_snapshot() call,
 * so readers see the old epoch or the new one, never a mix.
 */
#ifndef IBP_OFFICIAL_SNAPSHOT_H
#define IBP_OFFICIAL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

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
 * Decodes and checks s into *out (zeroed first). Errors: IBP_E_PAYLOAD_DECODE, IBP_E_TOO_LARGE,
 * IBP_E_NOMEM.
 */
ibp_status ibp_official_snapshot_from_proto(const Ibp__V1__OfficialSnapshot *s,
                                            ibp_official_snapshot *out, ibp_err *err);

/* Swaps the snapshot into the store in one step (no events: consensus emits them). */
ibp_status ibp_official_snapshot_apply(ibp_store *store, const ibp_official_snapshot *snap,
                                       ibp_err *err);

/* Frees what from_proto made; leaves *snap zeroed. Accepts NULL. */
void ibp_official_snapshot_clear(ibp_official_snapshot *snap);

#endif
