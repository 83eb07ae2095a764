/*
 * The consensus replica: LOCAL in, official snapshots, events and status out.
 * See ibp/replica.h for the contract; the comments here say why.
 */
#include "ibp/replica.h"

#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/clock.h"
#include "ibp/local_msg.h"
#include "ibp/log.h"
#include "ibp/official_chain.h"
#include "ibp/replica_state.h"
#include "ibp/result.h"
#include "ibp/snapshot_encode.h"
#include "ibp/status_sig.h"
#include "ibp/subject.h"

#define COMPONENT "replica"
#define NEXT_MSG_WAIT_MS 200
#define RETRY_MAX_MS 2000

struct ibp_replica {
    ibp_replica_opts opts;
    jsCtx *js;
    natsSubscription *sub;
    ibp_vote *engine;
    ibp_verifier *verifier;
    char state_path[4200];
    pthread_t thread;
    atomic_int stop;

    /* What the OFFICIAL subject holds, as far as this replica knows. */
    uint64_t last_snap_subject_seq; /* the last message on the subject, valid or not; 0: none */
    uint64_t last_snap_epoch;       /* the head of the chain; 0: none */
    uint64_t foreign_counted_upto;  /* foreign messages up to this sequence are counted */
    ibp_verifier *chain_verifier;   /* stateless checks of the snapshot subject */

    atomic_ulong async_failures; /* asynchronous publishes that failed */

    /* Events and status messages of epochs this replica computed but did not
     * win, oldest first, until it has checked that they are in the streams
     * (publish_epoch, cover_pending). Bounded by PENDING_MAX_*. */
    struct side_batch *pending, *pending_tail;
    size_t pending_epochs, pending_msgs;
    int64_t cover_delay_ms;  /* this replica's wait before the check, within side_cover_ms */
    bool die_after_snapshot; /* tests only: IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT */

    int64_t last_heartbeat_ms;
    int64_t last_save_ms;
    uint64_t saved_local_seq;

    pthread_mutex_t stats_lock;
    ibp_replica_stats stats;
};

#define STATS(r, stmt)                                                                             \
    do {                                                                                           \
        pthread_mutex_lock(&(r)->stats_lock);                                                      \
        stmt;                                                                                      \
        pthread_mutex_unlock(&(r)->stats_lock);                                                    \
    } while (0)

void ibp_replica_opts_init(ibp_replica_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    ibp_vote_config_init(&opts->vote);
    opts->heartbeat_ms = 5000;
    opts->state_save_ms = 30000;
    opts->stream_replicas = 1;
}

/* ---- reading what OFFICIAL holds ---------------------------------------- */

/*
 * Finds the head of the snapshot chain in OFFICIAL (ibp/snapshot_chain.h):
 * last_snap_epoch is the newest confirmed snapshot's epoch and
 * last_snap_subject_seq the last message on the subject whatever it is, so
 * the next publish goes after any foreign message instead of stalling on it.
 * *head (may be NULL) receives the head. Foreign messages are counted once
 * each and logged.
 */
static ibp_status refresh_last_snapshot(ibp_replica *r, ibp_chain_msg *head)
{
    ibp_chain_head h;
    ibp_err err = {0};
    if (ibp_official_chain_head(r->js, r->chain_verifier, IBP_STREAM_OFFICIAL,
                                IBP_SUBJECT_OFFICIAL_SNAPSHOT, &h, &err) != IBP_OK) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "cannot read the snapshot chain: %s", err.msg);
        return IBP_E_NATS;
    }
    r->last_snap_subject_seq = h.last_seq;
    r->last_snap_epoch = h.found ? h.head.epoch : 0;
    if (head)
        *head = h.head;
    uint64_t from = h.found ? h.head.stream_seq : 0;
    if (from < r->foreign_counted_upto)
        from = r->foreign_counted_upto;
    if (h.last_seq > from) {
        uint64_t n = h.last_seq - from;
        STATS(r, r->stats.foreign_snapshots += n);
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "skipping %" PRIu64 " foreign message(s) on %s: not a snapshot that continues the "
                "chain; publishing after them head_epoch=%" PRIu64 " head_seq=%" PRIu64
                " last_seq=%" PRIu64,
                n, IBP_SUBJECT_OFFICIAL_SNAPSHOT, r->last_snap_epoch,
                h.found ? h.head.stream_seq : 0, h.last_seq);
    }
    if (h.last_seq > r->foreign_counted_upto)
        r->foreign_counted_upto = h.last_seq;
    return IBP_OK;
}

/* ---- publishing ----------------------------------------------------------- */

/* Retries fn while NATS fails, until it works or the replica stops. */
static ibp_status with_retry(ibp_replica *r, const char *what,
                             ibp_status (*fn)(ibp_replica *, void *, ibp_err *), void *arg)
{
    int64_t wait = 50;
    for (;;) {
        ibp_err err;
        ibp_err_clear(&err);
        ibp_status st = fn(r, arg, &err);
        if (st != IBP_E_NATS || atomic_load(&r->stop))
            return st;
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "%s failed, retrying in %lld ms: %s", what,
                (long long)wait, err.msg);
        ibp_clock_sleep_ms(wait);
        wait = wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait * 2;
    }
}

