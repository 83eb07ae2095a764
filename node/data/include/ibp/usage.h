/*
 * Usage statistics of a dns node (DESIGN.md §7): hits per (UTC date, domain,
 * member, country code, ASN, network name, country name, ipv6), flushed as
 * HitBatch deltas through a durable journal to a sink.
 *
 * Recording (ibp_usage_record_dns_hit) sits on the DNS answer path. Each
 * calling thread gets a shard of its own on its first call (registered once
 * under a registration lock); a shard is a hash table behind a mutex that only
 * the flusher ever contends, and only for the moment it takes to swap the
 * table out. The hot-path key is cheap: (UTC day, domain and member interned
 * into a small per-shard id, ipv6, the MaxMind record references of
 * ibp_geo_lookup_ref), so a hit on a key that exists compares integers,
 * allocates nothing, takes no process-wide lock and does no I/O; the geo
 * strings are read from the databases once, when a key is first inserted.
 * Rows are aggregated by their strings when flushed. Bad client addresses and
 * database errors are logged by the flusher (at most once a minute), never on
 * the hot path.
 *
 * Memory is bounded: at most max_keys distinct keys are held (all shards
 * together). Past that, a new key is counted into an "overflow" key that keeps
 * its date, domain, member and ipv6 but has country "??", country name
 * "Unknown", empty ASN and network name; every such hit is counted in
 * ibp_usage_stats.overflow_hits. Overflow keys may take max_keys / 16 + 64 more
 * keys; past even that, hits go to one key per date and ipv6 with domain and
 * member "(overflow)". No hit is lost and the hot path never waits: the first
 * overflow hit only sets a flag, and the next ibp_usage_tick() flushes every
 * date at once (an "early flush", counted in ibp_usage_stats.early_flushes and
 * logged at WARN), which empties the tables so new keys get rows of their own
 * again. While a journal error holds flushes back, the early flush waits too.
 *
 * A flush moves the counters into an aggregate, turns the rows of the dates
 * being flushed into HitBatch deltas (one batch per date, oldest date first,
 * at most max_rows_per_batch rows and max_batch_bytes bytes each; rows
 * sorted) and writes each one to
 * the journal (ibp/usage_journal.h: numbered, written and fsynced) before
 * forgetting its counts. When the journal cannot be written the counts stay
 * in the aggregate and go out with a later flush: nothing is lost. Journal
 * entries are then offered to the sink oldest first; a failed delivery is
 * retried with exponential backoff (retry_min_ms doubling up to retry_max_ms).
 * On open, entries left by an earlier run (crash, kill, sink down) are
 * offered again, in order, before anything new.
 *
 * When flushes happen is driven by ibp_usage_tick(): every flush_interval_ms,
 * the previous date(s) right after UTC midnight (before anything of the new
 * day), and retries. Call it about once a second from any thread, or set
 * opts.background and the library runs a thread that does (stopped by
 * ibp_usage_close). ibp_usage_flush() and ibp_usage_flush_date() flush on
 * demand; ibp_usage_close() flushes everything at shutdown.
 *
 * Files, under opts.work_dir: "usage.seq" (the flush sequence, ibp_seqfile)
 * and "usage-journal/" (the journal).
 *
 * Thread safety: record_dns_hit from any number of threads; the other calls
 * (tick, flush, deliver, stats) from any thread, serialised internally against
 * each other. No call may run concurrently with or after ibp_usage_close(),
 * and threads that recorded must not be exiting while it runs.
 */
#ifndef IBP_USAGE_H
#define IBP_USAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/geo.h"
#include "ibp/status.h"
#include "ibp/usage_journal.h"

#define IBP_USAGE_NO_MEMBER "(none)" /* member of a hit that no member answered */
#define IBP_USAGE_OVERFLOW "(overflow)"
#define IBP_USAGE_DAY_MS INT64_C(86400000)

/* Wall clock in milliseconds since the Unix epoch (UTC); for tests to inject time. */
typedef int64_t (*ibp_usage_clock_fn)(void *user);

typedef struct ibp_usage_opts {
    const char *node_id;        /* required: a valid node id, goes into every batch */
    const char *work_dir;       /* required: an existing directory (see above) */
    const ibp_geo *geo;         /* borrowed, may be NULL: every client counts as "??" */
    const ibp_usage_sink *sink; /* borrowed, required; must outlive the usage */
    int64_t flush_interval_ms;  /* default 300000 (5 minutes) */
    size_t max_keys;            /* distinct keys held in memory; default 1048576 */
    size_t max_rows_per_batch;  /* default 10000 */
    size_t max_batch_bytes;     /* packed HitBatch size limit; default 900000 (NATS: 1 MiB) */
    int64_t retry_min_ms;       /* first delivery retry delay; default 1000 */
    int64_t retry_max_ms;       /* longest delivery retry delay; default 300000 */
    bool background;            /* run a thread that calls ibp_usage_tick; default false */
    int64_t tick_ms;            /* period of that thread; default 1000 */
    ibp_usage_clock_fn clock;   /* NULL: CLOCK_REALTIME_COARSE */
    void *clock_user;
} ibp_usage_opts;

