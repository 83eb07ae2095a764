/* The persist consumers of HITS and EVENTS; see ibp/persist.h. */
#include "ibp/persist.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/clock.h"
#include "ibp/envelope.h"
#include "ibp/log.h"
#include "persist_util.h"

#define COMPONENT "persist"
#define NS_PER_MS INT64_C(1000000)

typedef struct stream_ctx {
    struct ibp_persist *p;
    ibp_persist_kind kind;
    char stream[129];
    char durable[129];
    pthread_t thread;
    bool started;

    /* owned by the thread */
    MYSQL *db;
    ibp_persist_applier *applier;
    jsCtx *js;
    natsSubscription *sub;
    bool fresh; /* consumer (re)created at last_seq + 1: accept a gap before the first message */
    int64_t backoff_ms;
    int64_t next_lag_log_ms;
    int64_t next_nats_log_ms;

    pthread_mutex_t mu; /* guards stats */
    ibp_persist_stream_stats stats;
} stream_ctx;

struct ibp_persist {
    ibp_persist_opts o;
    atomic_bool stop;
    stream_ctx hits, events;
};

void ibp_persist_opts_init(ibp_persist_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->hits_stream = "HITS";
    opts->hits_durable = IBP_PERSIST_HITS_DURABLE_DEFAULT;
    opts->events_stream = "EVENTS";
    opts->events_durable = IBP_PERSIST_EVENTS_DURABLE_DEFAULT;
    opts->batch_size = 1000;
    opts->fetch_wait_ms = 1000;
    opts->fetch_max_bytes = 16 * 1024 * 1024;
    opts->ack_wait_ms = 30000;
    opts->min_offline_ms = 30000;
    opts->retry_min_ms = 250;
    opts->retry_max_ms = 30000;
    opts->lag_log_interval_ms = 10000;
    opts->lock_timeout_s = 5;
}

/* ---- database side ----------------------------------------------------------- */

static void db_close(stream_ctx *sc)
{
    ibp_persist_applier_free(sc->applier);
    sc->applier = NULL;
    if (sc->db)
        mysql_close(sc->db);
    sc->db = NULL;
}

static void set_db_ok(stream_ctx *sc, bool ok)
{
    pthread_mutex_lock(&sc->mu);
    sc->stats.db_ok = ok;
    pthread_mutex_unlock(&sc->mu);
}

/* Backoff step after a failure; returns true when stopping. */
static bool backoff(stream_ctx *sc)
{
    const ibp_persist_opts *o = &sc->p->o;
    int64_t d = sc->backoff_ms;
    sc->backoff_ms = d * 2 > o->retry_max_ms ? o->retry_max_ms : d * 2;
    return ibp_persist_sleep_ms(d, &sc->p->stop);
}

/*
 * Connects, makes the applier and takes the named lock. IBP_OK when ready;
 * otherwise the caller backs off and calls again.
 */
static ibp_status db_open(stream_ctx *sc, ibp_err *err)
{
    const ibp_persist_opts *o = &sc->p->o;
    ibp_status st = ibp_persist_db_connect(o->db, NULL, false, &sc->db, err);
    if (st != IBP_OK)
        return st;
    ibp_persist_applier_opts ao;
    ibp_persist_applier_opts_init(&ao);
    ao.kind = sc->kind;
    ao.stream = sc->stream;
    ao.consumer = sc->durable;
    ao.roster = o->roster;
    ao.min_offline_ms = o->min_offline_ms;
    ao.strict_order = true;
    if ((st = ibp_persist_applier_new(sc->db, &ao, &sc->applier, err)) != IBP_OK)
        goto fail;
    for (;;) {
        bool got = false;
        if ((st = ibp_persist_applier_lock(sc->applier, o->lock_timeout_s, &got, err)) != IBP_OK)
            goto fail;
        if (got)
            break;
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "another persist applies this stream into this database; waiting for its lock "
                "stream=%s consumer=%s",
                sc->stream, sc->durable);
        if (atomic_load(&sc->p->stop)) {
            st = ibp_err_set(err, IBP_E_DB, "stopping while waiting for the lock");
            goto fail;
        }
    }
    return IBP_OK;
fail:
    db_close(sc);
    return st;
}

/* ---- NATS side ----------------------------------------------------------------- */

