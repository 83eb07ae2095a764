/* The official subscriber; see ibp/official_subscriber.h. */
#include "ibp/clock.h"
#include "ibp/official_subscriber.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/certificate.h"
#include "ibp/envelope.h"
#include "ibp/log.h"
#include "ibp/official_chain.h"
#include "ibp/official_snapshot.h"
#include "ibp/subject.h"
#include "official_certify.h"

#define COMPONENT "official"
#define NEXT_MSG_WAIT_MS 250
#define NAME_MAX_LEN 128

struct ibp_official_subscriber {
    ibp_official_subscriber_opts opts;
    char stream[NAME_MAX_LEN + 1];
    char subject[NAME_MAX_LEN + 1];
    jsCtx *js;
    ibp_verifier *verifier;
    ibp_verifier *chain_verifier; /* the thread's: walking the chain at (re)subscribe */
    natsSubscription *sub;        /* the thread's: snapshots (JetStream, ordered) */
    natsSubscription *hb_sub;     /* the thread's: replica heartbeats (core NATS) */
    char hb_subject[NAME_MAX_LEN + 1];
    bool warned_behind;        /* the thread's */
    ibp_chain_follower chain;  /* the thread's: which epochs continue the chain */
    uint64_t seen_upto;        /* the thread's: stream sequences judged up to here */
    ibp_log_limit foreign_log; /* the thread's */
    natsStatistics *nats_stats; /* the thread's: the connection's reconnection count */
    uint64_t reconnects;        /* the thread's: reconnections seen */
    int64_t next_reconnect_look_ms;
    int64_t next_stream_look_ms; /* the thread's: when to look whether OFFICIAL started over */
    /* Certification, the thread's (official_certify.h). */
    bool certify;
    ibp__certify cert;
    char cosign_stream[NAME_MAX_LEN + 1];
    natsSubscription *cosign_sub;   /* statements (JetStream, ordered) */
    uint64_t applied_digest_epoch;  /* the epoch whose digest applied_digest is (0: none) */
    uint8_t applied_digest[IBP_CERT_DIGEST_BYTES];
    int64_t pending_since_ms;       /* when the newest held snapshot came */
    ibp_log_limit cert_log;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t applied; /* signalled after each apply */
    bool stopping;
    ibp_official_subscriber_stats stats;
};

void ibp_official_subscriber_opts_init(ibp_official_subscriber_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->stream = IBP_STREAM_OFFICIAL;
    opts->subject = IBP_SUBJECT_OFFICIAL_SNAPSHOT;
    opts->heartbeat_subject = "ibp.official.heartbeat.*";
    opts->max_message_bytes = IBP_MESSAGE_MAX_DEFAULT;
    opts->retry_ms = 1000;
    opts->cosign_stream = IBP_STREAM_COSIGN;
}

static void count_rejected(ibp_official_subscriber *s, ibp_status why)
{
    pthread_mutex_lock(&s->mu);
    s->stats.rejected++;
    if ((unsigned)why < IBP_STATUS_COUNT)
        s->stats.rejected_by[why]++;
    pthread_mutex_unlock(&s->mu);
}

/* A snapshot that verifies but does not continue the chain (a far future
 * epoch, say): counted and skipped, logged at a rate limit. */
static void count_foreign(ibp_official_subscriber *s, const ibp_chain_msg *cm, uint64_t have)
{
    pthread_mutex_lock(&s->mu);
    s->stats.foreign++;
    pthread_mutex_unlock(&s->mu);
    IBP_LOG_LIMITED(&s->foreign_log, IBP_LOG_WARN, COMPONENT,
                    "skipping a snapshot that does not continue the chain epoch=%" PRIu64
                    " store_epoch=%" PRIu64 " signer=%s stream_seq=%" PRIu64,
                    cm->epoch, have, cm->signer, cm->stream_seq);
}

static void apply_verified(ibp_official_subscriber *s, const ibp_verified *vm, uint64_t stream_seq,
                           size_t signers);

