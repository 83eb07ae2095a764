/*
 * The replica's checkpoints: publishing its own, and starting from the
 * others' when it has no state of its own. The rules are in ibp/checkpoint.h
 * (checkpoint.c holds their pure parts); this file reads the streams.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/checkpoint.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/official_chain.h"
#include "ibp/replica_state.h"
#include "ibp/subject.h"
#include "replica_internal.h"

/* Room for the envelope's other fields and the message's headers. */
#define CHECKPOINT_OVERHEAD 1024
/* A waiting replica repeats an unchanged WARN this often. */
#define WAITING_LOG_MS 60000

bool ibp__replica_publish_checkpoint(ibp_replica *r, const uint8_t *state, size_t len,
                                     uint64_t local_seq)
{
    ibp_err err;
    ibp_err_clear(&err);
    const char *me = ibp_signer_id(r->opts.signer);
    int64_t max = natsConnection_GetMaxPayload(r->opts.nc);
    if (max > 0 && (int64_t)len + CHECKPOINT_OVERHEAD > max) {
        IBP_REPLICA_STATS(r, r->stats.checkpoints_too_large++);
        IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                "checkpoint not published: the state is %zu bytes, over the server's max_payload "
                "of %" PRId64 " bytes; a replica added or rebuilt cannot start from this one "
                "local_seq=%" PRIu64,
                len, max, local_seq);
        return false;
    }
    uint8_t *sealed = NULL;
    size_t slen = 0;
    uint64_t seq = 0;
    char subject[160];
    ibp_status st = ibp_subject_checkpoint(me, subject, sizeof subject);
    if (st == IBP_OK)
        st = ibp_signer_seal_bytes(r->opts.signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT,
                                   state, len, ibp_clock_wall_ms(), &sealed, &slen, &seq, &err);
    if (st == IBP_E_TOO_LARGE) {
        IBP_REPLICA_STATS(r, r->stats.checkpoints_too_large++);
        IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT, "checkpoint not published: %s", err.msg);
        return false;
    }
    if (st == IBP_OK)
        st = ibp_bus_publish_envelope(r->js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_CHECKPOINT,
                                      me, seq, sealed, slen, NULL, 0, NULL, NULL, &err);
    free(sealed);
    if (st != IBP_OK) {
        IBP_REPLICA_STATS(r, r->stats.checkpoint_failures++);
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
                "checkpoint not published (tried again at the next one) local_seq=%" PRIu64
                ": %s",
                local_seq, err.msg);
        return false;
    }
    IBP_REPLICA_STATS(r, r->stats.checkpoints_published++);
    IBP_LOG(IBP_LOG_DEBUG, IBP_REPLICA_COMPONENT,
            "checkpoint published local_seq=%" PRIu64 " bytes=%zu", local_seq, slen);
    return true;
}

/* ---- starting from a checkpoint ------------------------------------------ */

typedef struct candidate {
    const ibp_roster_node *node;
    size_t roster_index;
    uint64_t stream_seq; /* in CHECKPOINT */
    ibp_verified vm;
    const Ibp__V1__ReplicaState *rs; /* vm's payload when the envelope passed */
    ibp_checkpoint_verdict verdict;
    bool tried;
    char detail[520];
} candidate;

/* A refusal that stays true for the same stored checkpoint, whatever the streams hold. */
static bool permanent(ibp_checkpoint_verdict v)
{
    return v == IBP_CHECKPOINT_BAD_ENVELOPE || v == IBP_CHECKPOINT_NOT_CONSENSUS ||
           v == IBP_CHECKPOINT_WRONG_SUBJECT || v == IBP_CHECKPOINT_BAD_STATE ||
           v == IBP_CHECKPOINT_EMPTY;
}

