/* MemberOverride between a plain struct and its payload bytes; see ibp/codec_member_override.h. */
#include "ibp/codec_member_override.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/codec_result_key.h"
#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/pb_bound.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

ibp_status ibp_codec_member_override_encode(const ibp_codec_member_override *m, uint8_t **out,
                                            size_t *out_len, ibp_err *err)
{
    Ibp__V1__MemberOverride pb = IBP__V1__MEMBER_OVERRIDE__INIT;
    pb.member = (char *)nz(m->member);
    pb.disabled = m->disabled;
    pb.reason = (char *)nz(m->reason);
    size_t len = ibp__v1__member_override__get_packed_size(&pb);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return ibp_err_set(err, IBP_E_NOMEM, "member override: out of memory");
    ibp__v1__member_override__pack(&pb, buf);
    *out = buf;
    *out_len = len;
    return IBP_OK;
}

static ibp_status from_pb(const Ibp__V1__MemberOverride *pb, ibp_codec_member_override *out,
                          ibp_err *err)
{
    const char *member = nz(pb->member), *reason = nz(pb->reason);
    size_t mlen = strlen(member), rlen = strlen(reason);
    if (mlen == 0)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "member override: no member");
    if (mlen > IBP_NAME_MAX)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "member override: member of %zu bytes is over the limit of %d", mlen,
                           IBP_NAME_MAX);
    if (rlen > IBP_ERROR_MAX)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "member override: reason of %zu bytes is over the limit of %d", rlen,
                           IBP_ERROR_MAX);
    out->member = member;
    out->disabled = pb->disabled;
    out->reason = reason;
    return IBP_OK;
}

ibp_status ibp_codec_member_override_decode(const uint8_t *data, size_t len,
                                            ibp_codec_member_override *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "member override: no data");
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(&ibp__v1__member_override__descriptor, data, len,
                                          IBP_DECODED_MAX_DEFAULT, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_TOO_LARGE, "member override: %zu bytes decode too large",
                           len);
    if (bst != IBP_OK)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "member override: %zu bytes are not a MemberOverride: %s", len,
                           berr.msg);
    Ibp__V1__MemberOverride *pb = ibp__v1__member_override__unpack(NULL, len, data);
    if (!pb)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "member override: %zu bytes are not a MemberOverride", len);
    ibp_status st = from_pb(pb, out, err);
    if (st != IBP_OK) {
        ibp__v1__member_override__free_unpacked(pb, NULL);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->owned = pb;
    return IBP_OK;
}

ibp_status ibp_codec_member_override_decode_verified(const struct ibp_verified *vm,
                                                     ibp_codec_member_override *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!vm || !vm->envelope || !vm->payload ||
        vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE)
        return ibp_err_set(err, IBP_E_INVAL, "member override: not a MemberOverride envelope");
    ibp_status st = from_pb((const Ibp__V1__MemberOverride *)vm->payload, out, err);
    if (st != IBP_OK)
        memset(out, 0, sizeof *out);
    return st;
}

void ibp_codec_member_override_clear(ibp_codec_member_override *m)
{
    if (!m)
        return;
    if (m->owned)
        ibp__v1__member_override__free_unpacked(m->owned, NULL);
    memset(m, 0, sizeof *m);
}
