/*
 * Internal to ibp_data (ibp__ names; not part of the embedding API): the
 * usage flush scheduler. It decides when ibp_usage_tick (usage.c) flushes,
 * delivers and logs, from the times the caller passes in (milliseconds since
 * the Unix epoch, UTC). Pure: it reads no clock, does no I/O, takes no lock;
 * the caller serialises the calls on one scheduler.
 *
 * The rules (DESIGN.md §7, ibp/usage.h):
 *   - every flush_interval_ms, a flush of every date;
 *   - right after a UTC midnight, a flush of the dates before the new day,
 *     before anything else;
 *   - a flush that could not journal is retried after a backoff (retry_min_ms
 *     doubling up to retry_max_ms, never later than flush_interval_ms);
 *   - an early flush (max_keys reached) runs at once unless a journal backoff
 *     is running;
 *   - pending journal entries are offered to the sink unless a delivery
 *     backoff is running (retry_min_ms doubling up to retry_max_ms); a forced
 *     delivery ignores it;
 *   - the summary of bad client addresses is logged at most once a minute.
 */
#ifndef IBP_USAGE_FLUSH_H
#define IBP_USAGE_FLUSH_H

#include <stdbool.h>
#include <stdint.h>

#define IBP_USAGE_SUMMARY_EVERY_MS 60000

typedef struct ibp_usage_sched {
    /* Settings (ibp__usage_sched_init). */
    int64_t flush_interval_ms;
    int64_t retry_min_ms;
    int64_t retry_max_ms;
    /* State. */
    int64_t last_day;           /* UTC day of the last tick that looked at midnight */
    int64_t next_flush_ms;      /* the next interval flush (or journal retry) */
    int64_t flush_backoff_ms;   /* 0: the last flush journaled everything */
    int64_t next_retry_ms;      /* delivery retry time while deliver_backoff_ms > 0 */
    int64_t deliver_backoff_ms; /* 0: the last delivery emptied the journal */
    int64_t last_summary_ms;
} ibp_usage_sched;

/*
 * The UTC day number (days since 1970-01-01) of ms since the epoch, rounding
 * toward -infinity. Inline: the recording hot path calls it for every hit.
 */
static inline int64_t ibp__usage_day_of(int64_t ms)
{
    const int64_t day_ms = INT64_C(86400000);
    return ms >= 0 ? ms / day_ms : -((-ms + day_ms - 1) / day_ms);
}

/* A scheduler starting at now: the first interval flush at now + flush_interval_ms. */
void ibp__usage_sched_init(ibp_usage_sched *s, int64_t flush_interval_ms, int64_t retry_min_ms,
                           int64_t retry_max_ms, int64_t now);

/*
 * True once per new UTC day: when now's day is after the last one seen, sets
 * *today to it, remembers it, and the caller flushes the dates before it.
 */
bool ibp__usage_sched_new_day(ibp_usage_sched *s, int64_t now, int64_t *today);

/*
 * Whether an early flush that was asked for (max_keys reached) runs now: only
 * before the interval flush is due anyway, and not during a journal backoff.
 */
bool ibp__usage_sched_early_ok(const ibp_usage_sched *s, int64_t now);

/* Whether the interval flush (or a journal retry) is due at now. */
bool ibp__usage_sched_flush_due(const ibp_usage_sched *s, int64_t now);

/*
 * Records a flush's outcome at now: journaled resets the backoff and sets the
 * next flush an interval away; otherwise the journal backoff grows and the
 * flush is retried after it.
 */
void ibp__usage_sched_flushed(ibp_usage_sched *s, int64_t now, bool journaled);

/* Whether to offer pending entries now (force ignores the delivery backoff). */
bool ibp__usage_sched_deliver_due(const ibp_usage_sched *s, int64_t now, bool force,
                                  uint64_t pending);

/*
 * Records a delivery's outcome at now: delivered resets the backoff; otherwise
 * it grows and the next attempt is due after it. Returns the backoff (0 when delivered).
 */
int64_t ibp__usage_sched_delivered(ibp_usage_sched *s, int64_t now, bool delivered);

/*
 * Whether the summary log line is due at now (force: always); when it is, its
 * time is remembered.
 */
bool ibp__usage_sched_summary_due(ibp_usage_sched *s, int64_t now, bool force);

/*
 * Milliseconds from now until something is due (0: now): the next flush, the
 * next midnight, the delivery retry when entries are pending, or now when an
 * early flush is wanted and no journal backoff runs.
 */
int64_t ibp__usage_sched_next_due_ms(const ibp_usage_sched *s, int64_t now, bool early_wanted,
                                     uint64_t pending);

#endif
