/*
 * The chain of official snapshots, and how to find its head among foreign
 * messages.
 *
 * The snapshot subject (ibp.official.snapshot) is meant to hold one
 * OfficialSnapshot per epoch, in epoch order, each signed by a consensus node
 * of the roster. Anything else that lands there (garbage, a snapshot signed
 * by an unknown key, a replayed old snapshot, a signed snapshot for an epoch
 * that does not follow) is foreign: readers count and skip it, and it must
 * never stop the replicas from publishing the next epoch after it.
 *
 * The rule, one for the replicas and every subscriber:
 *
 *   A valid message is one that verifies as an OfficialSnapshot signed by a
 *   consensus node of the roster. Honest replicas publish epochs in stream
 *   order, each one above the last, so a valid snapshot of epoch E is
 *   *confirmed* when an older valid message in the stream has epoch E-1.
 *   The head is the newest confirmed snapshot. Found walking back from the
 *   end of the stream: the first candidate confirmed on the way wins (when
 *   one message confirms several candidates, the newest of them); a
 *   candidate newer than the head cannot have a legitimate predecessor older
 *   than the head, since legitimate epochs grow with the stream sequence.
 *
 *   If the walk reaches the start of the stream (or its scan limit) with
 *   nothing confirmed, the oldest valid snapshot seen is the head when it is
 *   epoch 1 or the only valid one; otherwise the oldest valid one too (the
 *   stream was trimmed: the earliest surviving history is the best anchor,
 *   because anything forged had to be published after it).
 *
 * A replayed old snapshot is never the head (its predecessor is not right
 * before it in epoch terms unless it is a copy of the head itself, which is
 * harmless: same epoch, same digest). A signed snapshot for a far future
 * epoch is never the head unless its own predecessor epoch exists before it,
 * which only a second forged message can provide: that is a dishonest
 * consensus key, which signatures alone cannot stop.
 *
 * Live following (ibp_chain_follow) applies the same rule one message at a
 * time: epoch E is accepted when E is the applied epoch + 1, or when the
 * previous valid message seen had epoch E-1; anything else is foreign.
 *
 * Pure: no I/O; the caller's fetch function reads the stream.
 */
#ifndef IBP_SNAPSHOT_CHAIN_H
#define IBP_SNAPSHOT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

#define IBP_CHAIN_DIGEST_MAX 32

/* What one message on the snapshot subject is, as far as the chain goes. */
typedef struct ibp_chain_msg {
    uint64_t stream_seq;
    bool valid;         /* an OfficialSnapshot signed by a consensus node */
    ibp_status why;     /* when !valid: the verifier's reason */
    uint64_t epoch;     /* when valid */
    uint64_t local_seq; /* when valid */
    uint8_t digest[IBP_CHAIN_DIGEST_MAX];
    size_t digest_len;
    uint8_t payload_hash[32]; /* when valid: BLAKE2b-256 of the snapshot payload
                                 (what epoch statements certify, ibp/certificate.h) */
    char signer[65];
} ibp_chain_msg;

/*
 * Reads and classifies the message at stream sequence seq into *out.
 * Returns IBP_OK (out filled, valid or not), IBP_E_NOT_FOUND (no message at
 * seq: deleted or never there) or another error (IBP_E_NATS), which ends the
 * walk with that error.
 */
typedef ibp_status (*ibp_chain_fetch_fn)(void *ctx, uint64_t seq, ibp_chain_msg *out);

typedef struct ibp_chain_head {
    bool found;         /* a head exists */
    ibp_chain_msg head; /* when found */
    uint64_t last_seq;  /* the last message on the subject, valid or not (0: none) */
    uint64_t foreign;   /* messages newer than the head that are not part of the chain */
    uint64_t scanned;   /* messages fetched */
} ibp_chain_head;

/*
 * Walks back from last_seq (the stream's last sequence, 0 when empty) down to
 * first_seq, fetching at most max_scan messages, and fills *out. last_seq is
 * stored in out->last_seq as given. Errors: what fetch returned other than
 * IBP_OK and IBP_E_NOT_FOUND; IBP_E_INVAL for bad arguments.
 */
ibp_status ibp_chain_find_head(ibp_chain_fetch_fn fetch, void *ctx, uint64_t first_seq,
                               uint64_t last_seq, size_t max_scan, ibp_chain_head *out);

/* What a live follower does with the next message. */
typedef enum ibp_chain_verdict {
    IBP_CHAIN_APPLY = 0,   /* the next epoch of the chain: apply it */
    IBP_CHAIN_OLD = 1,     /* valid, not newer than the applied epoch: ignore (a copy or replay) */
    IBP_CHAIN_FOREIGN = 2, /* not valid, or an epoch that does not follow: count and skip */
} ibp_chain_verdict;

typedef struct ibp_chain_follower {
    uint64_t applied_epoch;    /* the epoch the reader holds (0: none) */
    uint64_t prev_valid_epoch; /* epoch of the last valid message seen (0: none) */
    bool have_prev;
} ibp_chain_follower;

/* Starts following with the epoch the reader holds already (0: none). */
void ibp_chain_follow_init(ibp_chain_follower *f, uint64_t applied_epoch);

/*
 * Judges the next message of the stream (in stream order). On APPLY the
 * follower's applied epoch becomes the message's; the caller applies it
 * (and calls ibp_chain_follow_applied with the epoch it really holds if
 * applying failed or the store moved by another path).
 */
ibp_chain_verdict ibp_chain_follow(ibp_chain_follower *f, const ibp_chain_msg *m);

/* Tells the follower which epoch the reader holds now. */
void ibp_chain_follow_applied(ibp_chain_follower *f, uint64_t applied_epoch);

/* "apply", "old", "foreign". */
const char *ibp_chain_verdict_name(ibp_chain_verdict v);

#endif
