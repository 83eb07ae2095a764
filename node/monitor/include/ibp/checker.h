/*
 * The checker of the monitor role: it runs the targets of the network's
 * checks (ibp/check_plan.h: every member dialled at its own address) with
 * the check modules (ibp/check_run.h) and stores each outcome as a local
 * observation (ibp_store_update_local), which the monitor publisher sends to
 * consensus.
 *
 * Scheduling: targets wait in a queue ordered by due time
 * (ibp/check_sched.h); max_in_flight worker threads take the most overdue
 * one as soon as it is due, so a target that hangs holds one worker until
 * its Timeout and delays nothing else while others are free. A target runs
 * every MinimumInterval seconds; the first round is spread over the first
 * second. A failure is tried again retries times, retry_delay_ms apart
 * (the worker is free meanwhile), before it is stored as down; a success is
 * stored at once. A result's check time is the wall clock when it finished.
 *
 * Reload: ibp_checker_reload() takes a new network; a target whose key and
 * way of dialling did not change keeps its place in the schedule, new ones
 * are due at once, removed ones stop (one running finishes and is not
 * stored). What cannot run (unknown module, no address, ...) is logged once
 * per load and counted in the stats.
 *
 * Thread safety: start, reload and stop from one thread; the stats and
 * ibp_checker_wants() from any thread. The store is borrowed and must
 * outlive the checker; the network is only read during start and reload.
 */
#ifndef IBP_CHECKER_H
#define IBP_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/network.h"
#include "ibp/result.h"
#include "ibp/status.h"
#include "ibp/store.h"

#define IBP_CHECKER_MAX_IN_FLIGHT_DEFAULT 32
#define IBP_CHECKER_MAX_IN_FLIGHT_MAX 1024

typedef struct ibp_checker_opts {
    const ibp_network *network; /* required; read during the call only */
    ibp_store *store;           /* required, borrowed */
    int64_t first_delay_ms;     /* the first round starts after this (default 0) */
    size_t max_in_flight;       /* checks running at once; default 32, 1..1024 */
    int64_t retries;            /* tries after a failure before it counts; default 1 */
    int64_t retry_delay_ms;     /* default 2000 */
    const char *ca_file;        /* CA bundle TLS trusts (copied); NULL: the system's */
    size_t max_response_bytes;  /* default 1 MiB */
    int64_t stale_ms;           /* the consensus staleness limit, for a warning (0: none) */
} ibp_checker_opts;

typedef struct ibp_checker_stats {
    uint64_t targets;    /* targets of the current config */
    uint64_t cannot_run; /* checks or members that cannot run (reported in the log) */
    uint64_t runs;       /* results stored (up or down) */
    uint64_t failed;     /* of those, down */
    uint64_t retried;    /* failures tried again before counting */
    uint64_t in_flight;  /* checks running now */
    uint64_t overdue;    /* targets due for over a second, waiting for a worker */
    uint64_t reloads;
} ibp_checker_stats;

typedef struct ibp_checker ibp_checker;

void ibp_checker_opts_init(ibp_checker_opts *opts);

/*
 * Builds the targets (IBP_E_CONFIG naming the check for bad ExtraOptions, or
 * a CA file that cannot be read) and starts the workers. *out is set only on success. A network
 * with no enabled checks starts a checker with nothing to do.
 */
ibp_status ibp_checker_start(const ibp_checker_opts *opts, ibp_checker **out, ibp_err *err);

/* Checks the enabled checks' ExtraOptions as start does, starting nothing. */
ibp_status ibp_checker_validate(const ibp_network *net, ibp_err *err);

/*
 * Replaces the targets with those of net (see the top). On error (bad
 * ExtraOptions) nothing changes and the old targets keep running.
 */
ibp_status ibp_checker_reload(ibp_checker *c, const ibp_network *net, ibp_err *err);

/* Number of targets (check x member x key x family). */
size_t ibp_checker_target_count(ibp_checker *c);

/* Results stored so far (up or down). Thread-safe. */
uint64_t ibp_checker_runs(ibp_checker *c);

/* A consistent copy of the counters. Thread-safe. */
void ibp_checker_stats_get(ibp_checker *c, ibp_checker_stats *out);

/*
 * False when r is a result of one of the configured checks whose key is not
 * a current target (its member, domain or URL left the config): such a
 * result must not be voted for. True for keys of checks the config does not
 * have (observations given by an operator). Thread-safe; O(log n).
 */
bool ibp_checker_wants(ibp_checker *c, const ibp_result *r);

/*
 * At start, before the local cache is loaded into the store: drops from
 * <work_dir>/tmp/local.cache.json the results of net's enabled checks whose
 * targets left the config (ibp/check_keyset.h), so they are neither loaded
 * nor voted for. *dropped gets their number. Errors of ibp_check_plan_build
 * and of the cache files.
 */
ibp_status ibp_checker_prune_local_cache(const ibp_network *net, const char *work_dir,
                                         size_t *dropped, ibp_err *err);

/* Stops the workers (a check in progress ends within its Timeout) and frees. Accepts NULL. */
void ibp_checker_stop(ibp_checker *c);

/*
 * Runs every target once, now, one after the other on the calling thread
 * (no retries), storing the results. For tests and one-shot use.
 */
ibp_status ibp_checker_run_once(const ibp_checker_opts *opts, size_t *targets, ibp_err *err);

/*
 * One TCP connect to addr (an IPv4 or IPv6 literal of the family ipv6
 * selects) and port, within timeout_ms. Returns true when it connected
 * (*connect_ms set); otherwise false with the error text in errbuf.
 * Thread-safe.
 */
bool ibp_checker_connect(const char *addr, unsigned port, bool ipv6, int64_t timeout_ms,
                         int64_t *connect_ms, char *errbuf, size_t errcap);

#endif
