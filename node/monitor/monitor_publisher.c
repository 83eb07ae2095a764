/* The monitor publisher; see ibp/monitor_publisher.h. */
#include "ibp/clock.h"
#include "ibp/monitor_publisher.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/bus.h"
#include "ibp/codec_heartbeat.h"
#include "ibp/log.h"
#include "ibp/roster.h"
#include "ibp/seqfile.h"

#define COMPONENT "publisher"
#define PREFIX_MAX 128
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
/* Room for the envelope around a payload (signer, seq, times, type,
 * signature, field tags) and for the NATS headers, kept off max_payload. */
#define ENVELOPE_OVERHEAD 1024
/* Failure log lines: the first one, then at most one per interval. */
#define FAIL_LOG_INTERVAL_MS 10000

/* One sealed envelope waiting for its acknowledgement. */
typedef struct pending {
    struct pending *next;
    uint8_t *data;
    size_t len;
    uint64_t seq;
    ibp_payload_type type;
    size_t nobs;
    bool full;
} pending;

struct ibp_monitor_publisher {
    ibp_monitor_publisher_opts opts;
    char node[IBP_NODE_ID_MAX + 1];
    char subject[PREFIX_MAX + IBP_NODE_ID_MAX + 2];
    char work_dir_seq[4096];
    jsCtx *js;
    ibp_seqfile *batch_seqs;
    size_t max_bytes; /* effective payload limit */

    /* Owned by the thread alone. */
    pending *head, *tail;
    uint64_t version;     /* store version the last delta covered */
    int64_t next_publish; /* monotonic ms */
    int64_t next_refresh;
    int64_t last_sealed;
    int64_t retry_at;
    int64_t retry_delay;
    int64_t last_fail_log;
    uint64_t fails_since_ok;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;  /* guards what follows */
    pthread_cond_t wake; /* the thread waits on it */
    pthread_cond_t done; /* flush callers wait on it */
    bool stopping;
    uint64_t flush_req;  /* generation asked for */
    uint64_t flush_done; /* generation whose batches are all acknowledged */
    ibp_monitor_publisher_stats stats;
};

void ibp_monitor_publisher_opts_init(ibp_monitor_publisher_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->roles = IBP_ROLE_MONITOR;
    opts->publish_ms = 5000;
    opts->refresh_ms = 60000;
    opts->heartbeat_ms = 5000;
    opts->ack_timeout_ms = 5000;
    opts->max_batch_obs = IBP_MONITOR_MAX_BATCH_OBS_DEFAULT;
    opts->max_batch_bytes = IBP_MONITOR_MAX_BATCH_BYTES_DEFAULT;
    opts->subject_prefix = "ibp.local";
    opts->stop_timeout_ms = 2000;
}

/* ---- pure helpers ------------------------------------------------------- */

ibp_status ibp_observation_from_result(const ibp_result *r, ibp_observation_buf *buf, ibp_err *err)
{
    if (!r || !buf)
        return ibp_err_set(err, IBP_E_INVAL, "observation: no result");
    if (r->type != IBP_CHECK_SITE && r->type != IBP_CHECK_DOMAIN && r->type != IBP_CHECK_ENDPOINT)
        return ibp_err_set(err, IBP_E_INVAL, "observation: unknown check type %d", (int)r->type);
    if (ibp_domain_normalize(r->domain, buf->domain, sizeof buf->domain) != IBP_OK)
        return ibp_err_set(err, IBP_E_RANGE, "observation: domain '%.80s...' is too long",
                           r->domain);
    /* ibp_check_type has the wire's values. */
    buf->obs = (ibp_codec_observation){
        .key = {(ibp_check_type)r->type, r->check_name, r->member, buf->domain, r->endpoint,
                r->ipv6},
        .status = r->up ? IBP_RESULT_UP : IBP_RESULT_DOWN,
        .check_time_ms = r->check_time_ms,
        .error = r->error,
        .data_json = r->data_json,
    };
    return IBP_OK;
}

/* Bytes one observation adds to a batch: the message, its tag and length. */
static size_t observation_wire_size(const ibp_result *r)
{
    ibp_observation_buf b;
    if (ibp_observation_from_result(r, &b, NULL) != IBP_OK)
        return 0;
    return ibp_codec_observation_size(&b.obs);
}

size_t ibp_observation_batch_split(const ibp_result *const *results, size_t n, size_t max_obs,
                                   size_t max_bytes)
{
    if (n == 0)
        return 0;
    size_t bytes = 32; /* batch_seq, full */
    size_t i = 0;
    for (; i < n && (max_obs == 0 || i < max_obs); i++) {
        size_t sz = observation_wire_size(results[i]);
        if (i > 0 && max_bytes && bytes + sz > max_bytes)
            break;
        bytes += sz;
    }
    return i ? i : 1;
}