/* Counts held snapshots dropped uncertified, and says so. */
static void count_forged(ibp_official_subscriber *s, size_t n, uint64_t upto)
{
    if (!n)
        return;
    pthread_mutex_lock(&s->mu);
    s->stats.forged_refused += n;
    pthread_mutex_unlock(&s->mu);
    IBP_LOG(IBP_LOG_WARN, COMPONENT,
            "refused %zu snapshot(s) up to epoch %" PRIu64
            " that no quorum of consensus nodes certified (a forged epoch, or replicas that "
            "diverged) quorum=%zu",
            n, upto, s->cert.quorum);
}

/*
 * Applies the newest held snapshot that a quorum certifies, if any, and
 * forgets what it makes old.
 */
static void try_certify(ibp_official_subscriber *s)
{
    uint64_t have = ibp_store_official_epoch(s->opts.store);
    ibp_certificate_result r;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int k = ibp__certify_find(&s->cert, have, have > 0 && s->applied_digest_epoch == have,
                              s->applied_digest, &r, s->opts.data ? &bytes : NULL, &len);
    if (k >= 0) {
        ibp__certify_pending *p = &s->cert.pending[k];
        uint64_t epoch = p->epoch;
        ibp_cache_certificate cc = {.local_seq = p->claim.local_seq,
                                    .bytes = bytes,
                                    .len = len,
                                    .snapshot = p->vm.envelope->payload.data,
                                    .snapshot_len = p->vm.envelope->payload.len};
        memcpy(cc.state_digest, p->claim.state_digest, sizeof cc.state_digest);
        memcpy(cc.snapshot_hash, p->claim.snapshot_hash, sizeof cc.snapshot_hash);
        apply_verified(s, &p->vm, p->stream_seq, r.signers);
        if (ibp_store_official_epoch(s->opts.store) == epoch) {
            if (bytes && ibp_data_set_official_certificate(s->opts.data, epoch, &cc) != IBP_OK)
                IBP_LOG(IBP_LOG_WARN, COMPONENT,
                        "certificate not kept for the cache (out of memory) epoch=%" PRIu64,
                        epoch);
            size_t gone = ibp__certify_forget_upto(&s->cert, epoch);
            count_forged(s, gone ? gone - 1 : 0, epoch);
        }
        ibp_chain_follow_applied(&s->chain, ibp_store_official_epoch(s->opts.store));
    }
    free(bytes);
    pthread_mutex_lock(&s->mu);
    s->stats.uncertified_pending = s->cert.npending;
    pthread_mutex_unlock(&s->mu);
}

/* Holds a snapshot that continues the chain until its certificate is there. */
static void hold(ibp_official_subscriber *s, ibp_verified *vm, uint64_t stream_seq)
{
    const Ibp__V1__OfficialSnapshot *snap = (const Ibp__V1__OfficialSnapshot *)vm->payload;
    if (snap->state_digest.len != IBP_CERT_DIGEST_BYTES) {
        count_rejected(s, IBP_E_PAYLOAD_DECODE);
        return;
    }
    for (size_t i = 0; i < s->cert.npending; i++)
        if (s->cert.pending[i].stream_seq == stream_seq)
            return; /* read again after a resubscribe */
    ibp__certify_pending p;
    memset(&p, 0, sizeof p);
    p.epoch = snap->epoch;
    p.stream_seq = stream_seq;
    p.claim.epoch = snap->epoch;
    p.claim.local_seq = snap->local_seq;
    memcpy(p.claim.state_digest, snap->state_digest.data, IBP_CERT_DIGEST_BYTES);
    ibp_certificate_snapshot_hash(vm->envelope->payload.data, vm->envelope->payload.len,
                                  p.claim.snapshot_hash);
    snprintf(p.signer, sizeof p.signer, "%s", vm->envelope->signer);
    IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
            "holding snapshot epoch=%" PRIu64 " signer=%s until a quorum certifies it",
            snap->epoch, vm->envelope->signer);
    p.vm = *vm; /* taken: the caller's clear finds it empty */
    memset(vm, 0, sizeof *vm);
    bool evicted = false;
    ibp__certify_add_snapshot(&s->cert, &p, &evicted);
    if (evicted)
        count_forged(s, 1, p.epoch);
    s->pending_since_ms = ibp_clock_mono_ms();
    try_certify(s);
}

/* A verified snapshot message. is_head: the head of the chain found at
 * (re)subscribe (ibp/snapshot_chain.h), trusted as such; any other message
 * must continue the chain. A snapshot held for its certificate takes vm. */
