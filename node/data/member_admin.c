/*
 * The seed's single updates of the store (ibp/store.h), the contract of an
 * embedder that runs no consensus: one official result at a time
 * (ibp_store_update_official), whole override lists (ibp_store_set_overrides)
 * and member disable and enable, each publishing a new snapshot under the
 * writer lock and emitting its events (a status change; an override change)
 * to opts.event_sink once the lock is released.
 */
#include "ibp/store.h"

#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

ibp_status ibp_store_update_official(ibp_store *s, const ibp_result *r, ibp_err *err)
{
    struct snap *sn = NULL;
    struct pending_events pe = {0};
    ibp_status st = IBP_OK;
    if (!r)
        return ibp_err_set(err, IBP_E_INVAL, "update official: no result");
    struct sres *fresh = ibp__store_sres_new(r);
    if (!fresh)
        return ibp_err_set(err, IBP_E_NOMEM, "update official: out of memory");

    pthread_mutex_lock(&s->wlock);
    struct snap *old = atomic_load(&s->cur);
    if ((st = ibp__store_snap_with_overrides_of(old, &sn)) != IBP_OK)
        goto fail;
    sn->items = calloc(old->n + 1, sizeof *sn->items);
    if (!sn->items) {
        st = IBP_E_NOMEM;
        goto fail;
    }
    /* Position of the key in the sorted items (binary search). */
    size_t lo = 0, hi = old->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ibp__store_sres_cmp(&old->items[mid], &fresh) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct sres *prev =
        (lo < old->n && ibp__store_sres_cmp(&old->items[lo], &fresh) == 0) ? old->items[lo] : NULL;
    for (size_t i = 0; i < lo; i++)
        ibp__store_sres_ref(sn->items[sn->n++] = old->items[i]);
    sn->items[sn->n++] = fresh;
    fresh = NULL;
    for (size_t i = lo + (prev ? 1 : 0); i < old->n; i++)
        ibp__store_sres_ref(sn->items[sn->n++] = old->items[i]);
    if ((st = ibp__store_snap_index(sn)) != IBP_OK)
        goto fail;
    if ((prev && prev->r->up != r->up) || (!prev && !r->up))
        if ((st = ibp__store_pending_add(&pe, r)) != IBP_OK)
            goto fail;
    ibp__store_publish(s, sn);
    pthread_mutex_unlock(&s->wlock);
    ibp__store_pending_deliver(s, &pe);
    return IBP_OK;
fail:
    pthread_mutex_unlock(&s->wlock);
    ibp__store_sres_unref(fresh);
    ibp__store_snap_free(sn);
    free(pe.ev);
    return ibp_err_set(err, st, "update official: %s", ibp_strerror(st));
}

/* Builds and publishes a snapshot with the same results and new overrides. */
static ibp_status replace_overrides(ibp_store *s, struct ovr *ovr, size_t n_ovr)
{
    struct snap *old = atomic_load(&s->cur);
    struct snap *sn = calloc(1, sizeof *sn);
    if (!sn)
        goto nomem;
    sn->epoch = old->epoch;
    sn->ovr = ovr;
    sn->n_ovr = n_ovr;
    ovr = NULL;
    sn->items = calloc(old->n ? old->n : 1, sizeof *sn->items);
    if (!sn->items)
        goto nomem;
    for (size_t i = 0; i < old->n; i++)
        ibp__store_sres_ref(sn->items[sn->n++] = old->items[i]);
    if (ibp__store_snap_index(sn) != IBP_OK)
        goto nomem;
    ibp__store_publish(s, sn);
    return IBP_OK;
nomem:
    if (ovr) {
        for (size_t i = 0; i < n_ovr; i++) {
            free(ovr[i].member);
            free(ovr[i].reason);
        }
        free(ovr);
    }
    ibp__store_snap_free(sn);
    return IBP_E_NOMEM;
}

ibp_status ibp_store_set_overrides(ibp_store *s, const ibp_override *ovr, size_t n, ibp_err *err)
{
    struct ovr *copy = NULL;
    ibp_status st = ibp__store_ovr_copy(ovr, n, &copy);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "set overrides: out of memory");
    size_t w = ibp__store_ovr_sort_dedupe(copy, n); /* one entry per member; the later wins */
    pthread_mutex_lock(&s->wlock);
    st = replace_overrides(s, copy, w);
    pthread_mutex_unlock(&s->wlock);
    return st == IBP_OK ? IBP_OK : ibp_err_set(err, st, "set overrides: out of memory");
}

static ibp_status change_override(ibp_store *s, const char *member, bool disable,
                                  const char *reason, ibp_err *err)
{
    const char *what = disable ? "disable" : "enable";
    if (!member || !*member)
        return ibp_err_set(err, IBP_E_INVAL, "member %s: no member name", what);
    if (s->opts.network && !ibp_network_member_find(s->opts.network, member))
        return ibp_err_set(err, IBP_E_NOT_FOUND,
                           "member %s: '%s' is not a member of the network config", what, member);
    int64_t now = ibp__store_now_ms(s);
    ibp_status st = IBP_OK;
    bool changed = false;

    pthread_mutex_lock(&s->wlock);
    struct snap *old = atomic_load(&s->cur);
    bool is_disabled = ibp__store_snap_find_ovr(old, member) != NULL;
    if (is_disabled != disable) {
        size_t n = old->n_ovr + (disable ? 1 : 0) - (disable ? 0 : 1);
        ibp_override *list = calloc(n + 1, sizeof *list);
        struct ovr *copy = NULL;
        if (!list) {
            st = IBP_E_NOMEM;
        } else {
            size_t w = 0;
            for (size_t i = 0; i < old->n_ovr; i++)
                if (strcmp(old->ovr[i].member, member) != 0)
                    list[w++] =
                        (ibp_override){old->ovr[i].member, old->ovr[i].reason, old->ovr[i].time_ms};
            if (disable)
                list[w++] = (ibp_override){member, reason, now};
            st = ibp__store_ovr_copy(list, w, &copy);
            if (st == IBP_OK) {
                qsort(copy, w, sizeof *copy, ibp__store_ovr_cmp);
                st = replace_overrides(s, copy, w);
            }
            free(list);
        }
        changed = st == IBP_OK;
    }
    pthread_mutex_unlock(&s->wlock);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "member %s '%s': %s", what, member, ibp_strerror(st));
    if (changed && s->opts.event_sink) {
        ibp_event_record ev = {
            .kind = IBP_EVENT_OVERRIDE,
            .type = 0,
            .check_name = IBP_OVERRIDE_CHECK_NAME,
            .member = member,
            .domain = "",
            .endpoint = "",
            .up = !disable,
            .error = disable ? nz(reason) : "",
            .data_json = "",
            .ipv6 = false,
            .time_ms = now,
        };
        s->opts.event_sink(&ev, s->opts.event_user);
    }
    return IBP_OK;
}

ibp_status ibp_store_member_disable(ibp_store *s, const char *member, const char *reason,
                                    ibp_err *err)
{
    return change_override(s, member, true, reason, err);
}

ibp_status ibp_store_member_enable(ibp_store *s, const char *member, ibp_err *err)
{
    return change_override(s, member, false, NULL, err);
}
