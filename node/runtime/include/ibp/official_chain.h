/*
 * Reading the chain of official snapshots from JetStream: classifies a
 * message of the snapshot subject and finds the chain's head in the OFFICIAL
 * stream (the rule is in ibp/snapshot_chain.h). Shared by the consensus
 * replicas (where to publish the next epoch) and every subscriber (which
 * epoch is current).
 *
 * The server must let the caller read stream info and single messages of
 * the stream ($JS.API.STREAM.INFO.<stream>, $JS.API.STREAM.MSG.GET.<stream>).
 */
#ifndef IBP_OFFICIAL_CHAIN_H
#define IBP_OFFICIAL_CHAIN_H

#include <nats/nats.h>

#include "ibp/envelope.h"
#include "ibp/snapshot_chain.h"

/* Messages fetched at most when walking back for the head. */
#define IBP_OFFICIAL_CHAIN_SCAN_MAX 4096

/*
 * Classifies data (a message of the snapshot subject, at stream sequence seq)
 * with a stateless check: valid when it verifies as an OfficialSnapshot
 * signed by a consensus node of the verifier's roster. Never fails: out says
 * valid or not (and why).
 */
void ibp_official_chain_classify(ibp_verifier *v, const uint8_t *data, size_t len, uint64_t seq,
                                 ibp_chain_msg *out);

/* The same for a message that passed ibp_verifier_check_stateless already. */
void ibp_official_chain_from_verified(const ibp_verified *vm, uint64_t seq, ibp_chain_msg *out);

/*
 * Finds the head of the chain in stream (OFFICIAL) for subject: out->last_seq
 * is the last message of the stream (what a publisher must expect), out->head
 * the newest confirmed snapshot. Errors: IBP_E_NATS (the message says what).
 */
ibp_status ibp_official_chain_head(jsCtx *js, ibp_verifier *v, const char *stream,
                                   const char *subject, ibp_chain_head *out, ibp_err *err);

#endif
