/*
 * Usage counters of a dns node, the facade of ibp/usage.h: options, open and
 * close, the background thread, and the flush driver that ties the parts
 * together under one flush mutex:
 *   - usage_shard.c: the recording hot path (per-thread usage_shard tables);
 *   - usage_aggregate.c: the pure aggregator the drained counts are folded into;
 *   - usage_batch.c: HitBatch framing of the aggregate's rows;
 *   - usage_flush.c: the pure scheduler deciding when to flush and deliver;
 *   - usage_journal.c: the durable journal and its delivery to the sink.
 * This file reads the clock (the injected one) and passes its time to the
 * scheduler; it is the only one that journals, logs or starts threads.
 */
#include "ibp/usage.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "ibp/date.h"
#include "ibp/log.h"
#include "ibp/vec.h"
#include "ibp/roster.h"
#include "usage_batch.h"
#include "usage_internal.h"

#define COMPONENT "usage"

/* ---- dates ----------------------------------------------------------------------------------- */

void ibp_usage_format_date(int64_t day, char buf[11])
{
    ibp_date_format(day, buf);
}

int ibp_usage_parse_date(const char *date, int64_t *day)
{
    return ibp_date_parse(date, day) ? 0 : -1;
}

/*
 * Not ibp_clock_wall_ms: the hot path reads this clock on every hit, and a
 * coarse clock is a vDSO read with no barrier; a day boundary needs no better.
 */
