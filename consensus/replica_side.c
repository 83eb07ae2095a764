/*
 * The consensus replica's side messages, published and covered: the events
 * and status messages of an epoch go out pipelined from the replica whose
 * snapshot was stored; every other replica that computed the epoch holds them
 * and, after its cover delay, publishes those the streams do not have.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/clock.h"
#include "ibp/codec_event.h"
#include "ibp/log.h"
#include "ibp/status_sig.h"
#include "ibp/subject.h"
#include "replica_internal.h"

/*
 * The side messages of one epoch, built (and signed) when the epoch is
 * computed: the engine's update does not outlive the LOCAL message that made
 * it, and a held epoch must be published exactly as its winner would have.
 * Events first, then status messages, in ibp__replica_make_side_msg order.
 */
struct side_batch {
    uint64_t epoch;
    int64_t due_ms; /* monotonic clock: when a replica that did not win checks */
    size_t nevents; /* of n */
    size_t n;
    natsMsg **msgs;
    struct side_batch *next;
};

/* Bounds of what a replica holds: past them the oldest epoch is checked at once. */
#define PENDING_MAX_EPOCHS 1024
#define PENDING_MAX_MSGS 262144

void ibp__replica_side_batch_free(side_batch *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        natsMsg_Destroy(b->msgs[i]);
    free(b->msgs);
    free(b);
}

/* Builds every side message of u; one that cannot be built is logged and left out. */
side_batch *ibp__replica_side_batch_build(ibp_replica *r, const ibp_vote_update *u)
{
    size_t n = ibp__replica_side_msg_count(u);
    side_batch *b = calloc(1, sizeof *b);
    if (b)
        b->msgs = calloc(n ? n : 1, sizeof *b->msgs);
    if (!b || !b->msgs) {
        free(b);
        IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                "out of memory for the events and status messages of epoch=%" PRIu64, u->epoch);
        return NULL;
    }
    b->epoch = u->epoch;
    for (size_t i = 0; i < n; i++) {
        natsMsg *m = NULL;
        ibp_err err;
        ibp_err_clear(&err);
        if (ibp__replica_make_side_msg(r, u, i, &m, &err) != IBP_OK) {
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT, "epoch=%" PRIu64 ": %s", u->epoch,
                    err.msg);
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
void ibp__replica_on_async_error(jsCtx *js, jsPubAckErr *pae, void *closure)
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
void ibp__replica_publish_side(ibp_replica *r, side_batch *b)
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
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
                "pipelined events failed; publishing one by one epoch=%" PRIu64, b->epoch);
        for (size_t i = 0; i < b->n && !atomic_load(&r->stop); i++)
            ibp__replica_with_retry(r, "event/status", publish_side_sync, b->msgs[i]);
    }
    IBP_REPLICA_STATS(r, r->stats.events_published += b->nevents);
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
        ibp_codec_event ce;
        if (ibp_verifier_check_stateless(r->verifier, data, len, &vm, NULL) == IBP_OK &&
            ibp_codec_event_decode_verified(&vm, &ce, NULL) == IBP_OK) {
            have = ce.epoch;
            ibp_codec_event_clear(&ce);
        }
        ibp_verified_clear(&vm);
    }
    natsMsg_Destroy(last);
    return have >= epoch ? 1 : 0;
}

side_batch *ibp__replica_pending_pop(ibp_replica *r)
{
    side_batch *b = r->pending;
    if (!b)
        return NULL;
    r->pending = b->next;
    if (!r->pending)
        r->pending_tail = NULL;
    r->pending_epochs--;
    r->pending_msgs -= b->n;
    IBP_REPLICA_STATS(r, r->stats.side_pending = r->pending_epochs);
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
void ibp__replica_cover_pending(ibp_replica *r, uint64_t below, bool due_only, size_t max)
{
    int64_t now = ibp_clock_mono_ms();
    for (size_t done = 0; r->pending && done < max && !atomic_load(&r->stop); done++) {
        side_batch *b = r->pending;
        if (b->epoch >= below || (due_only && b->due_ms > now))
            return;
        int stored = b->n ? side_stored(r, b->msgs[b->n - 1], b->epoch) : 1;
        if (stored < 0 && due_only) {
            b->due_ms = now + IBP_REPLICA_NEXT_MSG_WAIT_MS; /* NATS is away: again next turn */
            return;
        }
        ibp__replica_pending_pop(r);
        if (stored == 1) {
            IBP_REPLICA_STATS(r, r->stats.side_checked++);
        } else {
            IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
                    "the events and status messages of epoch=%" PRIu64
                    " are not in the streams; publishing them messages=%zu",
                    b->epoch, b->n);
            ibp__replica_publish_side(r, b);
            IBP_REPLICA_STATS(r, r->stats.side_covered++);
        }
        ibp__replica_side_batch_free(b);
    }
}

/* Holds b until this replica's check time; past the bounds, checks the oldest at once. */
void ibp__replica_pending_push(ibp_replica *r, side_batch *b)
{
    b->due_ms = ibp_clock_mono_ms() + r->cover_delay_ms;
    if (r->pending_tail)
        r->pending_tail->next = b;
    else
        r->pending = b;
    r->pending_tail = b;
    r->pending_epochs++;
    r->pending_msgs += b->n;
    IBP_REPLICA_STATS(r, r->stats.side_pending = r->pending_epochs);
    while (r->pending && r->pending != b &&
           (r->pending_epochs > PENDING_MAX_EPOCHS || r->pending_msgs > PENDING_MAX_MSGS))
        ibp__replica_cover_pending(r, UINT64_MAX, false, 1);
}

/*
 * When a replica that did not win checks: within [side_cover_ms / 2,
 * side_cover_ms), staggered by its place among the roster's consensus nodes,
 * so that the first to check covers a dead winner and the others find the
 * messages there instead of publishing them again.
 */
int64_t ibp__replica_cover_delay_ms(const ibp_replica_opts *o)
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
