/*
 * The official side of the store (ibp/store.h): immutable RCU snapshots of
 * the consensus results and the member overrides, replaced whole
 * (ibp_store_set_official, ibp_store_set_snapshot), and the readers.
 *
 * Member status is answered from two hash indexes built with each snapshot:
 * per member (overridden, site down over IPv4, site down over IPv6) and the
 * set of (member, normalised domain, family) with any down domain or
 * endpoint result. A query is two lookups, no lock and no allocation.
 */
#include "ibp/store.h"

#include <stdlib.h>
#include <string.h>

#include "ibp/vec.h"
#include "store_internal.h"

/* ---- shared results ----------------------------------------------------- */

struct sres *ibp__store_sres_new(const ibp_result *r)
{
    struct sres *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    s->r = ibp_result_dup(r);
    if (!s->r) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    ibp_result_key k = ibp_result_key_of(s->r);
    s->hash = key_hash(&k);
    return s;
}

void ibp__store_sres_ref(struct sres *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void ibp__store_sres_unref(struct sres *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        ibp_result_free(s->r);
        free(s);
    }
}

int ibp__store_sres_cmp(const void *a, const void *b)
{
    const struct sres *x = *(struct sres *const *)a, *y = *(struct sres *const *)b;
    ibp_result_key kx = ibp_result_key_of(x->r), ky = ibp_result_key_of(y->r);
    return ibp_result_key_cmp(&kx, &ky);
}

/* ---- snapshots ---------------------------------------------------------- */

void ibp__store_snap_free(struct snap *sn)
{
    if (!sn)
        return;
    for (size_t i = 0; i < sn->n; i++)
        ibp__store_sres_unref(sn->items[i]);
    free(sn->items);
    for (size_t i = 0; i < sn->n_ovr; i++) {
        free(sn->ovr[i].member);
        free(sn->ovr[i].reason);
    }
    free(sn->ovr);
    if (sn->dd)
        for (size_t i = 0; i <= sn->dd_mask; i++)
            free(sn->dd[i].ndomain);
    free(sn->dd);
    free(sn->ms);
    free(sn->kidx);
    free(sn);
}

static struct mslot *ms_slot(struct mslot *ms, size_t mask, const char *member, uint64_t h)
{
    for (size_t i = h & mask;; i = (i + 1) & mask)
        if (!ms[i].member || (ms[i].hash == h && strcmp(ms[i].member, member) == 0))
            return &ms[i];
}

static struct dslot *dd_slot(struct dslot *dd, size_t mask, const char *member, const char *ndomain,
                             bool ipv6, uint64_t h)
{
    for (size_t i = h & mask;; i = (i + 1) & mask)
        if (!dd[i].member ||
            (dd[i].hash == h && dd[i].ipv6 == ipv6 && strcmp(dd[i].member, member) == 0 &&
             strcmp(dd[i].ndomain, ndomain) == 0))
            return &dd[i];
}

/*
 * Builds the indexes of a snapshot whose items and overrides are set.
 * On failure the snapshot is left for ibp__store_snap_free.
 */
ibp_status ibp__store_snap_index(struct snap *sn)
{
    size_t kcap = table_cap(sn->n), mcap = table_cap(sn->n + sn->n_ovr);
    sn->kidx = calloc(kcap, sizeof *sn->kidx);
    sn->ms = calloc(mcap, sizeof *sn->ms);
    sn->dd = calloc(kcap, sizeof *sn->dd);
    if (!sn->kidx || !sn->ms || !sn->dd)
        return IBP_E_NOMEM;
    sn->kmask = kcap - 1;
    sn->ms_mask = mcap - 1;
    sn->dd_mask = kcap - 1;

    for (size_t i = 0; i < sn->n; i++) {
        const struct sres *s = sn->items[i];
        size_t j = s->hash & sn->kmask;
        while (sn->kidx[j])
            j = (j + 1) & sn->kmask;
        sn->kidx[j] = (uint32_t)(i + 1);

        const ibp_result *r = s->r;
        if (r->up)
            continue;
        if (r->type == IBP_CHECK_SITE) {
            uint64_t h = member_hash(r->member);
            struct mslot *m = ms_slot(sn->ms, sn->ms_mask, r->member, h);
            m->member = r->member;
            m->hash = h;
            m->flags |= r->ipv6 ? MS_SITE_DOWN_V6 : MS_SITE_DOWN_V4;
        } else {
            char nd[IBP_DOMAIN_MAX + 1];
            if (ibp_domain_normalize(r->domain, nd, sizeof nd) != IBP_OK)
                continue; /* cannot happen: results are validated */
            uint64_t h = member_domain_hash(r->member, nd, r->ipv6);
            struct dslot *d = dd_slot(sn->dd, sn->dd_mask, r->member, nd, r->ipv6, h);
            if (d->member)
                continue;
            if (!(d->ndomain = strdup(nd)))
                return IBP_E_NOMEM;
            d->member = r->member;
            d->hash = h;
            d->ipv6 = r->ipv6;
        }
    }
    for (size_t i = 0; i < sn->n_ovr; i++) {
        uint64_t h = member_hash(sn->ovr[i].member);
        struct mslot *m = ms_slot(sn->ms, sn->ms_mask, sn->ovr[i].member, h);
        m->member = sn->ovr[i].member;
        m->hash = h;
        m->flags |= MS_OVERRIDDEN;
    }
    return IBP_OK;
}

