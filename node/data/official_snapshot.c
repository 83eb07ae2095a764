/* Received official snapshots into the store; see ibp/official_snapshot.h. */
#include "ibp/official_snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_at(const Ibp__V1__OfficialSnapshot *s, uint32_t idx, bool *ok)
{
    if (idx >= s->n_strings || !s->strings[idx]) {
        *ok = false;
        return "";
    }
    return s->strings[idx];
}

static int result_cmp(const void *a, const void *b)
{
    const ibp_result *x = *(ibp_result *const *)a, *y = *(ibp_result *const *)b;
    ibp_result_key kx = ibp_result_key_of(x), ky = ibp_result_key_of(y);
    return ibp_result_key_cmp(&kx, &ky);
}

ibp_status ibp_official_snapshot_from_proto(const Ibp__V1__OfficialSnapshot *s,
                                            ibp_official_snapshot *out, ibp_err *err)
{
    ibp_status st = IBP_OK;
    memset(out, 0, sizeof *out);
    if (!s)
        return ibp_err_set(err, IBP_E_INVAL, "snapshot: none");
    if (s->n_strings == 0 || !s->strings[0] || s->strings[0][0] != '\0')
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "snapshot epoch %llu: string table must start with \"\"",
                           (unsigned long long)s->epoch);
    out->epoch = s->epoch;
    out->local_seq = s->local_seq;
    out->applied_ms = s->applied_ms;
    out->digest_len =
        s->state_digest.len < sizeof out->digest ? s->state_digest.len : sizeof out->digest;
    if (out->digest_len)
        memcpy(out->digest, s->state_digest.data, out->digest_len);

    out->results.items = calloc(s->n_entries ? s->n_entries : 1, sizeof *out->results.items);
    out->overrides = calloc(s->n_overrides ? s->n_overrides : 1, sizeof *out->overrides);
    if (!out->results.items || !out->overrides) {
        st = ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < s->n_entries; i++) {
        const Ibp__V1__SnapshotEntry *e = s->entries[i];
        bool ok = true;
        ibp_result_key k = {
            .type = (ibp_check_type)e->check_type,
            .check_name = str_at(s, e->check_name, &ok),
            .member = str_at(s, e->member, &ok),
            .domain = str_at(s, e->domain, &ok),
            .endpoint = str_at(s, e->endpoint, &ok),
            .ipv6 = e->ipv6,
        };
        char url[IBP_URL_MAX + 1];
        if (e->endpoint_scheme != 0) {
            /* Split form: scheme + domain + path (see SnapshotEntry). */
            int n = snprintf(url, sizeof url, "%s%s%s", str_at(s, e->endpoint_scheme, &ok),
                             k.domain, str_at(s, e->endpoint_path, &ok));
            if (e->endpoint != 0 || n < 0 || (size_t)n >= sizeof url)
                ok = false;
            k.endpoint = url;
        }
        const char *error = str_at(s, e->error, &ok);
        const char *data = str_at(s, e->data_json, &ok);
        if (!ok) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: entry %zu: string index out of range",
                             (unsigned long long)s->epoch, i);
            goto fail;
        }
        if (e->status != IBP__V1__STATUS__STATUS_UP && e->status != IBP__V1__STATUS__STATUS_DOWN) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: entry %zu: status %d is neither up nor down",
                             (unsigned long long)s->epoch, i, (int)e->status);
            goto fail;
        }
        ibp_err e2;
        ibp_status rst = ibp_result_new(&k, e->status == IBP__V1__STATUS__STATUS_UP,
                                        e->check_time_ms, error, data, &out->results.items[i], &e2);
        if (rst != IBP_OK) {
            /* A string over its cap keeps its own status; the message names the limit. */
            st = ibp_err_set(err, rst == IBP_E_TOO_LARGE ? rst : IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: entry %zu: %s", (unsigned long long)s->epoch, i,
                             e2.msg);
            goto fail;
        }
        out->results.count++;
    }
    qsort(out->results.items, out->results.count, sizeof *out->results.items, result_cmp);
    for (size_t i = 1; i < out->results.count; i++) {
        if (result_cmp(&out->results.items[i - 1], &out->results.items[i]) == 0) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "snapshot epoch %llu: a key appears twice",
                             (unsigned long long)s->epoch);
            goto fail;
        }
    }
    for (size_t i = 0; i < s->n_overrides; i++) {
        const Ibp__V1__SnapshotOverride *o = s->overrides[i];
        bool ok = true;
        const char *member = str_at(s, o->member, &ok);
        const char *reason = str_at(s, o->reason, &ok);
        if (!ok || !*member) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: override %zu: bad member",
                             (unsigned long long)s->epoch, i);
            goto fail;
        }
        size_t mlen = strlen(member);
        if (mlen > IBP_NAME_MAX) {
            st = ibp_err_set(err, IBP_E_TOO_LARGE,
                             "snapshot epoch %llu: override %zu: member of %zu bytes is over the "
                             "limit of %d (IBP_NAME_MAX)",
                             (unsigned long long)s->epoch, i, mlen, IBP_NAME_MAX);
            goto fail;
        }
        if (!o->disabled)
            continue; /* only disabled members are overrides */
        for (size_t j = 0; j < out->n_overrides; j++) {
            if (strcmp(out->overrides[j].member, member) == 0) {
                st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                                 "snapshot epoch %llu: member %s overridden twice",
                                 (unsigned long long)s->epoch, member);
                goto fail;
            }
        }
        ibp_override *dst = &out->overrides[out->n_overrides];
        dst->member = strdup(member);
        dst->reason = strndup(reason, IBP_ERROR_MAX);
        dst->time_ms = s->applied_ms;
        if (!dst->member || !dst->reason) {
            free((char *)dst->member);
            free((char *)dst->reason);
            st = ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
            goto fail;
        }
        out->n_overrides++;
    }
    return IBP_OK;
fail:
    ibp_official_snapshot_clear(out);
    return st;
}

ibp_status ibp_official_snapshot_apply(ibp_store *store, const ibp_official_snapshot *snap,
                                       ibp_err *err)
{
    return ibp_store_set_snapshot(store, (const ibp_result *const *)snap->results.items,
                                  snap->results.count, snap->overrides, snap->n_overrides,
                                  snap->epoch, false, err);
}

void ibp_official_snapshot_clear(ibp_official_snapshot *snap)
{
    if (!snap)
        return;
    ibp_result_list_free(&snap->results);
    ibp_store_overrides_free(snap->overrides, snap->n_overrides);
    memset(snap, 0, sizeof *snap);
}