static void handle_snapshot(ibp_official_subscriber *s, ibp_verified *vm, uint64_t stream_seq,
                            bool is_head)
{
    const Ibp__V1__OfficialSnapshot *snap = (const Ibp__V1__OfficialSnapshot *)vm->payload;
    uint64_t have = ibp_store_official_epoch(s->opts.store);
    ibp_chain_msg cm;
    ibp_official_chain_from_verified(vm, stream_seq, &cm);
    ibp_chain_follow_applied(&s->chain, have);
    ibp_chain_verdict verdict =
        is_head && cm.valid ? IBP_CHAIN_APPLY : ibp_chain_follow(&s->chain, &cm);
    if (verdict == IBP_CHAIN_FOREIGN) {
        if (!cm.valid) {
            IBP_LOG_LIMITED(&s->foreign_log, IBP_LOG_WARN, COMPONENT,
                            "rejected snapshot reason=%s signer=%s stream_seq=%" PRIu64,
                            ibp_status_name(cm.why), vm->envelope->signer, stream_seq);
            count_rejected(s, cm.why);
        } else {
            count_foreign(s, &cm, have);
        }
        return;
    }
    if (snap->epoch <= have) {
        pthread_mutex_lock(&s->mu);
        s->stats.ignored++;
        pthread_mutex_unlock(&s->mu);
        if (snap->epoch < have && !s->warned_behind) {
            /* Normal for one old message now and then; worth saying once,
             * since it is also what a reset OFFICIAL stream looks like. */
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "ignoring a snapshot older than the store epoch=%" PRIu64
                    " store_epoch=%" PRIu64 " stream_seq=%" PRIu64
                    " (if the consensus cluster was reset, remove the official cache)",
                    snap->epoch, have, stream_seq);
            s->warned_behind = true;
        } else {
            IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
                    "ignored snapshot epoch=%" PRIu64 " store_epoch=%" PRIu64, snap->epoch, have);
        }
        return;
    }
    if (s->certify) {
        hold(s, vm, stream_seq);
        return;
    }
    apply_verified(s, vm, stream_seq, 0);
}