/* Builds the signed Event message of ev (with its headers); *out on success. */
static ibp_status make_event_msg(ibp_replica *r, const ibp_vote_event *ev, natsMsg **out,
                                 ibp_err *err)
{
    Ibp__V1__ResultKey key;
    Ibp__V1__Event e = IBP__V1__EVENT__INIT;
    Ibp__V1__Voter *voters = calloc(ev->nvotes ? ev->nvotes : 1, sizeof *voters);
    Ibp__V1__Voter **vp = calloc(ev->nvotes ? ev->nvotes : 1, sizeof *vp);
    uint8_t *sealed = NULL;
    size_t len = 0;
    char subject[1024];
    ibp_status st = ibp_err_set(err, IBP_E_NOMEM, "event: out of memory");
    if (!voters || !vp)
        goto out;
    ibp_local_key_to_wire(&key, &ev->key);
    if (ev->kind == IBP_VOTE_EVENT_OVERRIDE)
        key.check_name = "override";
    e.id = (char *)ev->id;
    e.kind = ev->kind == IBP_VOTE_EVENT_OVERRIDE ? IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE
                                                 : IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
    e.key = &key;
    e.status = ibp_local_status_to_wire(ev->status);
    e.error = (char *)(ev->error ? ev->error : "");
    e.data_json = (char *)(ev->data_json ? ev->data_json : "");
    e.time_ms = ev->time_ms;
    e.epoch = ev->epoch;
    for (size_t i = 0; i < ev->nvotes; i++) {
        ibp__v1__voter__init(&voters[i]);
        voters[i].node = (char *)ev->votes[i].node;
        voters[i].local_seq = ev->votes[i].local_seq;
        voters[i].batch_seq = ev->votes[i].batch_seq;
        voters[i].status = ibp_local_status_to_wire(ev->votes[i].status);
        vp[i] = &voters[i];
    }
    e.n_voters = ev->nvotes;
    e.voters = vp;
    if ((st = ibp_subject_events(key.member, subject, sizeof subject)) != IBP_OK) {
        ibp_err_set(err, st, "event %s: member name does not fit a subject", ev->id);
        goto out;
    }
    if ((st = ibp_signer_seal(r->opts.signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, &e.base,
                              ibp_clock_wall_ms(), &sealed, &len, NULL, err)) != IBP_OK)
        goto out;
    natsMsg *m = NULL;
    if (natsMsg_Create(&m, subject, NULL, (const char *)sealed, (int)len) != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_TYPE, "Event") != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_SIGNER, ibp_signer_id(r->opts.signer)) != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_MSG_ID, ev->id) != NATS_OK) {
        natsMsg_Destroy(m);
        st = ibp_err_set(err, IBP_E_NOMEM, "event %s: cannot build the message", ev->id);
        goto out;
    }
    *out = m;
    st = IBP_OK;
out:
    free(sealed);
    free(vp);
    free(voters);
    return st;
}

struct status_arg {
    const ibp_vote_change *ch;
    uint64_t epoch;
    int64_t time_ms;
    size_t index;
};

static json_t *votes_json(const ibp_vote_vote *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:I,s:I}", "node", v[i].node, "status",
                                           v[i].status == IBP_VOTE_UP ? "up" : "down", "local_seq",
                                           (json_int_t)v[i].local_seq, "batch_seq",
                                           (json_int_t)v[i].batch_seq, "check_time_ms",
                                           (json_int_t)v[i].check_time_ms));
    return a;
}

/* A status message: JSON text with the common headers, its signature over
 * subject and text (ibp/status_sig.h) and a message id. */
static ibp_status make_json_msg(ibp_replica *r, const char *subject, const char *text,
                                const char *msg_id, natsMsg **out, ibp_err *err)
{
    natsMsg *m = NULL;
    char sig[IBP_STATUS_SIG_B64_SIZE];
    size_t len = strlen(text);
    ibp_status st =
        ibp_status_sig_sign(r->opts.signer, subject, (const uint8_t *)text, len, sig, err);
    if (st != IBP_OK)
        return st;
    if (natsMsg_Create(&m, subject, NULL, text, (int)len) != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_TYPE, "Status") != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_SIGNER, ibp_signer_id(r->opts.signer)) != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_SIGNATURE, sig) != NATS_OK ||
        natsMsgHeader_Set(m, IBP_HDR_MSG_ID, msg_id) != NATS_OK) {
        natsMsg_Destroy(m);
        return ibp_err_set(err, IBP_E_NOMEM, "status %s: cannot build the message", subject);
    }
    *out = m;
    return IBP_OK;
}