ibp_status ibp_observation_batch_pack(const ibp_result *const *results, size_t n,
                                      uint64_t batch_seq, bool full, uint8_t **out, size_t *out_len,
                                      ibp_err *err)
{
    ibp_status st = IBP_OK;
    ibp_observation_buf *bufs = calloc(n ? n : 1, sizeof *bufs);
    ibp_codec_observation *obs = calloc(n ? n : 1, sizeof *obs);
    if (!bufs || !obs) {
        st = ibp_err_set(err, IBP_E_NOMEM, "observation batch: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((st = ibp_observation_from_result(results[i], &bufs[i], err)) != IBP_OK)
            goto out;
        obs[i] = bufs[i].obs;
    }
    ibp_codec_observation_batch b = {.batch_seq = batch_seq, .full = full, .obs = obs, .nobs = n};
    st = ibp_codec_observation_batch_encode(&b, out, out_len, err);
out:
    free(obs);
    free(bufs);
    return st;
}

void ibp_monitor_publisher_filter(ibp_result_list *list, int64_t now_ms, int64_t max_age_ms,
                                  bool (*keep_fn)(const ibp_result *r, void *user), void *user,
                                  uint64_t *stale, uint64_t *unwanted)
{
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        ibp_result *r = list->items[i];
        bool old = max_age_ms > 0 && r->check_time_ms < now_ms - max_age_ms;
        bool refused = !old && keep_fn && !keep_fn(r, user);
        if (old || refused) {
            if (old && stale)
                (*stale)++;
            if (refused && unwanted)
                (*unwanted)++;
            ibp_result_free(r);
            continue;
        }
        list->items[kept++] = r;
    }
    list->count = kept;
}

/* ---- queue -------------------------------------------------------------- */

static void queue_push(ibp_monitor_publisher *p, pending *e)
{
    e->next = NULL;
    if (p->tail)
        p->tail->next = e;
    else
        p->head = e;
    p->tail = e;
    pthread_mutex_lock(&p->mu);
    p->stats.queued++;
    p->stats.batches_sealed += e->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH;
    pthread_mutex_unlock(&p->mu);
}

static void pending_free(pending *e)
{
    if (e) {
        free(e->data);
        free(e);
    }
}

static void queue_pop(ibp_monitor_publisher *p)
{
    pending *e = p->head;
    p->head = e->next;
    if (!p->head)
        p->tail = NULL;
    pending_free(e);
    pthread_mutex_lock(&p->mu);
    p->stats.queued--;
    pthread_mutex_unlock(&p->mu);
}

/* Seals payload (already packed) and queues it. */
static ibp_status seal_and_queue(ibp_monitor_publisher *p, ibp_payload_type type,
                                 const uint8_t *payload, size_t len, size_t nobs, bool full,
                                 ibp_err *err)
{
    pending *e = calloc(1, sizeof *e);
    if (!e)
        return ibp_err_set(err, IBP_E_NOMEM, "publisher: out of memory");
    ibp_status st = ibp_signer_seal_bytes(p->opts.signer, type, payload, len, ibp_clock_wall_ms(),
                                          &e->data, &e->len, &e->seq, err);
    if (st != IBP_OK) {
        free(e);
        return st;
    }
    e->type = type;
    e->nobs = nobs;
    e->full = full;
    queue_push(p, e);
    p->last_sealed = ibp_clock_mono_ms();
    return IBP_OK;
}

/* Seals results as one or more batches (the whole list when full). */
static ibp_status seal_results(ibp_monitor_publisher *p, const ibp_result_list *list, bool full,
                               ibp_err *err)
{
    const ibp_result *const *items = (const ibp_result *const *)list->items;
    size_t i = 0;
    while (i < list->count) {
        size_t k = ibp_observation_batch_split(items + i, list->count - i, p->opts.max_batch_obs,
                                               p->max_bytes);
        uint64_t bseq = 0;
        uint8_t *payload = NULL;
        size_t len = 0;
        ibp_status st = ibp_seqfile_next(p->batch_seqs, &bseq, err);
        if (st == IBP_OK)
            st = ibp_observation_batch_pack(items + i, k, bseq, full, &payload, &len, err);
        if (st == IBP_OK)
            st = seal_and_queue(p, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, payload,
                                len, k, full, err);
        free(payload);
        if (st != IBP_OK)
            return st;
        i += k;
    }
    return IBP_OK;
}

