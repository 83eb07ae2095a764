/* ResultKey: the plain key, its checks and the canonical order; see ibp/codec_result_key.h. */
#include "ibp/codec_result_key.h"

#include <string.h>

static const char *nz(const char *s)
{
    return s ? s : "";
}

int ibp_codec_key_cmp(const ibp_codec_key *a, const ibp_codec_key *b)
{
    int c;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    if ((c = strcmp(nz(a->check_name), nz(b->check_name))) != 0)
        return c;
    if ((c = strcmp(nz(a->domain), nz(b->domain))) != 0)
        return c;
    if ((c = strcmp(nz(a->endpoint), nz(b->endpoint))) != 0)
        return c;
    if (a->ipv6 != b->ipv6)
        return a->ipv6 ? 1 : -1;
    return strcmp(nz(a->member), nz(b->member));
}

const char *ibp_codec_check_name(ibp_check_type type)
{
    switch (type) {
    case IBP_CHECK_SITE:
        return "site";
    case IBP_CHECK_DOMAIN:
        return "domain";
    case IBP_CHECK_ENDPOINT:
        return "endpoint";
    }
    return "?";
}

static ibp_status check_len(const char *tn, const char *what, size_t len, size_t max,
                            const char *limit, ibp_err *err)
{
    if (len <= max)
        return IBP_OK;
    /* The text itself is not echoed: it comes from outside and may be anything. */
    return ibp_err_set(err, IBP_E_TOO_LARGE,
                       "%s result: %s of %zu bytes is over the limit of %zu (%s)", tn, what, len,
                       max, limit);
}

ibp_status ibp_codec_key_check(const ibp_codec_key *k, ibp_err *err)
{
    const char *tn = ibp_codec_check_name(k->type);
    size_t clen = strlen(nz(k->check_name)), mlen = strlen(nz(k->member));
    size_t dlen = strlen(nz(k->domain)), elen = strlen(nz(k->endpoint));
    ibp_status st;
    if (k->type != IBP_CHECK_SITE && k->type != IBP_CHECK_DOMAIN && k->type != IBP_CHECK_ENDPOINT)
        return ibp_err_set(err, IBP_E_INVAL, "result: unknown check type %d", (int)k->type);
    if ((st = check_len(tn, "check name", clen, IBP_NAME_MAX, "IBP_NAME_MAX", err)) ||
        (st = check_len(tn, "member", mlen, IBP_NAME_MAX, "IBP_NAME_MAX", err)) ||
        (st = check_len(tn, "domain", dlen, IBP_DOMAIN_MAX, "IBP_DOMAIN_MAX", err)) ||
        (st = check_len(tn, "endpoint URL", elen, IBP_URL_MAX, "IBP_URL_MAX", err)))
        return st;
    if (!clen)
        return ibp_err_set(err, IBP_E_INVAL, "%s result: empty check name", tn);
    if (!mlen)
        return ibp_err_set(err, IBP_E_INVAL, "%s result: empty member", tn);
    if (k->type == IBP_CHECK_SITE && (dlen || elen))
        return ibp_err_set(err, IBP_E_INVAL, "site result: has a domain or endpoint");
    if (k->type == IBP_CHECK_DOMAIN && (!dlen || elen))
        return ibp_err_set(err, IBP_E_INVAL, "domain result: needs a domain and no endpoint");
    if (k->type == IBP_CHECK_ENDPOINT && (!dlen || !elen))
        return ibp_err_set(err, IBP_E_INVAL, "endpoint result: needs domain and endpoint");
    return IBP_OK;
}