const struct sres *ibp__store_snap_find(const struct snap *sn, const ibp_result_key *k)
{
    uint64_t h = key_hash(k);
    for (size_t j = h & sn->kmask; sn->kidx[j]; j = (j + 1) & sn->kmask) {
        const struct sres *s = sn->items[sn->kidx[j] - 1];
        if (s->hash == h && key_equal(k, s->r))
            return s;
    }
    return NULL;
}

ibp_status ibp__store_ovr_copy(const ibp_override *src, size_t n, struct ovr **out)
{
    struct ovr *o = calloc(n ? n : 1, sizeof *o);
    if (!o)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        o[i].member = strdup(nz(src[i].member));
        o[i].reason = strdup(nz(src[i].reason));
        o[i].time_ms = src[i].time_ms;
        if (!o[i].member || !o[i].reason) {
            for (size_t j = 0; j <= i; j++) {
                free(o[j].member);
                free(o[j].reason);
            }
            free(o);
            return IBP_E_NOMEM;
        }
    }
    *out = o;
    return IBP_OK;
}

int ibp__store_ovr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ovr *)a)->member, ((const struct ovr *)b)->member);
}

const struct ovr *ibp__store_snap_find_ovr(const struct snap *sn, const char *member)
{
    struct ovr key = {(char *)member, NULL, 0};
    return sn->n_ovr ? bsearch(&key, sn->ovr, sn->n_ovr, sizeof key, ibp__store_ovr_cmp) : NULL;
}

/* ---- writers ------------------------------------------------------------ */

/* Swaps in sn (under wlock), waits out the readers of the old one, frees it. */
void ibp__store_publish(ibp_store *s, struct snap *sn)
{
    struct snap *old = atomic_exchange(&s->cur, sn);
    ibp_rcu_synchronize(&s->rcu);
    ibp__store_snap_free(old);
}

ibp_status ibp__store_pending_add(struct pending_events *pe, const ibp_result *r)
{
    if (pe->n == pe->cap) {
        ibp_event_record *nev = ibp_grow(pe->ev, &pe->cap, pe->n + 1, sizeof *nev);
        if (!nev)
            return IBP_E_NOMEM;
        pe->ev = nev;
    }
    ibp_event_record *e = &pe->ev[pe->n++];
    e->kind = IBP_EVENT_STATUS;
    e->type = r->type;
    e->check_name = r->check_name;
    e->member = r->member;
    e->domain = r->domain;
    e->endpoint = r->endpoint;
    e->up = r->up;
    e->error = r->error;
    e->data_json = r->data_json;
    e->ipv6 = r->ipv6;
    e->time_ms = r->check_time_ms;
    return IBP_OK;
}

void ibp__store_pending_deliver(ibp_store *s, struct pending_events *pe)
{
    if (s->opts.event_sink)
        for (size_t i = 0; i < pe->n; i++)
            s->opts.event_sink(&pe->ev[i], s->opts.event_user);
    free(pe->ev);
}

