/*
 * The saved state of a consensus replica (ReplicaState in proto/ibp.proto):
 * the vote engine's export plus the verifier's last accepted sequence per
 * signer. The same encoding is the file <work dir>/consensus.state (written
 * atomically: temporary file, fsync, rename) and the payload of a replica's
 * checkpoint on the bus (ibp/checkpoint.h); encoding and decoding work on
 * buffers, the file calls wrap them.
 *
 * Thread safety: none of its own; the engine and verifier passed in must not
 * change during a call.
 */
#ifndef IBP_REPLICA_STATE_H
#define IBP_REPLICA_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/roster.h"
#include "ibp/status.h"
#include "ibp/vote.h"

/* The digest of the epoch before the engine's, when the replica knows it
 * (ReplicaState.prev_digest): what its epoch statements chain to. */
typedef struct ibp_replica_prev {
    bool known;
    uint8_t digest[IBP_VOTE_DIGEST_SIZE];
} ibp_replica_prev;

/*
 * Encodes the state of engine e and verifier v (the sequences of roster's
 * signers) into *out (malloc'd, the caller frees it) and *out_len.
 * Errors: IBP_E_NOMEM, IBP_E_INVAL (the engine cannot export).
 */
ibp_status ibp_replica_state_encode(ibp_vote *e, const ibp_verifier *v, const ibp_roster *roster,
                                    const ibp_replica_prev *prev, uint8_t **out, size_t *out_len,
                                    ibp_err *err);

/*
 * Decodes buf[0..len) into *out (free with ibp__v1__replica_state__free_unpacked(*out,
 * NULL)) and checks its version and digest size. The engine state is not checked
 * here: ibp_replica_state_import does that. Errors: IBP_E_PAYLOAD_DECODE.
 */
ibp_status ibp_replica_state_decode(const uint8_t *buf, size_t len, Ibp__V1__ReplicaState **out,
                                    ibp_err *err);

/*
 * Checks the version and digest size of a decoded state (one that came in a
 * verified envelope, say). Errors: IBP_E_PAYLOAD_DECODE.
 */
ibp_status ibp_replica_state_check(const Ibp__V1__ReplicaState *rs, ibp_err *err);

/*
 * Creates a new engine (*engine_out, with cfg) holding rs. ibp_vote_import
 * checks everything it loads and recomputes the digest from the official
 * entries and overrides, refusing a state whose digest field differs.
 * The verifier is not touched (ibp_replica_state_set_seqs).
 * Errors: IBP_E_CONFIG (the engine refuses it: the message says why),
 * IBP_E_NOMEM. *engine_out is set only on success.
 */
ibp_status ibp_replica_state_import(const Ibp__V1__ReplicaState *rs, const ibp_vote_config *cfg,
                                    ibp_vote **engine_out, ibp_err *err);

/* Sets v's last accepted sequences from rs; signers no longer in the roster are ignored. */
void ibp_replica_state_set_seqs(const Ibp__V1__ReplicaState *rs, ibp_verifier *v);

/*
 * Writes the state of engine e and verifier v (signers of roster) to path.
 * Errors: IBP_E_NOMEM, IBP_E_INVAL, IBP_E_IO (naming the path).
 */
ibp_status ibp_replica_state_save(const char *path, ibp_vote *e, const ibp_verifier *v,
                                  const ibp_roster *roster, const ibp_replica_prev *prev,
                                  ibp_err *err);

/*
 * Loads path into a new engine (*engine_out, with cfg) and sets the
 * verifier's sequences. IBP_E_NOT_FOUND when there is no file (start from
 * the beginning); IBP_E_CONFIG when it does not decode or the engine refuses
 * it (message names the path and the reason). Signers no longer in the
 * roster are ignored.
 */
ibp_status ibp_replica_state_load(const char *path, const ibp_vote_config *cfg,
                                  ibp_vote **engine_out, ibp_verifier *v, ibp_replica_prev *prev,
                                  ibp_err *err);

#endif
