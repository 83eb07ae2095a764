/*
 * A consensus replica: the NATS driver around the vote engine (DESIGN.md §6).
 *
 * It reads LOCAL in stream order (an ordered consumer starting after the
 * LOCAL sequence its state covers), verifies every envelope against the
 * roster (its verifier state is part of the replica state, so every replica
 * accepts and rejects the same messages), hands observation batches and
 * heartbeats from monitors and overrides from admins to the engine, and for
 * each message that advances the epoch:
 *   - publishes the signed OfficialSnapshot to ibp.official.snapshot with
 *     Nats-Msg-Id "epoch-<E>" and the expected last subject sequence of the
 *     previous snapshot, so exactly one message exists per epoch however many
 *     replicas race; a replica that loses the race compares the winner's
 *     digest with its own and logs an ERROR on a mismatch;
 *   - then its EpochStatement (ibp/certificate.h): epoch, LOCAL sequence,
 *     state digest, the previous epoch's digest and BLAKE2b-256 of its
 *     snapshot payload, signed, on ibp.official.cosign.<node> (stream
 *     COSIGN). Subscribers apply a snapshot only when a quorum of the
 *     roster's consensus nodes signed statements matching it. A replica that
 *     lost the race to a snapshot whose digest or bytes differ from its own
 *     signs nothing for that epoch (DIGEST MISMATCH above); one that finds
 *     the epoch stored already (it is behind) signs its own computation, up
 *     to IBP_REPLICA_COSIGN_BEHIND_MAX epochs below the chain head it knows,
 *     so a statement always certifies exactly the bytes it computed;
 *   - then its side messages: every status change as a signed Event to
 *     ibp.events.<member> (stream EVENTS) with Nats-Msg-Id = the event id, and
 *     as JSON to its ibp.status.<...> subject (stream STATUS, last value per
 *     subject), signed in the headers Ibp-Signer and Ibp-Signature
 *     (ibp/status_sig.h).
 * A replica that is behind (the stream already holds epoch >= E) publishes
 * nothing but its statement for E. Every heartbeat_ms it publishes a signed Heartbeat (epoch,
 * LOCAL sequence applied) to ibp.official.heartbeat.<node>.
 *
 * One message per change. Only the replica whose publish stored the snapshot
 * of epoch E (the winner) publishes E's side messages, at once, so a plain
 * NATS subscriber of ibp.status.> or ibp.events.> gets each change once. Every
 * other replica that computed E holds E's side messages (built and signed)
 * and, after a delay within [side_cover_ms / 2, side_cover_ms) staggered by
 * its place among the roster's consensus nodes, asks the stream for the last
 * message of E's last side message's subject: if it is not there with an
 * epoch >= E (the winner died between its snapshot and its side messages,
 * or could not publish them), it publishes all of E's side messages
 * (JetStream drops those already stored by their message ids). Bound: as long
 * as one replica that computed E runs, E's side messages are in the streams
 * within side_cover_ms plus one turn of the replica loop (200 ms) and the
 * publish after E's snapshot; a core subscriber then sees them late, and may
 * see some twice when the winner's publish was only slow. Before a replica
 * publishes side messages of its own epoch it settles every held epoch below
 * it at once, so the changes of a key reach the streams in epoch order.
 * The checks run in the replica thread's housekeeping, a few per turn (one
 * request each); held epochs are dropped once checked, and at most 1024
 * epochs or 262144 messages are held (past that the oldest is checked at
 * once). A replica that stops drops what it holds.
 *
 * Tests only: with IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT=1 in its environment a
 * replica kills itself (SIGKILL) right after winning a snapshot, before its
 * side messages, to show that the others cover them.
 *
 * State: the engine export plus the verifier's per-signer sequences are saved
 * to <work dir>/consensus.state (atomically) every state_save_ms and at stop;
 * a restarted replica resumes from it, not from the start of the stream.
 *
 * Checkpoints (ibp/checkpoint.h): every checkpoint_ms the replica also
 * publishes the same state, signed, to ibp.consensus.checkpoint.<node>
 * (stream CHECKPOINT, the last one per subject), when it covers LOCAL
 * messages the previous one did not. One that does not fit the server's
 * max_payload is not published: an ERROR line and checkpoints_too_large.
 * A replica without consensus.state (added, or rebuilt), or whose state
 * covers LOCAL only up to a sequence LOCAL no longer holds, starts from the
 * newest usable checkpoint of the roster's consensus nodes: it reads LOCAL
 * after the sequence the checkpoint covers and saves consensus.state at once
 * (one INFO line names the checkpoint's node, epoch and LOCAL sequence). With
 * no usable checkpoint it reads LOCAL from the start if LOCAL never dropped a
 * message; otherwise it waits, publishing nothing (no snapshots, heartbeats
 * or checkpoints), logs at WARN why each checkpoint was refused, and tries
 * again every bootstrap_retry_ms. The replica thread does this: start
 * returns at once, and stop works while it waits.
 *
 * OFFICIAL lost (a memory stream, nats.official_memory, loses its messages,
 * and on a single server the stream itself, when every server restarts):
 * after it starts with a state of its own, after a checkpoint gave it one,
 * and after each reconnection to NATS, the replica waits until it has read
 * LOCAL to its end and then looks at the head of the snapshot chain; if the
 * chain is below its own epoch (an empty stream, say) it creates OFFICIAL
 * when it is missing (with opts.streams) and publishes its current state as
 * the snapshot of its current epoch, through the same publish as any epoch
 * (Nats-Msg-Id "epoch-<E>", the expected last subject sequence), so with
 * several replicas one snapshot lands and the others compare digests. It
 * carries no evidence (no change is decided by it); one INFO line and
 * snapshots_republished say so. Subscribers that hold that epoch ignore it;
 * new ones start from it. A snapshot publish that fails because OFFICIAL
 * is gone also creates the stream again before it retries.
 *
 * Threads: the replica runs one thread of its own (start/stop); its stats
 * may be read from any thread.
 */