/* A new snapshot with the old one's overrides (copied) and epoch. */
ibp_status ibp__store_snap_with_overrides_of(const struct snap *old, struct snap **out)
{
    struct snap *sn = calloc(1, sizeof *sn);
    if (!sn)
        return IBP_E_NOMEM;
    sn->epoch = old->epoch;
    ibp_override *tmp = calloc(old->n_ovr ? old->n_ovr : 1, sizeof *tmp);
    if (!tmp) {
        free(sn);
        return IBP_E_NOMEM;
    }
    for (size_t i = 0; i < old->n_ovr; i++)
        tmp[i] = (ibp_override){old->ovr[i].member, old->ovr[i].reason, old->ovr[i].time_ms};
    ibp_status st = ibp__store_ovr_copy(tmp, old->n_ovr, &sn->ovr);
    free(tmp);
    if (st != IBP_OK) {
        free(sn);
        return st;
    }
    sn->n_ovr = old->n_ovr;
    *out = sn;
    return IBP_OK;
}

/* Sorts overrides by member and keeps the last of each member; returns the count. */
size_t ibp__store_ovr_sort_dedupe(struct ovr *o, size_t n)
{
    /* Stable by position: sort (member, position) using time_ms-free indices. */
    for (size_t i = 1; i < n; i++) {
        struct ovr cur = o[i];
        size_t j = i;
        while (j > 0 && strcmp(o[j - 1].member, cur.member) > 0) {
            o[j] = o[j - 1];
            j--;
        }
        o[j] = cur;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w > 0 && strcmp(o[w - 1].member, o[i].member) == 0) {
            free(o[w - 1].member);
            free(o[w - 1].reason);
            o[w - 1] = o[i]; /* the later one wins */
            continue;
        }
        o[w++] = o[i];
    }
    return w;
}

/* set_official and set_snapshot: replace the results, and the overrides when ovr != NULL. */
static ibp_status set_state(ibp_store *s, const ibp_result *const *results, size_t n,
                            const ibp_override *ovr, size_t n_ovr, uint64_t epoch, bool emit_events,
                            ibp_err *err)
{
    struct snap *sn = NULL;
    struct pending_events pe = {0};
    ibp_status st = IBP_OK;
    for (size_t i = 0; i < n; i++)
        if (!results[i])
            return ibp_err_set(err, IBP_E_INVAL, "set official: result %zu is NULL", i);

    pthread_mutex_lock(&s->wlock);
    struct snap *old = atomic_load(&s->cur);
    if (ovr) {
        if (!(sn = calloc(1, sizeof *sn)) ||
            (st = ibp__store_ovr_copy(ovr, n_ovr, &sn->ovr)) != IBP_OK) {
            st = IBP_E_NOMEM;
            goto fail;
        }
        sn->n_ovr = ibp__store_ovr_sort_dedupe(sn->ovr, n_ovr);
    } else if ((st = ibp__store_snap_with_overrides_of(old, &sn)) != IBP_OK) {
        goto fail;
    }
    sn->epoch = epoch;
    sn->items = calloc(n ? n : 1, sizeof *sn->items);
    if (!sn->items) {
        st = IBP_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(sn->items[sn->n] = ibp__store_sres_new(results[i]))) {
            st = IBP_E_NOMEM;
            goto fail;
        }
        sn->n++;
    }
    /* Sort, then keep the last of each run of equal keys. qsort is not stable,
     * so ties are decided by input position, kept in the hash field meanwhile. */
    for (size_t i = 0; i < sn->n; i++)
        sn->items[i]->hash = i;
    qsort(sn->items, sn->n, sizeof *sn->items, ibp__store_sres_cmp);
    size_t w = 0;
    for (size_t i = 0; i < sn->n; i++) {
        if (w > 0 && ibp__store_sres_cmp(&sn->items[w - 1], &sn->items[i]) == 0) {
            struct sres *keep =
                sn->items[w - 1]->hash > sn->items[i]->hash ? sn->items[w - 1] : sn->items[i];
            struct sres *drop = keep == sn->items[i] ? sn->items[w - 1] : sn->items[i];
            sn->items[w - 1] = keep;
            ibp__store_sres_unref(drop);
            continue;
        }
        sn->items[w++] = sn->items[i];
    }
    sn->n = w;
    for (size_t i = 0; i < sn->n; i++) {
        ibp_result_key k = ibp_result_key_of(sn->items[i]->r);
        sn->items[i]->hash = key_hash(&k);
    }
    if ((st = ibp__store_snap_index(sn)) != IBP_OK)
        goto fail;
    if (emit_events && s->opts.event_sink) {
        for (size_t i = 0; i < sn->n; i++) {
            const ibp_result *r = sn->items[i]->r;
            ibp_result_key k = ibp_result_key_of(r);
            const struct sres *prev = ibp__store_snap_find(old, &k);
            if ((prev && prev->r->up != r->up) || (!prev && !r->up)) {
                /* Point the event at the caller's copy, which outlives the swap. */
                const ibp_result *src = NULL;
                for (size_t j = n; j-- > 0 && !src;)
                    if (key_equal(&k, results[j]))
                        src = results[j];
                if ((st = ibp__store_pending_add(&pe, src)) != IBP_OK)
                    goto fail;
            }
        }
    }
    ibp__store_publish(s, sn);
    pthread_mutex_unlock(&s->wlock);
    ibp__store_pending_deliver(s, &pe);
    return IBP_OK;