static ibp_status seal_heartbeat(ibp_monitor_publisher *p, ibp_err *err)
{
    char *roles[8];
    size_t n = 0;
    for (unsigned bit = 1; bit <= IBP_ROLE_ADMIN && n < 8; bit <<= 1)
        if (p->opts.roles & bit)
            roles[n++] = (char *)ibp_role_name(bit);
    ibp_codec_heartbeat hb = {.roles = (const char *const *)roles, .nroles = n};
    uint8_t *buf = NULL;
    size_t len = 0;
    ibp_status st = ibp_codec_heartbeat_encode(&hb, &buf, &len, err);
    if (st != IBP_OK)
        return st;
    st = seal_and_queue(p, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, buf, len, 0, false, err);
    free(buf);
    return st;
}

/* Makes the batches that are due. Called only with an empty queue. */
static void build_due(ibp_monitor_publisher *p, int64_t now, bool forced)
{
    ibp_err err = {0};
    ibp_result_list list = {0};
    uint64_t version = 0;
    bool full = now >= p->next_refresh;
    if (full || forced || now >= p->next_publish) {
        ibp_status st =
            ibp_store_local_changed_since(p->opts.store, full ? 0 : p->version, &list, &version);
        if (st != IBP_OK) {
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "cannot read the local store error=%s",
                    ibp_strerror(st));
            p->next_publish = now + p->opts.publish_ms;
            if (full)
                p->next_refresh = now + p->opts.publish_ms;
            return;
        }
        uint64_t stale = 0, unwanted = 0;
        ibp_monitor_publisher_filter(&list, ibp_clock_wall_ms(), p->opts.max_age_ms,
                                     p->opts.keep_fn, p->opts.keep_user, &stale, &unwanted);
        if (stale || unwanted) {
            pthread_mutex_lock(&p->mu);
            p->stats.stale_skipped += stale;
            p->stats.unwanted_skipped += unwanted;
            pthread_mutex_unlock(&p->mu);
        }
        if (list.count > 0)
            st = seal_results(p, &list, full, &err);
        if (st == IBP_OK) {
            p->version = version;
            p->next_publish = now + p->opts.publish_ms;
            if (full)
                p->next_refresh = now + p->opts.refresh_ms;
            if (list.count > 0)
                IBP_LOG(IBP_LOG_DEBUG, COMPONENT, "sealed %s observations=%zu version=%" PRIu64,
                        full ? "refresh" : "changes", list.count, version);
        } else {
            /* Whatever was sealed goes out; the rest is read again next time
             * (the version did not move). */
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "cannot seal observations: %s", err.msg);
            p->next_publish = now + p->opts.publish_ms;
            if (full)
                p->next_refresh = now + p->opts.publish_ms;
        }
        ibp_result_list_free(&list);
    }
    if (!p->head && (forced || now - p->last_sealed >= p->opts.heartbeat_ms)) {
        if (seal_heartbeat(p, &err) != IBP_OK)
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "cannot seal a heartbeat: %s", err.msg);
    }
}

/* Publishes the queue head first; stops at the first failure. */
static void send_queue(ibp_monitor_publisher *p)
{
    while (p->head) {
        pending *e = p->head;
        ibp_err err = {0};
        uint64_t stream_seq = 0;
        bool dup = false;
        ibp_status st;
        natsConnStatus cs = natsConnection_Status(p->opts.nc);
        if (cs != NATS_CONN_STATUS_CONNECTED)
            st = ibp_err_set(&err, IBP_E_NATS, "not connected to NATS (status %d)", (int)cs);
        else
            st = ibp_bus_publish_envelope(p->js, p->subject, e->type, p->node, e->seq, e->data,
                                          e->len, NULL, 0, &stream_seq, &dup, &err);
        int64_t now = ibp_clock_mono_ms();
        if (st != IBP_OK) {
            pthread_mutex_lock(&p->mu);
            p->stats.publish_failures++;
            p->stats.last_failure_ms = ibp_clock_wall_ms();
            pthread_mutex_unlock(&p->mu);
            if (p->fails_since_ok++ == 0 || now - p->last_fail_log >= FAIL_LOG_INTERVAL_MS) {
                IBP_LOG(IBP_LOG_WARN, COMPONENT,
                        "publish failed, will retry in order seq=%" PRIu64 " queued=%" PRIu64
                        " failures=%" PRIu64 " error=%s",
                        e->seq, p->stats.queued, p->fails_since_ok, err.msg);
                p->last_fail_log = now;
            }
            p->retry_at = now + p->retry_delay;
            p->retry_delay = p->retry_delay * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->retry_delay * 2;
            return;
        }
        if (p->fails_since_ok) {
            IBP_LOG(IBP_LOG_INFO, COMPONENT, "publishing resumed after failures=%" PRIu64,
                    p->fails_since_ok);
            p->fails_since_ok = 0;
        }
        p->retry_delay = RETRY_MIN_MS;
        pthread_mutex_lock(&p->mu);
        if (e->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT) {
            p->stats.heartbeats_published++;
        } else {
            p->stats.batches_published++;
            p->stats.full_batches += e->full;
            p->stats.observations_published += e->nobs;
        }
        p->stats.duplicates += dup;
        p->stats.last_seq = e->seq;
        p->stats.last_stream_seq = stream_seq;
        p->stats.last_ack_ms = ibp_clock_wall_ms();
        pthread_mutex_unlock(&p->mu);
        queue_pop(p);
    }
}

