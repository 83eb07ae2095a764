/*
 * The consensus replica's loop and its API: LOCAL in, fed to the engine; each
 * new epoch's snapshot published to OFFICIAL (and a lost race checked);
 * heartbeats; the replica state saved; start, stats and stop. The events and
 * status messages of an epoch are built in replica_msgs.c and published in
 * replica_side.c. See ibp/replica.h for the contract; the comments here say
 * why.
 */
#include "ibp/replica.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "ibp/clock.h"
#include "ibp/local_msg.h"
#include "ibp/log.h"
#include "ibp/official_chain.h"
#include "ibp/replica_state.h"
#include "ibp/snapshot_encode.h"
#include "ibp/subject.h"
#include "replica_internal.h"

#define RETRY_MAX_MS 2000
/* While messages keep coming, how often a pending look at OFFICIAL's chain
 * (republish_current) checks whether LOCAL is read to its end. */
#define REPUBLISH_LOOK_MS 250

void ibp_replica_opts_init(ibp_replica_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    ibp_vote_config_init(&opts->vote);
    opts->heartbeat_ms = 5000;
    opts->state_save_ms = 30000;
    opts->stream_replicas = 1;
    opts->checkpoint_ms = 30000;
    opts->bootstrap_retry_ms = 5000;
    ibp_bus_stream_opts_init(&opts->streams);
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
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT, "cannot read the snapshot chain: %s", err.msg);
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
        IBP_REPLICA_STATS(r, r->stats.foreign_snapshots += n);
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
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
ibp_status ibp__replica_with_retry(ibp_replica *r, const char *what,
                                   ibp_status (*fn)(ibp_replica *, void *, ibp_err *), void *arg)
{
    int64_t wait = 50;
    for (;;) {
        ibp_err err;
        ibp_err_clear(&err);
        ibp_status st = fn(r, arg, &err);
        if (st != IBP_E_NATS || atomic_load(&r->stop))
            return st;
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT, "%s failed, retrying in %lld ms: %s", what,
                (long long)wait, err.msg);
        ibp_clock_sleep_ms(wait);
        wait = wait * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : wait * 2;
    }
}

/* How a snapshot publish ended. */
enum snap_outcome {
    SNAP_BEHIND = 0, /* the epoch (or a later one) was in the chain already */
    SNAP_WON,        /* this replica's publish stored it */
    SNAP_SAME,       /* another replica's, equal to ours */
    SNAP_DIFFERENT,  /* another one, different from ours: replicas diverged (or a forgery) */
};

/*
 * Compares our digest and snapshot bytes (their hash) with the snapshot
 * stored for this epoch and counts the race. The digest alone is no
 * commitment (ibp/vote.h): equal digests over different bytes are a
 * mismatch too.
 */
static enum snap_outcome lost_race(ibp_replica *r, uint64_t epoch, const uint8_t *ours,
                                   const uint8_t *our_hash, const ibp_chain_msg *theirs)
{
    bool same_digest = theirs->digest_len == IBP_VOTE_DIGEST_SIZE &&
                       memcmp(ours, theirs->digest, IBP_VOTE_DIGEST_SIZE) == 0;
    if (!same_digest ||
        memcmp(our_hash, theirs->payload_hash, IBP_CERT_DIGEST_BYTES) != 0) {
        IBP_REPLICA_STATS(r, r->stats.digest_mismatches++);
        IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                "DIGEST MISMATCH: the snapshot stored for epoch %" PRIu64
                " differs from this replica's state%s; replicas have diverged (or a consensus "
                "key signed a snapshot of its own); not co-signing it epoch=%" PRIu64
                " signer=%s",
                epoch, same_digest ? " (same digest, other bytes)" : "", epoch, theirs->signer);
        return SNAP_DIFFERENT;
    }
    IBP_REPLICA_STATS(r, r->stats.snapshots_lost_race++);
    return SNAP_SAME;
}

/*
 * The fast way to see a lost race: the subject's last message is the
 * snapshot this replica would have published, byte for byte (same payload
 * hash, so the same epoch and state), validly signed by a consensus node.
 * Then the chain's head is that message and no walk is needed, which keeps
 * the losers' epoch statements, and so certification, quick.
 */
