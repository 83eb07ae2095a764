/* Received official snapshots into the store; see ibp/official_snapshot.h. */
#include "ibp/official_snapshot.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/codec_snapshot.h"

/* The wire's canonical key order (ibp/codec_result_key.h), which the store keeps too. */
static int result_cmp(const void *a, const void *b)
{
    const ibp_result *x = *(ibp_result *const *)a, *y = *(ibp_result *const *)b;
    ibp_codec_key kx = {x->type, x->check_name, x->member, x->domain, x->endpoint, x->ipv6};
    ibp_codec_key ky = {y->type, y->check_name, y->member, y->domain, y->endpoint, y->ipv6};
    return ibp_codec_key_cmp(&kx, &ky);
}

ibp_status ibp_official_snapshot_from_wire(const ibp_codec_snapshot *s, ibp_official_snapshot *out,
                                           ibp_err *err)
{
    ibp_status st = IBP_OK;
    memset(out, 0, sizeof *out);
    if (!s)
        return ibp_err_set(err, IBP_E_INVAL, "snapshot: none");
    out->epoch = s->epoch;
    out->local_seq = s->local_seq;
    out->applied_ms = s->applied_ms;
    out->digest_len = s->digest_len < sizeof out->digest ? s->digest_len : sizeof out->digest;
    if (out->digest_len)
        memcpy(out->digest, s->digest, out->digest_len);

    out->results.items = calloc(s->nentries ? s->nentries : 1, sizeof *out->results.items);
    out->overrides = calloc(s->noverrides ? s->noverrides : 1, sizeof *out->overrides);
    if (!out->results.items || !out->overrides) {
        st = ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < s->nentries; i++) {
        const ibp_codec_snapshot_entry *e = &s->entries[i];
        ibp_result_key k = {(ibp_check_type)e->key.type,
                            e->key.check_name,
                            e->key.member,
                            e->key.domain,
                            e->key.endpoint,
                            e->key.ipv6};
        ibp_err e2;
        ibp_status rst = ibp_result_new(&k, e->status == IBP_RESULT_UP, e->check_time_ms, e->error,
                                        e->data_json, &out->results.items[i], &e2);
        if (rst != IBP_OK) {
            st = ibp_err_set(
                err, rst == IBP_E_TOO_LARGE || rst == IBP_E_NOMEM ? rst : IBP_E_PAYLOAD_DECODE,
                "snapshot epoch %llu: entry %zu: %s", (unsigned long long)s->epoch, i, e2.msg);
            goto fail;
        }
        out->results.count++;
    }
    /* Canonical order (the codec has refused a key given twice); replicas send it so. */
    bool in_order = true;
    for (size_t i = 1; in_order && i < out->results.count; i++)
        in_order = result_cmp(&out->results.items[i - 1], &out->results.items[i]) < 0;
    if (!in_order)
        qsort(out->results.items, out->results.count, sizeof *out->results.items, result_cmp);
    for (size_t i = 0; i < s->noverrides; i++) {
        const ibp_codec_snapshot_override *o = &s->overrides[i];
        if (!o->disabled)
            continue; /* only disabled members are overrides */
        ibp_override *dst = &out->overrides[out->n_overrides];
        dst->member = strdup(o->member);
        dst->reason = strndup(o->reason ? o->reason : "", IBP_ERROR_MAX);
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

ibp_status ibp_official_snapshot_decode(const uint8_t *data, size_t len, ibp_official_snapshot *out,
                                        ibp_err *err)
{
    ibp_codec_snapshot w;
    memset(out, 0, sizeof *out);
    ibp_status st = ibp_codec_snapshot_decode(data, len, &w, err);
    if (st != IBP_OK)
        return st;
    st = ibp_official_snapshot_from_wire(&w, out, err);
    ibp_codec_snapshot_clear(&w);
    return st;
}

ibp_status ibp_official_snapshot_from_verified(const ibp_verified *vm, ibp_official_snapshot *out,
                                               ibp_err *err)
{
    ibp_codec_snapshot w;
    memset(out, 0, sizeof *out);
    ibp_status st = ibp_codec_snapshot_decode_verified(vm, &w, err);
    if (st != IBP_OK)
        return st;
    st = ibp_official_snapshot_from_wire(&w, out, err);
    ibp_codec_snapshot_clear(&w);
    return st;
}

ibp_status ibp_official_snapshot_from_proto(const Ibp__V1__OfficialSnapshot *s,
                                            ibp_official_snapshot *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s)
        return ibp_err_set(err, IBP_E_INVAL, "snapshot: none");
    /* The codec takes a parsed payload only as part of a verified message. */
    Ibp__V1__Envelope env = IBP__V1__ENVELOPE__INIT;
    env.type = IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT;
    ibp_verified vm = {&env, (ProtobufCMessage *)&s->base, NULL};
    return ibp_official_snapshot_from_verified(&vm, out, err);
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
