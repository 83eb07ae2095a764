/* The NATS endpoints of ibp-persist; see ibp/persist_service.h. */
#include "ibp/persist_service.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "column_text.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/micro.h"
#include "ibp/persist_query.h"
#include "persist_util.h"

#define COMPONENT "persist-service"
#define QUEUE_MAX 1024
#define PREFIX_MAX 128

#ifndef IBP_VERSION
#define IBP_VERSION "0.1.0"
#endif

enum { EP_EVENTS, EP_USAGE, EP_SLA, EP_FLUSHES, EP_COUNT };

typedef struct qnode {
    natsMsg *msg;
    struct qnode *next;
} qnode;

struct ibp_persist_service {
    ibp_persist_service_opts o;
    char prefix[PREFIX_MAX + 1];
    char queue[PREFIX_MAX + 1];
    char version[32];
    char ep_subject[EP_COUNT][PREFIX_MAX + 16];
    ibp_micro *micro; /* $SRV.PING, INFO, STATS and the endpoint counters */
    natsSubscription *subs[EP_COUNT];
    size_t nsubs;

    pthread_t worker;
    bool worker_started;
    bool sync_init;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    qnode *head, *tail;
    size_t queued;
    bool stop;
    uint64_t dropped;

    MYSQL *db; /* the worker's */
};

static const char *const ep_names[EP_COUNT] = {"events", "usage", "sla", "hit_flushes"};

void ibp_persist_service_opts_init(ibp_persist_service_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->subject_prefix = IBP_PERSIST_SERVICE_PREFIX;
    opts->queue_group = IBP_PERSIST_SERVICE_NAME;
    opts->version = IBP_VERSION;
}

const char *ibp_persist_service_id(const ibp_persist_service *s)
{
    return s ? ibp_micro_id(s->micro) : "";
}

/* nats.c thread: hand the message over, nothing else. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    ibp_persist_service *s = closure;
    qnode *n = malloc(sizeof *n);
    pthread_mutex_lock(&s->mu);
    if (n == NULL || s->stop || s->queued >= QUEUE_MAX) {
        s->dropped++;
        pthread_mutex_unlock(&s->mu);
        free(n);
        natsMsg_Destroy(msg);
        return;
    }
    n->msg = msg;
    n->next = NULL;
    if (s->tail)
        s->tail->next = n;
    else
        s->head = n;
    s->tail = n;
    s->queued++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void respond(ibp_persist_service *s, natsMsg *req, const char *body, ibp_status st,
                    const char *errmsg)
{
    const char *reply = natsMsg_GetReply(req);
    if (reply == NULL || *reply == '\0')
        return;
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, reply, NULL, body, (int)strlen(body));
    if (ns == NATS_OK && st != IBP_OK) {
        char msg[256];
        ibp_persist_utf8_sanitize(errmsg ? errmsg : ibp_strerror(st), msg, sizeof msg, 200);
        natsMsgHeader_Set(m, "Nats-Service-Error", msg);
        natsMsgHeader_Set(m, "Nats-Service-Error-Code",
                          st == IBP_E_INVAL || st == IBP_E_RANGE ? "400" : "500");
    }
    if (ns == NATS_OK)
        ns = natsConnection_PublishMsg(s->o.nc, m);
    if (ns != NATS_OK)
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "cannot answer a request subject=%s error=%s",
                natsMsg_GetSubject(req), natsStatus_GetText(ns));
    natsMsg_Destroy(m);
}

static void handle_endpoint(ibp_persist_service *s, int ep, natsMsg *req)
{
    int64_t t0 = ibp_clock_mono_ms();
    char *resp = NULL;
    ibp_err e;
    ibp_err_clear(&e);
    ibp_status st = IBP_OK;
    if (s->db == NULL)
        st = ibp_persist_db_connect(s->o.db, NULL, false, &s->db, &e);
    if (st == IBP_OK) {
        const char *data = natsMsg_GetData(req);
        size_t len = (size_t)natsMsg_GetDataLength(req);
        if (ep == EP_EVENTS)
            st = ibp_persist_query_events_json(s->db, data, len, &resp, &e);
        else if (ep == EP_USAGE)
            st = ibp_persist_query_usage_json(s->db, data, len, &resp, &e);
        else if (ep == EP_SLA)
            st = ibp_persist_query_sla_json(s->db, data, len, ibp_clock_wall_ms(), &resp, &e);
        else
            st = ibp_persist_query_hit_flushes_json(s->db, data, len, &resp, &e);
        if (st == IBP_E_DB) {
            mysql_close(s->db); /* a fresh connection for the next request */
            s->db = NULL;
        }
    }
    if (resp == NULL)
        resp = ibp_persist_query_error_json(st, e.msg);
    respond(s, req, resp ? resp : "{}", st, e.msg);
    free(resp);
    char last_error[256];
    if (st != IBP_OK)
        ibp_persist_utf8_sanitize(e.msg, last_error, sizeof last_error, 200);
    ibp_micro_record(s->micro, (size_t)ep, (ibp_clock_mono_ms() - t0) * 1000000,
                     st != IBP_OK ? last_error : NULL);
}