static bool stored_is_ours(ibp_replica *r, const uint8_t *hash, uint64_t *stream_seq)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (js_GetLastMsg(&m, r->js, IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, &jerr) !=
        NATS_OK)
        return false;
    bool ours = false;
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    if (env && env->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT) {
        const ibp_roster_node *node = ibp_roster_find(r->opts.roster, env->signer);
        uint8_t theirs[IBP_CERT_DIGEST_BYTES];
        ibp_certificate_snapshot_hash(env->payload.data, env->payload.len, theirs);
        ours = node && (node->roles & IBP_ROLE_CONSENSUS) &&
               memcmp(theirs, hash, sizeof theirs) == 0 &&
               ibp_envelope_signature_valid(env, node->pk);
    }
    if (ours)
        *stream_seq = natsMsg_GetSequence(m);
    ibp__v1__envelope__free_unpacked(env, NULL);
    natsMsg_Destroy(m);
    return ours;
}

struct snap_arg {
    const ibp_vote_update *u;
    bool again; /* the current epoch published again (republish_current) */
    enum snap_outcome outcome;
    bool have_hash;
    uint8_t hash[IBP_CERT_DIGEST_BYTES]; /* of our encoding of the snapshot */
};

/*
 * Makes sure OFFICIAL exists, creating it with the replica's stream options:
 * a memory stream on a single server is gone, not only empty, after the
 * server restarted. Logged, not returned: the caller retries anyway.
 */
static void ensure_official(ibp_replica *r)
{
    ibp_bus_stream_opts o = r->opts.streams;
    ibp_err err = {0};
    o.streams = IBP_BUS_STREAM_OFFICIAL | IBP_BUS_STREAM_COSIGN; /* same storage */
    o.replicas = r->opts.stream_replicas > 0 ? r->opts.stream_replicas : 1;
    o.update_existing = false;
    if (ibp_bus_ensure_streams(r->js, &o, &err) != IBP_OK)
        /* A refused creation (no memory left, say) matters; NATS being away
         * is already said by the caller's retry line. */
        IBP_LOG(strstr(err.msg, "create stream") ? IBP_LOG_WARN : IBP_LOG_DEBUG,
                IBP_REPLICA_COMPONENT, "cannot create %s: %s", IBP_STREAM_OFFICIAL, err.msg);
}

/*
 * After a publish that someone else won: true when the last message on the
 * subject (r->last_snap_subject_seq, just refreshed) is a valid snapshot of
 * epoch, whose digest it copies to *head. A republished epoch needs this
 * because the chain head does not move to it when the stream held an older
 * epoch than epoch - 1 (ibp/snapshot_chain.h).
 */
static bool last_is_epoch(ibp_replica *r, uint64_t epoch, ibp_chain_msg *head)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (r->last_snap_subject_seq == 0 ||
        js_GetMsg(&m, r->js, IBP_STREAM_OFFICIAL, r->last_snap_subject_seq, NULL, &jerr) != NATS_OK)
        return false;
    ibp_chain_msg cm;
    ibp_official_chain_classify(r->chain_verifier, (const uint8_t *)natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), r->last_snap_subject_seq, &cm);
    natsMsg_Destroy(m);
    if (!cm.valid || cm.epoch != epoch)
        return false;
    *head = cm;
    return true;
}

/* Attempts per call before the caller's retry with back-off: each failed
 * attempt means another message landed on the subject meanwhile. */
#define SNAPSHOT_ATTEMPTS 8