fail:
    pthread_mutex_unlock(&s->wlock);
    ibp__store_snap_free(sn);
    free(pe.ev);
    return ibp_err_set(err, st, "set official: %s", ibp_strerror(st));
}

ibp_status ibp_store_set_official(ibp_store *s, const ibp_result *const *results, size_t n,
                                  uint64_t epoch, bool emit_events, ibp_err *err)
{
    return set_state(s, results, n, NULL, 0, epoch, emit_events, err);
}

ibp_status ibp_store_set_snapshot(ibp_store *s, const ibp_result *const *results, size_t n,
                                  const ibp_override *ovr, size_t n_ovr, uint64_t epoch,
                                  bool emit_events, ibp_err *err)
{
    static const ibp_override none[1];
    return set_state(s, results, n, ovr ? ovr : none, ovr ? n_ovr : 0, epoch, emit_events, err);
}

/* ---- readers ------------------------------------------------------------ */

bool ibp_store_member_overridden(ibp_store *s, const char *member)
{
    IBP_STORE_READ_BEGIN(s, sn);
    bool r = ibp__store_snap_find_ovr(sn, nz(member)) != NULL;
    IBP_STORE_READ_END(s);
    return r;
}

static bool snap_member_online(const struct snap *sn, const char *ndomain, const char *member,
                               bool ipv6)
{
    uint64_t h = member_hash(member);
    const struct mslot *m = ms_slot(sn->ms, sn->ms_mask, member, h);
    if (m->member) {
        if (m->flags & MS_OVERRIDDEN)
            return false;
        if (m->flags & (ipv6 ? MS_SITE_DOWN_V6 : MS_SITE_DOWN_V4))
            return false;
    }
    uint64_t dh = member_domain_hash(member, ndomain, ipv6);
    return dd_slot(sn->dd, sn->dd_mask, member, ndomain, ipv6, dh)->member == NULL;
}

bool ibp_store_member_online(ibp_store *s, const char *domain, const char *member, bool ipv6)
{
    char nd[IBP_DOMAIN_MAX + 2];
    if (ibp_domain_normalize(domain, nd, sizeof nd) != IBP_OK)
        nd[0] = '\0'; /* longer than any domain: no domain result can match it */
    IBP_STORE_READ_BEGIN(s, sn);
    bool online = snap_member_online(sn, nd, nz(member), ipv6);
    IBP_STORE_READ_END(s);
    return online;
}

void ibp_store_online_members(ibp_store *s, const char *domain, bool ipv6,
                              const char *const *candidates, size_t n, const char **online,
                              size_t *n_online, bool *last_resort)
{
    char nd[IBP_DOMAIN_MAX + 2];
    size_t k = 0;
    if (ibp_domain_normalize(domain, nd, sizeof nd) != IBP_OK)
        nd[0] = '\0';
    IBP_STORE_READ_BEGIN(s, sn);
    for (size_t i = 0; i < n; i++)
        if (snap_member_online(sn, nd, nz(candidates[i]), ipv6))
            online[k++] = candidates[i];
    IBP_STORE_READ_END(s);
    *last_resort = (k == 0 && n > 0);
    if (*last_resort) {
        for (size_t i = 0; i < n; i++)
            online[i] = candidates[i];
        k = n;
    }
    *n_online = k;
}