static void unsubscribe(stream_ctx *sc)
{
    /* Destroy, not Unsubscribe: the durable consumer stays (nats.c >= 3.4). */
    natsSubscription_Destroy(sc->sub);
    sc->sub = NULL;
}

static ibp_status nats_fail(ibp_err *err, natsStatus s, jsErrCode jerr, const char *what,
                            const stream_ctx *sc)
{
    const char *last = nats_GetLastError(NULL);
    return ibp_err_set(err, IBP_E_NATS, "%s %s/%s: %s (jetstream error %d)%s%s", what, sc->stream,
                       sc->durable, natsStatus_GetText(s), (int)jerr, last && *last ? ": " : "",
                       last ? last : "");
}

static ibp_status consumer_create(stream_ctx *sc, uint64_t last_seq, ibp_err *err)
{
    const ibp_persist_opts *o = &sc->p->o;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = sc->durable;
    cc.Name = NULL;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = o->ack_wait_ms * NS_PER_MS;
    cc.MaxAckPending = o->max_ack_pending;
    cc.MaxDeliver = -1;
    cc.Description = "ibp-persist: applied to MariaDB, acknowledged after commit";
    if (last_seq > 0) {
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = last_seq + 1;
    } else {
        cc.DeliverPolicy = js_DeliverAll;
    }
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddConsumer(&ci, sc->js, sc->stream, &cc, NULL, &jerr);
    if (s != NATS_OK)
        return nats_fail(err, s, jerr, "create consumer", sc);
    jsConsumerInfo_Destroy(ci);
    sc->fresh = true;
    pthread_mutex_lock(&sc->mu);
    sc->stats.consumer_resets++;
    pthread_mutex_unlock(&sc->mu);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "created durable consumer stream=%s consumer=%s start_seq=%" PRIu64, sc->stream,
            sc->durable, last_seq + 1);
    return IBP_OK;
}

/*
 * Makes sure the durable consumer exists in a state we can use (see the
 * header) and binds a pull subscription to it. recreate forces a new one.
 */
static ibp_status consumer_ensure(stream_ctx *sc, uint64_t last_seq, bool recreate, ibp_err *err)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus s;
    ibp_status st;
    unsubscribe(sc);
    /* A stream that ends before what the database applied is not the stream the
     * database was built from (re-created, purged and refilled, another
     * cluster): its messages would all be skipped as "applied". Refuse. */
    jsStreamInfo *si = NULL;
    s = js_GetStreamInfo(&si, sc->js, sc->stream, NULL, &jerr);
    if (s != NATS_OK)
        return nats_fail(err, s, jerr, "stream info", sc);
    uint64_t stream_last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    if (stream_last < last_seq)
        return ibp_err_set(err, IBP_E_CONFIG,
                           "stream %s ends at seq %" PRIu64 " but the database applied it up to "
                           "%" PRIu64 " (consumer %s): a different or re-created stream? Not "
                           "consuming it, so that nothing is skipped; rebuild the database with "
                           "ibp-persist replay or point persist at the right stream",
                           sc->stream, stream_last, last_seq, sc->durable);
    s = js_GetConsumerInfo(&ci, sc->js, sc->stream, sc->durable, NULL, &jerr);
    if (s != NATS_OK && jerr != JSConsumerNotFoundErr)
        return nats_fail(err, s, jerr, "consumer info", sc);
    bool exists = s == NATS_OK;
    const char *why = recreate ? "gap in the delivered sequences" : NULL;
    if (exists && !recreate) {
        const jsConsumerConfig *c = ci->Config;
        if (c->DeliverSubject != NULL || c->AckPolicy != js_AckExplicit)
            why = "not a pull consumer with explicit acks";
        else if (ci->NumAckPending > 0)
            why = "deliveries pending from an earlier process";
        else if (ci->AckFloor.Stream > last_seq) {
            why = "its ack floor is above the database's last sequence";
            IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                    "the database is behind what was acknowledged (restored from a backup, or "
                    "lost commits in a failover?): applying again from last_seq+1 stream=%s "
                    "consumer=%s ack_floor=%" PRIu64 " last_seq=%" PRIu64,
                    sc->stream, sc->durable, ci->AckFloor.Stream, last_seq);
        }
    }
    jsConsumerInfo_Destroy(ci);
    if (exists && why != NULL) {
        IBP_LOG(
            IBP_LOG_INFO, COMPONENT,
            "re-creating durable consumer stream=%s consumer=%s reason=\"%s\" start_seq=%" PRIu64,
            sc->stream, sc->durable, why, last_seq + 1);
        s = js_DeleteConsumer(sc->js, sc->stream, sc->durable, NULL, &jerr);
        if (s != NATS_OK && jerr != JSConsumerNotFoundErr)
            return nats_fail(err, s, jerr, "delete consumer", sc);
        exists = false;
    }
    if (!exists && (st = consumer_create(sc, last_seq, err)) != IBP_OK)
        return st;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = sc->stream;
    so.Consumer = sc->durable;
    s = js_PullSubscribe(&sc->sub, sc->js, NULL, sc->durable, NULL, &so, &jerr);
    if (s != NATS_OK) {
        sc->sub = NULL;
        return nats_fail(err, s, jerr, "pull subscribe", sc);
    }
    return IBP_OK;
}