static ibp_status publish_snapshot(ibp_replica *r, void *arg, ibp_err *err)
{
    struct snap_arg *sa = arg;
    const ibp_vote_update *u = sa->u;
    bool again = sa->again;
    uint8_t *payload = NULL, *sealed = NULL;
    size_t plen = 0, len = 0;
    uint64_t seq = 0, stream_seq = 0;
    bool dup = false, random_id = false;
    char msg_id[64];
    ibp_status st;

    for (int attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
        if (u->epoch <= r->last_snap_epoch) {
            sa->outcome = SNAP_BEHIND;
            return IBP_OK; /* published already (by us or a faster replica) */
        }
        if ((st = ibp_snapshot_encode(r->engine, u, &payload, &plen, err)) != IBP_OK)
            return st;
        ibp_certificate_snapshot_hash(payload, plen, sa->hash);
        sa->have_hash = true;
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
            if (again)
                IBP_REPLICA_STATS(r, r->stats.snapshots_republished++);
            else
                IBP_REPLICA_STATS(r, r->stats.snapshots_published++);
            sa->outcome = SNAP_WON;
            return IBP_OK;
        }
        if (st != IBP_OK && st != IBP_E_EXISTS) {
            /* NATS trouble, retried by the caller; OFFICIAL may be gone with
             * a restart of its server (memory storage): create it first. */
            ensure_official(r);
            return st;
        }
        /* Someone else was first, or the id was taken: look at the chain. */
        uint64_t theirs_seq = 0;
        if (stored_is_ours(r, sa->hash, &theirs_seq) && theirs_seq > r->last_snap_subject_seq) {
            r->last_snap_subject_seq = theirs_seq;
            r->last_snap_epoch = u->epoch;
            if (theirs_seq > r->foreign_counted_upto)
                r->foreign_counted_upto = theirs_seq;
            IBP_REPLICA_STATS(r, r->stats.snapshots_lost_race++);
            sa->outcome = SNAP_SAME;
            return IBP_OK;
        }
        ibp_chain_msg head;
        memset(&head, 0, sizeof head);
        if ((st = refresh_last_snapshot(r, &head)) != IBP_OK)
            return st;
        if (r->last_snap_epoch == u->epoch || (again && last_is_epoch(r, u->epoch, &head))) {
            sa->outcome = lost_race(r, u->epoch, u->digest, sa->hash, &head);
            if (r->last_snap_epoch < u->epoch)
                r->last_snap_epoch = u->epoch;
            return IBP_OK;
        }
        if (r->last_snap_epoch > u->epoch) {
            sa->outcome = SNAP_BEHIND;
            return IBP_OK; /* behind: later epochs are there already */
        }
        /* The chain is still below this epoch: a foreign message came first
         * (or our expectation was stale). Publish after it. */
        if (dup)
            random_id = true;
    }
    return ibp_err_set(err, IBP_E_NATS,
                       "snapshot epoch %" PRIu64 ": the subject kept changing over %d attempts",
                       u->epoch, SNAPSHOT_ATTEMPTS);
}