#ifndef IBP_REPLICA_H
#define IBP_REPLICA_H

#include <nats/nats.h>
#include <stdint.h>

#include "ibp/bus.h"
#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/status.h"
#include "ibp/vote.h"

typedef struct ibp_replica_opts {
    natsConnection *nc;       /* borrowed; must outlive the replica */
    const ibp_roster *roster; /* borrowed */
    ibp_signer *signer;       /* borrowed; the replica's own key (role consensus) */
    const char *work_dir;     /* where consensus.state lives */
    ibp_vote_config vote;     /* engine rules: identical on every replica */
    int64_t heartbeat_ms;     /* default 5000 */
    int64_t state_save_ms;    /* default 30000 */
    int stream_replicas;      /* replicas of the streams created when missing; default 1 */
    ibp_bus_stream_opts streams; /* limits and storage of the streams it creates when missing
                                    (at start, and OFFICIAL when it is gone); default
                                    ibp_bus_stream_opts_init's; replicas from stream_replicas,
                                    existing streams are never updated by the replica */
    int64_t side_cover_ms;    /* bound for covering a dead winner's side messages (see
                                 "One message per change"); <= 0: the default */
    int64_t checkpoint_ms;    /* how often the checkpoint is published; default 30000 */
    int64_t bootstrap_retry_ms; /* a replica waiting for a usable checkpoint looks again
                                   this often; default 5000 */
} ibp_replica_opts;

#define IBP_REPLICA_SIDE_COVER_MS_DEFAULT 2000
/* A replica behind the chain signs statements of epochs this close to its head only. */
#define IBP_REPLICA_COSIGN_BEHIND_MAX 16

typedef struct ibp_replica_stats {
    uint64_t epoch;
    uint64_t local_seq; /* last LOCAL sequence read (applied or refused) */
    uint64_t messages_applied;
    uint64_t snapshots_published; /* won the race */
    uint64_t snapshots_lost_race; /* another replica was first (digest matched) */
    uint64_t digest_mismatches;   /* another replica published a different state */
    /* Messages on the snapshot subject that are not part of the chain (garbage, forged,
     * replayed, an epoch that does not follow; ibp/snapshot_chain.h), each counted once
     * and skipped: the next epoch is published after them. */
    uint64_t foreign_snapshots;
    /* Snapshots of its current epoch it published again because OFFICIAL did not hold it
     * (a memory stream after a restart of every server); a replica that lost that race
     * counts it in snapshots_lost_race. */
    uint64_t snapshots_republished;
    uint64_t events_published;
    uint64_t side_published; /* epochs whose side messages it published as the winner */
    uint64_t side_checked;   /* held epochs it found in the streams (published by the winner) */
    uint64_t side_covered;   /* held epochs it published because they were not there */
    uint64_t side_pending;   /* epochs held now */
    uint64_t rejected[IBP_STATUS_COUNT]; /* envelopes, or their payloads, refused, by reason */
    uint64_t engine_skipped; /* verified messages the engine refused (limits, malformed) */
    /* The same by ibp_vote_rc: IBP_VOTE_E_LIMIT over a limit of ibp_vote_config (batch size,
     * keys per monitor, total keys, monitors, overrides), IBP_VOTE_E_INVAL malformed (a string
     * over its cap included). Each refusal is also logged at WARN with the limit and value. */
    uint64_t engine_refused[IBP_VOTE_RC_COUNT];
    uint64_t checkpoints_published;
    uint64_t checkpoints_too_large; /* over the server's max_payload: not published */
    uint64_t checkpoint_failures;   /* publishes that failed (NATS); tried at the next one */
    /* Checkpoints of other replicas refused while starting without a state of its own
     * (each stored checkpoint counted once; the log says why). */
    uint64_t checkpoints_refused;
    uint64_t waiting_for_checkpoint; /* 1 while it waits for a usable checkpoint */
    /* Epoch statements (ibp/certificate.h) on ibp.official.cosign.<its id>. */
    uint64_t statements_published;
    uint64_t statement_failures; /* not published (NATS, encoding) */
    uint64_t statements_skipped; /* epochs it could not vouch for: the previous epoch's
                                    digest unknown here (a WARN says which) */
} ibp_replica_stats;

typedef struct ibp_replica ibp_replica;

void ibp_replica_opts_init(ibp_replica_opts *opts);

/*
 * Loads the saved state (if any), makes sure the streams exist, and starts the
 * replica thread. Errors: IBP_E_CONFIG (a state file that does not load: the
 * message names it; move it away to start from the beginning of LOCAL),
 * IBP_E_NATS.
 */
ibp_status ibp_replica_start(const ibp_replica_opts *opts, ibp_replica **out, ibp_err *err);

void ibp_replica_stats_get(ibp_replica *r, ibp_replica_stats *out);

/* Stops the thread, saves the state, frees. Accepts NULL. */
void ibp_replica_stop(ibp_replica *r);

#endif