/* Counters (since open unless said otherwise). */
typedef struct ibp_usage_stats {
    uint64_t hits;             /* hits counted (including the ones below) */
    uint64_t bad_ip_hits;      /* client address did not parse: counted under "??" */
    uint64_t geo_error_hits;   /* a database reported an error: counted under "??" */
    uint64_t overflow_hits;    /* counted into overflow keys (max_keys reached) */
    uint64_t rejected;         /* calls refused (domain or member too long, no memory) */
    uint64_t keys;             /* distinct keys in memory now */
    uint64_t unjournaled_hits; /* flushed from the shards but not yet journaled now */
    uint64_t flushes;          /* flushes that journaled everything they were asked to */
    uint64_t flush_errors;     /* flushes that could not journal (counts kept) */
    uint64_t early_flushes;    /* flushes started early because max_keys was reached */
    ibp_usage_journal_stats journal;
} ibp_usage_stats;

typedef struct ibp_usage ibp_usage;

/* Fills opts with the defaults above (node_id, work_dir and sink NULL). */
void ibp_usage_opts_init(ibp_usage_opts *opts);

/*
 * Opens the journal and sequence file under opts->work_dir and, when asked,
 * starts the background thread. Pending journal entries are offered to the sink
 * at the first tick or flush. *out is set only on success; close it with
 * ibp_usage_close. IBP_E_INVAL for missing or out-of-range options (the message
 * names the option); the errors of ibp_usage_journal_open; IBP_E_NOMEM.
 */
ibp_status ibp_usage_open(const ibp_usage_opts *opts, ibp_usage **out, ibp_err *err);

/*
 * Counts one DNS answer: client_ip (text, IPv4 or IPv6; NULL or unparsable
 * counts under "??"), domain (normalised: lower case, no trailing dot), member
 * (NULL or "" is "(none)"), ipv6 (the flag of the key). The date is the UTC day
 * of the clock now. Thread-safe, lock-free across threads (only the calling
 * thread's shard mutex), no I/O, no allocation once the key exists (the first
 * call on a thread allocates its shard; a new key allocates its strings).
 * Returns IBP_OK when counted; IBP_E_INVAL when u or domain is NULL;
 * IBP_E_RANGE when domain is longer than IBP_DOMAIN_MAX or member longer than
 * IBP_NAME_MAX; IBP_E_NOMEM. Refusals other than IBP_E_INVAL are counted in
 * stats.rejected.
 */
ibp_status ibp_usage_record_dns_hit(ibp_usage *u, bool ipv6, const char *client_ip,
                                    const char *domain, const char *member);

/*
 * Does what is due at the clock's now: after a UTC midnight, flushes the dates
 * before today; when flush_interval_ms has passed, or when a hit went to an
 * overflow key since the last tick (max_keys reached), flushes everything; offers
 * pending entries to the sink unless a retry backoff is running; logs (at most
 * once a minute) a summary of hits from bad client addresses and database
 * errors. Returns IBP_OK, or the first error (a flush that could not journal,
 * a delivery the sink refused), which is also logged; either is retried later.
 */
ibp_status ibp_usage_tick(ibp_usage *u, ibp_err *err);

/*
 * Milliseconds from the clock's now until ibp_usage_tick has something to do
 * (0 when something is due now). For callers that drive their own timer.
 */
int64_t ibp_usage_next_due_ms(ibp_usage *u);

/*
 * Flushes every date now (oldest first), then offers pending entries to the
 * sink (ignoring any backoff). Returns IBP_OK when every count went into the
 * journal, even if the sink refused (see stats and ibp_usage_deliver); the
 * journal's error otherwise (the counts are kept).
 */
ibp_status ibp_usage_flush(ibp_usage *u, ibp_err *err);

/*
 * Like ibp_usage_flush for one UTC date, "YYYY-MM-DD". IBP_E_INVAL when date
 * is not a valid date. Other dates stay counted.
 */
ibp_status ibp_usage_flush_date(ibp_usage *u, const char *date, ibp_err *err);

/*
 * Offers pending journal entries to the sink now, ignoring any backoff.
 * IBP_OK when none is left; the sink's status otherwise (then a backoff starts).
 */
ibp_status ibp_usage_deliver(ibp_usage *u, ibp_err *err);

/* Fills *out; thread-safe. */
void ibp_usage_stats_get(ibp_usage *u, ibp_usage_stats *out);

/*
 * Stops the background thread, flushes every date into the journal, offers
 * the pending entries to the sink once, and frees u. Returns IBP_OK or the
 * error of that last flush (the counts that could not be journaled are lost,
 * and logged at ERROR with their number). Accepts NULL.
 */
ibp_status ibp_usage_close(ibp_usage *u, ibp_err *err);

/* "YYYY-MM-DD" of a UTC day number (days since 1970-01-01) into buf[11]. */
void ibp_usage_format_date(int64_t day, char buf[11]);

/* Parses "YYYY-MM-DD" into a UTC day number; -1 with *day untouched when invalid. */
int ibp_usage_parse_date(const char *date, int64_t *day);

#endif
