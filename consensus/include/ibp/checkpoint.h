/*
 * Replica checkpoints: the rules a replica without a state of its own
 * applies to the other replicas' signed states before it starts from one
 * (proto/ibp.proto, ReplicaState; DESIGN.md §6).
 *
 * Every consensus.checkpoint_ms a replica publishes its state (the engine
 * export, the LOCAL sequence it covers and the verifier's signer sequences)
 * as a signed envelope of type CHECKPOINT on ibp.consensus.checkpoint.<its
 * id>, in stream CHECKPOINT, which keeps the last message of each subject.
 *
 * A replica that starts without <work dir>/consensus.state reads the last
 * checkpoint of every consensus node of the roster, and takes the newest
 * (highest epoch, then LOCAL sequence) that passes, in this order:
 *   1. the envelope verifies against the roster (signature, a signer with
 *      the consensus role, a ReplicaState payload of a supported version),
 *      and it came on the signer's own subject;
 *   2. LOCAL still holds everything after it: local_seq + 1 is LOCAL's first
 *      sequence or later, and local_seq is not past LOCAL's last;
 *   3. its digest equals the digest of the OfficialSnapshot of its epoch in
 *      OFFICIAL, verified as the chain reader verifies snapshots (epoch 0:
 *      the empty digest, no snapshot needed);
 *   4. the engine imports it (ibp_vote_import checks every field and
 *      recomputes the digest from the official entries and overrides, so
 *      the digest compared in 3 is the state's own).
 * If none passes and LOCAL has never dropped a message (first sequence <= 1),
 * it replays LOCAL from the start, as the replicas that wrote the history
 * did. Otherwise it publishes nothing and tries again every few seconds,
 * saying at WARN why each candidate was refused: a replica that started from
 * the middle of LOCAL would compute epochs of its own for ever.
 *
 * The functions here are the pure parts of these rules (no I/O); the replica
 * (replica_bootstrap.c) reads the streams. Thread-safe.
 */
#ifndef IBP_CHECKPOINT_H
#define IBP_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/snapshot_chain.h"

/* Why a checkpoint was refused (or IBP_CHECKPOINT_OK). */
#define IBP_CHECKPOINT_VERDICT_LIST(X)                                                             \
    X(IBP_CHECKPOINT_OK, "usable")                                                                 \
    X(IBP_CHECKPOINT_NONE, "no checkpoint on the subject")                                         \
    X(IBP_CHECKPOINT_BAD_ENVELOPE, "envelope does not verify against the roster")                  \
    X(IBP_CHECKPOINT_NOT_CONSENSUS, "not a checkpoint signed by a consensus node")                 \
    X(IBP_CHECKPOINT_WRONG_SUBJECT, "published on another node's subject")                         \
    X(IBP_CHECKPOINT_BAD_STATE, "state does not decode or the engine refuses it")                  \
    X(IBP_CHECKPOINT_EMPTY, "covers no LOCAL message")                                             \
    X(IBP_CHECKPOINT_LOCAL_GONE, "LOCAL no longer holds the messages after it")                    \
    X(IBP_CHECKPOINT_NO_SNAPSHOT, "OFFICIAL holds no snapshot of its epoch")                       \
    X(IBP_CHECKPOINT_DIGEST_MISMATCH, "digest differs from the snapshot of its epoch")

typedef enum ibp_checkpoint_verdict {
#define IBP_CHECKPOINT_VERDICT_ENUM(name, text) name,
    IBP_CHECKPOINT_VERDICT_LIST(IBP_CHECKPOINT_VERDICT_ENUM)
#undef IBP_CHECKPOINT_VERDICT_ENUM
        IBP_CHECKPOINT_VERDICT_COUNT
} ibp_checkpoint_verdict;

/* "digest differs from ..." ; never NULL. */
const char *ibp_checkpoint_verdict_text(ibp_checkpoint_verdict v);

/*
 * Rule 1 for a message that passed ibp_verifier_check_stateless: a
 * CHECKPOINT, signed by a consensus node, on subject, which must be
 * ibp.consensus.checkpoint.<signer>. Also refuses a state of an unsupported
 * version or digest size (BAD_STATE) and one that covers no LOCAL message
 * (EMPTY).
 */
ibp_checkpoint_verdict ibp_checkpoint_check_envelope(const ibp_verified *vm, const char *subject);

/*
 * Rule 2: LOCAL's first and last sequence now (stream info; an empty stream
 * that dropped everything has first = last + 1).
 */
ibp_checkpoint_verdict ibp_checkpoint_check_local(uint64_t local_seq, uint64_t first_seq,
                                                  uint64_t last_seq);

/*
 * Rule 3: snap is the valid snapshot of the checkpoint's epoch found in
 * OFFICIAL, or NULL when there is none (epoch 0 needs none: the digest must
 * be the empty state's).
 */
ibp_checkpoint_verdict ibp_checkpoint_check_digest(uint64_t epoch, const uint8_t *digest,
                                                   size_t digest_len, const ibp_chain_msg *snap);

/* True when checkpoint (epoch a, local_seq a) is newer than b: epoch, then LOCAL sequence. */
bool ibp_checkpoint_newer(uint64_t epoch_a, uint64_t local_seq_a, uint64_t epoch_b,
                          uint64_t local_seq_b);

/* True when a replica with no usable checkpoint may replay LOCAL from the start. */
bool ibp_checkpoint_may_replay_all(uint64_t local_first_seq);

#endif
