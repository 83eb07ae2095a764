/*
 * The NATS usage sink (DESIGN.md §7): where a dns node's usage journal
 * (ibp/usage_journal.h) delivers each flushed HitBatch delta.
 *
 * deliver() seals the packed HitBatch it is given, unchanged, in a signed
 * envelope (ibp_signer_seal_bytes, payload type HitBatch) and publishes it to
 * the HITS stream on "ibp.hits.<node>" with the headers of
 * ibp_bus_publish_envelope and Nats-Msg-Id = "<node>-<flush_seq>". It returns
 * IBP_OK only once JetStream has answered with a PubAck (a PubAck marking a
 * duplicate counts: the stream has that delta already), so the journal deletes
 * an entry only when the stream holds it. Anything else (not connected, no
 * PubAck within the timeout, an error from JetStream) is IBP_E_NATS and the
 * entry stays in the journal, to be offered again, oldest first.
 *
 * Why Nats-Msg-Id is node + flush_seq and not the envelope's signer sequence:
 * a retry seals a new envelope (a new signer sequence), but it is the same
 * delta; JetStream drops the second one within its duplicate window (2 min),
 * and persist skips a (node, flush_seq) at or below the last it applied, so a
 * delta that reaches the stream twice still counts once.
 *
 * While the connection is not CONNECTED, deliver() fails at once instead of
 * publishing into nats.c's reconnect buffer: the journal on disk is the
 * buffer, and its order is the order deltas reach the stream.
 *
 * Thread safety: the journal calls deliver from one thread at a time; the
 * sink keeps its own JetStream context. The connection and signer are
 * borrowed (both are thread-safe) and must outlive the sink.
 */
#ifndef IBP_USAGE_NATS_SINK_H
#define IBP_USAGE_NATS_SINK_H

#include <nats/nats.h>
#include <stdint.h>

#include "ibp/envelope.h"
#include "ibp/status.h"
#include "ibp/usage_journal.h"

typedef struct ibp_usage_nats_sink_opts {
    natsConnection *nc;         /* required, borrowed */
    ibp_signer *signer;         /* required, borrowed: the dns node's signer */
    const char *subject_prefix; /* default "ibp.hits": the subject is "<prefix>.<node>" */
    int64_t publish_timeout_ms; /* how long to wait for the PubAck; default 5000 */
} ibp_usage_nats_sink_opts;

/* Fills opts with the defaults (nc and signer NULL). */
void ibp_usage_nats_sink_opts_init(ibp_usage_nats_sink_opts *opts);

/*
 * Makes a sink (close it with ibp_usage_sink_close). The batches it delivers
 * must carry the signer's node id as HitBatch.node (deliver refuses others
 * with IBP_E_INVAL: persist would dead-letter them). *out is set only on
 * success. Errors: IBP_E_INVAL (missing nc or signer, bad prefix),
 * IBP_E_NATS (JetStream context), IBP_E_NOMEM.
 */
ibp_status ibp_usage_nats_sink_open(const ibp_usage_nats_sink_opts *opts, ibp_usage_sink *out,
                                    ibp_err *err);

#endif