/* Decodes a verified snapshot and swaps it into the store. */
static void apply_verified(ibp_official_subscriber *s, const ibp_verified *vm, uint64_t stream_seq,
                           size_t signers)
{
    const Ibp__V1__OfficialSnapshot *snap = (const Ibp__V1__OfficialSnapshot *)vm->payload;
    ibp_official_snapshot os;
    ibp_err err = {0};
    ibp_status st = ibp_official_snapshot_from_proto(snap, &os, &err);
    if (st == IBP_OK)
        st = ibp_official_snapshot_apply(s->opts.store, &os, &err);
    if (st != IBP_OK) {
        IBP_LOG_LIMITED(&s->foreign_log, IBP_LOG_WARN, COMPONENT,
                        "rejected snapshot reason=%s signer=%s seq=%" PRIu64 " epoch=%" PRIu64
                        " stream_seq=%" PRIu64 " error=%s",
                        ibp_status_name(st), vm->envelope->signer, vm->envelope->seq, snap->epoch,
                        stream_seq, err.msg);
        count_rejected(s, st == IBP_E_NOMEM ? IBP_E_NOMEM : IBP_E_PAYLOAD_DECODE);
        ibp_official_snapshot_clear(&os);
        ibp_chain_follow_applied(&s->chain, ibp_store_official_epoch(s->opts.store));
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stats.applied++;
    s->stats.epoch = os.epoch;
    s->stats.local_seq = os.local_seq;
    s->stats.last_applied_ms = ibp_clock_wall_ms();
    if (signers) {
        s->stats.certified++;
        s->stats.cert_signers = signers;
    }
    pthread_cond_broadcast(&s->applied);
    pthread_mutex_unlock(&s->mu);
    s->warned_behind = false;
    if (snap->state_digest.len == IBP_CERT_DIGEST_BYTES) {
        s->applied_digest_epoch = os.epoch;
        memcpy(s->applied_digest, snap->state_digest.data, IBP_CERT_DIGEST_BYTES);
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "applied snapshot epoch=%" PRIu64 " results=%zu overrides=%zu local_seq=%" PRIu64
            " signer=%s stream_seq=%" PRIu64 " certified_by=%zu",
            os.epoch, os.results.count, os.n_overrides, os.local_seq, vm->envelope->signer,
            stream_seq, signers);
    ibp_official_snapshot_clear(&os);
}

static void handle_heartbeat(ibp_official_subscriber *s, const char *subject,
                             const ibp_verified *vm)
{
    const char *dot = strrchr(subject, '.');
    const char *node = dot ? dot + 1 : subject; /* ibp.official.heartbeat.<node> */
    if (!(vm->signer->roles & IBP_ROLE_CONSENSUS) || strcmp(node, vm->envelope->signer) != 0) {
        IBP_LOG_LIMITED(&s->foreign_log, IBP_LOG_WARN, COMPONENT,
                        "rejected heartbeat reason=%s signer=%s subject=%s",
                        ibp_status_name(IBP_E_ROLE_DENIED), vm->envelope->signer, subject);
        count_rejected(s, IBP_E_ROLE_DENIED);
        return;
    }
    const Ibp__V1__Heartbeat *hb = (const Ibp__V1__Heartbeat *)vm->payload;
    pthread_mutex_lock(&s->mu);
    s->stats.heartbeats++;
    if (hb->epoch > s->stats.heartbeat_epoch)
        s->stats.heartbeat_epoch = hb->epoch;
    s->stats.last_heartbeat_ms = ibp_clock_wall_ms();
    pthread_mutex_unlock(&s->mu);
}

static void handle_msg(ibp_official_subscriber *s, natsMsg *m, bool is_heartbeat)
{
    const char *subject = natsMsg_GetSubject(m);
    const uint8_t *data = (const uint8_t *)natsMsg_GetData(m);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    uint64_t stream_seq = 0;
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        stream_seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
    }
    bool is_snapshot = !is_heartbeat;
    if (is_snapshot && stream_seq > s->seen_upto)
        s->seen_upto = stream_seq;
    if (is_snapshot) {
        pthread_mutex_lock(&s->mu);
        s->stats.received++;
        pthread_mutex_unlock(&s->mu);
    }
    ibp_verified vm = {0};
    ibp_err err = {0};
    ibp_status st = ibp_verifier_check_stateless(s->verifier, data, len, &vm, &err);
    if (st == IBP_OK) {
        ibp_payload_type want = is_snapshot ? IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT
                                            : IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT;
        if (vm.envelope->type != want) {
            IBP_LOG_LIMITED(&s->foreign_log, IBP_LOG_WARN, COMPONENT,
                            "rejected message reason=wrong-type signer=%s type=%d subject=%s",
                            vm.envelope->signer, (int)vm.envelope->type, subject);
            st = IBP_E_ROLE_DENIED;
        }
    } else {
        /* The verifier logged the reason. */
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT, "rejected subject=%s stream_seq=%" PRIu64 " error=%s",
                subject, stream_seq, err.msg);
    }
    if (st != IBP_OK) {
        count_rejected(s, st);
    } else if (is_snapshot) {
        handle_snapshot(s, &vm, stream_seq, false);
    } else {
        handle_heartbeat(s, subject, &vm);
    }
    ibp_verified_clear(&vm);
}

