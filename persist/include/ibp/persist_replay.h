/*
 * Replay (DESIGN.md §8): rebuilds the tables from the HITS and EVENTS streams
 * into an empty schema, through the same applier as the live consumers, so
 * the result equals the live database row for row (member_events.id, the
 * AUTO_INCREMENT surrogate, and the wall-clock columns updated_at,
 * received_at and applied_at excepted).
 *
 * The target database is created when missing (through a connection to the
 * configured database; when the user may not create it, the error names the
 * GRANT statement an administrator has to run for the account MariaDB
 * matched), migrated (ibp_schema_migrate), and refused (IBP_E_EXISTS) when
 * any of its tables holds a row. Each stream is read from its first message (or from_seq, or
 * the first message at or after from_time_ms) up to the stream's last
 * sequence as it was when the replay of that stream started, through a
 * temporary durable pull consumer ("ibp-replay-<pid>-<random>", AckAll,
 * deleted at the end; the server drops it by itself after 5 minutes of
 * inactivity if the replay dies). Offsets are written under the consumer
 * names given (by default the live ones), so a rebuilt database can take the
 * live persist's place: it continues after the last replayed sequence.
 *
 * Database errors are retried with backoff (like the live consumer) until
 * opts->stop is set. Progress goes to the callback at most once per
 * progress_interval_ms and once at the end of each stream.
 *
 * Thread safety: one replay per call; the callback runs on the calling thread.
 */
#ifndef IBP_PERSIST_REPLAY_H
#define IBP_PERSIST_REPLAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "ibp/persist_db.h"
#include "ibp/roster.h"
#include "ibp/status.h"

typedef struct ibp_persist_replay_progress {
    const char *stream;
    uint64_t position; /* last sequence applied */
    uint64_t first;    /* first sequence of the range */
    uint64_t last;     /* last sequence of the range */
    uint64_t messages; /* messages read so far from this stream */
    double msgs_per_s; /* since the stream's replay started */
    double eta_s;      /* seconds to go; < 0 when unknown */
    bool done;         /* the stream is finished */
} ibp_persist_replay_progress;

typedef void (*ibp_persist_replay_progress_fn)(void *user, const ibp_persist_replay_progress *p);

typedef struct ibp_persist_replay_opts {
    natsConnection *nc;            /* required, borrowed */
    const ibp_roster *roster;      /* required, borrowed */
    const ibp_persist_db_opts *db; /* required: server and credentials */
    const char *database;          /* required: the target schema */
    const char *sql_dir;           /* migrations; NULL: ibp_schema_default_dir() */
    const char *hits_stream;       /* default "HITS"; "" skips it */
    const char *hits_consumer;     /* offsets name; default IBP_PERSIST_HITS_DURABLE_DEFAULT */
    const char *events_stream;     /* default "EVENTS"; "" skips it */
    const char *events_consumer;   /* default IBP_PERSIST_EVENTS_DURABLE_DEFAULT */
    uint64_t from_seq;             /* 0: from the start (or from_time_ms) */
    int64_t from_time_ms;          /* 0: not by time; excludes from_seq */
    size_t batch_size;             /* default 1000 */
    int64_t min_offline_ms;        /* default 30000 */
    ibp_persist_replay_progress_fn progress; /* may be NULL */
    void *progress_user;
    int64_t progress_interval_ms; /* default 1000 */
    const atomic_bool *stop;      /* may be NULL */
} ibp_persist_replay_opts;

/* Fills opts with the defaults above. */
void ibp_persist_replay_opts_init(ibp_persist_replay_opts *opts);

typedef struct ibp_persist_replay_stream_result {
    uint64_t messages; /* read */
    uint64_t applied;
    uint64_t dead_lettered;
    uint64_t stale;
    uint64_t last_seq; /* last sequence applied */
} ibp_persist_replay_stream_result;

typedef struct ibp_persist_replay_result {
    ibp_persist_replay_stream_result hits, events;
} ibp_persist_replay_result;

/*
 * Runs the replay; *out (may be NULL) receives the counts. Errors: IBP_E_INVAL
 * (options), IBP_E_EXISTS (target not empty), IBP_E_DB (connect, migrate;
 * stopped while retrying), IBP_E_NATS (stream or consumer), IBP_E_NOMEM.
 */
ibp_status ibp_persist_replay(const ibp_persist_replay_opts *opts, ibp_persist_replay_result *out,
                              ibp_err *err);

#endif