static ibp_status make_status_msg(ibp_replica *r, const struct status_arg *a, natsMsg **out,
                                  ibp_err *err)
{
    const ibp_vote_change *ch = a->ch;
    Ibp__V1__ResultKey key;
    char subject[8192], msg_id[96];
    ibp_local_key_to_wire(&key, &ch->key);
    ibp_status st = ibp_subject_status(&key, subject, sizeof subject);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "status subject for %s does not fit", key.member);
    const char *status = ch->kind == IBP_VOTE_REMOVED ? "removed"
                         : ch->status == IBP_VOTE_UP  ? "up"
                                                      : "down";
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:s,s:I,s:s,s:I,s:I,s:o}", "member", key.member,
                  "check_type", ibp_check_type_name((ibp_check_type)key.check_type), "check_name",
                  key.check_name, "domain", key.domain, "endpoint", key.endpoint, "ipv6",
                  (int)key.ipv6, "status", status, "check_time_ms", (json_int_t)ch->check_time_ms,
                  "error", ch->error ? ch->error : "", "epoch", (json_int_t)a->epoch, "time_ms",
                  (json_int_t)a->time_ms, "voters", votes_json(ch->votes, ch->nvotes));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return ibp_err_set(err, IBP_E_NOMEM, "status: out of memory");
    snprintf(msg_id, sizeof msg_id, "status-%" PRIu64 "-%zu", a->epoch, a->index);
    st = make_json_msg(r, subject, text, msg_id, out, err);
    free(text);
    return st;
}

static ibp_status make_override_status_msg(ibp_replica *r, const ibp_vote_event *ev, natsMsg **out,
                                           ibp_err *err)
{
    char subject[1024], msg_id[96];
    ibp_status st = ibp_subject_status_override(ev->key.member, subject, sizeof subject);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "override subject for %s does not fit", ev->key.member);
    json_t *j = json_pack("{s:s,s:b,s:s,s:I,s:I,s:s}", "member", ev->key.member, "disabled",
                          ev->status == IBP_VOTE_DOWN, "reason", ev->error ? ev->error : "",
                          "epoch", (json_int_t)ev->epoch, "time_ms", (json_int_t)ev->time_ms,
                          "signer", ev->signer ? ev->signer : "");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return ibp_err_set(err, IBP_E_NOMEM, "status: out of memory");
    snprintf(msg_id, sizeof msg_id, "status-%s", ev->id);
    st = make_json_msg(r, subject, text, msg_id, out, err);
    free(text);
    return st;
}

/* Compares our digest with the one stored for this epoch and counts the race. */
static void lost_race(ibp_replica *r, uint64_t epoch, const uint8_t *ours, const uint8_t *theirs,
                      size_t theirs_len)
{
    if (theirs_len != IBP_VOTE_DIGEST_SIZE || memcmp(ours, theirs, theirs_len) != 0) {
        STATS(r, r->stats.digest_mismatches++);
        IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                "DIGEST MISMATCH: the snapshot stored for epoch %" PRIu64
                " differs from this replica's state; replicas have diverged epoch=%" PRIu64,
                epoch, epoch);
    } else {
        STATS(r, r->stats.snapshots_lost_race++);
    }
}

struct snap_arg {
    const ibp_vote_update *u;
};

/* Attempts per call before the caller's retry with back-off: each failed
 * attempt means another message landed on the subject meanwhile. */
#define SNAPSHOT_ATTEMPTS 8

static ibp_status publish_snapshot(ibp_replica *r, void *arg, ibp_err *err)
{
    const ibp_vote_update *u = ((struct snap_arg *)arg)->u;
    uint8_t *payload = NULL, *sealed = NULL;
    size_t plen = 0, len = 0;
    uint64_t seq = 0, stream_seq = 0;
    bool dup = false, random_id = false;
    char msg_id[64];
    ibp_status st;

    for (int attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
        if (u->epoch <= r->last_snap_epoch)
            return IBP_OK; /* published already (by us or a faster replica) */
        if ((st = ibp_snapshot_encode(r->engine, u, &payload, &plen, err)) != IBP_OK)
            return st;
        st = ibp_signer_seal_bytes(r->opts.signer,
                                   IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, payload,
                                   plen, ibp_clock_wall_ms(), &sealed, &len, &seq, err);
        free(payload);
        payload = NULL;
        if (st != IBP_OK)
            return st;
        /* The message id lets JetStream drop a resend of the same epoch. A
         * foreign message may have taken that id first; then the expected
         * last subject sequence alone keeps one snapshot per epoch. */
        if (random_id)
            snprintf(msg_id, sizeof msg_id, "epoch-%" PRIu64 "-%s-%" PRIu64, u->epoch,
                     ibp_signer_id(r->opts.signer), seq);
        else
            snprintf(msg_id, sizeof msg_id, "epoch-%" PRIu64, u->epoch);
        st = ibp_bus_publish_envelope(r->js, IBP_SUBJECT_OFFICIAL_SNAPSHOT,
                                      IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT,
                                      ibp_signer_id(r->opts.signer), seq, sealed, len, msg_id,
                                      r->last_snap_subject_seq ? r->last_snap_subject_seq
                                                               : UINT64_MAX,
                                      &stream_seq, &dup, err);
        free(sealed);
        sealed = NULL;
        if (st == IBP_OK && !dup) {
            r->last_snap_subject_seq = stream_seq;
            r->last_snap_epoch = u->epoch;
            if (stream_seq > r->foreign_counted_upto)
                r->foreign_counted_upto = stream_seq;
            STATS(r, r->stats.snapshots_published++);
            return IBP_OK;
        }
        if (st != IBP_OK && st != IBP_E_EXISTS)
            return st; /* NATS trouble: retried by the caller */
        /* Someone else was first, or the id was taken: look at the chain. */
        ibp_chain_msg head;
        memset(&head, 0, sizeof head);
        if ((st = refresh_last_snapshot(r, &head)) != IBP_OK)
            return st;
        if (r->last_snap_epoch == u->epoch) {
            lost_race(r, u->epoch, u->digest, head.digest, head.digest_len);
            return IBP_OK;
        }
        if (r->last_snap_epoch > u->epoch)
            return IBP_OK; /* behind: later epochs are there already */
        /* The chain is still below this epoch: a foreign message came first
         * (or our expectation was stale). Publish after it. */
        if (dup)
            random_id = true;
    }
    return ibp_err_set(err, IBP_E_NATS,
                       "snapshot epoch %" PRIu64 ": the subject kept changing over %d attempts",
                       u->epoch, SNAPSHOT_ATTEMPTS);
}

