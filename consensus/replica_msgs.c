/*
 * The consensus replica's side messages, built: the signed Event of an
 * engine event and the signed status JSON of a change or an override, with
 * their headers and message ids, one by one in ibp__replica_make_side_msg
 * order. Building only: publishing them is replica_side.c's job.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/clock.h"
#include "ibp/codec_event.h"
#include "ibp/local_msg.h"
#include "ibp/result.h"
#include "ibp/status_sig.h"
#include "ibp/subject.h"
#include "replica_internal.h"

_Static_assert(IBP_VOTE_EVENT_STATUS == (int)IBP_CODEC_EVENT_STATUS, "EventKind STATUS");
_Static_assert(IBP_VOTE_EVENT_OVERRIDE == (int)IBP_CODEC_EVENT_OVERRIDE, "EventKind OVERRIDE");
_Static_assert(IBP_VOTE_EVENT_REMOVED == (int)IBP_CODEC_EVENT_REMOVED, "EventKind REMOVED");

/* Builds the signed Event message of ev (with its headers); *out on success. */
static ibp_status make_event_msg(ibp_replica *r, const ibp_vote_event *ev, natsMsg **out,
                                 ibp_err *err)
{
    ibp_codec_voter *voters = calloc(ev->nvotes ? ev->nvotes : 1, sizeof *voters);
    uint8_t *payload = NULL, *sealed = NULL;
    size_t plen = 0, len = 0;
    char subject[1024];
    ibp_status st = ibp_err_set(err, IBP_E_NOMEM, "event: out of memory");
    if (!voters)
        goto out;
    /* The engine's check types, statuses (ibp/types.h) and event kinds (below) have the
     * wire's values. */
    ibp_codec_event e = {
        .id = ev->id,
        .kind = (ibp_codec_event_kind)ev->kind,
        .key = {(ibp_check_type)ev->key.type, ev->key.check_name, ev->key.member, ev->key.domain,
                ev->key.endpoint, ev->key.ipv6},
        .status = (ibp_result_status)ev->status,
        .error = ev->error,
        .data_json = ev->data_json,
        .time_ms = ev->time_ms,
        .epoch = ev->epoch,
        .voters = voters,
        .nvoters = ev->nvotes,
    };
    if (ev->kind == IBP_VOTE_EVENT_OVERRIDE)
        e.key.check_name = "override";
    for (size_t i = 0; i < ev->nvotes; i++)
        voters[i] = (ibp_codec_voter){ev->votes[i].node, ev->votes[i].local_seq,
                                      ev->votes[i].batch_seq,
                                      (ibp_result_status)ev->votes[i].status};
    if ((st = ibp_subject_events(e.key.member ? e.key.member : "", subject, sizeof subject)) !=
        IBP_OK) {
        ibp_err_set(err, st, "event %s: member name does not fit a subject", ev->id);
        goto out;
    }
    if ((st = ibp_codec_event_encode(&e, &payload, &plen, err)) != IBP_OK ||
        (st = ibp_signer_seal_bytes(r->opts.signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT,
                                    payload, plen, ibp_clock_wall_ms(), &sealed, &len, NULL,
                                    err)) != IBP_OK)
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
    free(payload);
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
    char subject[IBP_SUBJECT_STATUS_MAX], msg_id[96];
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

/* The events and status messages of an update, built one by one. */
ibp_status ibp__replica_make_side_msg(ibp_replica *r, const ibp_vote_update *u, size_t i,
                                      natsMsg **out, ibp_err *err)
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

size_t ibp__replica_side_msg_count(const ibp_vote_update *u)
{
    size_t n = u->nevents + u->nchanges;
    for (size_t k = 0; k < u->nevents; k++)
        n += u->events[k].kind == IBP_VOTE_EVENT_OVERRIDE;
    return n;
}
