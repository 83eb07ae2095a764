/* Event between a plain struct and its payload bytes; see ibp/codec_event.h. */
#include "ibp/codec_event.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/pb_bound.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

static bool status_ok(int s)
{
    return s == IBP_RESULT_UP || s == IBP_RESULT_DOWN;
}

ibp_status ibp_codec_event_encode(const ibp_codec_event *e, uint8_t **out, size_t *out_len,
                                  ibp_err *err)
{
    ibp_status st = IBP_OK;
    Ibp__V1__ResultKey key = IBP__V1__RESULT_KEY__INIT;
    Ibp__V1__Event pb = IBP__V1__EVENT__INIT;
    size_t n = e->nvoters;
    Ibp__V1__Voter *voters = calloc(n ? n : 1, sizeof *voters);
    Ibp__V1__Voter **vp = calloc(n ? n : 1, sizeof *vp);
    uint8_t *buf = NULL;
    if (!voters || !vp) {
        st = ibp_err_set(err, IBP_E_NOMEM, "event: out of memory");
        goto out;
    }
    key.check_type = (Ibp__V1__CheckType)e->key.type;
    key.check_name = (char *)nz(e->key.check_name);
    key.member = (char *)nz(e->key.member);
    key.domain = (char *)nz(e->key.domain);
    key.endpoint = (char *)nz(e->key.endpoint);
    key.ipv6 = e->key.ipv6;
    pb.id = (char *)nz(e->id);
    pb.kind = (Ibp__V1__EventKind)e->kind;
    pb.key = &key;
    pb.status = (Ibp__V1__Status)e->status;
    pb.error = (char *)nz(e->error);
    pb.data_json = (char *)nz(e->data_json);
    pb.time_ms = e->time_ms;
    pb.epoch = e->epoch;
    for (size_t i = 0; i < n; i++) {
        ibp__v1__voter__init(&voters[i]);
        voters[i].node = (char *)nz(e->voters[i].node);
        voters[i].local_seq = e->voters[i].local_seq;
        voters[i].batch_seq = e->voters[i].batch_seq;
        voters[i].status = (Ibp__V1__Status)e->voters[i].status;
        vp[i] = &voters[i];
    }
    pb.n_voters = n;
    pb.voters = vp;
    size_t len = ibp__v1__event__get_packed_size(&pb);
    if (!(buf = malloc(len ? len : 1))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "event: out of memory");
        goto out;
    }
    ibp__v1__event__pack(&pb, buf);
    *out = buf;
    *out_len = len;
out:
    free(vp);
    free(voters);
    return st;
}

/* ---- decode ------------------------------------------------------------- */

struct owned {
    Ibp__V1__Event *pb; /* NULL when borrowed from a verified envelope */
    ibp_codec_voter *voters;
};

static void owned_free(struct owned *o)
{
    if (!o)
        return;
    if (o->pb)
        ibp__v1__event__free_unpacked(o->pb, NULL);
    free(o->voters);
    free(o);
}

void ibp_codec_event_clear(ibp_codec_event *e)
{
    if (!e)
        return;
    owned_free(e->owned);
    memset(e, 0, sizeof *e);
}

/* The key's shape for its kind; messages as persist words them in dead_letters. */
static ibp_status check_key(const Ibp__V1__Event *ev, ibp_err *err)
{
    const Ibp__V1__ResultKey *k = ev->key;
    if (ev->kind == IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE)
        return IBP_OK;
    if (ev->kind != IBP__V1__EVENT_KIND__EVENT_KIND_STATUS &&
        ev->kind != IBP__V1__EVENT_KIND__EVENT_KIND_REMOVED)
        return ibp_err_set(err, IBP_E_INVAL, "Event %.128s has kind %d", ev->id, (int)ev->kind);
    const char *tn;
    switch (k->check_type) {
    case IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE:
        tn = "site";
        break;
    case IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN:
        tn = "domain";
        break;
    case IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT:
        tn = "endpoint";
        break;
    default:
        return ibp_err_set(err, IBP_E_INVAL, "Event %.128s has check type %d", ev->id,
                           (int)k->check_type);
    }
    bool want_domain = k->check_type != IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
    bool want_endpoint = k->check_type == IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    if ((*nz(k->domain) != '\0') != want_domain || (*nz(k->endpoint) != '\0') != want_endpoint)
        return ibp_err_set(err, IBP_E_INVAL,
                           "Event %.128s: a %s key %s a domain and %s an endpoint", ev->id, tn,
                           want_domain ? "needs" : "has no", want_endpoint ? "needs" : "has no");
    return IBP_OK;
}