/* The events and status messages of an update, built one by one. */
static ibp_status make_side_msg(ibp_replica *r, const ibp_vote_update *u, size_t i, natsMsg **out,
                                ibp_err *err)
{
    if (i < u->nevents)
        return make_event_msg(r, &u->events[i], out, err);
    i -= u->nevents;
    if (i < u->nchanges) {
        struct status_arg a = {&u->changes[i], u->epoch, u->now_ms, i};
        return make_status_msg(r, &a, out, err);
    }
    i -= u->nchanges;
    for (size_t k = 0; k < u->nevents; k++)
        if (u->events[k].kind == IBP_VOTE_EVENT_OVERRIDE && i-- == 0)
            return make_override_status_msg(r, &u->events[k], out, err);
    return IBP_E_NOT_FOUND;
}

static size_t side_msg_count(const ibp_vote_update *u)
{
    size_t n = u->nevents + u->nchanges;
    for (size_t k = 0; k < u->nevents; k++)
        n += u->events[k].kind == IBP_VOTE_EVENT_OVERRIDE;
    return n;
}

/*
 * The side messages of one epoch, built (and signed) when the epoch is
 * computed: the engine's update does not outlive the LOCAL message that made
 * it, and a held epoch must be published exactly as its winner would have.
 * Events first, then status messages, in make_side_msg order.
 */
typedef struct side_batch {
    uint64_t epoch;
    int64_t due_ms; /* monotonic clock: when a replica that did not win checks */
    size_t nevents; /* of n */
    size_t n;
    natsMsg **msgs;
    struct side_batch *next;
} side_batch;

/* Bounds of what a replica holds: past them the oldest epoch is checked at once. */
#define PENDING_MAX_EPOCHS 1024
#define PENDING_MAX_MSGS 262144
/* Held epochs checked per turn of the replica loop (one request each). */
#define COVER_CHECKS_PER_TURN 4

static void side_batch_free(side_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        natsMsg_Destroy(b->msgs[i]);
    free(b->msgs);
    free(b);
}

/* Builds every side message of u; one that cannot be built is logged and left out. */
static side_batch *side_batch_build(ibp_replica *r, const ibp_vote_update *u)
{
    size_t n = side_msg_count(u);
    side_batch *b = calloc(1, sizeof *b);
    if (b)
        b->msgs = calloc(n ? n : 1, sizeof *b->msgs);
    if (!b || !b->msgs) {
        free(b);
        IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                "out of memory for the events and status messages of epoch=%" PRIu64, u->epoch);
        return NULL;
    }
    b->epoch = u->epoch;
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = NULL;
        ibp_err err;
        ibp_err_clear(&err);
        if (make_side_msg(r, u, i, &m, &err) != IBP_OK) {
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "epoch=%" PRIu64 ": %s", u->epoch, err.msg);
            continue;
        }
        b->nevents += i < u->nevents;
        b->msgs[b->n++] = m;
    }
    return b;
}

/* A copy of m (subject, data, headers): asynchronous publishing consumes its message. */
static natsMsg *clone_msg(natsMsg *m)
{
    natsMsg *c = NULL;
    const char **keys = NULL;
    int nkeys = 0;
    if (natsMsg_Create(&c, natsMsg_GetSubject(m), NULL, natsMsg_GetData(m),
                       natsMsg_GetDataLength(m)) != NATS_OK)
        return NULL;
    natsStatus s = natsMsgHeader_Keys(m, &keys, &nkeys);
    for (int k = 0; s == NATS_OK && k < nkeys; k++) {
        const char *v = NULL;
        s = natsMsgHeader_Get(m, keys[k], &v);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(c, keys[k], v);
    }
    free((void *)keys);
    if (s != NATS_OK && s != NATS_NOT_FOUND) {
        natsMsg_Destroy(c);
        return NULL;
    }
    return c;
}

