/*
 * Private to the consensus replica of ibp/replica.h: replica.c (the loop and
 * the API), replica_msgs.c (building the STATUS and EVENTS messages),
 * replica_side.c (publishing and covering them), replica_checkpoint.c
 * (publishing checkpoints, starting from one) and replica_cosign.c (epoch
 * statements). Everything here runs on the
 * replica thread, except ibp__replica_on_async_error (nats.c's thread).
 */
#ifndef IBP_REPLICA_INTERNAL_H
#define IBP_REPLICA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/replica.h"
#include "ibp/snapshot_chain.h"

#define IBP_REPLICA_COMPONENT "replica" /* of log lines */
/* The loop's wait for a LOCAL message, and a held epoch's wait after NATS did not answer. */
#define IBP_REPLICA_NEXT_MSG_WAIT_MS 200
/* Held epochs checked per turn of the replica loop (one request each). */
#define IBP_REPLICA_COVER_CHECKS_PER_TURN 4

/* The side messages of one epoch (replica_side.c). */
typedef struct side_batch side_batch;

struct ibp_replica {
    ibp_replica_opts opts;
    jsCtx *js;
    natsSubscription *sub;
    ibp_vote *engine;
    ibp_verifier *verifier;
    char state_path[4200];
    pthread_t thread;
    atomic_int stop;

    /* What the OFFICIAL subject holds, as far as this replica knows. */
    uint64_t last_snap_subject_seq; /* the last message on the subject, valid or not; 0: none */
    uint64_t last_snap_epoch;       /* the head of the chain; 0: none */
    uint64_t foreign_counted_upto;  /* foreign messages up to this sequence are counted */
    ibp_verifier *chain_verifier;   /* stateless checks of the snapshot subject */
    /* Look whether OFFICIAL holds the current epoch once LOCAL is read to its end
     * (set at start, after a bootstrap and after each reconnection). */
    bool republish_check;
    uint64_t reconnects;        /* the connection's reconnections seen so far */
    int64_t next_reconnect_look_ms;
    int64_t next_republish_look_ms;
    natsStatistics *nats_stats; /* for the reconnection count */

    atomic_ulong async_failures; /* asynchronous publishes that failed */

    /* Events and status messages of epochs this replica computed but did not
     * win, oldest first, until it has checked that they are in the streams
     * (publish_epoch, ibp__replica_cover_pending). Bounded by PENDING_MAX_*
     * in replica_side.c. */
    struct side_batch *pending, *pending_tail;
    size_t pending_epochs, pending_msgs;
    int64_t cover_delay_ms;  /* this replica's wait before the check, within side_cover_ms */
    bool die_after_snapshot; /* tests only: IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT */

    int64_t last_heartbeat_ms;
    int64_t last_save_ms;
    uint64_t saved_local_seq;

    /* Checkpoints (replica_checkpoint.c). */
    int64_t last_checkpoint_ms;
    uint64_t checkpoint_local_seq; /* LOCAL sequence of the last checkpoint published */
    bool bootstrapping;            /* no state yet: looking for a usable checkpoint, r->sub NULL */
    int64_t next_bootstrap_ms;     /* the next look */
    uint64_t *refused_seq;         /* per roster node: its checkpoint (CHECKPOINT seq) refused
                                      and counted last */
    int *refused_verdict;          /* and why (an ibp_checkpoint_verdict) */
    char waiting_why[1024];        /* the last WARN about waiting, repeated only when it
                                      changes or once a minute */
    int64_t waiting_logged_ms;

    /* Epoch statements (replica_cosign.c): the digest of the last epoch this
     * replica computed, the previous digest of its next statement. */
    uint64_t own_epoch; /* 0: none known */
    uint8_t own_digest[IBP_VOTE_DIGEST_SIZE];
    /* The digest of own_epoch - 1 when known: what a statement of own_epoch
     * published again (OFFICIAL lost it) chains to. */
    bool own_have_prev;
    uint8_t own_prev_digest[IBP_VOTE_DIGEST_SIZE];

    pthread_mutex_t stats_lock;
    ibp_replica_stats stats;
};

/* Runs stmt on r's stats under their lock. */
#define IBP_REPLICA_STATS(r, stmt)                                                                 \
    do {                                                                                           \
        pthread_mutex_lock(&(r)->stats_lock);                                                      \
        stmt;                                                                                      \
        pthread_mutex_unlock(&(r)->stats_lock);                                                    \
    } while (0)

/* ---- replica.c ------------------------------------------------------------ */

/* Retries fn while it returns IBP_E_NATS, with back-off, until it returns
 * anything else or the replica stops; returns fn's last status. */
ibp_status ibp__replica_with_retry(ibp_replica *r, const char *what,
                                   ibp_status (*fn)(ibp_replica *, void *, ibp_err *), void *arg);