static void publish_epoch(ibp_replica *r, const ibp_vote_update *u)
{
    if (u->epoch <= r->last_snap_epoch) {
        /* Behind the stream: the epoch is out there already. Vouching for
         * what this replica computed costs an encoding; only worth it near
         * the head, which subscribers wait for. */
        if (u->epoch + IBP_REPLICA_COSIGN_BEHIND_MAX > r->last_snap_epoch)
            ibp__replica_cosign(r, u, NULL);
        return;
    }
    /* The snapshot first: it is what subscribers wait for. Then the events and
     * status messages, once per change: the replica whose publish stored the
     * snapshot sends them at once; every other replica that computed the
     * same epoch holds them and, after cover_delay_ms, publishes what is not
     * in the streams, so a winner dying between the two loses nothing
     * (duplicates are dropped by their message ids). */
    uint64_t won = r->stats.snapshots_published, mismatches = r->stats.digest_mismatches;
    struct snap_arg sa;
    memset(&sa, 0, sizeof sa);
    sa.u = u;
    ibp_status st = ibp__replica_with_retry(r, "snapshot", publish_snapshot, &sa);
    if (st != IBP_OK) {
        if (!atomic_load(&r->stop))
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                    "snapshot not published epoch=%" PRIu64 " reason=%s", u->epoch,
                    ibp_status_name(st));
        return;
    }
    /* The statement next: subscribers apply the snapshot once a quorum signed. */
    if (sa.outcome != SNAP_DIFFERENT)
        ibp__replica_cosign(r, u, sa.have_hash ? sa.hash : NULL);
    if (r->last_snap_epoch > u->epoch)
        return;
    /* Only this thread writes the stats: reading them here needs no lock. */
    bool winner = r->stats.snapshots_published != won;
    if (!winner && r->stats.digest_mismatches != mismatches)
        return; /* our state differs from the stored one: our messages would be wrong */
    if (winner && r->die_after_snapshot) {
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
                "IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT: dying before the events and status "
                "messages of epoch=%" PRIu64,
                u->epoch);
        raise(SIGKILL);
    }
    side_batch *b = ibp__replica_side_batch_build(r, u);
    if (!b)
        return;
    if (!winner) {
        ibp__replica_pending_push(r, b);
        return;
    }
    ibp__replica_cover_pending(r, u->epoch, false, SIZE_MAX);
    ibp__replica_publish_side(r, b);
    IBP_REPLICA_STATS(r, r->stats.side_published++);
    ibp__replica_side_batch_free(b);
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

    IBP_REPLICA_STATS(r, r->stats.local_seq = seq); /* consumed, whether it applies or not */
    ibp_status st = ibp_verifier_check(r->verifier, (const uint8_t *)natsMsg_GetData(m),
                                       (size_t)natsMsg_GetDataLength(m), &vm, &err);
    if (st != IBP_OK) {
        IBP_REPLICA_STATS(r, r->stats.rejected[st]++);
        return;
    }
    ibp_vote_msg msg;
    ibp_vote_obs *obs = NULL;
    st = ibp_local_msg_from_verified(&vm, seq, stream_ms, &msg, &obs);
    if (st == IBP_E_NOMEM) {
        /* Skipping it would make this replica diverge from the others. */
        IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT, "out of memory at seq=%" PRIu64 "; stopping",
                seq);
        atomic_store(&r->stop, 1);
        goto out;
    }
    if (st != IBP_OK) {
        /* Not for the engine (IBP_E_NOT_FOUND), or refused by its codec. */
        if (st != IBP_E_NOT_FOUND)
            IBP_REPLICA_STATS(r, r->stats.rejected[st]++);
        goto out;
    }
    ibp_vote_update u;
    ibp_vote_rc rc = ibp_vote_apply(r->engine, &msg, &u);
    if (rc != IBP_VOTE_OK) {
        IBP_REPLICA_STATS(r, (r->stats.engine_skipped++, r->stats.engine_refused[rc]++));
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
                "engine refused message seq=%" PRIu64 " signer=%s rc=%s detail=\"%s\"", seq,
                msg.signer, ibp_vote_rc_name(rc), ibp_vote_last_error(r->engine));
        if (rc == IBP_VOTE_E_NOMEM || rc == IBP_VOTE_E_POISONED) {
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT, "engine unusable; stopping the replica");
            atomic_store(&r->stop, 1);
        }
        goto out;
    }
    IBP_REPLICA_STATS(r, (r->stats.messages_applied++, r->stats.epoch = u.epoch));
    if (u.epoch_advanced) {
        publish_epoch(r, &u);
        ibp__replica_cosign_note_epoch(r, u.epoch, u.digest);
    }
out:
    free(obs);
    ibp_verified_clear(&vm);
}

/* ---- OFFICIAL lost: publishing the current epoch again -------------------- */

/* True when this replica has read LOCAL to its last message. */
static bool local_read_to_end(ibp_replica *r)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, r->js, IBP_STREAM_LOCAL, NULL, &jerr) != NATS_OK)
        return false;
    uint64_t last = si->State.Msgs ? si->State.LastSeq : 0;
    jsStreamInfo_Destroy(si);
    ibp_vote_info info;
    ibp_vote_get_info(r->engine, &info);
    uint64_t read;
    pthread_mutex_lock(&r->stats_lock);
    read = r->stats.local_seq;
    pthread_mutex_unlock(&r->stats_lock);
    return (read > info.local_seq ? read : info.local_seq) >= last;
}

/*
 * OFFICIAL holds a snapshot of this replica's epoch (another replica
 * published it again first, or this one restarted): co-signs it when it is
 * byte for byte this replica's and COSIGN does not hold its statement about
 * these bytes (lost with OFFICIAL), so that a quorum certifies it.
 */
