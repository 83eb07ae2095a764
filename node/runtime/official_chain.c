/* Reading the chain of official snapshots from JetStream; see ibp/official_chain.h. */
#include "ibp/official_chain.h"

#include <string.h>

#include "ibp/certificate.h"
#include "ibp/subject.h"

void ibp_official_chain_from_verified(const ibp_verified *vm, uint64_t seq, ibp_chain_msg *out)
{
    memset(out, 0, sizeof *out);
    out->stream_seq = seq;
    if (vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT) {
        out->why = IBP_E_ROLE_DENIED; /* a signed message of another type */
        return;
    }
    if (!(vm->signer->roles & IBP_ROLE_CONSENSUS)) {
        out->why = IBP_E_ROLE_DENIED;
        return;
    }
    const Ibp__V1__OfficialSnapshot *s = (const Ibp__V1__OfficialSnapshot *)vm->payload;
    if (s->epoch == 0 || s->state_digest.len == 0 || s->state_digest.len > IBP_CHAIN_DIGEST_MAX) {
        out->why = IBP_E_PAYLOAD_DECODE;
        return;
    }
    out->valid = true;
    out->epoch = s->epoch;
    out->local_seq = s->local_seq;
    out->digest_len = s->state_digest.len;
    memcpy(out->digest, s->state_digest.data, s->state_digest.len);
    ibp_certificate_snapshot_hash(vm->envelope->payload.data, vm->envelope->payload.len,
                                  out->payload_hash);
    size_t n = strlen(vm->envelope->signer);
    if (n >= sizeof out->signer)
        n = sizeof out->signer - 1;
    memcpy(out->signer, vm->envelope->signer, n);
    out->signer[n] = '\0';
}

void ibp_official_chain_classify(ibp_verifier *v, const uint8_t *data, size_t len, uint64_t seq,
                                 ibp_chain_msg *out)
{
    ibp_verified vm = {0};
    ibp_err err = {0};
    ibp_status st = ibp_verifier_check_stateless(v, data, len, &vm, &err);
    if (st != IBP_OK) {
        memset(out, 0, sizeof *out);
        out->stream_seq = seq;
        out->why = st;
        return;
    }
    ibp_official_chain_from_verified(&vm, seq, out);
    ibp_verified_clear(&vm);
}

struct fetch_ctx {
    jsCtx *js;
    ibp_verifier *v;
    const char *stream;
    const char *subject;
    natsStatus last_error;
    jsErrCode last_jerr;
};

static ibp_status fetch(void *arg, uint64_t seq, ibp_chain_msg *out)
{
    struct fetch_ctx *c = arg;
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, c->js, c->stream, seq, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return IBP_E_NOT_FOUND;
    if (s != NATS_OK) {
        c->last_error = s;
        c->last_jerr = jerr;
        return IBP_E_NATS;
    }
    if (strcmp(natsMsg_GetSubject(m), c->subject) != 0) {
        memset(out, 0, sizeof *out);
        out->why = IBP_E_NOT_FOUND; /* another subject of the stream: not part of the chain */
        natsMsg_Destroy(m);
        return IBP_E_NOT_FOUND;
    }
    ibp_official_chain_classify(c->v, (const uint8_t *)natsMsg_GetData(m),
                                (size_t)natsMsg_GetDataLength(m), seq, out);
    natsMsg_Destroy(m);
    return IBP_OK;
}

ibp_status ibp_official_chain_head(jsCtx *js, ibp_verifier *v, const char *stream,
                                   const char *subject, ibp_chain_head *out, ibp_err *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "stream info %s: %s (jetstream error %d)", stream,
                           natsStatus_GetText(s), (int)jerr);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq;
    uint64_t msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    if (msgs == 0)
        last = 0;
    struct fetch_ctx c = {js, v, stream, subject, NATS_OK, 0};
    ibp_status st = ibp_chain_find_head(fetch, &c, first, last, IBP_OFFICIAL_CHAIN_SCAN_MAX, out);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "read %s at the end of stream %s: %s (jetstream error %d)",
                           subject, stream, natsStatus_GetText(c.last_error), (int)c.last_jerr);
    return IBP_OK;
}