static bool is_stopping(ibp_official_subscriber *s)
{
    pthread_mutex_lock(&s->mu);
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/*
 * Applies the head of the chain (ibp/snapshot_chain.h) when it is newer than
 * the store, and says where to follow from. IBP_OK with *start_seq = the
 * sequence after the last message of the stream (0: the stream is empty);
 * IBP_E_NATS when the stream cannot be read (then the caller follows from the
 * last message, as a reader without stream-read rights must).
 */
static ibp_status start_at_head(ibp_official_subscriber *s, uint64_t *start_seq)
{
    ibp_chain_head h;
    ibp_err err = {0};
    if (ibp_official_chain_head(s->js, s->chain_verifier, s->stream, s->subject, &h, &err) !=
        IBP_OK) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "cannot walk the snapshot chain, following from the last message: %s", err.msg);
        return IBP_E_NATS;
    }
    uint64_t have = ibp_store_official_epoch(s->opts.store);
    ibp_chain_follow_init(&s->chain, have);
    /* Messages after the head are foreign; count those not judged before. */
    uint64_t from = h.found ? h.head.stream_seq : 0;
    if (from < s->seen_upto)
        from = s->seen_upto;
    if (h.last_seq > from) {
        pthread_mutex_lock(&s->mu);
        s->stats.foreign += h.last_seq - from;
        pthread_mutex_unlock(&s->mu);
    }
    if (h.last_seq > s->seen_upto)
        s->seen_upto = h.last_seq;
    if (h.foreign)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "skipped %" PRIu64
                " message(s) after the head of the snapshot chain head_epoch=%" PRIu64
                " head_seq=%" PRIu64 " last_seq=%" PRIu64,
                h.foreign, h.found ? h.head.epoch : 0, h.found ? h.head.stream_seq : 0, h.last_seq);
    if (h.found) {
        s->chain.prev_valid_epoch = h.head.epoch;
        s->chain.have_prev = true;
        if (h.head.epoch > have) {
            natsMsg *m = NULL;
            jsErrCode jerr = 0;
            if (js_GetMsg(&m, s->js, s->stream, h.head.stream_seq, NULL, &jerr) != NATS_OK)
                return IBP_E_NATS;
            ibp_verified vm = {0};
            ibp_err verr = {0};
            pthread_mutex_lock(&s->mu);
            s->stats.received++;
            pthread_mutex_unlock(&s->mu);
            if (ibp_verifier_check_stateless(s->verifier, (const uint8_t *)natsMsg_GetData(m),
                                             (size_t)natsMsg_GetDataLength(m), &vm,
                                             &verr) == IBP_OK) {
                handle_snapshot(s, &vm, h.head.stream_seq, true);
            }
            ibp_verified_clear(&vm);
            natsMsg_Destroy(m);
            ibp_chain_follow_applied(&s->chain, ibp_store_official_epoch(s->opts.store));
            s->chain.prev_valid_epoch = h.head.epoch;
            s->chain.have_prev = true;
        }
    }
    *start_seq = h.last_seq ? h.last_seq + 1 : 0;
    return IBP_OK;
}

static natsStatus subscribe(ibp_official_subscriber *s, jsErrCode *jerr)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = s->stream;
    so.Ordered = true;
    uint64_t start_seq = 0;
    if (start_at_head(s, &start_seq) == IBP_OK) {
        if (start_seq) {
            so.Config.DeliverPolicy = js_DeliverByStartSequence;
            so.Config.OptStartSeq = start_seq;
        } else {
            so.Config.DeliverPolicy = js_DeliverAll;
        }
    } else {
        ibp_chain_follow_init(&s->chain, ibp_store_official_epoch(s->opts.store));
        so.Config.DeliverPolicy = js_DeliverLast;
    }
    natsStatus ns = NATS_OK;
    if (s->certify && !s->cosign_sub) {
        /* The statements first: the head just held waits for them. */
        jsSubOptions co;
        jsSubOptions_Init(&co);
        co.Stream = s->cosign_stream;
        co.Ordered = true;
        co.Config.DeliverPolicy = js_DeliverAll;
        ns = js_SubscribeSync(&s->cosign_sub, s->js, IBP_SUBJECT_COSIGN_ALL, NULL, &co, jerr);
    }
    if (ns == NATS_OK)
        ns = js_SubscribeSync(&s->sub, s->js, s->subject, NULL, &so, jerr);
    if (ns == NATS_OK && s->hb_subject[0] && !s->hb_sub)
        ns = natsConnection_SubscribeSync(&s->hb_sub, s->opts.nc, s->hb_subject);
    return ns;
}

/* Handles the heartbeats that are waiting (a sync subscription: no callback). */
static void drain_heartbeats(ibp_official_subscriber *s)
{
    int pending = 0;
    while (s->hb_sub && natsSubscription_GetPending(s->hb_sub, &pending, NULL) == NATS_OK &&
           pending > 0) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, s->hb_sub, 1) != NATS_OK)
            break;
        handle_msg(s, m, true);
        natsMsg_Destroy(m);
    }
}