static void cosign_stored_current(ibp_replica *r, const ibp_vote_update *u)
{
    uint8_t *payload = NULL;
    size_t plen = 0;
    uint8_t hash[IBP_CERT_DIGEST_BYTES];
    uint64_t seq = 0;
    ibp_err err;
    ibp_err_clear(&err);
    if (ibp_snapshot_encode(r->engine, u, &payload, &plen, &err) != IBP_OK)
        return;
    ibp_certificate_snapshot_hash(payload, plen, hash);
    free(payload);
    if (!ibp__replica_cosign_stored(r, u->epoch, hash) && stored_is_ours(r, hash, &seq))
        ibp__replica_cosign(r, u, hash);
}

/*
 * When OFFICIAL's chain is below this replica's epoch (the stream lost its
 * messages in a restart of every server, being in memory; or the replica's
 * own publish of its epoch never landed), publishes the current state as the
 * snapshot of the current epoch, so that a subscriber starting now gets it.
 * Only once LOCAL is read to its end: every replica then has the same epoch
 * and state, and they race for one message as for any epoch. Returns false
 * to be called again later (not read to the end, or NATS not answering).
 */
static bool republish_current(ibp_replica *r)
{
    ibp_vote_info info;
    ibp_vote_get_info(r->engine, &info);
    if (info.epoch == 0)
        return true; /* nothing official yet */
    if (!local_read_to_end(r))
        return false;
    ensure_official(r);
    if (refresh_last_snapshot(r, NULL) != IBP_OK)
        return false;
    if (r->last_snap_epoch > info.epoch)
        return true;
    ibp_vote_update u;
    memset(&u, 0, sizeof u);
    u.epoch_advanced = true;
    u.epoch = info.epoch;
    u.local_seq = info.local_seq;
    u.now_ms = info.now_ms;
    memcpy(u.digest, info.digest, sizeof u.digest);
    u.active_monitors = (uint32_t)info.active_monitors;
    if (r->last_snap_epoch == info.epoch) {
        cosign_stored_current(r, &u);
        return true;
    }
    uint64_t had = r->last_snap_epoch;
    uint64_t again = r->stats.snapshots_republished;
    struct snap_arg sa;
    memset(&sa, 0, sizeof sa);
    sa.u = &u;
    sa.again = true;
    ibp_status st = ibp__replica_with_retry(r, "snapshot (current epoch again)", publish_snapshot,
                                            &sa);
    if (st != IBP_OK) {
        if (!atomic_load(&r->stop))
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                    "current epoch not published again epoch=%" PRIu64 " reason=%s", info.epoch,
                    ibp_status_name(st));
        return true;
    }
    if (r->stats.snapshots_republished != again)
        IBP_LOG(IBP_LOG_INFO, IBP_REPLICA_COMPONENT,
                "published the current epoch again: %s held %s%" PRIu64
                " (a memory stream after a restart of every NATS server?) epoch=%" PRIu64
                " local_seq=%" PRIu64 " stream_epoch=%" PRIu64,
                IBP_STREAM_OFFICIAL, had ? "only up to epoch " : "no snapshot, epoch ", had,
                info.epoch, info.local_seq, had);
    /* Its statement too: subscribers starting now apply it only certified
     * (COSIGN, on OFFICIAL's storage, went with it). */
    if (sa.outcome == SNAP_WON || sa.outcome == SNAP_SAME)
        ibp__replica_cosign(r, &u, sa.have_hash ? sa.hash : NULL);
    return true;
}

/* Notes a reconnection to NATS (looked at once a second): OFFICIAL may have
 * been lost with the server(s). */