static json_t *stream_stats_json(const ibp_persist_stream_stats *st)
{
    return json_pack(
        "{s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "running", st->running, "db_ok",
        st->db_ok, "last_seq", (json_int_t)st->last_seq, "pending", (json_int_t)st->pending,
        "batches", (json_int_t)st->batches, "messages", (json_int_t)st->messages, "applied",
        (json_int_t)st->applied, "skipped", (json_int_t)st->skipped, "dead_lettered",
        (json_int_t)st->dead_lettered, "stale", (json_int_t)st->stale, "rows", (json_int_t)st->rows,
        "db_errors", (json_int_t)st->db_errors, "nats_errors", (json_int_t)st->nats_errors);
}

/* $SRV.STATS "data" (a nats.c thread: counters in memory only). */
static void stats_data(json_t *data, void *user)
{
    ibp_persist_service *s = user;
    pthread_mutex_lock(&s->mu);
    json_int_t dropped = (json_int_t)s->dropped;
    pthread_mutex_unlock(&s->mu);
    json_object_set_new(data, "dropped_requests", json_integer(dropped));
    if (s->o.persist) {
        ibp_persist_stats ps;
        ibp_persist_stats_get(s->o.persist, &ps);
        json_object_set_new(data, "hits", stream_stats_json(&ps.hits));
        json_object_set_new(data, "events", stream_stats_json(&ps.events));
    }
}