/* Takes the statements that are waiting; tries the held snapshots when one came. */
static void drain_statements(ibp_official_subscriber *s)
{
    int pending = 0;
    bool added = false;
    uint64_t n = 0;
    while (s->cosign_sub && natsSubscription_GetPending(s->cosign_sub, &pending, NULL) == NATS_OK &&
           pending > 0) {
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, s->cosign_sub, 1) != NATS_OK)
            break;
        n++;
        added |= ibp__certify_add_statement(&s->cert, (const uint8_t *)natsMsg_GetData(m),
                                            (size_t)natsMsg_GetDataLength(m),
                                            ibp_store_official_epoch(s->opts.store));
        natsMsg_Destroy(m);
    }
    if (n) {
        pthread_mutex_lock(&s->mu);
        s->stats.statements += n;
        pthread_mutex_unlock(&s->mu);
    }
    if (added && s->cert.npending)
        try_certify(s);
}

/* How long to wait for the next snapshot: briefly while one waits for its
 * statements (they come on the other subscription), for a while after. */
static int64_t next_wait_ms(ibp_official_subscriber *s)
{
    if (!s->cert.npending)
        return NEXT_MSG_WAIT_MS;
    return ibp_clock_mono_ms() - s->pending_since_ms < 2000 ? 1 : 50;
}

/* Sleeps up to ms, waking early when stop is asked. */
static void pause_ms(ibp_official_subscriber *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + ms * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping)
        if (pthread_cond_timedwait(&s->applied, &s->mu, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&s->mu);
}

/*
 * True once per reconnection of the connection (looked at once a second).
 * OFFICIAL may have been lost with the server(s): in memory it comes back
 * empty, or on a single server not at all until a replica creates it again,
 * with its sequences starting over, where an ordered consumer that resumes
 * after the last sequence it saw would wait for ever. So the subscriber
 * subscribes again from the head of the chain, which costs one walk.
 */
static bool reconnected(ibp_official_subscriber *s)
{
    int64_t now = ibp_clock_mono_ms();
    if (!s->nats_stats || now < s->next_reconnect_look_ms)
        return false;
    s->next_reconnect_look_ms = now + 1000;
    uint64_t n = 0;
    if (natsConnection_GetStats(s->opts.nc, s->nats_stats) != NATS_OK ||
        natsStatistics_GetCounts(s->nats_stats, NULL, NULL, NULL, NULL, &n) != NATS_OK ||
        n == s->reconnects)
        return false;
    s->reconnects = n;
    return true;
}

/*
 * True when the stream started over without a reconnection (deleted, and
 * maybe created again, by an operator switching its storage): it is gone, or
 * its last sequence is below what this subscriber has seen. Looked at every
 * few seconds while no snapshot comes (one stream info request).
 */
#define STREAM_LOOK_MS 3000
static bool stream_started_over(ibp_official_subscriber *s)
{
    int64_t now = ibp_clock_mono_ms();
    if (now < s->next_stream_look_ms)
        return false;
    s->next_stream_look_ms = now + STREAM_LOOK_MS;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, s->js, s->stream, NULL, &jerr);
    if (ns == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
        return true;
    if (ns != NATS_OK)
        return false;
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last < s->seen_upto;
}