static void note_reconnects(ibp_replica *r, int64_t now)
{
    if (!r->nats_stats || now < r->next_reconnect_look_ms)
        return;
    r->next_reconnect_look_ms = now + 1000;
    uint64_t n = 0;
    if (natsConnection_GetStats(r->opts.nc, r->nats_stats) != NATS_OK ||
        natsStatistics_GetCounts(r->nats_stats, NULL, NULL, NULL, NULL, &n) != NATS_OK)
        return;
    if (n != r->reconnects) {
        r->reconnects = n;
        r->republish_check = true;
    }
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

/*
 * Saves consensus.state (to_file) and publishes the checkpoint (to_bus), each
 * only when the state covers LOCAL messages the last one did not; the state
 * is encoded once for both. Nothing while the replica has no state yet.
 */
static void persist_state(ibp_replica *r, bool to_file, bool to_bus)
{
    ibp_err err;
    ibp_vote_info info;
    if (r->bootstrapping)
        return;
    ibp_vote_get_info(r->engine, &info);
    to_file = to_file && info.local_seq != r->saved_local_seq;
    to_bus = to_bus && info.local_seq != r->checkpoint_local_seq && info.local_seq > 0;
    if (!to_file && !to_bus)
        return;
    uint8_t *buf = NULL;
    size_t len = 0;
    ibp_err_clear(&err);
    ibp_replica_prev prev = {false, {0}};
    if (r->own_epoch == info.epoch && r->own_have_prev) {
        prev.known = true;
        memcpy(prev.digest, r->own_prev_digest, sizeof prev.digest);
    }
    if (ibp_replica_state_encode(r->engine, r->verifier, r->opts.roster, &prev, &buf, &len,
                                 &err) != IBP_OK) {
        IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT, "%s", err.msg);
        return;
    }
    if (to_file) {
        if (ibp_file_write_atomic(r->state_path, buf, len, 0600, &err) == IBP_OK)
            r->saved_local_seq = info.local_seq;
        else
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT, "save replica state: %s", err.msg);
    }
    if (to_bus && ibp__replica_publish_checkpoint(r, buf, len, info.local_seq))
        r->checkpoint_local_seq = info.local_seq;
    free(buf);
}

void ibp__replica_save_now(ibp_replica *r)
{
    persist_state(r, true, false);
}

static void *replica_main(void *arg)
{
    ibp_replica *r = arg;
    while (!atomic_load(&r->stop)) {
        if (r->bootstrapping) {
            /* Nothing is read, published or saved until the replica has a state. */
            if (ibp_clock_mono_ms() >= r->next_bootstrap_ms) {
                ibp__replica_bootstrap(r);
                r->next_bootstrap_ms = ibp_clock_mono_ms() + r->opts.bootstrap_retry_ms;
            }
            if (r->bootstrapping) {
                ibp_clock_sleep_ms(50);
                continue;
            }
            r->last_heartbeat_ms = r->last_save_ms = r->last_checkpoint_ms = ibp_clock_mono_ms();
            r->republish_check = true;
        }
        natsMsg *m = NULL;
        natsStatus s = natsSubscription_NextMsg(&m, r->sub, IBP_REPLICA_NEXT_MSG_WAIT_MS);
        if (s == NATS_OK) {
            apply_msg(r, m);
            natsMsg_Destroy(m);
        } else if (s != NATS_TIMEOUT) {
            ibp_clock_sleep_ms(100); /* reconnecting: the ordered consumer resumes by itself */
        }
        int64_t now = ibp_clock_mono_ms();
        note_reconnects(r, now);
        if (r->republish_check && (s == NATS_TIMEOUT || now >= r->next_republish_look_ms)) {
            /* After a quiet turn (likely at the end of LOCAL), or a few times a
             * second while messages keep coming. */
            r->next_republish_look_ms = now + REPUBLISH_LOOK_MS;
            r->republish_check = !republish_current(r);
        }
        if (now - r->last_heartbeat_ms >= r->opts.heartbeat_ms) {
            send_heartbeat(r);
            r->last_heartbeat_ms = now;
        }
        bool save = now - r->last_save_ms >= r->opts.state_save_ms;
        bool checkpoint = now - r->last_checkpoint_ms >= r->opts.checkpoint_ms;
        if (save || checkpoint) {
            persist_state(r, save, checkpoint);
            if (save)
                r->last_save_ms = now;
            if (checkpoint)
                r->last_checkpoint_ms = now;
        }
        /* A few held epochs per turn: each check is one request to the stream. */
        ibp__replica_cover_pending(r, UINT64_MAX, true, IBP_REPLICA_COVER_CHECKS_PER_TURN);
    }
    return NULL;
}