/* Reads and judges the last checkpoint of node (rule 1). IBP_E_NATS when NATS fails. */
static ibp_status read_candidate(ibp_replica *r, ibp_verifier *v, candidate *c)
{
    char subject[160];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    c->verdict = IBP_CHECKPOINT_NONE;
    if (ibp_subject_checkpoint(c->node->id, subject, sizeof subject) != IBP_OK)
        return IBP_OK;
    natsStatus s = js_GetLastMsg(&m, r->js, IBP_STREAM_CHECKPOINT, subject, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return IBP_OK;
    if (s != NATS_OK) {
        snprintf(c->detail, sizeof c->detail, "%s (jetstream error %d)", natsStatus_GetText(s),
                 (int)jerr);
        return IBP_E_NATS;
    }
    c->stream_seq = natsMsg_GetSequence(m);
    if (r->refused_seq[c->roster_index] == c->stream_seq &&
        permanent((ibp_checkpoint_verdict)r->refused_verdict[c->roster_index])) {
        /* Refused (and logged) before: no second verification, no second WARN. */
        c->verdict = (ibp_checkpoint_verdict)r->refused_verdict[c->roster_index];
        snprintf(c->detail, sizeof c->detail, "as before");
        natsMsg_Destroy(m);
        return IBP_OK;
    }
    ibp_err err;
    ibp_err_clear(&err);
    if (ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), &c->vm, &err) != IBP_OK) {
        c->verdict = IBP_CHECKPOINT_BAD_ENVELOPE;
        snprintf(c->detail, sizeof c->detail, "%s", err.msg);
    } else {
        c->verdict = ibp_checkpoint_check_envelope(&c->vm, natsMsg_GetSubject(m));
        if (c->verdict == IBP_CHECKPOINT_OK || c->verdict == IBP_CHECKPOINT_EMPTY)
            c->rs = (const Ibp__V1__ReplicaState *)c->vm.payload;
        else if (c->verdict == IBP_CHECKPOINT_NOT_CONSENSUS)
            snprintf(c->detail, sizeof c->detail, "signer %s", c->vm.envelope->signer);
        else if (c->verdict == IBP_CHECKPOINT_WRONG_SUBJECT)
            snprintf(c->detail, sizeof c->detail, "signed by %s", c->vm.envelope->signer);
    }
    natsMsg_Destroy(m);
    return IBP_OK;
}

/*
 * Finds in OFFICIAL the newest valid snapshot of each wanted epoch (want[i]
 * != 0), walking back from the end as the chain reader does, into snaps[i]
 * (valid false when not found). Stops when all are found or after
 * IBP_OFFICIAL_CHAIN_SCAN_MAX messages; an old snapshot replayed near the end
 * does not stop it (OFFICIAL keeps nats.official_keep snapshots, 256 by
 * default, so a wanted epoch that is gone costs one walk of the stream).
 */
ibp_status ibp__replica_find_snapshots(ibp_replica *r, const uint64_t *want, ibp_chain_msg *snaps,
                                       size_t n, ibp_err *err)
{
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&snaps[i], 0, sizeof snaps[i]);
        if (want[i])
            missing++;
    }
    if (!missing)
        return IBP_OK;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, IBP_STREAM_OFFICIAL, NULL, &jerr);
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "stream info %s: %s (jetstream error %d)",
                           IBP_STREAM_OFFICIAL, natsStatus_GetText(s), (int)jerr);
    uint64_t first = si->State.FirstSeq ? si->State.FirstSeq : 1, last = si->State.LastSeq;
    if (si->State.Msgs == 0)
        last = 0;
    jsStreamInfo_Destroy(si);
    size_t scanned = 0;
    for (uint64_t seq = last; seq >= first && seq > 0 && missing > 0 &&
                              scanned < IBP_OFFICIAL_CHAIN_SCAN_MAX;
         seq--, scanned++) {
        natsMsg *m = NULL;
        s = js_GetMsg(&m, r->js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
            continue;
        if (s != NATS_OK)
            return ibp_err_set(err, IBP_E_NATS, "read %s seq %" PRIu64 ": %s", IBP_STREAM_OFFICIAL,
                               seq, natsStatus_GetText(s));
        ibp_chain_msg cm;
        memset(&cm, 0, sizeof cm);
        if (strcmp(natsMsg_GetSubject(m), IBP_SUBJECT_OFFICIAL_SNAPSHOT) == 0)
            ibp_official_chain_classify(r->chain_verifier, (const uint8_t *)natsMsg_GetData(m),
                                        (size_t)natsMsg_GetDataLength(m), seq, &cm);
        natsMsg_Destroy(m);
        if (!cm.valid)
            continue;
        for (size_t i = 0; i < n; i++)
            if (want[i] && want[i] == cm.epoch && !snaps[i].valid) {
                snaps[i] = cm;
                missing--;
            }
    }
    return IBP_OK;
}

