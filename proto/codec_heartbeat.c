/* Heartbeat between a plain struct and its payload bytes; see ibp/codec_heartbeat.h. */
#include "ibp/codec_heartbeat.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/pb_bound.h"

ibp_status ibp_codec_heartbeat_encode(const ibp_codec_heartbeat *h, uint8_t **out, size_t *out_len,
                                      ibp_err *err)
{
    Ibp__V1__Heartbeat pb = IBP__V1__HEARTBEAT__INIT;
    pb.epoch = h->epoch;
    pb.local_seq = h->local_seq;
    pb.n_roles = h->nroles;
    pb.roles = (char **)h->roles;
    size_t len = ibp__v1__heartbeat__get_packed_size(&pb);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ibp_err_set(err, IBP_E_NOMEM, "heartbeat: out of memory");
    ibp__v1__heartbeat__pack(&pb, buf);
    *out = buf;
    *out_len = len;
    return IBP_OK;
}

static ibp_status from_pb(const Ibp__V1__Heartbeat *pb, ibp_codec_heartbeat *out, ibp_err *err)
{
    if (pb->n_roles > IBP_CODEC_HEARTBEAT_ROLES_MAX)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "heartbeat: %zu roles, limit %d", pb->n_roles,
                           IBP_CODEC_HEARTBEAT_ROLES_MAX);
    for (size_t i = 0; i < pb->n_roles; i++) {
        size_t n = pb->roles[i] ? strlen(pb->roles[i]) : 0;
        if (n == 0 || n > IBP_CODEC_HEARTBEAT_ROLE_MAX)
            return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                               "heartbeat: role %zu of %zu bytes, must be 1..%d", i, n,
                               IBP_CODEC_HEARTBEAT_ROLE_MAX);
    }
    out->epoch = pb->epoch;
    out->local_seq = pb->local_seq;
    out->roles = (const char *const *)pb->roles;
    out->nroles = pb->n_roles;
    return IBP_OK;
}

ibp_status ibp_codec_heartbeat_decode(const uint8_t *data, size_t len, ibp_codec_heartbeat *out,
                                      ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "heartbeat: no data");
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(&ibp__v1__heartbeat__descriptor, data, len,
                                          IBP_DECODED_MAX_DEFAULT, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_TOO_LARGE, "heartbeat: %zu bytes decode too large", len);
    if (bst != IBP_OK)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "heartbeat: %zu bytes are not one: %s", len,
                           berr.msg);
    Ibp__V1__Heartbeat *pb = ibp__v1__heartbeat__unpack(NULL, len, data);
    if (!pb)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "heartbeat: %zu bytes are not one", len);
    ibp_status st = from_pb(pb, out, err);
    if (st != IBP_OK) {
        ibp__v1__heartbeat__free_unpacked(pb, NULL);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->owned = pb;
    return IBP_OK;
}

ibp_status ibp_codec_heartbeat_decode_verified(const struct ibp_verified *vm,
                                               ibp_codec_heartbeat *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!vm || !vm->envelope || !vm->payload ||
        vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT)
        return ibp_err_set(err, IBP_E_INVAL, "heartbeat: not a Heartbeat envelope");
    ibp_status st = from_pb((const Ibp__V1__Heartbeat *)vm->payload, out, err);
    if (st != IBP_OK)
        memset(out, 0, sizeof *out);
    return st;
}

void ibp_codec_heartbeat_clear(ibp_codec_heartbeat *h)
{
    if (!h)
        return;
    if (h->owned)
        ibp__v1__heartbeat__free_unpacked(h->owned, NULL);
    memset(h, 0, sizeof *h);
}
