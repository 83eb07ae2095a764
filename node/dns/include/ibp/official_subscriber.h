/*
 * The official subscriber (DESIGN.md §6, "Subscribers"): keeps a node's
 * official store at the newest epoch the consensus published.
 *
 * It reads stream OFFICIAL through an ordered JetStream consumer on
 * ibp.official.snapshot that starts with the last message (js_DeliverLast):
 * the newest snapshot at once, then every new one in stream order. The
 * ordered consumer recreates itself after a gap. After a reconnection of the
 * connection the subscriber subscribes again from the head of the chain: a
 * memory OFFICIAL (nats.official_memory) comes back empty, or not at all
 * until a consensus replica creates it again, after a restart of every
 * server, with its sequences starting over; the replicas then publish their
 * current epoch again, which a store at that epoch ignores. The same when,
 * with no snapshot for a few seconds, the stream is gone or its last
 * sequence is below the ones seen (deleted and created again).
 *
 * Each snapshot is verified against the roster before anything in it is
 * believed: the signature, and a signer with role consensus (the verifier's
 * role rules for OfficialSnapshot). Sequence numbers are not enforced
 * (ibp_verifier_check_stateless): the last snapshot is read again after every
 * restart and reconnect, so the guard against old or replayed snapshots is the
 * epoch: a snapshot whose epoch is not newer than the store's is ignored.
 * A newer one is decoded and checked whole (ibp_official_snapshot_from_proto)
 * and swapped into the store in one step (ibp_official_snapshot_apply), so a
 * reader sees epoch E or E+1, never a mix.
 *
 * Certification (ibp/certificate.h, DESIGN.md §13): a snapshot that passes
 * the chain rule is held, not applied, until the epoch statements of a
 * quorum of the roster's consensus nodes (read from stream COSIGN with a
 * second ordered consumer, from its start: it keeps as many statements per
 * replica as OFFICIAL keeps snapshots) match it: same epoch, LOCAL sequence,
 * state digest and snapshot bytes, and, when the store holds the epoch just
 * below, that epoch's digest as the previous one. Until then the store keeps
 * the last certified epoch. When a newer held snapshot is certified first,
 * the older held ones are dropped and counted as forged_refused (the
 * replicas that certified the newer epoch did not vouch for them), with a
 * WARN naming their signer. At most IBP__CERTIFY_PENDING_MAX snapshots are
 * held; when a newcomer finds no room, the signer holding the most gives up
 * its lowest epoch (counted the same way), so a consensus key flooding
 * forged snapshots pushes out only its own. Statements are kept only from
 * the roster's consensus nodes, with a valid signature, each node within an
 * equal share of the store (node/dns/official_certify.h).
 *
 * Replica heartbeats (core NATS, not stored: ibp.official.heartbeat.<node>,
 * signed by that consensus node) are verified too and only counted: they tell
 * "nothing changed" from "the consensus is gone" (stats.last_heartbeat_ms).
 *
 * Threads: one of its own, which pulls messages from two synchronous
 * subscriptions (no nats.c callback does any work). Stats may be read from any
 * thread. The connection, roster and store are borrowed and must outlive it.
 */
#ifndef IBP_OFFICIAL_SUBSCRIBER_H
#define IBP_OFFICIAL_SUBSCRIBER_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/roster.h"
#include "ibp/status.h"
#include "ibp/data.h"
#include "ibp/store.h"