/* ---- the loop ------------------------------------------------------------------- */

static void log_nats_error(stream_ctx *sc, const ibp_err *e)
{
    int64_t now = ibp_clock_mono_ms();
    pthread_mutex_lock(&sc->mu);
    sc->stats.nats_errors++;
    pthread_mutex_unlock(&sc->mu);
    if (now >= sc->next_nats_log_ms) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "NATS error, retrying stream=%s error=\"%s\"", sc->stream,
                e->msg);
        sc->next_nats_log_ms = now + sc->p->o.lag_log_interval_ms;
    }
}

/* Acknowledges the messages at or below last_seq. */
static void ack_upto(stream_ctx *sc, natsMsgList *list, const uint64_t *seqs, uint64_t last_seq)
{
    int last_idx = -1;
    for (int i = 0; i < list->Count; i++)
        if (seqs[i] <= last_seq && (last_idx < 0 || seqs[i] >= seqs[last_idx]))
            last_idx = i;
    if (last_idx < 0)
        return;
    const ibp_persist_opts *o = &sc->p->o;
    if (o->ack_hook && !o->ack_hook(o->ack_hook_user, sc->kind, last_seq)) {
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT, "ack hook dropped the acks stream=%s last_seq=%" PRIu64,
                sc->stream, last_seq);
        return;
    }
    bool failed = false;
    for (int i = 0; i < list->Count; i++) {
        if (i == last_idx || seqs[i] > last_seq)
            continue;
        if (natsMsg_Ack(list->Msgs[i], NULL) != NATS_OK)
            failed = true;
    }
    jsErrCode jerr = 0;
    natsStatus s = natsMsg_AckSync(list->Msgs[last_idx], NULL, &jerr);
    if (s != NATS_OK || failed) {
        /* Committed: a redelivery is skipped by the offsets. */
        pthread_mutex_lock(&sc->mu);
        sc->stats.nats_errors++;
        pthread_mutex_unlock(&sc->mu);
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "ack failed after commit (the messages will be redelivered and skipped) "
                "stream=%s last_seq=%" PRIu64 " error=%s",
                sc->stream, last_seq, natsStatus_GetText(s));
    }
}

/*
 * The lag while nothing is acknowledged: what the consumer has not delivered
 * yet plus what it delivered and waits for (our held batch, redeliveries).
 * Falls back to the last known value when NATS cannot say.
 */
static uint64_t current_lag(stream_ctx *sc, uint64_t fallback)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    uint64_t lag = fallback;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 2000; /* NATS may be away too: do not hold the retries up for long */
    if (js_GetConsumerInfo(&ci, sc->js, sc->stream, sc->durable, &jo, &jerr) == NATS_OK) {
        lag = ci->NumPending + (uint64_t)ci->NumAckPending;
        pthread_mutex_lock(&sc->mu);
        sc->stats.pending = lag;
        pthread_mutex_unlock(&sc->mu);
    }
    jsConsumerInfo_Destroy(ci);
    return lag;
}

/*
 * Applies one fetched batch, retrying database failures until it commits or
 * the persist stops. Returns true when committed (r filled).
 */