static void *publisher_main(void *arg)
{
    ibp_monitor_publisher *p = arg;
    uint64_t built_gen = 0;
    pthread_mutex_lock(&p->mu);
    while (!p->stopping) {
        uint64_t want = p->flush_req;
        pthread_mutex_unlock(&p->mu);

        int64_t now = ibp_clock_mono_ms();
        if (!p->head) {
            bool forced = want > built_gen;
            build_due(p, now, forced);
            built_gen = want;
        }
        if (p->head && ibp_clock_mono_ms() >= p->retry_at)
            send_queue(p);

        pthread_mutex_lock(&p->mu);
        if (!p->head && p->flush_done < built_gen) {
            p->flush_done = built_gen;
            pthread_cond_broadcast(&p->done);
        }
        if (p->stopping || (!p->head && p->flush_req > built_gen))
            continue;
        /* Sleep until the next thing is due. */
        now = ibp_clock_mono_ms();
        int64_t until;
        if (p->head) {
            until = p->retry_at;
        } else {
            until = p->next_publish < p->next_refresh ? p->next_publish : p->next_refresh;
            int64_t hb = p->last_sealed + p->opts.heartbeat_ms;
            if (hb < until)
                until = hb;
        }
        if (until > now) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + (until - now) * 1000000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&p->wake, &p->mu, &ts);
        }
    }
    pthread_mutex_unlock(&p->mu);

    /* Stop: a last batch of changes, then try to get the queue out. */
    int64_t deadline = ibp_clock_mono_ms() + p->opts.stop_timeout_ms;
    if (!p->head) {
        p->next_publish = 0;
        build_due(p, ibp_clock_mono_ms(), false);
    }
    while (p->head && ibp_clock_mono_ms() < deadline) {
        send_queue(p);
        if (p->head) {
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    size_t left = 0;
    while (p->head) {
        left++;
        queue_pop(p);
    }
    pthread_mutex_lock(&p->mu);
    p->stats.dropped += left;
    p->flush_done = p->flush_req;
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
    if (left)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "stopped with unpublished envelopes=%zu (the next refresh after a restart "
                "carries their observations)",
                left);
    return NULL;
}