static void dispatch(ibp_persist_service *s, natsMsg *m)
{
    const char *subj = natsMsg_GetSubject(m);
    for (int i = 0; i < EP_COUNT; i++) {
        if (strcmp(subj, s->ep_subject[i]) == 0) {
            handle_endpoint(s, i, m);
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    ibp_persist_service *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->head == NULL && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        qnode *n = s->head;
        s->head = n->next;
        if (s->head == NULL)
            s->tail = NULL;
        s->queued--;
        pthread_mutex_unlock(&s->mu);
        dispatch(s, n->msg);
        natsMsg_Destroy(n->msg);
        free(n);
    }
    if (s->db)
        mysql_close(s->db);
    s->db = NULL;
    mysql_thread_end();
    return NULL;
}

static ibp_status subscribe(ibp_persist_service *s, const char *subject, const char *queue,
                            ibp_err *err)
{
    natsSubscription *sub = NULL;
    natsStatus ns = queue ? natsConnection_QueueSubscribe(&sub, s->o.nc, subject, queue, on_msg, s)
                          : natsConnection_Subscribe(&sub, s->o.nc, subject, on_msg, s);
    if (ns != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "persist service: subscribe %s: %s", subject,
                           natsStatus_GetText(ns));
    s->subs[s->nsubs++] = sub;
    return IBP_OK;
}

ibp_status ibp_persist_service_start(const ibp_persist_service_opts *opts,
                                     ibp_persist_service **out, ibp_err *err)
{
    if (opts == NULL || out == NULL || opts->nc == NULL || opts->db == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "persist service: nc and db are required");
    const char *prefix = opts->subject_prefix ? opts->subject_prefix : IBP_PERSIST_SERVICE_PREFIX;
    const char *queue = opts->queue_group ? opts->queue_group : IBP_PERSIST_SERVICE_NAME;
    if (strlen(prefix) == 0 || strlen(prefix) > PREFIX_MAX || strlen(queue) == 0 ||
        strlen(queue) > PREFIX_MAX || strpbrk(prefix, " *>\t"))
        return ibp_err_set(err, IBP_E_INVAL, "persist service: bad subject prefix or queue group");
    ibp_persist_service *s = calloc(1, sizeof *s);
    if (s == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "persist service: out of memory");
    s->o = *opts;
    snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
    snprintf(s->queue, sizeof s->queue, "%s", queue);
    snprintf(s->version, sizeof s->version, "%s", opts->version ? opts->version : IBP_VERSION);
    for (int i = 0; i < EP_COUNT; i++)
        snprintf(s->ep_subject[i], sizeof s->ep_subject[i], "%s.%s", s->prefix, ep_names[i]);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->sync_init = true;
    ibp_micro_opts mo;
    ibp_micro_opts_init(&mo);
    mo.nc = s->o.nc;
    mo.name = IBP_PERSIST_SERVICE_NAME;
    mo.version = s->version;
    mo.description = "IBP persist: HITS and EVENTS into MariaDB; queries";
    for (int i = 0; i < EP_COUNT; i++) {
        mo.endpoints[i].name = ep_names[i];
        mo.endpoints[i].subject = s->ep_subject[i];
        mo.endpoints[i].queue_group = s->queue;
    }
    mo.nendpoints = EP_COUNT;
    mo.stats_fn = stats_data;
    mo.stats_user = s;
    ibp_status st = ibp_micro_start(&mo, &s->micro, err);
    if (st != IBP_OK)
        goto fail;
    if (pthread_create(&s->worker, NULL, worker_main, s) != 0) {
        st = ibp_err_set(err, IBP_E_IO, "persist service: cannot start the worker thread");
        goto fail;
    }
    s->worker_started = true;
    for (int i = 0; i < EP_COUNT && st == IBP_OK; i++)
        st = subscribe(s, s->ep_subject[i], s->queue, err);
    if (st != IBP_OK)
        goto fail;
    natsConnection_Flush(s->o.nc);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "serving subjects=%s.{events,usage,sla,hit_flushes} queue=%s id=%s", s->prefix,
            s->queue, ibp_micro_id(s->micro));
    *out = s;
    return IBP_OK;
fail:
    ibp_persist_service_stop(s);
    return st;
}

void ibp_persist_service_stop(ibp_persist_service *s)
{
    if (s == NULL)
        return;
    /* Drain, then wait: no callback runs (or will run) once it completes,
     * so s can be freed. Unsubscribe is the fallback when the connection is
     * closed (the callbacks stop with it). */
    for (size_t i = 0; i < s->nsubs; i++)
        if (natsSubscription_Drain(s->subs[i]) != NATS_OK)
            natsSubscription_Unsubscribe(s->subs[i]);
    for (size_t i = 0; i < s->nsubs; i++) {
        natsSubscription_WaitForDrainCompletion(s->subs[i], 5000);
        natsSubscription_Destroy(s->subs[i]);
    }
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->worker_started)
        pthread_join(s->worker, NULL);
    while (s->head) {
        qnode *n = s->head;
        s->head = n->next;
        natsMsg_Destroy(n->msg);
        free(n);
    }
    /* After the worker (it records into the counters); its STATS callback
     * reads s, so it goes before s does. */
    ibp_micro_stop(s->micro);
    if (s->sync_init) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
    }
    free(s);
}
