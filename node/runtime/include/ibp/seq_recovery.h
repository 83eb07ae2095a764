/*
 * Sequence recovery: a node whose work directory was lost, or restored from
 * an older copy, learns from the bus the numbers it already used and
 * continues above them, so no receiver rejects its messages as replays and
 * persist dead-letters none of its hits.
 *
 * What is recovered, from the last message on the node's own subjects
 * (JetStream direct get, last by subject; the node's NATS user may read
 * exactly these two subjects, see `ibpctl nats-auth`):
 *   monitor  ibp.local.<node> in LOCAL: signer.seq above the envelope's
 *            sequence; monitor-batch.seq above its batch_seq when that last
 *            message is an ObservationBatch (a Heartbeat carries none; batch
 *            numbers are evidence only, no receiver rejects a repeated one);
 *   dns      ibp.hits.<node> in HITS: signer.seq above the envelope's
 *            sequence and usage.seq above the HitBatch's flush_seq (persist
 *            skips a flush_seq at or below the last it applied).
 * A message counts only when it verifies (signature, roster) as signed by
 * this node: a message someone else managed to put there never moves the
 * node's counters. Files are only ever raised (ibp_seqfile_raise); each
 * raise is logged at WARN with the old and new value.
 *
 * Not covered: the consensus role (its messages go to shared subjects; a
 * replica rebuilt without its state starts from another replica's checkpoint,
 * see ibp/checkpoint.h and docs/operations.md; its signer.seq restarting at 1
 * is refused nowhere, as every reader of consensus messages verifies them
 * without replay state and orders them by epoch), and a usage journal lost
 * with the directory (its unsent deltas are gone).
 *
 * Call it once at start, after the streams exist and before anything signs
 * or flushes (the signer and the usage library open the same files).
 */
#ifndef IBP_SEQ_RECOVERY_H
#define IBP_SEQ_RECOVERY_H

#include <nats/nats.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/status.h"

/* The newest message this node signed on one subject. */
typedef struct ibp_seq_last_own {
    bool found;               /* false: the subject holds nothing of this node */
    uint64_t envelope_seq;    /* the envelope's signer sequence */
    ibp_payload_type type;    /* its payload type */
    uint64_t payload_seq;     /* ObservationBatch.batch_seq or HitBatch.flush_seq, else 0 */
} ibp_seq_last_own;

/*
 * Reads the last message on subject of stream and fills *out when it is a
 * valid envelope signed by node_id (roster borrowed). An empty subject, a
 * missing stream or a message that does not verify leave out->found false
 * (the latter logged at WARN). IBP_E_NATS when the server cannot be asked
 * (the message names the subject and says "refused" for a permission error).
 */
ibp_status ibp_seq_last_own_read(jsCtx *js, const ibp_roster *roster, const char *node_id,
                                 const char *stream, const char *subject, ibp_seq_last_own *out,
                                 ibp_err *err);

/*
 * Recovers the sequence files of work_dir (signer.seq, monitor-batch.seq,
 * usage.seq) for the roles (ibp/roster.h bits) as described above. *raised
 * (may be NULL) counts the files raised. Errors: IBP_E_NATS (see above),
 * IBP_E_IO or IBP_E_CONFIG from the sequence files.
 */
ibp_status ibp_seq_recover(jsCtx *js, const ibp_roster *roster, const char *node_id,
                           unsigned roles, const char *work_dir, unsigned *raised, ibp_err *err);

#endif