static int64_t default_clock(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- draining -------------------------------------------------------------------------------- */

/* Folds the held tables into the aggregate, emptying each slot it moves. */
static ibp_status merge_held(ibp_usage *u, ibp_err *err)
{
    while (u->nheld > 0) {
        usage_table *t = &u->held[u->nheld - 1];
        for (size_t i = 0; i < t->cap; i++) {
            usage_entry *e = &t->slots[i];
            if (!e->block)
                continue;
            if (ibp__usage_agg_add(&u->agg, e->day, e->ipv6, e->block, e->blen, e->count) != 0)
                return ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory merging counters");
            e->block = NULL;
            t->used--;
        }
        ibp__usage_table_free(t);
        u->nheld--;
    }
    return IBP_OK;
}

/* Folds a shard's counters into dst. Caller holds the shard's mu. */
static void add_shard_stats(ibp_usage_stats *dst, const usage_shard *s)
{
    dst->hits += s->hits;
    dst->bad_ip_hits += s->bad_ip;
    dst->geo_error_hits += s->geo_err;
    dst->overflow_hits += s->overflow;
    dst->rejected += s->rejected;
}

/*
 * Moves every shard's counts into the aggregate: each table is swapped for an
 * empty one under its shard mutex (the only moment a recording thread can
 * wait on the flusher), then merged. Shards of exited threads are freed.
 */
static ibp_status drain(ibp_usage *u, ibp_err *err)
{
    ibp_status st = IBP_OK;
    pthread_mutex_lock(&u->reg_mu);
    size_t nshards = 0;
    for (usage_shard *s = u->shards; s; s = s->next)
        nshards++;
    if (u->nheld + nshards > u->held_cap) {
        usage_table *h = ibp_grow(u->held, &u->held_cap, u->nheld + nshards, sizeof *h);
        if (!h) {
            pthread_mutex_unlock(&u->reg_mu);
            return ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory draining counters");
        }
        u->held = h;
    }
    for (usage_shard **link = &u->shards; *link;) {
        usage_shard *s = *link;
        pthread_mutex_lock(&s->mu);
        size_t used = s->t.used, dused = s->t.dused;
        bool orphan = atomic_load(&s->orphaned);
        if (s->bad_ip_report) {
            if (u->bad_ip_report == 0)
                memcpy(u->bad_ip_example, s->bad_ip_example, sizeof u->bad_ip_example);
            u->bad_ip_report += s->bad_ip_report;
            s->bad_ip_report = 0;
        }
        u->geo_err_report += s->geo_err_report;
        s->geo_err_report = 0;
        pthread_mutex_unlock(&s->mu);

        usage_table fresh;
        memset(&fresh, 0, sizeof fresh);
        /* Sized for the keys seen last time, so a steady load never regrows. */
        if (used > 0 && !orphan &&
            ibp__usage_table_init(&fresh, ibp__usage_pow2_at_least(2 * used),
                                  ibp__usage_pow2_at_least(2 * dused)) != 0) {
            st = ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory draining counters");
            link = &s->next;
            continue;
        }
        if (used > 0) {
            pthread_mutex_lock(&s->mu);
            usage_table old = s->t;
            s->t = fresh;
            pthread_mutex_unlock(&s->mu);
            for (size_t i = 0; i < old.cap; i++)
                u->held_hits += old.slots[i].block ? old.slots[i].count : 0;
            atomic_fetch_sub_explicit(&u->keys, old.used, memory_order_relaxed);
            u->held[u->nheld++] = old;
        }
        if (orphan) {
            /* Its thread is gone: nobody can reach it but us. */
            *link = s->next;
            add_shard_stats(&u->retired, s);
            ibp__usage_table_free(&s->t);
            pthread_mutex_destroy(&s->mu);
            free(s);
            continue;
        }
        link = &s->next;
    }
    pthread_mutex_unlock(&u->reg_mu);
    ibp_status mst = merge_held(u, err);
    return st != IBP_OK ? st : mst;
}

/* ---- flushing -------------------------------------------------------------------------------- */

/*
 * Drains the shards, then journals the aggregate rows of the dates `which`
 * selects, one batch per date and max_rows, oldest date first. Rows journaled
 * are forgotten; on a journal error the rest stay for a later flush.
 */
static ibp_status flush_locked(ibp_usage *u, ibp_usage_select which, int64_t day, ibp_err *err)
{
    ibp_err local;
    if (!err)
        err = &local; /* the log lines below want the reason */
    ibp_status st = drain(u, err);
    ibp_usage_row **sel = NULL;
    Ibp__V1__HitRow *rows = NULL;
    Ibp__V1__HitRow **rowp = NULL;
    size_t n = 0, journaled = 0;
    if (ibp__usage_agg_select(&u->agg, which, day, &sel, &n) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory flushing");
        goto done;
    }
    if (n == 0)
        goto done;
    size_t per = n < u->max_rows ? n : u->max_rows;
    rows = malloc(per * sizeof *rows);
    rowp = malloc(per * sizeof *rowp);
    if (!rows || !rowp) {
        st = ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory flushing");
        goto done;
    }
    for (size_t i = 0; i < n;) {
        char date[IBP_USAGE_DATE_BUF];
        uint64_t hits = 0;
        size_t k = ibp__usage_batch_frame(sel + i, n - i, per, u->max_batch_bytes, date, rows, rowp,
                                          &hits);
        Ibp__V1__HitBatch batch = IBP__V1__HIT_BATCH__INIT;
        batch.rows = rowp;
        batch.n_rows = k;
        uint64_t seq = 0;
        ibp_status jst = ibp_usage_journal_append(u->journal, &batch, &seq, err);
        if (jst != IBP_OK) {
            /* The counts stay in the aggregate: the next flush takes them again. */
            IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                    "cannot journal usage; counts kept for the next flush date=%s rows=%zu "
                    "hits=%" PRIu64 " error=\"%s\"",
                    date, k, hits, err->msg);
            st = jst;
            break;
        }
        for (size_t r = i; r < i + k; r++)
            sel[r]->count = 0;
        u->held_hits -= hits;
        journaled += k;
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
                "journaled usage batch seq=%" PRIu64 " date=%s rows=%zu hits=%" PRIu64, seq, date,
                k, hits);
        i += k;
    }
done:
    free(rows);
    free(rowp);
    free(sel);
    /* Drop journaled rows; a table that cannot shrink now keeps them (count 0) harmlessly. */
    if (journaled > 0)
        ibp__usage_agg_compact(&u->agg);
    if (st == IBP_OK)
        u->flushes++;
    else
        u->flush_errors++;
    return st;
}

