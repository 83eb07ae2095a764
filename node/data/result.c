/* Check results; see ibp/result.h. */
#include "ibp/result.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/ibp.pb-c.h"

/* ibp_check_type and ibp_result_status (ibp/types.h) convert to and from the wire's enums by value.
 */
_Static_assert(IBP_CHECK_SITE == (int)IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE, "CheckType SITE");
_Static_assert(IBP_CHECK_DOMAIN == (int)IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN, "CheckType DOMAIN");
_Static_assert(IBP_CHECK_ENDPOINT == (int)IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT,
               "CheckType ENDPOINT");
_Static_assert(IBP_RESULT_NONE == (int)IBP__V1__STATUS__STATUS_UNSPECIFIED, "Status UNSPECIFIED");
_Static_assert(IBP_RESULT_UP == (int)IBP__V1__STATUS__STATUS_UP, "Status UP");
_Static_assert(IBP_RESULT_DOWN == (int)IBP__V1__STATUS__STATUS_DOWN, "Status DOWN");

const char *ibp_check_type_name(ibp_check_type type)
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

ibp_status ibp_check_type_parse(const char *name, ibp_check_type *out)
{
    static const ibp_check_type all[] = {IBP_CHECK_SITE, IBP_CHECK_DOMAIN, IBP_CHECK_ENDPOINT};
    for (size_t i = 0; name && i < 3; i++) {
        if (strcmp(name, ibp_check_type_name(all[i])) == 0) {
            *out = all[i];
            return IBP_OK;
        }
    }
    return IBP_E_INVAL;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Checks one string of a key against its cap; see ibp_result_new. */
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

/* Checks the shape of a key against its type; see ibp_result_new. */
static ibp_status check_key(const ibp_result_key *k, ibp_err *err)
{
    const char *tn = ibp_check_type_name(k->type);
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
        return ibp_err_set(err, IBP_E_INVAL, "%s result '%s': empty member", tn, k->check_name);
    if (k->type == IBP_CHECK_SITE && (dlen || elen))
        return ibp_err_set(err, IBP_E_INVAL, "site result '%s': has a domain or endpoint",
                           k->check_name);
    if (k->type == IBP_CHECK_DOMAIN && (!dlen || elen))
        return ibp_err_set(err, IBP_E_INVAL, "domain result '%s': needs a domain and no endpoint",
                           k->check_name);
    if (k->type == IBP_CHECK_ENDPOINT && (!dlen || !elen))
        return ibp_err_set(err, IBP_E_INVAL, "endpoint result '%s': needs domain and endpoint",
                           k->check_name);
    return IBP_OK;
}

static ibp_status check_data(const char *data, ibp_err *err)
{
    size_t len = strlen(data);
    if (len == 0)
        return IBP_OK;
    if (len > IBP_DATA_MAX)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "result data: %zu bytes of JSON is over the limit of %d (IBP_DATA_MAX)",
                           len, IBP_DATA_MAX);
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    int ok = json_is_object(j);
    json_decref(j);
    if (!ok)
        return ibp_err_set(err, IBP_E_INVAL, "result data: not a JSON object");
    return IBP_OK;
}

ibp_status ibp_result_new(const ibp_result_key *key, bool up, int64_t check_time_ms,
                          const char *error, const char *data_json, ibp_result **out, ibp_err *err)
{
    ibp_status st;
    if (!key || !out)
        return ibp_err_set(err, IBP_E_INVAL, "result: no key");
    if ((st = check_key(key, err)) != IBP_OK || (st = check_data(nz(data_json), err)) != IBP_OK)
        return st;
    ibp_result *r = calloc(1, sizeof *r);
    if (!r)
        return ibp_err_set(err, IBP_E_NOMEM, "result: out of memory");
    r->type = key->type;
    r->ipv6 = key->ipv6;
    r->up = up;
    r->check_time_ms = check_time_ms;
    r->check_name = strdup(key->check_name);
    r->member = strdup(key->member);
    r->domain = strdup(nz(key->domain));
    r->endpoint = strdup(nz(key->endpoint));
    r->error = strndup(nz(error), IBP_ERROR_MAX);
    r->data_json = strdup(nz(data_json));
    if (!r->check_name || !r->member || !r->domain || !r->endpoint || !r->error || !r->data_json) {
        ibp_result_free(r);
        return ibp_err_set(err, IBP_E_NOMEM, "result: out of memory");
    }
    *out = r;
    return IBP_OK;
}

ibp_result *ibp_result_dup(const ibp_result *r)
{
    ibp_result *c = NULL;
    if (!r)
        return NULL;
    ibp_result_key k = ibp_result_key_of(r);
    /* The source was validated when made; copy without re-parsing its data. */
    c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    *c = *r;
    c->check_name = strdup(k.check_name);
    c->member = strdup(k.member);
    c->domain = strdup(k.domain);
    c->endpoint = strdup(k.endpoint);
    c->error = strdup(r->error);
    c->data_json = strdup(r->data_json);
    if (!c->check_name || !c->member || !c->domain || !c->endpoint || !c->error || !c->data_json) {
        ibp_result_free(c);
        return NULL;
    }
    return c;
}

void ibp_result_free(ibp_result *r)
{
    if (!r)
        return;
    free(r->check_name);
    free(r->member);
    free(r->domain);
    free(r->endpoint);
    free(r->error);
    free(r->data_json);
    free(r);
}

ibp_result_key ibp_result_key_of(const ibp_result *r)
{
    ibp_result_key k = {r->type, r->check_name, r->member, r->domain, r->endpoint, r->ipv6};
    return k;
}

int ibp_result_key_cmp(const ibp_result_key *a, const ibp_result_key *b)
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

ibp_status ibp_domain_normalize(const char *domain, char *buf, size_t cap)
{
    size_t n = strlen(nz(domain));
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n > IBP_DOMAIN_MAX || n + 1 > cap)
        return IBP_E_RANGE;
    for (size_t i = 0; i < n; i++) {
        char c = domain[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[n] = '\0';
    return IBP_OK;
}

void ibp_result_list_free(ibp_result_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        ibp_result_free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}