ibp_status ibp__replica_start_reading(ibp_replica *r, uint64_t after, ibp_err *err)
{
    natsStatus s;
    jsErrCode jerr = 0;
    ibp_chain_msg head;
    memset(&head, 0, sizeof head);
    if (refresh_last_snapshot(r, &head) == IBP_E_NATS)
        return ibp_err_set(err, IBP_E_NATS, "replica: read the last snapshot of %s",
                           IBP_STREAM_OFFICIAL);
    ibp__replica_cosign_note_head(r, &head);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = IBP_STREAM_LOCAL;
    so.Ordered = true;
    if (after > 0) {
        so.Config.DeliverPolicy = js_DeliverByStartSequence;
        so.Config.OptStartSeq = after + 1;
    } else {
        so.Config.DeliverPolicy = js_DeliverAll;
    }
    natsSubscription *sub = NULL;
    if ((s = js_SubscribeSync(&sub, r->js, "ibp.local.>", NULL, &so, &jerr)) != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "replica: subscribe to LOCAL: %s (jetstream error %d)",
                           natsStatus_GetText(s), (int)jerr);
    r->sub = sub;
    return IBP_OK;
}

/*
 * True when the state loaded from the file covers LOCAL only up to a
 * sequence LOCAL no longer holds (the replica was stopped longer than
 * nats.local_max_age_ms): reading on from there would skip messages the
 * others applied.
 */
static bool own_state_too_old(ibp_replica *r, uint64_t local_seq)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (local_seq == 0 || js_GetStreamInfo(&si, r->js, IBP_STREAM_LOCAL, NULL, &jerr) != NATS_OK)
        return false;
    uint64_t first = si->State.FirstSeq;
    jsStreamInfo_Destroy(si);
    if (first <= local_seq + 1)
        return false;
    IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
            "%s covers LOCAL up to seq %" PRIu64 " but LOCAL now starts at seq %" PRIu64
            ": starting from a checkpoint instead",
            r->state_path, local_seq, first);
    return true;
}

/* ---- start / stop --------------------------------------------------------- */