static ibp_status deliver_locked(ibp_usage *u, int64_t now, bool force, ibp_err *err)
{
    ibp_err local;
    if (!err)
        err = &local; /* the log line below wants the reason */
    ibp_usage_journal_stats js;
    ibp_usage_journal_stats_get(u->journal, &js);
    if (!ibp__usage_sched_deliver_due(&u->sched, now, force, js.pending))
        return IBP_OK;
    size_t delivered = 0;
    ibp_status st = ibp_usage_journal_deliver(u->journal, u->sink, &delivered, err);
    int64_t backoff_ms = ibp__usage_sched_delivered(&u->sched, now, st == IBP_OK);
    if (st == IBP_OK)
        return IBP_OK;
    ibp_usage_journal_stats_get(u->journal, &js);
    IBP_LOG(IBP_LOG_WARN, COMPONENT,
            "usage sink did not confirm; retrying later delivered=%zu pending=%" PRIu64
            " retry_in_ms=%" PRId64 " error=\"%s\"",
            delivered, js.pending, backoff_ms, err->msg);
    return st;
}

static void log_summary(ibp_usage *u, int64_t now, bool force)
{
    if (!u->bad_ip_report && !u->geo_err_report)
        return;
    if (!ibp__usage_sched_summary_due(&u->sched, now, force))
        return;
    if (u->bad_ip_report) {
        /* The example comes from the caller: keep the log line printable. */
        char ex[IBP_GEO_IP_MAX + 1];
        size_t i;
        for (i = 0; u->bad_ip_example[i] && i < IBP_GEO_IP_MAX; i++) {
            unsigned char c = (unsigned char)u->bad_ip_example[i];
            ex[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
        }
        ex[i] = '\0';
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "hits from client addresses that do not parse counted under ?? count=%" PRIu64
                " example=\"%s\"",
                u->bad_ip_report, ex);
    }
    if (u->geo_err_report)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "MaxMind lookups failed; hits counted under ?? count=%" PRIu64, u->geo_err_report);
    u->bad_ip_report = u->geo_err_report = 0;
    u->bad_ip_example[0] = '\0';
}

ibp_status ibp_usage_tick(ibp_usage *u, ibp_err *err)
{
    ibp_status st = IBP_OK, st2;
    ibp_err e2;
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    int64_t today;
    if (ibp__usage_sched_new_day(&u->sched, now, &today)) {
        /* Right after midnight: the old date(s) go out first, on their own. */
        st = flush_locked(u, IBP_USAGE_SELECT_BEFORE, today, err);
        if (st != IBP_OK)
            ibp__usage_sched_flushed(&u->sched, now, false);
    }
    /* The flag is taken even when the early flush must wait (journal backoff). */
    bool early = atomic_exchange_explicit(&u->early_wanted, false, memory_order_relaxed) &&
                 ibp__usage_sched_early_ok(&u->sched, now);
    if (early) {
        u->early_flushes++;
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "usage counters reached max_keys=%zu: new keys go to overflow rows (country \?\?) "
                "until this early flush empties the tables early_flushes=%" PRIu64,
                u->max_keys, u->early_flushes);
    }
    if (early || ibp__usage_sched_flush_due(&u->sched, now)) {
        st2 = flush_locked(u, IBP_USAGE_SELECT_ALL, 0, st == IBP_OK ? err : &e2);
        ibp__usage_sched_flushed(&u->sched, now, st2 == IBP_OK);
        st = st != IBP_OK ? st : st2;
    }
    st2 = deliver_locked(u, now, false, st == IBP_OK ? err : &e2);
    st = st != IBP_OK ? st : st2;
    log_summary(u, now, false);
    pthread_mutex_unlock(&u->flush_mu);
    return st;
}

int64_t ibp_usage_next_due_ms(ibp_usage *u)
{
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    ibp_usage_journal_stats js;
    ibp_usage_journal_stats_get(u->journal, &js);
    int64_t due = ibp__usage_sched_next_due_ms(
        &u->sched, now, atomic_load_explicit(&u->early_wanted, memory_order_relaxed), js.pending);
    pthread_mutex_unlock(&u->flush_mu);
    return due;
}

static ibp_status flush_now(ibp_usage *u, ibp_usage_select mode, int64_t day, ibp_err *err)
{
    ibp_err e2;
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    ibp_status st = flush_locked(u, mode, day, err);
    if (mode == IBP_USAGE_SELECT_ALL)
        ibp__usage_sched_flushed(&u->sched, now, st == IBP_OK);
    deliver_locked(u, now, true, &e2);
    pthread_mutex_unlock(&u->flush_mu);
    return st;
}

