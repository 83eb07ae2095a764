/*
 * The saved state of a consensus replica (ReplicaState in proto/ibp.proto):
 * the vote engine's export plus the verifier's last accepted sequence per
 * signer, as one file written atomically (temporary file, fsync, rename).
 */
#ifndef IBP_REPLICA_STATE_H
#define IBP_REPLICA_STATE_H

#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/status.h"
#include "ibp/vote.h"

/*
 * Writes the state of engine e and verifier v (signers of roster) to path.
 * Errors: IBP_E_NOMEM, IBP_E_IO (naming the path).
 */
ibp_status ibp_replica_state_save(const char *path, ibp_vote *e, const ibp_verifier *v,
                                  const ibp_roster *roster, ibp_err *err);

/*
 * Loads path into a new engine (*engine_out, with cfg) and sets the
 * verifier's sequences. IBP_E_NOT_FOUND when there is no file (start from
 * the beginning); IBP_E_CONFIG when it does not decode or the engine refuses
 * it (message names the path and the reason). Signers no longer in the
 * roster are ignored.
 */
ibp_status ibp_replica_state_load(const char *path, const ibp_vote_config *cfg,
                                  ibp_vote **engine_out, ibp_verifier *v, ibp_err *err);

#endif