typedef struct ibp_official_subscriber_opts {
    natsConnection *nc;            /* required, borrowed */
    const ibp_roster *roster;      /* required, borrowed */
    ibp_store *store;              /* required, borrowed */
    const char *stream;            /* default "OFFICIAL" */
    const char *subject;           /* default IBP_SUBJECT_OFFICIAL_SNAPSHOT */
    const char *heartbeat_subject; /* default "ibp.official.heartbeat.*"; NULL or "": none */
    size_t max_message_bytes;      /* default IBP_MESSAGE_MAX_DEFAULT */
    int64_t retry_ms;              /* wait before subscribing again after an error; default 1000 */
    size_t quorum;                 /* statements needed (ibp_certificate_quorum): 0 = a majority
                                      of the roster's consensus nodes; 1 only with one (WARN) */
    const char *cosign_stream;     /* default IBP_STREAM_COSIGN */
    /* Optional, borrowed: the certificate of each certified epoch applied is
     * handed to it (ibp_data_set_official_certificate) to be kept with the
     * official cache; stats.official_cache_refused is its count of refused
     * cache files (ibp_data_official_cache_refused). */
    ibp_data *data;
    /* Tests and benchmarks only: apply every snapshot that continues the chain
     * without waiting for its certificate (the behaviour before certificates). */
    bool skip_certificates;
} ibp_official_subscriber_opts;

typedef struct ibp_official_subscriber_stats {
    uint64_t received; /* snapshot messages read */
    uint64_t applied;  /* swapped into the store */
    uint64_t ignored;  /* verified, but the epoch was not newer than the store's */
    uint64_t rejected; /* failed verification or decoding */
    uint64_t foreign;  /* not the next epoch of the chain (ibp/snapshot_chain.h): verified
                          ones that do not follow, and any message passed over after the
                          head when (re)subscribing */
    uint64_t rejected_by[IBP_STATUS_COUNT]; /* by reason (IBP_E_BAD_SIGNATURE, ...) */
    uint64_t epoch;                         /* epoch of the last snapshot applied (0: none yet) */
    uint64_t local_seq;                     /* LOCAL sequence that snapshot covers */
    int64_t last_applied_ms;                /* Unix ms */
    uint64_t heartbeats;                    /* verified replica heartbeats */
    uint64_t heartbeat_epoch;               /* epoch the newest heartbeat reported */
    int64_t last_heartbeat_ms;              /* Unix ms when it arrived (0: never) */
    uint64_t subscribes;             /* subscriptions made (1 + resubscriptions after errors) */
    uint64_t certified;              /* snapshots applied with a valid quorum certificate */
    uint64_t uncertified_pending;    /* snapshots held now, waiting for their certificate */
    uint64_t forged_refused;         /* held snapshots dropped uncertified (see above) */
    uint64_t statements;             /* epoch statements read from COSIGN */
    uint64_t cert_signers;           /* consensus nodes that certified the applied epoch */
    uint64_t quorum;                 /* the quorum in use */
    uint64_t official_cache_refused; /* cache files refused at start (their certificate or
                                        contents do not verify): opts.data's count */
} ibp_official_subscriber_stats;

typedef struct ibp_official_subscriber ibp_official_subscriber;

/* Fills opts with the defaults (pointers NULL). */
void ibp_official_subscriber_opts_init(ibp_official_subscriber_opts *opts);

/*
 * Starts the subscriber thread. Subscribing happens in that thread and is
 * retried every retry_ms until it works (NATS may not be up yet), so start
 * itself fails only on bad options (IBP_E_INVAL), a verifier or JetStream
 * context that cannot be made (IBP_E_NOMEM, IBP_E_NATS), or a quorum the
 * roster cannot give (IBP_E_CONFIG, see ibp_certificate_quorum). *out is set
 * only on success.
 */
ibp_status ibp_official_subscriber_start(const ibp_official_subscriber_opts *opts,
                                         ibp_official_subscriber **out, ibp_err *err);

/* Fills *out (a consistent copy). */
void ibp_official_subscriber_stats_get(ibp_official_subscriber *s,
                                       ibp_official_subscriber_stats *out);

/*
 * Waits until the store's official epoch is at least epoch, at most
 * timeout_ms. IBP_OK when it is; IBP_E_NOT_FOUND on timeout. For tests and
 * start-up ("wait for the first snapshot").
 */
ibp_status ibp_official_subscriber_wait_epoch(ibp_official_subscriber *s, uint64_t epoch,
                                              int64_t timeout_ms);

/* Stops the thread, unsubscribes and frees. Accepts NULL. */
void ibp_official_subscriber_stop(ibp_official_subscriber *s);

#endif