ibp_status ibp_monitor_publisher_start(const ibp_monitor_publisher_opts *opts,
                                       ibp_monitor_publisher **out, ibp_err *err)
{
    if (!opts || !out || !opts->nc || !opts->signer || !opts->store || !opts->work_dir)
        return ibp_err_set(err, IBP_E_INVAL,
                           "publisher: nc, signer, store and work_dir are required");
    if (opts->publish_ms < IBP_MONITOR_PUBLISH_MS_MIN ||
        opts->heartbeat_ms < IBP_MONITOR_PUBLISH_MS_MIN || opts->refresh_ms < opts->publish_ms ||
        opts->ack_timeout_ms <= 0 || opts->max_batch_obs == 0 || opts->max_batch_bytes < 1024 ||
        opts->max_age_ms < 0)
        return ibp_err_set(
            err, IBP_E_INVAL,
            "publisher: intervals out of range (publish %" PRId64 " ms and heartbeat %" PRId64
            " ms at least %d, refresh %" PRId64 " ms at least publish) or bad batch limits",
            opts->publish_ms, opts->heartbeat_ms, IBP_MONITOR_PUBLISH_MS_MIN, opts->refresh_ms);
    const char *prefix = opts->subject_prefix ? opts->subject_prefix : "ibp.local";
    size_t plen = strlen(prefix);
    if (plen == 0 || plen > PREFIX_MAX || prefix[plen - 1] == '.' || strpbrk(prefix, " *>\t\r\n"))
        return ibp_err_set(err, IBP_E_INVAL, "publisher: bad subject prefix '%.140s'", prefix);

    ibp_monitor_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return ibp_err_set(err, IBP_E_NOMEM, "publisher: out of memory");
    ibp_status st = IBP_OK;
    p->opts = *opts;
    p->opts.subject_prefix = NULL; /* copied into subject below; not kept */
    p->opts.work_dir = NULL;
    snprintf(p->node, sizeof p->node, "%s", ibp_signer_id(opts->signer));
    int n = snprintf(p->subject, sizeof p->subject, "%s.%s", prefix, p->node);
    int m =
        snprintf(p->work_dir_seq, sizeof p->work_dir_seq, "%s/monitor-batch.seq", opts->work_dir);
    if (n < 0 || (size_t)n >= sizeof p->subject || m < 0 || (size_t)m >= sizeof p->work_dir_seq) {
        free(p);
        return ibp_err_set(err, IBP_E_INVAL, "publisher: subject or work dir path too long");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->wake, &ca);
    pthread_cond_init(&p->done, &ca);
    pthread_condattr_destroy(&ca);

    if ((st = ibp_seqfile_open(p->work_dir_seq, &p->batch_seqs, err)) != IBP_OK) {
        ibp_err_wrap(err, "publisher");
        goto fail;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = opts->ack_timeout_ms;
    natsStatus ns = natsConnection_JetStream(&p->js, opts->nc, &jo);
    if (ns != NATS_OK) {
        st = ibp_err_set(err, IBP_E_NATS, "publisher: JetStream context: %s",
                         natsStatus_GetText(ns));
        goto fail;
    }
    /* Keep whole envelopes under the server's limit when it is known. */
    p->max_bytes = opts->max_batch_bytes;
    int64_t server_max = natsConnection_GetMaxPayload(opts->nc);
    if (server_max > 2 * ENVELOPE_OVERHEAD &&
        (uint64_t)(server_max - ENVELOPE_OVERHEAD) < p->max_bytes)
        p->max_bytes = (size_t)(server_max - ENVELOPE_OVERHEAD);

    int64_t now = ibp_clock_mono_ms();
    p->next_refresh = now; /* re-announce the whole local state at start */
    p->next_publish = now + opts->publish_ms;
    p->last_sealed = now - opts->heartbeat_ms;
    p->retry_delay = RETRY_MIN_MS;
    if (pthread_create(&p->thread, NULL, publisher_main, p) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "publisher: cannot start its thread");
        goto fail;
    }
    p->thread_started = true;
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "started subject=%s publish_ms=%" PRId64 " refresh_ms=%" PRId64 " heartbeat_ms=%" PRId64
            " max_batch_obs=%zu max_batch_bytes=%zu",
            p->subject, opts->publish_ms, opts->refresh_ms, opts->heartbeat_ms, opts->max_batch_obs,
            p->max_bytes);
    *out = p;
    return IBP_OK;
fail:
    jsCtx_Destroy(p->js);
    ibp_seqfile_close(p->batch_seqs);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return st;
}

ibp_status ibp_monitor_publisher_flush(ibp_monitor_publisher *p, int64_t timeout_ms, ibp_err *err)
{
    if (!p)
        return ibp_err_set(err, IBP_E_INVAL, "publisher: none");
    ibp_status st = IBP_OK;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        return ibp_err_set(err, IBP_E_INVAL, "publisher: stopping");
    }
    uint64_t gen = ++p->flush_req;
    pthread_cond_signal(&p->wake);
    if (timeout_ms > 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + timeout_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (p->flush_done < gen) {
            if (pthread_cond_timedwait(&p->done, &p->mu, &ts) == ETIMEDOUT)
                break;
        }
        if (p->flush_done < gen)
            st = ibp_err_set(err, IBP_E_NATS,
                             "publisher: not acknowledged within %" PRId64 " ms (queued=%" PRIu64
                             ", still retrying)",
                             timeout_ms, p->stats.queued);
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

void ibp_monitor_publisher_stats_get(ibp_monitor_publisher *p, ibp_monitor_publisher_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

void ibp_monitor_publisher_stop(ibp_monitor_publisher *p)
{
    if (!p)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->stopping = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "stopped batches=%" PRIu64 " observations=%" PRIu64 " heartbeats=%" PRIu64
            " failures=%" PRIu64 " dropped=%" PRIu64,
            p->stats.batches_published, p->stats.observations_published,
            p->stats.heartbeats_published, p->stats.publish_failures, p->stats.dropped);
    jsCtx_Destroy(p->js);
    ibp_seqfile_close(p->batch_seqs);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