/* Counts and logs (once per stored checkpoint) a candidate refused. */
static void note_refused(ibp_replica *r, candidate *c)
{
    if (c->verdict == IBP_CHECKPOINT_OK || c->verdict == IBP_CHECKPOINT_NONE ||
        r->refused_seq[c->roster_index] == c->stream_seq)
        return;
    r->refused_seq[c->roster_index] = c->stream_seq;
    r->refused_verdict[c->roster_index] = (int)c->verdict;
    IBP_REPLICA_STATS(r, r->stats.checkpoints_refused++);
    IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
            "checkpoint refused node=%s seq=%" PRIu64 " epoch=%" PRIu64 " local_seq=%" PRIu64
            ": %s%s%s",
            c->node->id, c->stream_seq, c->rs ? c->rs->epoch : 0, c->rs ? c->rs->local_seq : 0,
            ibp_checkpoint_verdict_text(c->verdict), c->detail[0] ? ": " : "", c->detail);
}

static void log_waiting(ibp_replica *r, const char *why)
{
    int64_t now = ibp_clock_mono_ms();
    if (strcmp(why, r->waiting_why) == 0 && now - r->waiting_logged_ms < WAITING_LOG_MS)
        return;
    snprintf(r->waiting_why, sizeof r->waiting_why, "%s", why);
    r->waiting_logged_ms = now;
    IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
            "no usable checkpoint: waiting, publishing nothing (retry every %" PRId64 " ms): %s",
            r->opts.bootstrap_retry_ms, why);
}

/* The candidate to try next: the newest not tried whose envelope passed. */
static candidate *next_candidate(candidate *cs, size_t n)
{
    candidate *best = NULL;
    for (size_t i = 0; i < n; i++) {
        candidate *c = &cs[i];
        if (c->tried || c->verdict != IBP_CHECKPOINT_OK)
            continue;
        if (!best ||
            ibp_checkpoint_newer(c->rs->epoch, c->rs->local_seq, best->rs->epoch, best->rs->local_seq))
            best = c;
    }
    return best;
}

/* Takes candidate c: reads LOCAL after it, with its engine and sequences. */
static ibp_status take(ibp_replica *r, candidate *c, ibp_vote *engine, uint64_t first,
                       uint64_t last, ibp_err *err)
{
    ibp_status st = ibp__replica_start_reading(r, c->rs->local_seq, err);
    if (st != IBP_OK)
        return st;
    ibp_vote_free(r->engine);
    r->engine = engine;
    ibp_replica_state_set_seqs(c->rs, r->verifier);
    /* Its digest is the snapshot's of its epoch (checked): the previous
     * digest of this replica's next epoch statement. */
    if (c->rs->epoch > 0 && c->rs->digest.len == IBP_VOTE_DIGEST_SIZE)
        ibp__replica_cosign_note_epoch(r, c->rs->epoch, c->rs->digest.data);
    r->bootstrapping = false;
    /* Saved before the stats say it no longer waits, so that whoever sees
     * that also finds consensus.state. */
    ibp__replica_save_now(r);
    IBP_REPLICA_STATS(r, (r->stats.epoch = c->rs->epoch, r->stats.local_seq = c->rs->local_seq,
                          r->stats.waiting_for_checkpoint = 0));
    IBP_LOG(IBP_LOG_INFO, IBP_REPLICA_COMPONENT,
            "started from the checkpoint of node=%s epoch=%" PRIu64 " local_seq=%" PRIu64
            " (checkpoint seq %" PRIu64 "; LOCAL holds %" PRIu64 "..%" PRIu64
            "; stream_epoch=%" PRIu64 ")",
            c->node->id, c->rs->epoch, c->rs->local_seq, c->stream_seq, first, last,
            r->last_snap_epoch);
    return IBP_OK;
}

