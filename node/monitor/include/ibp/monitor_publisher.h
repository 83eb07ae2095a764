/*
 * The monitor publisher (DESIGN.md §1, §4, §6): turns this node's local
 * observations (the local half of ibp_store) into signed ObservationBatch
 * envelopes on ibp.local.<node> (stream LOCAL).
 *
 * What it sends, from one thread of its own:
 *   - every publish_ms: the local results that changed since the last batch
 *     (ibp_store_local_changed_since), full = false;
 *   - in either, never a result older than max_age_ms or one keep_fn
 *     refuses (see the options);
 *   - every refresh_ms: the whole local state, full = true, so that every key
 *     keeps a fresh vote in the consensus (its staleness limit counts from
 *     the stream time of the batch that last carried the key);
 *   - a signed Heartbeat (roles filled in) when nothing else was sent for
 *     heartbeat_ms, so the consensus keeps counting this monitor as active.
 * A batch holds at most max_batch_obs observations and max_batch_bytes bytes
 * of payload (also kept under the server's max_payload); more is split into
 * several batches, each with its own batch_seq (a durable counter in
 * <work dir>/monitor-batch.seq, so batch numbers never repeat across
 * restarts).
 *
 * Observations leave as ibp.v1.Observation with the domain lower-cased and
 * without a trailing dot (ibp_domain_normalize): the consensus refuses any
 * other spelling, and two spellings would be two keys.
 *
 * Ordering and reconnects: sealed envelopes wait in a FIFO queue and are
 * published one at a time, oldest first, each with Nats-Msg-Id
 * "<node>-<envelope seq>"; the head leaves the queue only when JetStream has
 * acknowledged it (a duplicate acknowledgement counts). On any failure (not
 * connected, no PubAck within ack_timeout_ms, a JetStream error) the same
 * bytes are offered again, with the same id, after a backoff (100 ms doubling
 * to 2 s), so a batch that did reach the stream before its ack was lost is
 * dropped by JetStream's duplicate window, and no batch ever overtakes an
 * earlier one. Why one in flight and not a window of asynchronous publishes:
 * with several in flight, a failed batch followed by a stored one would reach
 * the stream out of order, and the consensus drops a sequence number at or
 * below one it has accepted, so the batch would be lost; one batch carries up
 * to max_batch_obs observations, so the round trip does not limit throughput.
 * While the queue is not empty no new batch is sealed: changes accumulate in
 * the store, and the next batch carries each key's latest observation once,
 * so an outage of NATS costs memory for one batch generation, not one per
 * interval. Nothing is published through nats.c's reconnect buffer (the
 * publisher checks the connection first), so the queue is the only buffer.
 *
 * Thread safety: every function may be called from any thread; stop must be
 * the last call. The store, signer and connection are borrowed and must
 * outlive the publisher.
 */
#ifndef IBP_MONITOR_PUBLISHER_H
#define IBP_MONITOR_PUBLISHER_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/codec_observation_batch.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/result.h"
#include "ibp/status.h"
#include "ibp/store.h"
#include "ibp/types.h"

#define IBP_MONITOR_PUBLISH_MS_MIN 100
#define IBP_MONITOR_MAX_BATCH_BYTES_DEFAULT 900000

typedef struct ibp_monitor_publisher_opts {
    natsConnection *nc;     /* required, borrowed */
    ibp_signer *signer;     /* required, borrowed; its id is the node id (subject, msg ids) */
    ibp_store *store;       /* required, borrowed: the local results are read from it */
    const char *work_dir;   /* required: monitor-batch.seq lives there */
    unsigned roles;         /* bits of ibp_role, named in heartbeats; default monitor */
    int64_t publish_ms;     /* default 5000, at least IBP_MONITOR_PUBLISH_MS_MIN */
    int64_t refresh_ms;     /* default 60000, at least publish_ms */
    int64_t heartbeat_ms;   /* default 5000, at least IBP_MONITOR_PUBLISH_MS_MIN */
    int64_t ack_timeout_ms; /* PubAck wait per publish; default 5000 */
    size_t max_batch_obs;   /* default IBP_MONITOR_MAX_BATCH_OBS_DEFAULT */
    size_t
        max_batch_bytes; /* payload bytes per batch; default IBP_MONITOR_MAX_BATCH_BYTES_DEFAULT */
    const char *subject_prefix; /* default "ibp.local": the subject is "<prefix>.<node>" */
    int64_t stop_timeout_ms;    /* how long stop tries to publish what is queued; default 2000 */
    /* Fresh votes only (DESIGN.md §11). A result whose check time is older
     * than max_age_ms (the consensus staleness limit; 0: no limit) is never
     * sent, neither as a change nor in a refresh: a stuck checker's votes go
     * stale instead of being renewed. A result keep_fn refuses (optional;
     * called on the publisher's thread) is not sent either: the checker
     * refuses the keys of targets that left the config. */
    int64_t max_age_ms;
    bool (*keep_fn)(const ibp_result *r, void *user);
    void *keep_user;
} ibp_monitor_publisher_opts;