static ibp_status publish_side_sync(ibp_replica *r, void *arg, ibp_err *err)
{
    natsMsg *m = arg; /* still ours: js_PublishMsg does not take it */
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_PublishMsg(&pa, r->js, m, NULL, &jerr);
    jsPubAck_Destroy(pa);
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "publish event/status: %s (jetstream error %d)",
                           natsStatus_GetText(s), (int)jerr);
    return IBP_OK;
}

/* nats.c's thread: an asynchronous publish failed. Only counted here; the
 * replica thread publishes the epoch's messages again (ids dedupe them). */
static void on_async_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    (void)js;
    (void)pae;
    ibp_replica *r = closure;
    atomic_fetch_add(&r->async_failures, 1);
}

/*
 * Events and status messages: pipelined (asynchronous publishes, then one
 * wait), because an epoch that flips thousands of keys has thousands of them.
 * If any failed, all of them go again one by one: their message ids make
 * JetStream drop the ones that were stored already.
 */
static void publish_side(ibp_replica *r, side_batch *b)
{
    unsigned long failures = atomic_load(&r->async_failures);
    bool ok = true;
    for (size_t i = 0; i < b->n && ok; i++) {
        natsMsg *m = clone_msg(b->msgs[i]);
        if (!m || js_PublishMsgAsync(r->js, &m, NULL) != NATS_OK) {
            natsMsg_Destroy(m);
            ok = false;
        }
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 10000;
    if (js_PublishAsyncComplete(r->js, &po) != NATS_OK)
        ok = false;
    if (atomic_load(&r->async_failures) != failures)
        ok = false;
    if (!ok) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "pipelined events failed; publishing one by one epoch=%" PRIu64, b->epoch);
        for (size_t i = 0; i < b->n && !atomic_load(&r->stop); i++)
            with_retry(r, "event/status", publish_side_sync, b->msgs[i]);
    }
    STATS(r, r->stats.events_published += b->nevents);
}

/*
 * 1 when the stream holds, as the last message of m's subject, a verified
 * message of epoch >= epoch (m itself, or a later change that superseded it);
 * 0 when it does not; -1 when NATS did not answer.
 */
static int side_stored(ibp_replica *r, natsMsg *m, uint64_t epoch)
{
    const char *subject = natsMsg_GetSubject(m);
    bool is_status = strncmp(subject, "ibp.status.", 11) == 0;
    natsMsg *last = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&last, r->js, is_status ? IBP_STREAM_STATUS : IBP_STREAM_EVENTS,
                                 subject, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return 0;
    if (s != NATS_OK)
        return -1;
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(last);
    size_t len = (size_t)natsMsg_GetDataLength(last);
    uint64_t have = 0;
    if (is_status) {
        /* Verified, so a forged message with a high epoch cannot stop the cover. */
        const char *signer = NULL, *sig = NULL;
        natsMsgHeader_Get(last, IBP_HDR_SIGNER, &signer);
        natsMsgHeader_Get(last, IBP_HDR_SIGNATURE, &sig);
        if (ibp_status_sig_verify(r->opts.roster, subject, signer, sig, data, len, NULL, NULL) ==
            IBP_OK) {
            json_t *j = json_loadb((const char *)data, len, 0, NULL);
            json_t *e = json_object_get(j, "epoch");
            if (json_is_integer(e) && json_integer_value(e) > 0)
                have = (uint64_t)json_integer_value(e);
            json_decref(j);
        }
    } else {
        ibp_verified vm = {0};
        if (ibp_verifier_check_stateless(r->verifier, data, len, &vm, NULL) == IBP_OK &&
            vm.envelope->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT)
            have = ((const Ibp__V1__Event *)vm.payload)->epoch;
        ibp_verified_clear(&vm);
    }
    natsMsg_Destroy(last);
    return have >= epoch ? 1 : 0;
}

static side_batch *pending_pop(ibp_replica *r)
{
    side_batch *b = r->pending;
    if (!b)
        return NULL;
    r->pending = b->next;
    if (!r->pending)
        r->pending_tail = NULL;
    r->pending_epochs--;
    r->pending_msgs -= b->n;
    STATS(r, r->stats.side_pending = r->pending_epochs);
    return b;
}

/*
 * Checks held epochs, oldest first, and publishes an epoch's side messages
 * when its last one is not in its stream (the winner died, or could not
 * publish): those below `below` whatever their time, or (due_only) those
 * whose time has come; at most max of them. A replica about to publish epoch
 * E itself first settles every held epoch below E, so that the streams get
 * the changes of a key in epoch order (STATUS keeps only the last).
 * Checking the last message suffices: a winner publishes in order and
 * retries until every message is stored.
 */
