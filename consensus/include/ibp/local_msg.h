/*
 * From a verified LOCAL envelope to the vote engine's plain message, and the
 * status and key conversions between the engine's plain types and the wire
 * format: the one place where the two meet.
 */
#ifndef IBP_LOCAL_MSG_H
#define IBP_LOCAL_MSG_H

#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/status.h"
#include "ibp/vote.h"

/*
 * Fills *out from vm (which must stay alive while *out is used), with the
 * LOCAL stream sequence and time. The payload is decoded and checked by its
 * codec (ibp/codec_observation_batch.h, ibp/codec_member_override.h).
 * Observation batches need an array: *obs receives a malloc'd one (free it
 * after the apply; NULL for other kinds). Returns IBP_OK; IBP_E_NOT_FOUND
 * when the message is not for the engine (a heartbeat from a signer without
 * the monitor role, or a payload type that does not belong on LOCAL);
 * IBP_E_PAYLOAD_DECODE or IBP_E_TOO_LARGE for a payload the codec refuses
 * (logged with the reason, at WARN), which the engine would refuse whole as
 * well; IBP_E_NOMEM.
 */
ibp_status ibp_local_msg_from_verified(const ibp_verified *vm, uint64_t local_seq,
                                       int64_t stream_ms, ibp_vote_msg *out, ibp_vote_obs **obs);

/* Status and key conversions between the engine and the wire (ibp.proto). */
Ibp__V1__Status ibp_local_status_to_wire(ibp_vote_status s);
ibp_vote_status ibp_local_status_from_wire(Ibp__V1__Status s);
/* Fills *out from k; the strings are borrowed from k (NULL becomes ""). */
void ibp_local_key_to_wire(Ibp__V1__ResultKey *out, const ibp_vote_key *k);

#endif
