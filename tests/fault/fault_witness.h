/*
 * The fault suite's witness: counts what the cluster published and what
 * persist stored, from the sources themselves rather than from the daemons'
 * own statistics.
 *
 *   published hits   every HitBatch in HITS (signature checked against the
 *                    roster), each (node, flush_seq) counted once
 *   expected events  the status changes between consecutive official
 *                    snapshots in OFFICIAL (epochs in order): a key that
 *                    changes status, or first appears down, is one event
 *   stored           SUM(hits) of `requests`; in `member_events` one row per
 *                    outage opened plus one per outage closed (min_offline_ms
 *                    is 0 in the suite, so no short outage is deleted)
 *
 * Every function prints why it failed to stderr and returns -1.
 */
#ifndef IBP_FAULT_WITNESS_H
#define IBP_FAULT_WITNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "fault_cluster.h"

typedef struct fw_counts {
    uint64_t hits_published;   /* distinct (node, flush_seq) batches summed */
    uint64_t hit_batches;      /* distinct batches */
    uint64_t hit_msgs;         /* messages in HITS (a re-sent batch counts again here) */
    uint64_t events_expected;  /* status changes between consecutive epochs */
    uint64_t events_announced; /* those plus keys that first appear up (an Event each) */
    uint64_t events_published; /* distinct Event ids in EVENTS (status events) */
    uint64_t epochs;           /* snapshots in OFFICIAL */
    bool epochs_contiguous;    /* epochs 1..N, no gap and no repeat */
    uint64_t hits_stored;
    uint64_t events_stored;     /* rows + closed rows of member_events (not overrides) */
    uint64_t event_ids_doubled; /* Event ids stored on more than one row */
    uint64_t dead_letters;
} fw_counts;

/* Reads HITS, EVENTS and OFFICIAL (whole) and the database into *out. */
int fw_count(const fault_cluster *fc, fw_counts *out);

/*
 * The leader of stream's replicas: the index k of its nats-server
 * ("fault<k+1>"), or -1 after printing why. *replicas gets the stream's
 * replica count.
 */
int fw_stream_leader(const fault_cluster *fc, const char *stream, int *replicas);

/*
 * How far node's clock is off: the creation time its newest message on LOCAL
 * carries minus the time now, in *offset_ms. Waits up to timeout_ms for a
 * message published after the call. 0 or -1.
 */
int fw_clock_offset(const fault_cluster *fc, const char *node, int timeout_ms, int64_t *offset_ms);

/*
 * The official status of the flapping keys in the newest snapshot: 1 up,
 * 0 down, -1 none yet or error.
 */
int fw_official_flap_up(const fault_cluster *fc);

/*
 * Whether the cluster agrees with reality: the newest snapshot in OFFICIAL
 * has every key of the flapping check of the flapping member with status
 * flap_up and every other key up, and dns1 serves that epoch. *epoch gets the
 * newest epoch (0 when none). Returns 1 (yes), 0 (not yet) or -1 (error).
 */
int fw_converged(const fault_cluster *fc, bool flap_up, uint64_t *epoch);

/*
 * Waits (up to timeout_ms) until persist applied the last message of HITS
 * and of EVENTS (persist_offsets). 0 or -1.
 */
int fw_wait_persisted(const fault_cluster *fc, int timeout_ms);

#endif