static bool apply_batch(stream_ctx *sc, const ibp_persist_msg *msgs, size_t n, uint64_t pending,
                        ibp_persist_apply_result *r)
{
    const ibp_persist_opts *o = &sc->p->o;
    ibp_err e;
    for (;;) {
        ibp_err_clear(&e);
        ibp_status st;
        if (sc->applier == NULL)
            st = db_open(sc, &e);
        else
            st = IBP_OK;
        if (st == IBP_OK)
            st = ibp_persist_applier_apply(sc->applier, msgs, n, sc->fresh, r, &e);
        if (st == IBP_OK) {
            if (!sc->stats.db_ok)
                IBP_LOG(IBP_LOG_INFO, COMPONENT, "database writes work again stream=%s",
                        sc->stream);
            set_db_ok(sc, true);
            sc->backoff_ms = o->retry_min_ms;
            return true;
        }
        pthread_mutex_lock(&sc->mu);
        sc->stats.db_errors++;
        sc->stats.db_ok = false;
        pthread_mutex_unlock(&sc->mu);
        int64_t now = ibp_clock_mono_ms();
        if (now >= sc->next_lag_log_ms) {
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "database unavailable: not acknowledging, retrying in %" PRId64
                    " ms stream=%s held=%zu lag=%" PRIu64 " error=\"%s\"",
                    sc->backoff_ms, sc->stream, n, current_lag(sc, pending + n), e.msg);
            sc->next_lag_log_ms = now + o->lag_log_interval_ms;
        }
        /* A new connection for the next attempt: simplest state to reason about. */
        db_close(sc);
        if (backoff(sc))
            return false;
    }
}

static void process(stream_ctx *sc, natsMsgList *list)
{
    size_t n = (size_t)list->Count;
    ibp_persist_msg *msgs = calloc(n, sizeof *msgs);
    uint64_t *seqs = calloc(n, sizeof *seqs);
    uint64_t pending = 0;
    if (msgs == NULL || seqs == NULL) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "out of memory for a batch of %zu stream=%s", n,
                sc->stream);
        goto out; /* not acknowledged: redelivered */
    }
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = list->Msgs[i];
        jsMsgMetaData *meta = NULL;
        if (natsMsg_GetMetaData(&meta, m) != NATS_OK) {
            IBP_LOG(IBP_LOG_WARN, COMPONENT, "message without JetStream metadata stream=%s",
                    sc->stream);
            goto out;
        }
        seqs[i] = meta->Sequence.Stream;
        if (meta->NumPending > pending || i == n - 1)
            pending = meta->NumPending;
        jsMsgMetaData_Destroy(meta);
        msgs[i].seq = seqs[i];
        msgs[i].subject = natsMsg_GetSubject(m);
        msgs[i].data = (const uint8_t *)natsMsg_GetData(m);
        msgs[i].len = (size_t)natsMsg_GetDataLength(m);
    }
    ibp_persist_apply_result r;
    if (!apply_batch(sc, msgs, n, pending, &r))
        goto out; /* stopping with the database away: abandoned, not acknowledged */
    if (r.transactions > 0)
        sc->fresh = false;
    pthread_mutex_lock(&sc->mu);
    sc->stats.messages += n;
    sc->stats.batches += r.transactions > 0;
    sc->stats.applied += r.applied;
    sc->stats.skipped += r.skipped;
    sc->stats.dead_lettered += r.dead_lettered;
    sc->stats.stale += r.stale;
    sc->stats.rows += r.rows;
    sc->stats.hits += r.hits;
    sc->stats.last_seq = r.last_seq;
    sc->stats.pending = pending;
    pthread_mutex_unlock(&sc->mu);
    ack_upto(sc, list, seqs, r.last_seq);
    if (r.gap) {
        ibp_err e;
        ibp_err_clear(&e);
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "gap in delivered sequences (deliveries pending elsewhere or deleted messages): "
                "re-creating the consumer stream=%s last_seq=%" PRIu64 " unapplied=%zu",
                sc->stream, r.last_seq, r.unapplied);
        if (consumer_ensure(sc, r.last_seq, true, &e) != IBP_OK)
            log_nats_error(sc, &e);
    }
out:
    free(msgs);
    free(seqs);
}