static void *subscriber_main(void *arg)
{
    ibp_official_subscriber *s = arg;
    uint64_t failures = 0;
    while (!is_stopping(s)) {
        if (!s->sub) {
            jsErrCode jerr = 0;
            natsStatus ns = subscribe(s, &jerr);
            if (ns != NATS_OK) {
                natsSubscription_Destroy(s->sub);
                s->sub = NULL;
                if (failures++ % 30 == 0)
                    IBP_LOG(IBP_LOG_WARN, COMPONENT,
                            "cannot subscribe, retrying stream=%s subject=%s error=%s "
                            "jetstream_error=%d attempts=%" PRIu64,
                            s->stream, s->subject, natsStatus_GetText(ns), (int)jerr, failures);
                pause_ms(s, s->opts.retry_ms);
                continue;
            }
            failures = 0;
            pthread_mutex_lock(&s->mu);
            s->stats.subscribes++;
            pthread_mutex_unlock(&s->mu);
            IBP_LOG(IBP_LOG_INFO, COMPONENT, "subscribed stream=%s subject=%s epoch=%" PRIu64,
                    s->stream, s->subject, ibp_store_official_epoch(s->opts.store));
        }
        drain_heartbeats(s);
        bool again = reconnected(s);
        if (again || (s->sub && stream_started_over(s))) {
            IBP_LOG(IBP_LOG_INFO, COMPONENT,
                    "%s: subscribing again from the head of the chain stream=%s epoch=%" PRIu64,
                    again ? "reconnected to NATS" : "the stream started over", s->stream,
                    ibp_store_official_epoch(s->opts.store));
            s->seen_upto = 0;
            natsSubscription_Unsubscribe(s->sub);
            natsSubscription_Destroy(s->sub);
            s->sub = NULL;
            /* The statements' stream went with OFFICIAL (same storage). */
            natsSubscription_Unsubscribe(s->cosign_sub);
            natsSubscription_Destroy(s->cosign_sub);
            s->cosign_sub = NULL;
            continue;
        }
        drain_statements(s);
        natsMsg *m = NULL;
        natsStatus ns = natsSubscription_NextMsg(&m, s->sub, next_wait_ms(s));
        if (ns == NATS_OK) {
            handle_msg(s, m, false);
            natsMsg_Destroy(m);
            s->next_stream_look_ms = ibp_clock_mono_ms() + STREAM_LOOK_MS;
            continue;
        }
        if (ns == NATS_TIMEOUT || ns == NATS_SLOW_CONSUMER)
            continue;
        /* The subscription is gone (connection closed, consumer deleted):
         * make a new one; the epoch check makes the re-read harmless. */
        IBP_LOG(IBP_LOG_WARN, COMPONENT, "subscription failed, subscribing again error=%s",
                natsStatus_GetText(ns));
        natsSubscription_Destroy(s->sub);
        s->sub = NULL;
        natsSubscription_Destroy(s->cosign_sub);
        s->cosign_sub = NULL;
        pause_ms(s, s->opts.retry_ms);
    }
    if (s->cosign_sub) {
        natsSubscription_Unsubscribe(s->cosign_sub);
        natsSubscription_Destroy(s->cosign_sub);
        s->cosign_sub = NULL;
    }
    if (s->sub) {
        natsSubscription_Unsubscribe(s->sub);
        natsSubscription_Destroy(s->sub);
        s->sub = NULL;
    }
    if (s->hb_sub) {
        natsSubscription_Unsubscribe(s->hb_sub);
        natsSubscription_Destroy(s->hb_sub);
        s->hb_sub = NULL;
    }
    return NULL;
}

