/*
 * The replica's epoch statements: after computing epoch E (and, when it saw
 * the stored snapshot of E, finding it equal to its own), a replica signs
 * (E, LOCAL sequence, state digest, previous epoch's digest, hash of the
 * snapshot bytes) and publishes it on ibp.official.cosign.<its id> (stream
 * COSIGN). Subscribers apply a snapshot only with statements of a quorum of
 * the roster's consensus nodes (ibp/certificate.h).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/snapshot_encode.h"
#include "ibp/subject.h"
#include "replica_internal.h"

void ibp__replica_cosign_note_epoch(ibp_replica *r, uint64_t epoch, const uint8_t *digest)
{
    if (epoch == 1) {
        memset(r->own_prev_digest, 0, sizeof r->own_prev_digest); /* the empty state's */
        r->own_have_prev = true;
    } else if (r->own_epoch != 0 && epoch == r->own_epoch + 1) {
        memcpy(r->own_prev_digest, r->own_digest, sizeof r->own_prev_digest);
        r->own_have_prev = true;
    } else if (epoch != r->own_epoch) {
        r->own_have_prev = false;
    }
    r->own_epoch = epoch;
    memcpy(r->own_digest, digest, IBP_CERT_DIGEST_BYTES);
}

void ibp__replica_cosign_note_head(ibp_replica *r, const ibp_chain_msg *head)
{
    ibp_vote_info info;
    ibp_vote_get_info(r->engine, &info);
    /* At a start (or a start from a checkpoint) the replica knows its epoch
     * but not the digest that epoch had when it was published (newer check
     * times change the digest without a new epoch): the chain's snapshot of
     * that epoch says. */
    if (info.epoch == 0 || r->own_epoch == info.epoch || !head->valid)
        return;
    if (head->epoch == info.epoch) {
        if (head->digest_len == IBP_CERT_DIGEST_BYTES)
            ibp__replica_cosign_note_epoch(r, head->epoch, head->digest);
        return;
    }
    if (head->epoch < info.epoch || head->epoch - info.epoch >= IBP_REPLICA_COSIGN_BEHIND_MAX)
        return; /* too far behind to sign soon anyway: the first epochs go unsigned */
    ibp_chain_msg snap;
    ibp_err err;
    ibp_err_clear(&err);
    uint64_t want = info.epoch;
    if (ibp__replica_find_snapshots(r, &want, &snap, 1, &err) == IBP_OK && snap.valid &&
        snap.digest_len == IBP_CERT_DIGEST_BYTES)
        ibp__replica_cosign_note_epoch(r, snap.epoch, snap.digest);
}

struct cosign_arg {
    const uint8_t *sealed;
    size_t len;
    uint64_t seq;
    const char *subject;
};

static ibp_status publish_statement(ibp_replica *r, void *arg, ibp_err *err)
{
    struct cosign_arg *a = arg;
    return ibp_bus_publish_envelope(r->js, a->subject,
                                    IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT,
                                    ibp_signer_id(r->opts.signer), a->seq, a->sealed, a->len, NULL,
                                    0, NULL, NULL, err);
}

void ibp__replica_cosign(ibp_replica *r, const ibp_vote_update *u, const uint8_t *snapshot_hash)
{
    ibp_err err;
    ibp_err_clear(&err);
    ibp_epoch_statement s;
    memset(&s, 0, sizeof s);
    s.epoch = u->epoch;
    s.local_seq = u->local_seq;
    memcpy(s.state_digest, u->digest, IBP_CERT_DIGEST_BYTES);
    if (u->epoch == 1) {
        memset(s.prev_digest, 0, IBP_CERT_DIGEST_BYTES); /* the empty state's */
    } else if (r->own_epoch == u->epoch - 1) {
        memcpy(s.prev_digest, r->own_digest, IBP_CERT_DIGEST_BYTES);
    } else if (r->own_epoch == u->epoch && r->own_have_prev) {
        /* The current epoch again (republish_current in replica.c). */
        memcpy(s.prev_digest, r->own_prev_digest, IBP_CERT_DIGEST_BYTES);
    } else {
        IBP_REPLICA_STATS(r, r->stats.statements_skipped++);
        IBP_LOG(IBP_LOG_WARN, IBP_REPLICA_COMPONENT,
                "epoch not co-signed: the digest of epoch %" PRIu64
                " is not known here (this replica last computed epoch %" PRIu64 ") epoch=%" PRIu64,
                u->epoch - 1, r->own_epoch, u->epoch);
        return;
    }
    uint8_t hash[IBP_CERT_DIGEST_BYTES];
    if (snapshot_hash) {
        memcpy(hash, snapshot_hash, sizeof hash);
    } else {
        /* Not published nor raced by this replica: hash its own encoding. */
        uint8_t *payload = NULL;
        size_t plen = 0;
        if (ibp_snapshot_encode(r->engine, u, &payload, &plen, &err) != IBP_OK) {
            IBP_REPLICA_STATS(r, r->stats.statement_failures++);
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                    "epoch not co-signed epoch=%" PRIu64 ": %s", u->epoch, err.msg);
            return;
        }
        ibp_certificate_snapshot_hash(payload, plen, hash);
        free(payload);
    }
    memcpy(s.snapshot_hash, hash, sizeof hash);

    char subject[160];
    uint8_t *sealed = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    ibp_status st = ibp_subject_cosign(ibp_signer_id(r->opts.signer), subject, sizeof subject);
    if (st == IBP_OK)
        st = ibp_certificate_statement_seal(r->opts.signer, &s, ibp_clock_wall_ms(), &sealed, &len,
                                            &seq, &err);
    if (st == IBP_OK) {
        struct cosign_arg a = {sealed, len, seq, subject};
        st = ibp__replica_with_retry(r, "epoch statement", publish_statement, &a);
    }
    free(sealed);
    if (st != IBP_OK) {
        IBP_REPLICA_STATS(r, r->stats.statement_failures++);
        if (!atomic_load(&r->stop))
            IBP_LOG(IBP_LOG_ERROR, IBP_REPLICA_COMPONENT,
                    "epoch statement not published epoch=%" PRIu64 " reason=%s", u->epoch,
                    ibp_status_name(st));
        return;
    }
    IBP_REPLICA_STATS(r, r->stats.statements_published++);
}

bool ibp__replica_cosign_stored(ibp_replica *r, uint64_t epoch, const uint8_t *snapshot_hash)
{
    char subject[160];
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (ibp_subject_cosign(ibp_signer_id(r->opts.signer), subject, sizeof subject) != IBP_OK ||
        js_GetLastMsg(&m, r->js, IBP_STREAM_COSIGN, subject, NULL, &jerr) != NATS_OK)
        return false;
    bool stored = false;
    Ibp__V1__Envelope *env = ibp__v1__envelope__unpack(
        NULL, (size_t)natsMsg_GetDataLength(m), (const uint8_t *)natsMsg_GetData(m));
    ibp_epoch_statement s;
    if (env && env->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EPOCH_STATEMENT &&
        strcmp(env->signer, ibp_signer_id(r->opts.signer)) == 0 &&
        ibp_certificate_statement_decode(env->payload.data, env->payload.len, &s) == IBP_OK)
        stored = s.epoch == epoch &&
                 memcmp(s.snapshot_hash, snapshot_hash, IBP_CERT_DIGEST_BYTES) == 0;
    ibp__v1__envelope__free_unpacked(env, NULL);
    natsMsg_Destroy(m);
    return stored;
}