static void *stream_main(void *arg)
{
    stream_ctx *sc = arg;
    struct ibp_persist *p = sc->p;
    const ibp_persist_opts *o = &p->o;
    ibp_err e;
    bool consumer_ready = false;

    pthread_mutex_lock(&sc->mu);
    sc->stats.running = true;
    pthread_mutex_unlock(&sc->mu);
    sc->backoff_ms = o->retry_min_ms;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    if (natsConnection_JetStream(&sc->js, o->nc, &jo) != NATS_OK) {
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "cannot make a JetStream context stream=%s", sc->stream);
        goto out;
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "consumer starting stream=%s consumer=%s batch=%zu",
            sc->stream, sc->durable, o->batch_size);
    while (!atomic_load(&p->stop)) {
        ibp_err_clear(&e);
        if (sc->applier == NULL) {
            if (db_open(sc, &e) != IBP_OK) {
                set_db_ok(sc, false);
                int64_t now = ibp_clock_mono_ms();
                if (now >= sc->next_lag_log_ms) {
                    IBP_LOG(IBP_LOG_WARN, COMPONENT,
                            "database unavailable, retrying in %" PRId64
                            " ms stream=%s error=\"%s\"",
                            sc->backoff_ms, sc->stream, e.msg);
                    sc->next_lag_log_ms = now + o->lag_log_interval_ms;
                }
                if (backoff(sc))
                    break;
                continue;
            }
            set_db_ok(sc, true);
            sc->backoff_ms = o->retry_min_ms;
        }
        if (!consumer_ready) {
            uint64_t last = 0;
            if (ibp_persist_applier_last_seq(sc->applier, &last, &e) != IBP_OK) {
                db_close(sc);
                if (backoff(sc))
                    break;
                continue;
            }
            pthread_mutex_lock(&sc->mu);
            sc->stats.last_seq = last;
            pthread_mutex_unlock(&sc->mu);
            if (consumer_ensure(sc, last, false, &e) != IBP_OK) {
                if (e.code == IBP_E_CONFIG) {
                    int64_t now = ibp_clock_mono_ms();
                    if (now >= sc->next_nats_log_ms) {
                        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", e.msg);
                        sc->next_nats_log_ms = now + o->lag_log_interval_ms;
                    }
                } else {
                    log_nats_error(sc, &e);
                }
                if (ibp_persist_sleep_ms(500, &p->stop))
                    break;
                continue;
            }
            consumer_ready = true;
        }
        jsFetchRequest fr;
        jsFetchRequest_Init(&fr);
        fr.Batch = (int)o->batch_size;
        fr.MaxBytes = o->fetch_max_bytes;
        fr.Expires = o->fetch_wait_ms * NS_PER_MS;
        natsMsgList list = {0};
        natsStatus s = natsSubscription_FetchRequest(&list, sc->sub, &fr);
        if (s == NATS_TIMEOUT && list.Count == 0) {
            natsMsgList_Destroy(&list);
            continue;
        }
        if (s != NATS_OK && list.Count == 0) {
            natsMsgList_Destroy(&list);
            ibp_err_set(&e, IBP_E_NATS, "fetch %s/%s: %s: %s", sc->stream, sc->durable,
                        natsStatus_GetText(s), nats_GetLastError(NULL));
            log_nats_error(sc, &e);
            /* Consumer gone (stream re-created, server state lost) or
             * connection trouble: look again after a pause. */
            if (s != NATS_CONNECTION_DISCONNECTED && s != NATS_CONNECTION_CLOSED)
                consumer_ready = false;
            if (ibp_persist_sleep_ms(250, &p->stop))
                break;
            continue;
        }
        process(sc, &list);
        natsMsgList_Destroy(&list);
    }
out:
    unsubscribe(sc);
    db_close(sc);
    jsCtx_Destroy(sc->js);
    sc->js = NULL;
    pthread_mutex_lock(&sc->mu);
    sc->stats.running = false;
    pthread_mutex_unlock(&sc->mu);
    IBP_LOG(IBP_LOG_INFO, COMPONENT, "consumer stopped stream=%s last_seq=%" PRIu64, sc->stream,
            sc->stats.last_seq);
    mysql_thread_end();
    return NULL;
}