ibp_status ibp_store_online_members_for_domain(ibp_store *s, const char *domain, bool ipv6,
                                               const char **online, size_t cap, size_t *n_online,
                                               bool *last_resort)
{
    const ibp_network *net = s->opts.network;
    char nd[IBP_DOMAIN_MAX + 2];
    if (!net)
        return IBP_E_INVAL;
    if (ibp_domain_normalize(domain, nd, sizeof nd) != IBP_OK || !ibp_network_domain_find(net, nd))
        return IBP_E_NOT_FOUND;
    size_t total = ibp_network_member_count(net), n = 0;
    const char **cands = calloc(total ? total : 1, sizeof *cands);
    if (!cands)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < total; i++) {
        const ibp_network_member *m = ibp_network_member_at(net, i);
        if (ibp_network_member_serves_domain(net, m, nd))
            cands[n++] = m->name;
    }
    if (n > cap) {
        free(cands);
        return IBP_E_RANGE;
    }
    ibp_store_online_members(s, nd, ipv6, cands, n, online, n_online, last_resort);
    free(cands);
    return IBP_OK;
}

ibp_status ibp_store_official_get(ibp_store *s, const ibp_result_key *key, ibp_result **out)
{
    ibp_status st = IBP_E_NOT_FOUND;
    IBP_STORE_READ_BEGIN(s, sn);
    const struct sres *r = ibp__store_snap_find(sn, key);
    if (r) {
        *out = ibp_result_dup(r->r);
        st = *out ? IBP_OK : IBP_E_NOMEM;
    }
    IBP_STORE_READ_END(s);
    return st;
}

void ibp_store_official_status(ibp_store *s, const ibp_result_key *key, bool *found, bool *up)
{
    IBP_STORE_READ_BEGIN(s, sn);
    const struct sres *r = ibp__store_snap_find(sn, key);
    *found = r != NULL;
    if (r)
        *up = r->r->up;
    IBP_STORE_READ_END(s);
}

ibp_status ibp_store_official_all(ibp_store *s, ibp_result_list *out)
{
    ibp_status st = IBP_OK;
    ibp_result_list list = {0};
    IBP_STORE_READ_BEGIN(s, sn);
    list.items = calloc(sn->n ? sn->n : 1, sizeof *list.items);
    if (!list.items)
        st = IBP_E_NOMEM;
    for (size_t i = 0; st == IBP_OK && i < sn->n; i++) {
        if (!(list.items[i] = ibp_result_dup(sn->items[i]->r)))
            st = IBP_E_NOMEM;
        else
            list.count++;
    }
    IBP_STORE_READ_END(s);
    if (st != IBP_OK) {
        ibp_result_list_free(&list);
        return st;
    }
    *out = list;
    return IBP_OK;
}

ibp_status ibp_store_overrides(ibp_store *s, ibp_override **out, size_t *n)
{
    ibp_status st = IBP_OK;
    ibp_override *list = NULL;
    size_t count = 0;
    IBP_STORE_READ_BEGIN(s, sn);
    list = calloc(sn->n_ovr ? sn->n_ovr : 1, sizeof *list);
    if (!list)
        st = IBP_E_NOMEM;
    for (size_t i = 0; st == IBP_OK && i < sn->n_ovr; i++) {
        list[i].member = strdup(sn->ovr[i].member);
        list[i].reason = strdup(sn->ovr[i].reason);
        list[i].time_ms = sn->ovr[i].time_ms;
        count++;
        if (!list[i].member || !list[i].reason)
            st = IBP_E_NOMEM;
    }
    IBP_STORE_READ_END(s);
    if (st != IBP_OK) {
        ibp_store_overrides_free(list, count);
        return st;
    }
    *out = list;
    *n = count;
    return IBP_OK;
}

void ibp_store_overrides_free(ibp_override *ovr, size_t n)
{
    if (!ovr)
        return;
    for (size_t i = 0; i < n; i++) {
        free((char *)ovr[i].member);
        free((char *)ovr[i].reason);
    }
    free(ovr);
}

uint64_t ibp_store_official_epoch(ibp_store *s)
{
    IBP_STORE_READ_BEGIN(s, sn);
    uint64_t e = sn->epoch;
    IBP_STORE_READ_END(s);
    return e;
}

size_t ibp_store_official_count(ibp_store *s)
{
    IBP_STORE_READ_BEGIN(s, sn);
    size_t n = sn->n;
    IBP_STORE_READ_END(s);
    return n;
}