static void cover_pending(ibp_replica *r, uint64_t below, bool due_only, size_t max)
{
    int64_t now = ibp_clock_mono_ms();
    for (size_t done = 0; r->pending && done < max && !atomic_load(&r->stop); done++) {
        side_batch *b = r->pending;
        if (b->epoch >= below || (due_only && b->due_ms > now))
            return;
        int stored = b->n ? side_stored(r, b->msgs[b->n - 1], b->epoch) : 1;
        if (stored < 0 && due_only) {
            b->due_ms = now + NEXT_MSG_WAIT_MS; /* NATS is away: again next turn */
            return;
        }
        pending_pop(r);
        if (stored == 1) {
            STATS(r, r->stats.side_checked++);
        } else {
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "the events and status messages of epoch=%" PRIu64
                    " are not in the streams; publishing them messages=%zu",
                    b->epoch, b->n);
            publish_side(r, b);
            STATS(r, r->stats.side_covered++);
        }
        side_batch_free(b);
    }
}

/* Holds b until this replica's check time; past the bounds, checks the oldest at once. */
static void pending_push(ibp_replica *r, side_batch *b)
{
    b->due_ms = ibp_clock_mono_ms() + r->cover_delay_ms;
    if (r->pending_tail)
        r->pending_tail->next = b;
    else
        r->pending = b;
    r->pending_tail = b;
    r->pending_epochs++;
    r->pending_msgs += b->n;
    STATS(r, r->stats.side_pending = r->pending_epochs);
    while (r->pending && r->pending != b &&
           (r->pending_epochs > PENDING_MAX_EPOCHS || r->pending_msgs > PENDING_MAX_MSGS))
        cover_pending(r, UINT64_MAX, false, 1);
}

/*
 * When a replica that did not win checks: within [side_cover_ms / 2,
 * side_cover_ms), staggered by its place among the roster's consensus nodes,
 * so that the first to check covers a dead winner and the others find the
 * messages there instead of publishing them again.
 */
static int64_t cover_delay_ms(const ibp_replica_opts *o)
{
    size_t c = 0, mine = 0;
    for (size_t i = 0; o->roster && i < ibp_roster_count(o->roster); i++) {
        const ibp_roster_node *n = ibp_roster_at(o->roster, i);
        if (!(n->roles & IBP_ROLE_CONSENSUS))
            continue;
        if (o->signer && strcmp(n->id, ibp_signer_id(o->signer)) == 0)
            mine = c;
        c++;
    }
    if (c == 0)
        c = 1;
    return o->side_cover_ms * (int64_t)(c + mine) / (int64_t)(2 * c);
}

static void publish_epoch(ibp_replica *r, const ibp_vote_update *u)
{
    if (u->epoch <= r->last_snap_epoch)
        return; /* behind the stream: the epoch is out there already */
    /* The snapshot first: it is what subscribers wait for. Then the events and
     * status messages, once per change: the replica whose publish stored the
     * snapshot sends them at once; every other replica that computed the
     * same epoch holds them and, after cover_delay_ms, publishes what is not
     * in the streams, so a winner dying between the two loses nothing
     * (duplicates are dropped by their message ids). */
    uint64_t won = r->stats.snapshots_published, mismatches = r->stats.digest_mismatches;
    struct snap_arg sa = {u};
    ibp_status st = with_retry(r, "snapshot", publish_snapshot, &sa);
    if (st != IBP_OK) {
        if (!atomic_load(&r->stop))
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "snapshot not published epoch=%" PRIu64 " reason=%s",
                    u->epoch, ibp_status_name(st));
        return;
    }
    if (r->last_snap_epoch > u->epoch)
        return;
    /* Only this thread writes the stats: reading them here needs no lock. */
    bool winner = r->stats.snapshots_published != won;
    if (!winner && r->stats.digest_mismatches != mismatches)
        return; /* our state differs from the stored one: our messages would be wrong */
    if (winner && r->die_after_snapshot) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT: dying before the events and status "
                "messages of epoch=%" PRIu64,
                u->epoch);
        raise(SIGKILL);
    }
    side_batch *b = side_batch_build(r, u);
    if (!b)
        return;
    if (!winner) {
        pending_push(r, b);
        return;
    }
    cover_pending(r, u->epoch, false, SIZE_MAX);
    publish_side(r, b);
    STATS(r, r->stats.side_published++);
    side_batch_free(b);
}

/* ---- applying LOCAL ------------------------------------------------------- */