static bool name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static ibp_status stream_init(struct ibp_persist *p, stream_ctx *sc, ibp_persist_kind kind,
                              const char *stream, const char *durable, ibp_err *err)
{
    sc->p = p;
    sc->kind = kind;
    pthread_mutex_init(&sc->mu, NULL);
    if (stream == NULL || *stream == '\0')
        return IBP_OK; /* disabled */
    if (!name_ok(stream) || !name_ok(durable))
        return ibp_err_set(err, IBP_E_INVAL,
                           "persist: stream '%.140s' and consumer '%.140s' must be 1-128 "
                           "characters of A-Z, a-z, 0-9, '_' and '-'",
                           stream, durable ? durable : "");
    snprintf(sc->stream, sizeof sc->stream, "%s", stream);
    snprintf(sc->durable, sizeof sc->durable, "%s", durable);
    return IBP_OK;
}

ibp_status ibp_persist_start(const ibp_persist_opts *opts, ibp_persist **out, ibp_err *err)
{
    if (opts == NULL || out == NULL || opts->nc == NULL || opts->db == NULL || opts->roster == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "persist: nc, db and roster are required");
    if (opts->batch_size == 0 || opts->batch_size > 100000)
        return ibp_err_set(err, IBP_E_INVAL, "persist: batch_size %zu is not 1-100000",
                           opts->batch_size);
    struct ibp_persist *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "persist: out of memory");
    p->o = *opts;
    ibp_persist_opts *o = &p->o;
    int64_t min_bytes = 2 * (int64_t)IBP_MESSAGE_MAX_DEFAULT;
    if (o->fetch_max_bytes < min_bytes)
        o->fetch_max_bytes = min_bytes; /* a message above it would block the consumer */
    if (o->fetch_wait_ms < 10)
        o->fetch_wait_ms = 10;
    if (o->ack_wait_ms < 1000)
        o->ack_wait_ms = 1000;
    if (o->max_ack_pending <= 0)
        o->max_ack_pending = 4 * (int64_t)o->batch_size;
    if (o->retry_min_ms <= 0)
        o->retry_min_ms = 250;
    if (o->retry_max_ms < o->retry_min_ms)
        o->retry_max_ms = o->retry_min_ms;
    if (o->lag_log_interval_ms <= 0)
        o->lag_log_interval_ms = 10000;
    if (o->lock_timeout_s == 0)
        o->lock_timeout_s = 5;
    atomic_init(&p->stop, false);
    ibp_status st =
        stream_init(p, &p->hits, IBP_PERSIST_HITS, o->hits_stream ? o->hits_stream : "HITS",
                    o->hits_durable ? o->hits_durable : IBP_PERSIST_HITS_DURABLE_DEFAULT, err);
    if (st == IBP_OK)
        st = stream_init(
            p, &p->events, IBP_PERSIST_EVENTS, o->events_stream ? o->events_stream : "EVENTS",
            o->events_durable ? o->events_durable : IBP_PERSIST_EVENTS_DURABLE_DEFAULT, err);
    if (st != IBP_OK) {
        pthread_mutex_destroy(&p->hits.mu);
        pthread_mutex_destroy(&p->events.mu);
        free(p);
        return st;
    }
    ibp_persist_db_library_init();
    stream_ctx *all[2] = {&p->hits, &p->events};
    for (int i = 0; i < 2; i++) {
        if (all[i]->stream[0] == '\0')
            continue;
        if (pthread_create(&all[i]->thread, NULL, stream_main, all[i]) != 0) {
            ibp_err_set(err, IBP_E_IO, "persist: cannot start the %s thread", all[i]->stream);
            ibp_persist_stop(p);
            return IBP_E_IO;
        }
        all[i]->started = true;
    }
    *out = p;
    return IBP_OK;
}

void ibp_persist_stats_get(ibp_persist *p, ibp_persist_stats *out)
{
    memset(out, 0, sizeof *out);
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->hits.mu);
    out->hits = p->hits.stats;
    pthread_mutex_unlock(&p->hits.mu);
    pthread_mutex_lock(&p->events.mu);
    out->events = p->events.stats;
    pthread_mutex_unlock(&p->events.mu);
}

void ibp_persist_request_stop(ibp_persist *p)
{
    if (p)
        atomic_store(&p->stop, true);
}

void ibp_persist_stop(ibp_persist *p)
{
    if (p == NULL)
        return;
    atomic_store(&p->stop, true);
    stream_ctx *all[2] = {&p->hits, &p->events};
    for (int i = 0; i < 2; i++) {
        if (all[i]->started)
            pthread_join(all[i]->thread, NULL);
        pthread_mutex_destroy(&all[i]->mu);
    }
    free(p);
}