ibp_status ibp_official_subscriber_start(const ibp_official_subscriber_opts *opts,
                                         ibp_official_subscriber **out, ibp_err *err)
{
    if (!opts || !out || !opts->nc || !opts->roster || !opts->store)
        return ibp_err_set(err, IBP_E_INVAL,
                           "official subscriber: nc, roster and store are "
                           "required");
    const char *stream = opts->stream ? opts->stream : IBP_STREAM_OFFICIAL;
    const char *subject = opts->subject ? opts->subject : IBP_SUBJECT_OFFICIAL_SNAPSHOT;
    const char *hb = opts->heartbeat_subject ? opts->heartbeat_subject : "";
    if (strlen(stream) > NAME_MAX_LEN || strlen(subject) > NAME_MAX_LEN ||
        strlen(hb) > NAME_MAX_LEN || !*stream || !*subject)
        return ibp_err_set(err, IBP_E_INVAL, "official subscriber: bad stream or subject");
    ibp_official_subscriber *s = calloc(1, sizeof *s);
    if (!s)
        return ibp_err_set(err, IBP_E_NOMEM, "official subscriber: out of memory");
    ibp_status st = IBP_OK;
    s->opts = *opts;
    memcpy(s->stream, stream, strlen(stream) + 1);
    memcpy(s->subject, subject, strlen(subject) + 1);
    memcpy(s->hb_subject, hb, strlen(hb) + 1);
    s->opts.heartbeat_subject = s->hb_subject;
    s->opts.stream = s->stream;
    s->opts.subject = s->subject;
    if (s->opts.retry_ms <= 0)
        s->opts.retry_ms = 1000;
    const char *cs = opts->cosign_stream ? opts->cosign_stream : IBP_STREAM_COSIGN;
    if (strlen(cs) > NAME_MAX_LEN || !*cs) {
        free(s);
        return ibp_err_set(err, IBP_E_INVAL, "official subscriber: bad cosign stream");
    }
    memcpy(s->cosign_stream, cs, strlen(cs) + 1);
    s->opts.cosign_stream = s->cosign_stream;
    s->certify = !opts->skip_certificates;
    if (s->certify) {
        size_t quorum = 0;
        bool single = false;
        if ((st = ibp_certificate_quorum(opts->roster, opts->quorum, &quorum, &single, err)) !=
            IBP_OK) {
            free(s);
            return st;
        }
        if (single)
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "certificate quorum is 1: the roster has one consensus node, whose key alone "
                    "decides every official epoch");
        ibp__certify_init(&s->cert, opts->roster, quorum);
        s->stats.quorum = quorum;
    }
    /* Fixed once the data is open: the cache is loaded (or refused) there. */
    if (opts->data)
        s->stats.official_cache_refused = ibp_data_official_cache_refused(opts->data);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->applied, &ca);
    pthread_condattr_destroy(&ca);

    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    if (opts->max_message_bytes)
        vo.max_message_bytes = opts->max_message_bytes;
    vo.log_component = COMPONENT;
    if ((st = ibp_verifier_new(opts->roster, &vo, &s->verifier)) != IBP_OK ||
        (st = ibp_verifier_new(opts->roster, &vo, &s->chain_verifier)) != IBP_OK) {
        ibp_err_set(err, st, "official subscriber: verifier: %s", ibp_strerror(st));
        goto fail;
    }
    if (natsStatistics_Create(&s->nats_stats) == NATS_OK &&
        natsConnection_GetStats(opts->nc, s->nats_stats) == NATS_OK)
        natsStatistics_GetCounts(s->nats_stats, NULL, NULL, NULL, NULL, &s->reconnects);
    natsStatus ns = natsConnection_JetStream(&s->js, opts->nc, NULL);
    if (ns != NATS_OK) {
        st = ibp_err_set(err, IBP_E_NATS, "official subscriber: JetStream context: %s",
                         natsStatus_GetText(ns));
        goto fail;
    }
    if (pthread_create(&s->thread, NULL, subscriber_main, s) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "official subscriber: cannot start its thread");
        goto fail;
    }
    *out = s;
    return IBP_OK;
fail:
    natsStatistics_Destroy(s->nats_stats);
    jsCtx_Destroy(s->js);
    ibp_verifier_free(s->verifier);
    ibp_verifier_free(s->chain_verifier);
    pthread_cond_destroy(&s->applied);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return st;
}

void ibp_official_subscriber_stats_get(ibp_official_subscriber *s,
                                       ibp_official_subscriber_stats *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    pthread_mutex_unlock(&s->mu);
}

ibp_status ibp_official_subscriber_wait_epoch(ibp_official_subscriber *s, uint64_t epoch,
                                              int64_t timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = (int64_t)ts.tv_nsec + (timeout_ms > 0 ? timeout_ms : 0) * 1000000;
    ts.tv_sec += ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    pthread_mutex_lock(&s->mu);
    while (ibp_store_official_epoch(s->opts.store) < epoch && !s->stopping)
        if (pthread_cond_timedwait(&s->applied, &s->mu, &ts) == ETIMEDOUT)
            break;
    bool ok = ibp_store_official_epoch(s->opts.store) >= epoch;
    pthread_mutex_unlock(&s->mu);
    return ok ? IBP_OK : IBP_E_NOT_FOUND;
}

void ibp_official_subscriber_stop(ibp_official_subscriber *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->applied);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "stopped received=%" PRIu64 " applied=%" PRIu64 " ignored=%" PRIu64 " rejected=%" PRIu64
            " epoch=%" PRIu64 " heartbeats=%" PRIu64,
            s->stats.received, s->stats.applied, s->stats.ignored, s->stats.rejected,
            s->stats.epoch, s->stats.heartbeats);
    jsCtx_Destroy(s->js);
    natsStatistics_Destroy(s->nats_stats);
    ibp_verifier_free(s->verifier);
    ibp_verifier_free(s->chain_verifier);
    ibp__certify_clear(&s->cert);
    pthread_cond_destroy(&s->applied);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