ibp_status ibp_replica_start(const ibp_replica_opts *opts, ibp_replica **out, ibp_err *err)
{
    ibp_status st;
    natsStatus s;
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
    if (r->opts.checkpoint_ms <= 0)
        r->opts.checkpoint_ms = 30000;
    if (r->opts.bootstrap_retry_ms <= 0)
        r->opts.bootstrap_retry_ms = 5000;
    r->cover_delay_ms = ibp__replica_cover_delay_ms(&r->opts);
    const char *die = getenv("IBP_TEST_REPLICA_DIE_AFTER_SNAPSHOT");
    r->die_after_snapshot = die && strcmp(die, "1") == 0;
    pthread_mutex_init(&r->stats_lock, NULL);
    snprintf(r->state_path, sizeof r->state_path, "%s/consensus.state",
             opts->work_dir ? opts->work_dir : ".");

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.ErrHandler = ibp__replica_on_async_error;
    jo.PublishAsync.ErrHandlerClosure = r;
    if ((s = natsConnection_JetStream(&r->js, opts->nc, &jo)) != NATS_OK) {
        st = ibp_err_set(err, IBP_E_NATS, "replica: jetstream: %s", natsStatus_GetText(s));
        goto fail;
    }
    ibp_bus_stream_opts so_streams = opts->streams;
    so_streams.replicas = opts->stream_replicas > 0 ? opts->stream_replicas : 1;
    so_streams.update_existing = false; /* the daemon's business, at its start */
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
    ibp_replica_prev prev;
    st = ibp_replica_state_load(r->state_path, &opts->vote, &r->engine, r->verifier, &prev, err);
    if (st == IBP_E_NOT_FOUND) {
        r->bootstrapping = true;
    } else if (st != IBP_OK) {
        goto fail;
    }
    ibp_vote_info info;
    if (!r->bootstrapping) {
        ibp_vote_get_info(r->engine, &info);
        if (own_state_too_old(r, info.local_seq)) {
            /* Its sequences go with it: the checkpoint brings the others'. */
            ibp_vote_free(r->engine);
            r->engine = NULL;
            ibp_verifier_free(r->verifier);
            r->verifier = NULL;
            if ((st = ibp_verifier_new(opts->roster, NULL, &r->verifier)) != IBP_OK) {
                ibp_err_set(err, st, "replica: verifier: %s", ibp_strerror(st));
                goto fail;
            }
            r->bootstrapping = true;
        }
    }
    if (r->bootstrapping) {
        /* An empty engine until a checkpoint (or LOCAL from the start) gives it a state. */
        ibp_vote_rc rc = ibp_vote_new(&opts->vote, &r->engine);
        if (rc != IBP_VOTE_OK) {
            st = ibp_err_set(err, IBP_E_CONFIG, "replica: engine: %s", ibp_vote_strerror(rc));
            goto fail;
        }
        size_t n = ibp_roster_count(opts->roster);
        r->refused_verdict = calloc(n ? n : 1, sizeof *r->refused_verdict);
        if (!(r->refused_seq = calloc(n ? n : 1, sizeof *r->refused_seq)) || !r->refused_verdict) {
            st = ibp_err_set(err, IBP_E_NOMEM, "replica: out of memory");
            goto fail;
        }
    }
    ibp_vote_get_info(r->engine, &info);
    r->saved_local_seq = info.local_seq;
    r->stats.epoch = info.epoch; /* the state's, until a message moves it */
    if (r->bootstrapping) {
        IBP_LOG(IBP_LOG_INFO, IBP_REPLICA_COMPONENT,
                "replica started node=%s without a state: looking for a checkpoint",
                ibp_signer_id(opts->signer));
    } else {
        if (info.epoch > 0) {
            /* Its own state says what its epoch statements chain to (the
             * digest is a function of the state at its epoch, ibp/vote.h). */
            r->own_epoch = info.epoch;
            memcpy(r->own_digest, info.digest, sizeof r->own_digest);
            r->own_have_prev = prev.known;
            memcpy(r->own_prev_digest, prev.digest, sizeof r->own_prev_digest);
        }
        if ((st = ibp__replica_start_reading(r, info.local_seq, err)) != IBP_OK)
            goto fail;
        IBP_LOG(IBP_LOG_INFO, IBP_REPLICA_COMPONENT,
                "replica started node=%s epoch=%" PRIu64 " local_seq=%" PRIu64
                " stream_epoch=%" PRIu64,
                ibp_signer_id(opts->signer), info.epoch, info.local_seq, r->last_snap_epoch);
    }
    r->last_heartbeat_ms = r->last_save_ms = r->last_checkpoint_ms = ibp_clock_mono_ms();
    r->republish_check = !r->bootstrapping;
    if (natsStatistics_Create(&r->nats_stats) == NATS_OK &&
        natsConnection_GetStats(opts->nc, r->nats_stats) == NATS_OK)
        natsStatistics_GetCounts(r->nats_stats, NULL, NULL, NULL, NULL, &r->reconnects);
    if (pthread_create(&r->thread, NULL, replica_main, r) != 0) {
        st = ibp_err_set(err, IBP_E_NOMEM, "replica: cannot start its thread");
        goto fail;
    }
    *out = r;
    return IBP_OK;
fail:
    natsStatistics_Destroy(r->nats_stats);
    free(r->refused_verdict);
    free(r->refused_seq);
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
        ibp__replica_side_batch_free(ibp__replica_pending_pop(r));
    persist_state(r, true, false);
    if (r->sub)
        natsSubscription_Unsubscribe(r->sub);
    natsSubscription_Destroy(r->sub);
    ibp_vote_free(r->engine);
    ibp_verifier_free(r->verifier);
    ibp_verifier_free(r->chain_verifier);
    jsCtx_Destroy(r->js);
    natsStatistics_Destroy(r->nats_stats);
    pthread_mutex_destroy(&r->stats_lock);
    free(r->refused_verdict);
    free(r->refused_seq);
    free(r);
}
