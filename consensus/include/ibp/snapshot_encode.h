/*
 * Encoding the engine's official state as an OfficialSnapshot (proto/ibp.proto).
 *
 * The bytes are the snapshot codec's (ibp/codec_snapshot.h): interned
 * strings, entries in the canonical key order of ibp_codec_key_cmp, so two
 * replicas with the same state produce byte-identical payloads. This file
 * only turns the engine's state into the codec's plain struct.
 *
 * Evidence: for every change of the update (when given), the voters that
 * decided it: added and flipped keys point at their entry, removed keys carry
 * their ResultKey.
 */
#ifndef IBP_SNAPSHOT_ENCODE_H
#define IBP_SNAPSHOT_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"
#include "ibp/vote.h"

/*
 * Packs the whole official state of e (entries, overrides, epoch, LOCAL
 * sequence, digest) and the evidence of update (may be NULL) into *out
 * (malloc'd, caller frees) of *out_len bytes. The engine must not change
 * during the call. Errors: IBP_E_NOMEM, IBP_E_TOO_LARGE (over the message
 * limit; the message says how large).
 */
ibp_status ibp_snapshot_encode(const ibp_vote *e, const ibp_vote_update *update, uint8_t **out,
                               size_t *out_len, ibp_err *err);

#endif