ibp_status ibp_usage_flush(ibp_usage *u, ibp_err *err)
{
    if (!u)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no usage");
    return flush_now(u, IBP_USAGE_SELECT_ALL, 0, err);
}

ibp_status ibp_usage_flush_date(ibp_usage *u, const char *date, ibp_err *err)
{
    int64_t day;
    if (!u)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no usage");
    if (ibp_usage_parse_date(date, &day) != 0)
        return ibp_err_set(err, IBP_E_INVAL, "usage: flush: \"%s\" is not a date (YYYY-MM-DD)",
                           date ? date : "(null)");
    return flush_now(u, IBP_USAGE_SELECT_DAY, day, err);
}

ibp_status ibp_usage_deliver(ibp_usage *u, ibp_err *err)
{
    if (!u)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no usage");
    pthread_mutex_lock(&u->flush_mu);
    ibp_status st = deliver_locked(u, u->clock(u->clock_user), true, err);
    pthread_mutex_unlock(&u->flush_mu);
    return st;
}

void ibp_usage_stats_get(ibp_usage *u, ibp_usage_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&u->flush_mu);
    *out = u->retired;
    pthread_mutex_lock(&u->reg_mu);
    for (usage_shard *s = u->shards; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        add_shard_stats(out, s);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&u->reg_mu);
    out->keys = atomic_load_explicit(&u->keys, memory_order_relaxed);
    out->unjournaled_hits = u->held_hits;
    out->flushes = u->flushes;
    out->flush_errors = u->flush_errors;
    out->early_flushes = u->early_flushes;
    ibp_usage_journal_stats_get(u->journal, &out->journal);
    pthread_mutex_unlock(&u->flush_mu);
}

/* ---- open / close ---------------------------------------------------------------------------- */

void ibp_usage_opts_init(ibp_usage_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->flush_interval_ms = 300000;
    opts->max_keys = 1u << 20;
    opts->max_rows_per_batch = 10000;
    opts->max_batch_bytes = 900000;
    opts->retry_min_ms = 1000;
    opts->retry_max_ms = 300000;
    opts->tick_ms = 1000;
}

