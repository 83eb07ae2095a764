/*
 * The persist consumers (DESIGN.md §8): durable JetStream pull consumers on
 * HITS and EVENTS, each applied to MariaDB by an applier
 * (ibp/persist_apply.h) and acknowledged only after the COMMIT.
 *
 * One thread per stream, each with its own MariaDB connection and its own
 * durable consumer:
 *
 *   connect   MariaDB (session settings of ibp/persist_db.h), take the named
 *             lock of (database, stream, consumer): a second persist on the
 *             same database waits instead of applying in parallel;
 *   consumer  read persist_offsets.last_seq; find the durable consumer. It is
 *             (re)created (DeliverByStartSequence = last_seq + 1, or
 *             DeliverAll when 0) when missing, when it is not a pull consumer
 *             with explicit acks, when it has deliveries pending from a
 *             previous process (they would only come back after AckWait,
 *             behind newer messages), or when its ack floor is above last_seq
 *             (the database lost commits, e.g. restored from a backup: the
 *             messages after last_seq are applied again; logged at ERROR);
 *   loop      fetch up to batch_size messages (at most fetch_max_bytes,
 *             waiting up to fetch_wait_ms), apply them in one transaction,
 *             then acknowledge the ones at or below the committed last_seq:
 *             natsMsg_Ack for all but the last, natsMsg_AckSync for the last
 *             (AckExplicit policy; acks of one connection are processed in
 *             order). A lost ack only means a redelivery, which the offsets
 *             skip. When the applier reports a gap (strict order), the
 *             consumer is re-created at last_seq + 1.
 *
 * While MariaDB is down or refuses writes, the thread keeps the batch it
 * fetched, acknowledges nothing, retries with exponential backoff
 * (retry_min_ms doubling up to retry_max_ms) on a new connection, and logs
 * the lag (the consumer's pending count) at most every lag_log_interval_ms.
 * JetStream keeps the messages (max_ack_pending bounds what is delivered and
 * not acknowledged). While NATS is down, fetches fail and are retried; the
 * connection (ibp_bus_connect) reconnects for ever.
 *
 * Stopping: ibp_persist_stop() lets a transaction in progress finish and be
 * acknowledged, abandons a batch still waiting for the database (it is not
 * acknowledged and comes back), and never acknowledges anything uncommitted.
 *
 * Thread safety: ibp_persist_stats_get and ibp_persist_request_stop may be
 * called from any thread (request_stop also from a signal handler); start
 * and stop from one thread.
 */
#ifndef IBP_PERSIST_H
#define IBP_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ibp/persist_apply.h"
#include "ibp/persist_db.h"
#include "ibp/roster.h"
#include "ibp/status.h"

#define IBP_PERSIST_HITS_DURABLE_DEFAULT "ibp-persist-hits"
#define IBP_PERSIST_EVENTS_DURABLE_DEFAULT "ibp-persist-events"

/*
 * Test hook: called after a batch committed and before its messages are
 * acknowledged; returning false skips the acknowledgements, as if they were
 * lost (the messages are redelivered after ack_wait_ms and skipped).
 */
typedef bool (*ibp_persist_ack_hook)(void *user, ibp_persist_kind kind, uint64_t last_seq);

typedef struct ibp_persist_opts {
    natsConnection *nc;            /* required, borrowed */
    const ibp_persist_db_opts *db; /* required, borrowed (strings too) */
    const ibp_roster *roster;      /* required, borrowed */
    const char *hits_stream;       /* default "HITS"; "" disables the HITS consumer */
    const char *hits_durable;      /* default IBP_PERSIST_HITS_DURABLE_DEFAULT */
    const char *events_stream;     /* default "EVENTS"; "" disables it */
    const char *events_durable;    /* default IBP_PERSIST_EVENTS_DURABLE_DEFAULT */
    size_t batch_size;             /* messages per fetch and transaction; default 1000 */
    int64_t fetch_wait_ms;         /* default 1000 */
    int64_t fetch_max_bytes;       /* default 16 MiB (never below 2 x the message limit) */
    int64_t ack_wait_ms;           /* consumer AckWait; default 30000 */
    int64_t max_ack_pending;       /* consumer MaxAckPending; default 4 x batch_size */
    int64_t min_offline_ms;        /* events: flap threshold; default 30000 */
    int64_t retry_min_ms;          /* first database retry delay; default 250 */
    int64_t retry_max_ms;          /* longest; default 30000 */
    int64_t lag_log_interval_ms;   /* default 10000 */
    unsigned lock_timeout_s;       /* one GET_LOCK wait; default 5 (then retried) */
    ibp_persist_ack_hook ack_hook; /* tests only; NULL */
    void *ack_hook_user;
} ibp_persist_opts;

/* Fills opts with the defaults above (nc, db and roster NULL). */
void ibp_persist_opts_init(ibp_persist_opts *opts);

typedef struct ibp_persist_stream_stats {
    uint64_t batches;         /* batches committed */
    uint64_t messages;        /* messages fetched */
    uint64_t applied;         /* applied to the tables */
    uint64_t skipped;         /* at or below the stored sequence */
    uint64_t dead_lettered;   /* written to dead_letters */
    uint64_t stale;           /* HitBatch flush_seq or Event id applied before */
    uint64_t rows;            /* HITS: rows upserted; EVENTS: member_events changes */
    uint64_t hits;            /* HITS: hits applied */
    uint64_t db_errors;       /* failed apply attempts */
    uint64_t nats_errors;     /* failed fetches, acks, consumer calls */
    uint64_t consumer_resets; /* consumer (re)creations */
    uint64_t last_seq;        /* last committed stream sequence */
    uint64_t pending;         /* messages in the stream after the last fetched (lag) */
    bool db_ok;               /* the last database operation succeeded */
    bool running;             /* the stream's thread runs */
} ibp_persist_stream_stats;

typedef struct ibp_persist_stats {
    ibp_persist_stream_stats hits;
    ibp_persist_stream_stats events;
} ibp_persist_stats;

typedef struct ibp_persist ibp_persist;

/*
 * Starts the consumer threads. Configuration problems are found here
 * (IBP_E_INVAL naming the option); the servers need not be reachable: the
 * threads retry. *out is set only on success. Errors: IBP_E_INVAL,
 * IBP_E_NOMEM, IBP_E_IO (thread creation).
 */
ibp_status ibp_persist_start(const ibp_persist_opts *opts, ibp_persist **out, ibp_err *err);

/* Fills *out with the current counters. Thread-safe. */
void ibp_persist_stats_get(ibp_persist *p, ibp_persist_stats *out);

/* Asks the threads to stop; returns at once. Async-signal-safe. Accepts NULL. */
void ibp_persist_request_stop(ibp_persist *p);

/* Stops the threads (see "Stopping" above), joins them and frees p. Accepts NULL. */
void ibp_persist_stop(ibp_persist *p);

#endif