static void apply_msg(ibp_replica *r, natsMsg *m)
{
    jsMsgMetaData *meta = NULL;
    ibp_verified vm = {0};
    ibp_err err;
    ibp_vote_info info;
    if (natsMsg_GetMetaData(&meta, m) != NATS_OK)
        return;
    uint64_t seq = meta->Sequence.Stream;
    int64_t stream_ms = meta->Timestamp / 1000000;
    jsMsgMetaData_Destroy(meta);
    ibp_vote_get_info(r->engine, &info);
    if (seq <= info.local_seq)
        return; /* applied before a restart already */

    STATS(r, r->stats.local_seq = seq); /* consumed, whether it applies or not */
    ibp_status st = ibp_verifier_check(r->verifier, (const uint8_t *)natsMsg_GetData(m),
                                       (size_t)natsMsg_GetDataLength(m), &vm, &err);
    if (st != IBP_OK) {
        STATS(r, r->stats.rejected[st]++);
        return;
    }
    ibp_vote_msg msg;
    ibp_vote_obs *obs = NULL;
    st = ibp_local_msg_from_verified(&vm, seq, stream_ms, &msg, &obs);
    if (st == IBP_E_NOMEM) {
        /* Skipping it would make this replica diverge from the others. */
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "out of memory at seq=%" PRIu64 "; stopping", seq);
        atomic_store(&r->stop, 1);
        goto out;
    }
    if (st != IBP_OK)
        goto out; /* not a message for the engine */
    ibp_vote_update u;
    ibp_vote_rc rc = ibp_vote_apply(r->engine, &msg, &u);
    if (rc != IBP_VOTE_OK) {
        STATS(r, (r->stats.engine_skipped++, r->stats.engine_refused[rc]++));
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "engine refused message seq=%" PRIu64 " signer=%s rc=%s detail=\"%s\"", seq,
                msg.signer, ibp_vote_rc_name(rc), ibp_vote_last_error(r->engine));
        if (rc == IBP_VOTE_E_NOMEM || rc == IBP_VOTE_E_POISONED) {
            IBP_LOG(IBP_LOG_ERROR, COMPONENT, "engine unusable; stopping the replica");
            atomic_store(&r->stop, 1);
        }
        goto out;
    }
    STATS(r, (r->stats.messages_applied++, r->stats.epoch = u.epoch));
    if (u.epoch_advanced)
        publish_epoch(r, &u);
out:
    free(obs);
    ibp_verified_clear(&vm);
}

/* ---- housekeeping --------------------------------------------------------- */

static void send_heartbeat(ibp_replica *r)
{
    ibp_vote_info info;
    ibp_vote_get_info(r->engine, &info);
    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    char *roles[] = {"consensus"};
    hb.epoch = info.epoch;
    hb.local_seq = info.local_seq;
    hb.n_roles = 1;
    hb.roles = roles;
    uint8_t *sealed = NULL;
    size_t len = 0;
    char subject[128];
    natsMsg *m = NULL;
    if (ibp_subject_official_heartbeat(ibp_signer_id(r->opts.signer), subject, sizeof subject) !=
            IBP_OK ||
        ibp_signer_seal(r->opts.signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, &hb.base,
                        ibp_clock_wall_ms(), &sealed, &len, NULL, NULL) != IBP_OK)
        return;
    if (natsMsg_Create(&m, subject, NULL, (const char *)sealed, (int)len) == NATS_OK &&
        natsMsgHeader_Set(m, IBP_HDR_TYPE, "Heartbeat") == NATS_OK &&
        natsMsgHeader_Set(m, IBP_HDR_SIGNER, ibp_signer_id(r->opts.signer)) == NATS_OK)
        natsConnection_PublishMsg(r->opts.nc, m);
    natsMsg_Destroy(m);
    free(sealed);
}

static void save_state(ibp_replica *r)
{
    ibp_err err;
    ibp_vote_info info;
    ibp_vote_get_info(r->engine, &info);
    if (info.local_seq == r->saved_local_seq)
        return;
    if (ibp_replica_state_save(r->state_path, r->engine, r->verifier, r->opts.roster, &err) ==
        IBP_OK)
        r->saved_local_seq = info.local_seq;
    else
        IBP_LOG(IBP_LOG_ERROR, COMPONENT, "%s", err.msg);
}

static void *replica_main(void *arg)
{
    ibp_replica *r = arg;
    while (!atomic_load(&r->stop)) {
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, r->sub, NEXT_MSG_WAIT_MS);
        if (s == NATS_OK) {
            apply_msg(r, m);
            natsMsg_Destroy(m);
        } else if (s != NATS_TIMEOUT) {
            ibp_clock_sleep_ms(100); /* reconnecting: the ordered consumer resumes by itself */
        }
        int64_t now = ibp_clock_mono_ms();
        if (now - r->last_heartbeat_ms >= r->opts.heartbeat_ms) {
            send_heartbeat(r);
            r->last_heartbeat_ms = now;
        }
        if (now - r->last_save_ms >= r->opts.state_save_ms) {
            save_state(r);
            r->last_save_ms = now;
        }
        /* A few held epochs per turn: each check is one request to the stream. */
        cover_pending(r, UINT64_MAX, true, COVER_CHECKS_PER_TURN);
    }
    return NULL;
}

/* ---- start / stop --------------------------------------------------------- */