static void *background_main(void *arg)
{
    ibp_usage *u = arg;
    pthread_mutex_lock(&u->thr_mu);
    while (!u->stop) {
        pthread_mutex_unlock(&u->thr_mu);
        ibp_usage_tick(u, NULL); /* logs its own errors */
        pthread_mutex_lock(&u->thr_mu);
        if (u->stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += u->tick_ms / 1000;
        until.tv_nsec += (long)(u->tick_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&u->thr_cv, &u->thr_mu, &until);
    }
    pthread_mutex_unlock(&u->thr_mu);
    return NULL;
}

static ibp_status check_opts(const ibp_usage_opts *o, ibp_err *err)
{
    if (!o->node_id || !ibp_node_id_valid(o->node_id))
        return ibp_err_set(err, IBP_E_INVAL, "usage: node_id is not a valid node id");
    if (!o->work_dir || !*o->work_dir)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no work_dir");
    if (!o->sink || !o->sink->deliver)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no sink");
    if (o->flush_interval_ms < 1 || o->retry_min_ms < 1 || o->retry_max_ms < o->retry_min_ms ||
        (o->background && o->tick_ms < 1))
        return ibp_err_set(err, IBP_E_INVAL,
                           "usage: flush_interval_ms, retry_min_ms, retry_max_ms and tick_ms "
                           "must be positive, retry_max_ms >= retry_min_ms");
    if (o->max_keys < 1 || o->max_keys > ((size_t)1 << 32) || o->max_rows_per_batch < 1)
        return ibp_err_set(err, IBP_E_INVAL,
                           "usage: max_keys must be 1..2^32 and max_rows_per_batch positive");
    if (o->max_batch_bytes < 4096 || o->max_batch_bytes > IBP_USAGE_JOURNAL_ENTRY_MAX / 2)
        return ibp_err_set(err, IBP_E_INVAL, "usage: max_batch_bytes must be 4096..%u",
                           IBP_USAGE_JOURNAL_ENTRY_MAX / 2);
    return IBP_OK;
}

static void free_usage(ibp_usage *u)
{
    for (usage_shard *s = u->shards, *next; s; s = next) {
        next = s->next;
        ibp__usage_table_free(&s->t);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
    for (size_t i = 0; i < u->nheld; i++)
        ibp__usage_table_free(&u->held[i]);
    free(u->held);
    ibp__usage_agg_free(&u->agg);
    ibp_usage_journal_close(u->journal);
    pthread_key_delete(u->tls);
    pthread_cond_destroy(&u->thr_cv);
    pthread_mutex_destroy(&u->thr_mu);
    pthread_mutex_destroy(&u->flush_mu);
    pthread_mutex_destroy(&u->reg_mu);
    free(u);
}

ibp_status ibp_usage_open(const ibp_usage_opts *opts, ibp_usage **out, ibp_err *err)
{
    char jdir[4200], seq[4200];
    if (!opts || !out)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no options or no result pointer");
    ibp_status st = check_opts(opts, err);
    if (st != IBP_OK)
        return st;
    int n1 = snprintf(jdir, sizeof jdir, "%s/usage-journal", opts->work_dir);
    int n2 = snprintf(seq, sizeof seq, "%s/usage.seq", opts->work_dir);
    if (n1 < 0 || (size_t)n1 >= sizeof jdir || n2 < 0 || (size_t)n2 >= sizeof seq)
        return ibp_err_set(err, IBP_E_INVAL, "usage: work_dir path too long");
    ibp_usage *u = calloc(1, sizeof *u);
    if (!u)
        return ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory");
    if (pthread_key_create(&u->tls, ibp__usage_shard_orphan) != 0) {
        free(u);
        return ibp_err_set(err, IBP_E_NOMEM, "usage: no thread-specific key left");
    }
    pthread_mutex_init(&u->reg_mu, NULL);
    pthread_mutex_init(&u->flush_mu, NULL);
    pthread_mutex_init(&u->thr_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->thr_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&u->keys, 0);
    atomic_init(&u->early_wanted, false);

    u->geo = opts->geo;
    u->sink = opts->sink;
    u->clock = opts->clock ? opts->clock : default_clock;
    u->clock_user = opts->clock ? opts->clock_user : NULL;
    u->max_keys = opts->max_keys;
    u->max_overflow_keys = opts->max_keys / 16 + 64;
    u->max_rows = opts->max_rows_per_batch;
    u->max_batch_bytes = opts->max_batch_bytes;
    u->tick_ms = opts->tick_ms;
    /* A per-process hash seed: clients choose domains and addresses. */
    if (getrandom(&u->seed, sizeof u->seed, GRND_NONBLOCK) != (ssize_t)sizeof u->seed)
        u->seed = (uint64_t)(uintptr_t)u ^ (uint64_t)default_clock(NULL);
    ibp__usage_agg_init(&u->agg, u->seed);

    st = ibp_usage_journal_open(jdir, seq, opts->node_id, &u->journal, err);
    if (st != IBP_OK) {
        free_usage(u);
        return st;
    }
    int64_t now = u->clock(u->clock_user);
    ibp__usage_sched_init(&u->sched, opts->flush_interval_ms, opts->retry_min_ms,
                          opts->retry_max_ms, now);
    if (opts->background) {
        if (pthread_create(&u->thread, NULL, background_main, u) != 0) {
            free_usage(u);
            return ibp_err_set(err, IBP_E_NOMEM, "usage: cannot start the flush thread");
        }
        u->thread_started = true;
    }
    *out = u;
    return IBP_OK;
}

ibp_status ibp_usage_close(ibp_usage *u, ibp_err *err)
{
    ibp_err e2;
    if (!u)
        return IBP_OK;
    if (u->thread_started) {
        pthread_mutex_lock(&u->thr_mu);
        u->stop = true;
        pthread_cond_signal(&u->thr_cv);
        pthread_mutex_unlock(&u->thr_mu);
        pthread_join(u->thread, NULL);
    }
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    ibp_status st = flush_locked(u, IBP_USAGE_SELECT_ALL, 0, err);
    deliver_locked(u, now, true, &e2);
    log_summary(u, now, true);
    if (u->held_hits > 0)
        IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                "shutting down with usage that could not be journaled; lost hits=%" PRIu64,
                u->held_hits);
    pthread_mutex_unlock(&u->flush_mu);
    free_usage(u);
    return st;
}