/* Starts reading LOCAL after sequence `after` (0: from the start) with the
 * engine and verifier as they are, and reads the head of the snapshot chain.
 * IBP_E_NATS when the server does not answer (err says what). */
ibp_status ibp__replica_start_reading(ibp_replica *r, uint64_t after, ibp_err *err);

/* Saves consensus.state now (logged on failure). */
void ibp__replica_save_now(ibp_replica *r);

/* ---- replica_checkpoint.c: checkpoints ------------------------------------- */

/* Publishes state[0..len) (ibp_replica_state_encode's, covering local_seq) as
 * this replica's checkpoint; counts and logs what fails. true when published. */
bool ibp__replica_publish_checkpoint(ibp_replica *r, const uint8_t *state, size_t len,
                                     uint64_t local_seq);

/*
 * Finds in OFFICIAL the newest valid snapshot of each wanted epoch (want[i]
 * != 0) into snaps[i] (valid false when not found), walking back from the
 * end. IBP_E_NATS when the server does not answer.
 */
ibp_status ibp__replica_find_snapshots(ibp_replica *r, const uint64_t *want, ibp_chain_msg *snaps,
                                       size_t n, ibp_err *err);

/*
 * One look for a usable checkpoint (ibp/checkpoint.h): on success (or when
 * LOCAL holds its whole history) the replica reads LOCAL and
 * r->bootstrapping is false; otherwise it logs why and stays waiting.
 */
void ibp__replica_bootstrap(ibp_replica *r);

/* ---- replica_cosign.c: epoch statements ----------------------------------- */

/* Remembers digest as the digest of epoch, which this replica computed. */
void ibp__replica_cosign_note_epoch(ibp_replica *r, uint64_t epoch, const uint8_t *digest);

/* After a start: takes the digest of the replica's own epoch from the chain
 * (the head, or the snapshot of that epoch further back) when it does not
 * know it. */
void ibp__replica_cosign_note_head(ibp_replica *r, const ibp_chain_msg *head);

/*
 * Signs and publishes this replica's EpochStatement for u (which it
 * computed), retrying while NATS fails. snapshot_hash: BLAKE2b-256 of its
 * snapshot payload of u, or NULL to encode it here. Counted and logged.
 */
void ibp__replica_cosign(ibp_replica *r, const ibp_vote_update *u, const uint8_t *snapshot_hash);

/* True when COSIGN's last message on this replica's subject is its statement
 * of epoch about the snapshot bytes hashing to snapshot_hash (false when
 * NATS does not answer: signing twice is harmless). */
bool ibp__replica_cosign_stored(ibp_replica *r, uint64_t epoch, const uint8_t *snapshot_hash);

/* ---- replica_msgs.c: building the STATUS and EVENTS messages -------------- */

/* How many side messages u has: its events, its changes' status messages and
 * one status message per override event. */
size_t ibp__replica_side_msg_count(const ibp_vote_update *u);

/*
 * Builds (and signs) side message i of u, i < ibp__replica_side_msg_count(u):
 * the Events first, then the status message of each change, then the status
 * message of each override event. *out (the caller's) on success;
 * IBP_E_NOT_FOUND when i is out of range.
 */
ibp_status ibp__replica_make_side_msg(ibp_replica *r, const ibp_vote_update *u, size_t i,
                                      natsMsg **out, ibp_err *err);

/* ---- replica_side.c: publishing and covering the side messages ------------ */

/* Every side message of u, built; one that cannot be built is logged and left
 * out. NULL when out of memory (logged). */
side_batch *ibp__replica_side_batch_build(ibp_replica *r, const ibp_vote_update *u);

/* Frees b and its messages; accepts NULL. */
void ibp__replica_side_batch_free(side_batch *b);

/* Publishes b's messages (pipelined, then one by one if any failed); b stays the caller's. */
void ibp__replica_publish_side(ibp_replica *r, side_batch *b);

/* Holds b (taking it) until this replica's check time; past the bounds,
 * checks the oldest held epochs at once. */
void ibp__replica_pending_push(ibp_replica *r, side_batch *b);

/* Takes the oldest held epoch off the queue; NULL when none. */
side_batch *ibp__replica_pending_pop(ibp_replica *r);

/* Checks held epochs, oldest first: those below `below`, or (due_only) those
 * whose time has come; at most max of them. Publishes what the streams lack. */
void ibp__replica_cover_pending(ibp_replica *r, uint64_t below, bool due_only, size_t max);

/* This replica's wait before it checks an epoch it did not win. */
int64_t ibp__replica_cover_delay_ms(const ibp_replica_opts *o);

/* nats.c's asynchronous publish error handler; closure is the ibp_replica. */
void ibp__replica_on_async_error(jsCtx *js, jsPubAckErr *pae, void *closure);

#endif
