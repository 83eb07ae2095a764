/*
 * The usage flush scheduler; see ibp/usage_flush.h. Pure: every time comes
 * in as an argument.
 */
#include "ibp/usage_flush.h"

#include <string.h>

#include "ibp/usage.h"

void ibp__usage_sched_init(ibp_usage_sched *s, int64_t flush_interval_ms, int64_t retry_min_ms,
                           int64_t retry_max_ms, int64_t now)
{
    memset(s, 0, sizeof *s);
    s->flush_interval_ms = flush_interval_ms;
    s->retry_min_ms = retry_min_ms;
    s->retry_max_ms = retry_max_ms;
    s->last_day = ibp__usage_day_of(now);
    s->next_flush_ms = now + flush_interval_ms;
    s->last_summary_ms = now - IBP_USAGE_SUMMARY_EVERY_MS; /* the first summary may go at once */
}

bool ibp__usage_sched_new_day(ibp_usage_sched *s, int64_t now, int64_t *today)
{
    int64_t day = ibp__usage_day_of(now);
    if (day <= s->last_day)
        return false; /* the same day, or the clock stepped back: no midnight */
    s->last_day = day;
    *today = day;
    return true;
}

bool ibp__usage_sched_early_ok(const ibp_usage_sched *s, int64_t now)
{
    /* An early flush waits out a journal backoff like any other flush. */
    return now < s->next_flush_ms && s->flush_backoff_ms == 0;
}

bool ibp__usage_sched_flush_due(const ibp_usage_sched *s, int64_t now)
{
    return now >= s->next_flush_ms;
}

static int64_t backoff_next(int64_t cur, int64_t min_ms, int64_t max_ms)
{
    int64_t b = cur ? cur * 2 : min_ms;
    return b > max_ms ? max_ms : b;
}

void ibp__usage_sched_flushed(ibp_usage_sched *s, int64_t now, bool journaled)
{
    if (journaled) {
        s->flush_backoff_ms = 0;
        s->next_flush_ms = now + s->flush_interval_ms;
        return;
    }
    /* A journal failure retries the flush with a backoff, never later than the interval. */
    s->flush_backoff_ms = backoff_next(s->flush_backoff_ms, s->retry_min_ms, s->retry_max_ms);
    if (s->flush_backoff_ms > s->flush_interval_ms)
        s->flush_backoff_ms = s->flush_interval_ms;
    s->next_flush_ms = now + s->flush_backoff_ms;
}

bool ibp__usage_sched_deliver_due(const ibp_usage_sched *s, int64_t now, bool force,
                                  uint64_t pending)
{
    return pending > 0 && (force || now >= s->next_retry_ms);
}

int64_t ibp__usage_sched_delivered(ibp_usage_sched *s, int64_t now, bool delivered)
{
    if (delivered) {
        s->deliver_backoff_ms = 0;
        s->next_retry_ms = 0;
        return 0;
    }
    s->deliver_backoff_ms = backoff_next(s->deliver_backoff_ms, s->retry_min_ms, s->retry_max_ms);
    s->next_retry_ms = now + s->deliver_backoff_ms;
    return s->deliver_backoff_ms;
}

bool ibp__usage_sched_summary_due(ibp_usage_sched *s, int64_t now, bool force)
{
    if (!force && now - s->last_summary_ms < IBP_USAGE_SUMMARY_EVERY_MS)
        return false;
    s->last_summary_ms = now;
    return true;
}

int64_t ibp__usage_sched_next_due_ms(const ibp_usage_sched *s, int64_t now, bool early_wanted,
                                     uint64_t pending)
{
    int64_t due = s->next_flush_ms;
    if (early_wanted && s->flush_backoff_ms == 0)
        due = now;
    int64_t midnight = (s->last_day + 1) * IBP_USAGE_DAY_MS;
    if (midnight < due)
        due = midnight;
    if (pending > 0 && s->next_retry_ms < due)
        due = s->next_retry_ms;
    return due > now ? due - now : 0;
}