void ibp__replica_bootstrap(ibp_replica *r)
{
    ibp_err err;
    ibp_err_clear(&err);
    const ibp_roster *roster = r->opts.roster;
    size_t n = ibp_roster_count(roster), nc = 0;
    candidate *cs = calloc(n ? n : 1, sizeof *cs);
    uint64_t *want = calloc(n ? n : 1, sizeof *want);
    ibp_chain_msg *snaps = calloc(n ? n : 1, sizeof *snaps);
    ibp_verifier *v = NULL;
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    vo.log_component = "checkpoint";
    char why[1024] = "";
    size_t wl = 0;
    if (!cs || !want || !snaps || ibp_verifier_new(roster, &vo, &v) != IBP_OK) {
        snprintf(why, sizeof why, "out of memory");
        goto wait;
    }

    /* LOCAL's extent now. */
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, r->js, IBP_STREAM_LOCAL, NULL, &jerr);
    if (s != NATS_OK) {
        snprintf(why, sizeof why, "stream info %s: %s (jetstream error %d)", IBP_STREAM_LOCAL,
                 natsStatus_GetText(s), (int)jerr);
        goto wait;
    }
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);

    /* Rule 1 for the last checkpoint of every consensus node. */
    for (size_t i = 0; i < n; i++) {
        const ibp_roster_node *node = ibp_roster_at(roster, i);
        if (!(node->roles & IBP_ROLE_CONSENSUS))
            continue;
        candidate *c = &cs[nc++];
        c->node = node;
        c->roster_index = i;
        if (read_candidate(r, v, c) != IBP_OK) {
            snprintf(why, sizeof why, "read the checkpoint of %s: %s", node->id, c->detail);
            goto wait;
        }
        if (c->verdict == IBP_CHECKPOINT_OK && c->rs->epoch > 0)
            want[nc - 1] = c->rs->epoch;
    }
    /* Rule 3 needs the snapshots of their epochs. */
    if (ibp__replica_find_snapshots(r, want, snaps, nc, &err) != IBP_OK) {
        snprintf(why, sizeof why, "%s", err.msg);
        goto wait;
    }
    /* Rules 2-4, newest first. */
    for (candidate *c; (c = next_candidate(cs, nc)) != NULL;) {
        c->tried = true;
        const Ibp__V1__ReplicaState *rs = c->rs;
        ibp_checkpoint_verdict vd = ibp_checkpoint_check_local(rs->local_seq, first, last);
        if (vd == IBP_CHECKPOINT_OK)
            vd = ibp_checkpoint_check_digest(rs->epoch, rs->digest.data, rs->digest.len,
                                             &snaps[c - cs]);
        if (vd == IBP_CHECKPOINT_LOCAL_GONE)
            snprintf(c->detail, sizeof c->detail, "LOCAL holds %" PRIu64 "..%" PRIu64, first,
                     last);
        ibp_vote *engine = NULL;
        if (vd == IBP_CHECKPOINT_OK) {
            ibp_err_clear(&err);
            if (ibp_replica_state_import(rs, &r->opts.vote, &engine, &err) != IBP_OK) {
                vd = IBP_CHECKPOINT_BAD_STATE;
                snprintf(c->detail, sizeof c->detail, "%s", err.msg);
            }
        }
        c->verdict = vd;
        if (vd != IBP_CHECKPOINT_OK)
            continue;
        ibp_err_clear(&err);
        if (take(r, c, engine, first, last, &err) != IBP_OK) {
            ibp_vote_free(engine);
            snprintf(why, sizeof why, "%s", err.msg);
            goto wait;
        }
        goto done;
    }
    if (ibp_checkpoint_may_replay_all(first)) {
        ibp_err_clear(&err);
        if (ibp__replica_start_reading(r, 0, &err) != IBP_OK) {
            snprintf(why, sizeof why, "%s", err.msg);
            goto wait;
        }
        r->bootstrapping = false;
        IBP_REPLICA_STATS(r, r->stats.waiting_for_checkpoint = 0);
        IBP_LOG(IBP_LOG_INFO, IBP_REPLICA_COMPONENT,
                "no usable checkpoint, and LOCAL holds its whole history (first seq %" PRIu64
                "): reading it from the start",
                first);
        goto done;
    }
    wl = (size_t)snprintf(why, sizeof why, "LOCAL holds %" PRIu64 "..%" PRIu64 ";", first, last);
    for (size_t i = 0; i < nc && wl < sizeof why; i++) {
        const candidate *c = &cs[i];
        wl += (size_t)snprintf(why + wl, sizeof why - wl, " %s: %s", c->node->id,
                               ibp_checkpoint_verdict_text(c->verdict));
        if (c->rs && wl < sizeof why)
            wl += (size_t)snprintf(why + wl, sizeof why - wl,
                                   " (epoch %" PRIu64 ", local_seq %" PRIu64 ")", c->rs->epoch,
                                   c->rs->local_seq);
        if (wl < sizeof why)
            wl += (size_t)snprintf(why + wl, sizeof why - wl, ";");
    }
    if (nc == 0 && wl < sizeof why)
        snprintf(why + wl, sizeof why - wl, " the roster has no consensus node");
wait:
    IBP_REPLICA_STATS(r, r->stats.waiting_for_checkpoint = 1);
    log_waiting(r, why);
done:
    for (size_t i = 0; cs && i < nc; i++) {
        note_refused(r, &cs[i]);
        ibp_verified_clear(&cs[i].vm);
    }
    ibp_verifier_free(v);
    free(snaps);
    free(want);
    free(cs);
}