static ibp_status from_pb(const Ibp__V1__Event *ev, struct owned *o, ibp_codec_event *out,
                          ibp_err *err)
{
    ibp_status st;
    if (!ev->id || !*ev->id)
        return ibp_err_set(err, IBP_E_INVAL, "Event without an id");
    const Ibp__V1__ResultKey *k = ev->key;
    if (!k || !k->member || !*k->member)
        return ibp_err_set(err, IBP_E_INVAL, "Event %.128s has no key or no member", ev->id);
    if (!status_ok(ev->status))
        return ibp_err_set(err, IBP_E_INVAL, "Event %.128s has status %d (neither up nor down)",
                           ev->id, (int)ev->status);
    if ((st = check_key(ev, err)) != IBP_OK)
        return st;
    o->voters = calloc(ev->n_voters ? ev->n_voters : 1, sizeof *o->voters);
    if (!o->voters)
        return ibp_err_set(err, IBP_E_NOMEM, "event: out of memory");
    for (size_t i = 0; i < ev->n_voters; i++) {
        const Ibp__V1__Voter *v = ev->voters[i];
        if (!status_ok(v->status))
            return ibp_err_set(err, IBP_E_INVAL,
                               "Event %.128s: voter %zu has status %d (neither up nor down)",
                               ev->id, i, (int)v->status);
        o->voters[i] = (ibp_codec_voter){nz(v->node), v->local_seq, v->batch_seq,
                                         (ibp_result_status)v->status};
    }
    out->id = ev->id;
    out->kind = (ibp_codec_event_kind)ev->kind;
    out->key = (ibp_codec_key){(ibp_check_type)k->check_type,
                               nz(k->check_name),
                               k->member,
                               nz(k->domain),
                               nz(k->endpoint),
                               k->ipv6};
    out->status = (ibp_result_status)ev->status;
    out->error = nz(ev->error);
    out->data_json = nz(ev->data_json);
    out->time_ms = ev->time_ms;
    out->epoch = ev->epoch;
    out->voters = o->voters;
    out->nvoters = ev->n_voters;
    return IBP_OK;
}

static ibp_status decode_pb(const Ibp__V1__Event *ev, Ibp__V1__Event *owned_pb,
                            ibp_codec_event *out, ibp_err *err)
{
    struct owned *o = calloc(1, sizeof *o);
    if (!o) {
        if (owned_pb)
            ibp__v1__event__free_unpacked(owned_pb, NULL);
        return ibp_err_set(err, IBP_E_NOMEM, "event: out of memory");
    }
    o->pb = owned_pb;
    ibp_status st = from_pb(ev, o, out, err);
    if (st != IBP_OK) {
        owned_free(o);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->owned = o;
    return IBP_OK;
}

ibp_status ibp_codec_event_decode(const uint8_t *data, size_t len, ibp_codec_event *out,
                                  ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "event: no data");
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(&ibp__v1__event__descriptor, data, len,
                                          IBP_DECODED_MAX_DEFAULT, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_TOO_LARGE, "event: %zu bytes decode too large", len);
    if (bst != IBP_OK)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "event: %zu bytes are not an Event: %s", len,
                           berr.msg);
    Ibp__V1__Event *pb = ibp__v1__event__unpack(NULL, len, data);
    if (!pb)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "event: %zu bytes are not an Event", len);
    return decode_pb(pb, pb, out, err);
}

ibp_status ibp_codec_event_decode_verified(const struct ibp_verified *vm, ibp_codec_event *out,
                                           ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!vm || !vm->envelope || !vm->payload ||
        vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT)
        return ibp_err_set(err, IBP_E_INVAL, "event: not an Event envelope");
    return decode_pb((const Ibp__V1__Event *)vm->payload, NULL, out, err);
}