/* Counters since start; times are Unix ms (0: never). */
typedef struct ibp_monitor_publisher_stats {
    uint64_t batches_sealed;
    uint64_t batches_published; /* acknowledged by JetStream */
    uint64_t full_batches;      /* of those, parts of a full refresh */
    uint64_t observations_published;
    uint64_t heartbeats_published;
    uint64_t duplicates; /* acknowledgements that said "duplicate" (a resend that had landed) */
    uint64_t publish_failures; /* attempts that will be retried */
    uint64_t dropped;          /* envelopes given up (too large for the server, or left at stop) */
    uint64_t stale_skipped;    /* results not sent: older than max_age_ms */
    uint64_t unwanted_skipped; /* results not sent: refused by keep_fn */
    uint64_t queued;           /* envelopes waiting for their acknowledgement now */
    uint64_t last_seq;         /* envelope sequence of the last acknowledged message */
    uint64_t last_stream_seq;  /* LOCAL sequence it was stored at */
    int64_t last_ack_ms;
    int64_t last_failure_ms;
} ibp_monitor_publisher_stats;

typedef struct ibp_monitor_publisher ibp_monitor_publisher;

/* Fills opts with the defaults above (pointers NULL). */
void ibp_monitor_publisher_opts_init(ibp_monitor_publisher_opts *opts);

/*
 * Checks the options, opens <work_dir>/monitor-batch.seq, makes a JetStream
 * context and starts the publisher thread. The first full refresh is due at
 * once (a restarted monitor re-announces its cached state). *out is set only
 * on success; stop it with ibp_monitor_publisher_stop. Errors: IBP_E_INVAL
 * (a missing or out-of-range option, named), the errors of ibp_seqfile_open,
 * IBP_E_NATS (JetStream context), IBP_E_NOMEM.
 */
ibp_status ibp_monitor_publisher_start(const ibp_monitor_publisher_opts *opts,
                                       ibp_monitor_publisher **out, ibp_err *err);

/*
 * Publishes now: the changes since the last batch (or a heartbeat when there
 * are none and nothing else is queued), then waits until everything sealed so
 * far is acknowledged, at most timeout_ms (0: do not wait). IBP_OK when it
 * all was; IBP_E_NATS on timeout (the batches stay queued and keep being
 * retried); IBP_E_INVAL after stop began.
 */
ibp_status ibp_monitor_publisher_flush(ibp_monitor_publisher *p, int64_t timeout_ms, ibp_err *err);

/* Fills *out (a consistent copy). */
void ibp_monitor_publisher_stats_get(ibp_monitor_publisher *p, ibp_monitor_publisher_stats *out);

/*
 * Stops the thread: makes a last delta batch, tries for stop_timeout_ms to
 * publish the queue, logs what is left (dropped: the local cache and the next
 * refresh after a restart carry it), closes the sequence file and frees.
 * Accepts NULL.
 */
void ibp_monitor_publisher_stop(ibp_monitor_publisher *p);

/* ---- pure helpers (also used by tests and tools) ------------------------ */

/*
 * One observation as the codec takes it (ibp/codec_observation_batch.h),
 * borrowing the result's strings except the normalised domain, which it holds
 * itself. Not to be copied (obs.key.domain points at domain).
 */
typedef struct ibp_observation_buf {
    ibp_codec_observation obs;
    char domain[IBP_DOMAIN_MAX + 1];
} ibp_observation_buf;

/*
 * Fills *buf from r (borrowed: it must outlive buf): check type, names, the
 * domain lower-cased without a trailing dot, status, check time, error, data.
 * IBP_E_INVAL for a NULL result or unknown check type; IBP_E_RANGE for a
 * domain that does not normalise. Thread-safe.
 */
ibp_status ibp_observation_from_result(const ibp_result *r, ibp_observation_buf *buf, ibp_err *err);

/*
 * How many of results[0..n) (at least one when n > 0) fit into one batch of at
 * most max_obs observations and max_bytes payload bytes. A single observation
 * over max_bytes still makes a batch of one (it is refused later, by size).
 * Returns 0 for n == 0. Thread-safe.
 */
size_t ibp_observation_batch_split(const ibp_result *const *results, size_t n, size_t max_obs,
                                   size_t max_bytes);

/*
 * Removes from list (freeing them) the results older than max_age_ms at
 * now_ms (wall clock; max_age_ms 0: none is too old) and those keep_fn (may
 * be NULL) refuses, keeping the order of the rest. Adds the numbers removed
 * to *stale and *unwanted (may be NULL). Thread-safe on distinct lists.
 */
void ibp_monitor_publisher_filter(ibp_result_list *list, int64_t now_ms, int64_t max_age_ms,
                                  bool (*keep_fn)(const ibp_result *r, void *user), void *user,
                                  uint64_t *stale, uint64_t *unwanted);

/*
 * Packs results[0..n) as one ObservationBatch (batch_seq, full) into *out
 * (malloc'd, the caller frees) and *out_len. Errors as
 * ibp_observation_from_result, IBP_E_NOMEM. Thread-safe.
 */
ibp_status ibp_observation_batch_pack(const ibp_result *const *results, size_t n,
                                      uint64_t batch_seq, bool full, uint8_t **out, size_t *out_len,
                                      ibp_err *err);

#endif