ibp_status ibp_replica_start(const ibp_replica_opts *opts, ibp_replica **out, ibp_err *err)
{
    ibp_status st;
    natsStatus s;
    jsErrCode jerr = 0;
    ibp_replica *r = calloc(1, sizeof *r);
    if (!r)
        return ibp_err_set(err, IBP_E_NOMEM, "replica: out of memory");
    r->opts = *opts;
    if (r->opts.heartbeat_ms <= 0)
        r->opts.heartbeat_ms = 5000;
    if (r->opts.state_save_ms <= 0)
        r->opts.state_save_ms = 30000;
    if (r->opts.side_cover_ms <= 0)
        r->opts.side_cover_ms = IBP_REPLICA_SIDE_COVER_MS_DEFAULT;
    r->cover_delay_ms = cover_delay_ms(&r->opts);
    const char *die = getenv("IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT");
    r->die_after_snapshot = die && strcmp(die, "1") == 0;
    pthread_mutex_init(&r->stats_lock, NULL);
    snprintf(r->state_path, sizeof r->state_path, "%s/consensus.state",
             opts->work_dir ? opts->work_dir : ".");

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.ErrHandler = on_async_error;
    jo.PublishAsync.ErrHandlerClosure = r;
    if ((s = natsConnection_JetStream(&r->js, opts->nc, &jo)) != NATS_OK) {
        st = ibp_err_set(err, IBP_E_NATS, "replica: jetstream: %s", natsStatus_GetText(s));
        goto fail;
    }
    ibp_bus_stream_opts so_streams;
    ibp_bus_stream_opts_init(&so_streams);
    so_streams.replicas = opts->stream_replicas > 0 ? opts->stream_replicas : 1;
    if ((st = ibp_bus_ensure_streams(r->js, &so_streams, err)) != IBP_OK)
        goto fail;
    if ((st = ibp_verifier_new(opts->roster, NULL, &r->verifier)) != IBP_OK) {
        ibp_err_set(err, st, "replica: verifier: %s", ibp_strerror(st));
        goto fail;
    }
    ibp_verifier_opts cvo;
    ibp_verifier_opts_init(&cvo);
    cvo.log_component = "official-chain";
    if ((st = ibp_verifier_new(opts->roster, &cvo, &r->chain_verifier)) != IBP_OK) {
        ibp_err_set(err, st, "replica: verifier: %s", ibp_strerror(st));
        goto fail;
    }
    st = ibp_replica_state_load(r->state_path, &opts->vote, &r->engine, r->verifier, err);
    if (st == IBP_E_NOT_FOUND) {
        ibp_vote_rc rc = ibp_vote_new(&opts->vote, &r->engine);
        if (rc != IBP_VOTE_OK) {
            st = ibp_err_set(err, IBP_E_CONFIG, "replica: engine: %s", ibp_vote_strerror(rc));
            goto fail;
        }
    } else if (st != IBP_OK) {
        goto fail;
    }
    ibp_vote_info info;
    ibp_vote_get_info(r->engine, &info);
    r->saved_local_seq = info.local_seq;
    if (refresh_last_snapshot(r, NULL) == IBP_E_NATS) {
        st = ibp_err_set(err, IBP_E_NATS, "replica: read the last snapshot of %s",
                         IBP_STREAM_OFFICIAL);
        goto fail;
    }

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = IBP_STREAM_LOCAL;
    so.Ordered = true;
    if (info.local_seq > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = info.local_seq + 1;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    if ((s = js_SubscribeSync(&r->sub, r->js, "ibp.local.>", NULL, &so, &jerr)) != NATS_OK) {
        st = ibp_err_set(err, IBP_E_NATS, "replica: subscribe to LOCAL: %s (jetstream error %d)",
                         natsStatus_GetText(s), (int)jerr);
        goto fail;
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "replica started node=%s epoch=%" PRIu64 " local_seq=%" PRIu64 " stream_epoch=%" PRIu64,
            ibp_signer_id(opts->signer), info.epoch, info.local_seq, r->last_snap_epoch);
    r->last_heartbeat_ms = r->last_save_ms = ibp_clock_mono_ms();
    if (pthread_create(&r->thread, NULL, replica_main, r) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "replica: cannot start its thread");
        goto fail;
    }
    *out = r;
    return IBP_OK;
fail:
    natsSubscription_Destroy(r->sub);
    ibp_vote_free(r->engine);
    ibp_verifier_free(r->verifier);
    ibp_verifier_free(r->chain_verifier);
    jsCtx_Destroy(r->js);
    pthread_mutex_destroy(&r->stats_lock);
    free(r);
    return st;
}

void ibp_replica_stats_get(ibp_replica *r, ibp_replica_stats *out)
{
    pthread_mutex_lock(&r->stats_lock);
    *out = r->stats;
    pthread_mutex_unlock(&r->stats_lock);
}

void ibp_replica_stop(ibp_replica *r)
{
    if (!r)
        return;
    atomic_store(&r->stop, 1);
    pthread_join(r->thread, NULL);
    /* Held epochs go: the other replicas that computed them check them. */
    while (r->pending)
        side_batch_free(pending_pop(r));
    save_state(r);
    natsSubscription_Unsubscribe(r->sub);
    natsSubscription_Destroy(r->sub);
    ibp_vote_free(r->engine);
    ibp_verifier_free(r->verifier);
    ibp_verifier_free(r->chain_verifier);
    jsCtx_Destroy(r->js);
    pthread_mutex_destroy(&r->stats_lock);
    free(r);
}
