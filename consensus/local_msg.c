/* Verified LOCAL envelopes as engine messages; see ibp/local_msg.h. */
#include "ibp/local_msg.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/codec_member_override.h"
#include "ibp/codec_observation_batch.h"
#include "ibp/log.h"

Ibp__V1__Status ibp_local_status_to_wire(ibp_vote_status s)
{
    return s == IBP_VOTE_UP     ? IBP__V1__STATUS__STATUS_UP
           : s == IBP_VOTE_DOWN ? IBP__V1__STATUS__STATUS_DOWN
                                : IBP__V1__STATUS__STATUS_UNSPECIFIED;
}

ibp_vote_status ibp_local_status_from_wire(Ibp__V1__Status s)
{
    return s == IBP__V1__STATUS__STATUS_UP     ? IBP_VOTE_UP
           : s == IBP__V1__STATUS__STATUS_DOWN ? IBP_VOTE_DOWN
                                               : IBP_VOTE_NONE;
}

void ibp_local_key_to_wire(Ibp__V1__ResultKey *out, const ibp_vote_key *k)
{
    ibp__v1__result_key__init(out);
    out->check_type = (Ibp__V1__CheckType)k->type;
    out->check_name = (char *)(k->check_name ? k->check_name : "");
    out->member = (char *)(k->member ? k->member : "");
    out->domain = (char *)(k->domain ? k->domain : "");
    out->endpoint = (char *)(k->endpoint ? k->endpoint : "");
    out->ipv6 = k->ipv6;
}

/* A payload its codec refuses; the engine would have refused it whole as well. */
static ibp_status refused(const ibp_verified *vm, ibp_status st, const ibp_err *err)
{
    if (st != IBP_E_NOMEM)
        IBP_LOG(IBP_LOG_WARN, "replica", "payload refused signer=%s seq=%" PRIu64 " detail=\"%s\"",
                vm->envelope->signer, vm->envelope->seq, err->msg);
    return st;
}

ibp_status ibp_local_msg_from_verified(const ibp_verified *vm, uint64_t local_seq,
                                       int64_t stream_ms, ibp_vote_msg *out, ibp_vote_obs **obs)
{
    ibp_status st;
    ibp_err err = {0};
    memset(out, 0, sizeof *out);
    *obs = NULL;
    out->signer = vm->envelope->signer;
    out->local_seq = local_seq;
    out->stream_ms = stream_ms;
    switch (vm->envelope->type) {
    case IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH: {
        ibp_codec_observation_batch b;
        if ((st = ibp_codec_observation_batch_decode_verified(vm, &b, &err)) != IBP_OK)
            return refused(vm, st, &err);
        ibp_vote_obs *o = calloc(b.nobs ? b.nobs : 1, sizeof *o);
        if (!o) {
            ibp_codec_observation_batch_clear(&b);
            return IBP_E_NOMEM;
        }
        /* The strings stay in vm; the codec's arrays go. */
        for (size_t i = 0; i < b.nobs; i++) {
            const ibp_codec_observation *p = &b.obs[i];
            o[i].key = (ibp_vote_key){(ibp_vote_check)p->key.type,
                                      p->key.check_name,
                                      p->key.member,
                                      p->key.domain,
                                      p->key.endpoint,
                                      p->key.ipv6};
            o[i].status = (ibp_vote_status)p->status;
            o[i].check_time_ms = p->check_time_ms;
            o[i].error = p->error;
            o[i].data_json = p->data_json;
        }
        out->kind = IBP_VOTE_MSG_OBSERVATION_BATCH;
        out->batch_seq = b.batch_seq;
        out->full = b.full;
        out->obs = o;
        out->nobs = b.nobs;
        *obs = o;
        ibp_codec_observation_batch_clear(&b);
        return IBP_OK;
    }
    case IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT:
        /* A heartbeat counts its signer as an active monitor: monitors only. */
        if (!(vm->signer->roles & IBP_ROLE_MONITOR))
            return IBP_E_NOT_FOUND;
        out->kind = IBP_VOTE_MSG_HEARTBEAT;
        return IBP_OK;
    case IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE: {
        ibp_codec_member_override m;
        if ((st = ibp_codec_member_override_decode_verified(vm, &m, &err)) != IBP_OK)
            return refused(vm, st, &err);
        out->kind = IBP_VOTE_MSG_MEMBER_OVERRIDE;
        out->override = (ibp_vote_override){m.member, m.disabled, m.reason};
        ibp_codec_member_override_clear(&m); /* borrowed: frees nothing */
        return IBP_OK;
    }
    default:
        return IBP_E_NOT_FOUND;
    }
}
