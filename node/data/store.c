/*
 * The dual store; see ibp/store.h.
 *
 * Official side: `struct snap` is immutable once published. Results inside it
 * are reference counted (`struct sres`) so a new snapshot shares the results
 * it does not change with the one it replaces. Readers enter an RCU read
 * section, load the snapshot pointer and use it; writers (serialised by
 * wlock) build a new snapshot, swap the pointer, wait for a grace period and
 * then release the old snapshot.
 *
 * Member status is answered from two hash indexes built with each snapshot:
 * per member (overridden, site down over IPv4, site down over IPv6) and the
 * set of (member, normalised domain, family) with any down domain or
 * endpoint result. A query is two lookups, no lock and no allocation.
 */
#include "ibp/store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rcu.h"

/* ---- hashing ------------------------------------------------------------ */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        h = (h ^ *p) * FNV_PRIME;
    return (h ^ 0xff) * FNV_PRIME; /* separator: ("ab","c") differs from ("a","bc") */
}

static uint64_t hash_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(const ibp_result_key *k)
{
    uint64_t h = FNV_OFFSET ^ (uint64_t)k->type ^ ((uint64_t)k->ipv6 << 8);
    h = hash_str(h, k->check_name);
    h = hash_str(h, k->member);
    h = hash_str(h, k->domain);
    h = hash_str(h, k->endpoint);
    return hash_final(h);
}

static uint64_t member_hash(const char *member)
{
    return hash_final(hash_str(FNV_OFFSET, member));
}

static uint64_t member_domain_hash(const char *member, const char *ndomain, bool ipv6)
{
    return hash_final(hash_str(hash_str(FNV_OFFSET ^ (uint64_t)ipv6, member), ndomain));
}

static size_t table_cap(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static int key_equal(const ibp_result_key *a, const ibp_result *b)
{
    return a->type == b->type && a->ipv6 == b->ipv6 && strcmp(nz(a->member), b->member) == 0 &&
           strcmp(nz(a->check_name), b->check_name) == 0 && strcmp(nz(a->domain), b->domain) == 0 &&
           strcmp(nz(a->endpoint), b->endpoint) == 0;
}

/* ---- shared results ----------------------------------------------------- */

struct sres {
    _Atomic unsigned refs;
    uint64_t hash;
    ibp_result *r;
};

static struct sres *sres_new(const ibp_result *r)
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

static void sres_ref(struct sres *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static void sres_unref(struct sres *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        ibp_result_free(s->r);
        free(s);
    }
}

static int sres_cmp(const void *a, const void *b)
{
    const struct sres *x = *(struct sres *const *)a, *y = *(struct sres *const *)b;
    ibp_result_key kx = ibp_result_key_of(x->r), ky = ibp_result_key_of(y->r);
    return ibp_result_key_cmp(&kx, &ky);
}

/* ---- snapshots ---------------------------------------------------------- */

struct ovr {
    char *member;
    char *reason;
    int64_t time_ms;
};

#define MS_OVERRIDDEN 1u
#define MS_SITE_DOWN_V4 2u
#define MS_SITE_DOWN_V6 4u

struct mslot {
    const char *member; /* NULL: empty slot */
    uint64_t hash;
    unsigned flags;
};

struct dslot {
    const char *member; /* NULL: empty slot */
    char *ndomain;      /* owned */
    uint64_t hash;
    bool ipv6;
};

struct snap {
    uint64_t epoch;
    struct sres **items; /* sorted by key, no duplicates */
    size_t n;
    uint32_t *kidx; /* item index + 1; 0 empty */
    size_t kmask;
    struct ovr *ovr; /* sorted by member */
    size_t n_ovr;
    struct mslot *ms;
    size_t ms_mask;
    struct dslot *dd;
    size_t dd_mask;
};

static void snap_free(struct snap *sn)
{
    if (!sn)
        return;
    for (size_t i = 0; i < sn->n; i++)
        sres_unref(sn->items[i]);
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
 * On failure the snapshot is left for snap_free.
 */
static ibp_status snap_index(struct snap *sn)
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

static const struct sres *snap_find(const struct snap *sn, const ibp_result_key *k)
{
    uint64_t h = key_hash(k);
    for (size_t j = h & sn->kmask; sn->kidx[j]; j = (j + 1) & sn->kmask) {
        const struct sres *s = sn->items[sn->kidx[j] - 1];
        if (s->hash == h && key_equal(k, s->r))
            return s;
    }
    return NULL;
}

static ibp_status ovr_copy(const ibp_override *src, size_t n, struct ovr **out)
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

static int ovr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct ovr *)a)->member, ((const struct ovr *)b)->member);
}

static const struct ovr *snap_find_ovr(const struct snap *sn, const char *member)
{
    struct ovr key = {(char *)member, NULL, 0};
    return sn->n_ovr ? bsearch(&key, sn->ovr, sn->n_ovr, sizeof key, ovr_cmp) : NULL;
}

/* ---- the store ---------------------------------------------------------- */

struct lent {
    ibp_result *r; /* NULL: empty slot */
    uint64_t hash;
    uint64_t version;
};

struct ibp_store {
    ibp_store_opts opts;
    pthread_mutex_t wlock; /* serialises official writers */
    ibp_rcu rcu;
    _Atomic(struct snap *) cur;

    pthread_mutex_t llock; /* the local store */
    struct lent *local;
    size_t lmask, lcount;
    uint64_t lversion;
};

void ibp_store_opts_init(ibp_store_opts *opts)
{
    memset(opts, 0, sizeof *opts);
}

static int64_t store_now_ms(const ibp_store *s)
{
    if (s->opts.now_ms)
        return s->opts.now_ms(s->opts.clock_user);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

ibp_status ibp_store_new(const ibp_store_opts *opts, ibp_store **out)
{
    ibp_store *s = calloc(1, sizeof *s);
    struct snap *sn = calloc(1, sizeof *sn);
    if (!s || !sn || snap_index(sn) != IBP_OK) {
        free(s);
        snap_free(sn);
        return IBP_E_NOMEM;
    }
    if (opts)
        s->opts = *opts;
    s->lmask = 15;
    s->local = calloc(s->lmask + 1, sizeof *s->local);
    if (!s->local) {
        free(s);
        snap_free(sn);
        return IBP_E_NOMEM;
    }
    ibp_rcu_init(&s->rcu);
    atomic_init(&s->cur, sn);
    pthread_mutex_init(&s->wlock, NULL);
    pthread_mutex_init(&s->llock, NULL);
    *out = s;
    return IBP_OK;
}

void ibp_store_free(ibp_store *s)
{
    if (!s)
        return;
    snap_free(atomic_load(&s->cur));
    for (size_t i = 0; i <= s->lmask; i++)
        ibp_result_free(s->local[i].r);
    free(s->local);
    pthread_mutex_destroy(&s->wlock);
    pthread_mutex_destroy(&s->llock);
    free(s);
}

/* Swaps in sn (under wlock), waits out the readers of the old one, frees it. */
static void publish(ibp_store *s, struct snap *sn)
{
    struct snap *old = atomic_exchange(&s->cur, sn);
    ibp_rcu_synchronize(&s->rcu);
    snap_free(old);
}

/* Events collected under wlock and delivered after it is released. */
struct pending_events {
    ibp_event_record *ev;
    size_t n, cap;
};

static ibp_status pending_add(struct pending_events *pe, const ibp_result *r)
{
    if (pe->n == pe->cap) {
        size_t ncap = pe->cap ? pe->cap * 2 : 8;
        ibp_event_record *nev = realloc(pe->ev, ncap * sizeof *nev);
        if (!nev)
            return IBP_E_NOMEM;
        pe->ev = nev;
        pe->cap = ncap;
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

static void pending_deliver(ibp_store *s, struct pending_events *pe)
{
    if (s->opts.event_sink)
        for (size_t i = 0; i < pe->n; i++)
            s->opts.event_sink(&pe->ev[i], s->opts.event_user);
    free(pe->ev);
}

/* A new snapshot with the old one's overrides (copied) and epoch. */
static ibp_status snap_with_overrides_of(const struct snap *old, struct snap **out)
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
    ibp_status st = ovr_copy(tmp, old->n_ovr, &sn->ovr);
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
static size_t ovr_sort_dedupe(struct ovr *o, size_t n)
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
        if (!(sn = calloc(1, sizeof *sn)) || (st = ovr_copy(ovr, n_ovr, &sn->ovr)) != IBP_OK) {
            st = IBP_E_NOMEM;
            goto fail;
        }
        sn->n_ovr = ovr_sort_dedupe(sn->ovr, n_ovr);
    } else if ((st = snap_with_overrides_of(old, &sn)) != IBP_OK) {
        goto fail;
    }
    sn->epoch = epoch;
    sn->items = calloc(n ? n : 1, sizeof *sn->items);
    if (!sn->items) {
        st = IBP_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(sn->items[sn->n] = sres_new(results[i]))) {
            st = IBP_E_NOMEM;
            goto fail;
        }
        sn->n++;
    }
    /* Sort, then keep the last of each run of equal keys. qsort is not stable,
     * so ties are decided by input position, kept in the hash field meanwhile. */
    for (size_t i = 0; i < sn->n; i++)
        sn->items[i]->hash = i;
    qsort(sn->items, sn->n, sizeof *sn->items, sres_cmp);
    size_t w = 0;
    for (size_t i = 0; i < sn->n; i++) {
        if (w > 0 && sres_cmp(&sn->items[w - 1], &sn->items[i]) == 0) {
            struct sres *keep =
                sn->items[w - 1]->hash > sn->items[i]->hash ? sn->items[w - 1] : sn->items[i];
            struct sres *drop = keep == sn->items[i] ? sn->items[w - 1] : sn->items[i];
            sn->items[w - 1] = keep;
            sres_unref(drop);
            continue;
        }
        sn->items[w++] = sn->items[i];
    }
    sn->n = w;
    for (size_t i = 0; i < sn->n; i++) {
        ibp_result_key k = ibp_result_key_of(sn->items[i]->r);
        sn->items[i]->hash = key_hash(&k);
    }
    if ((st = snap_index(sn)) != IBP_OK)
        goto fail;
    if (emit_events && s->opts.event_sink) {
        for (size_t i = 0; i < sn->n; i++) {
            const ibp_result *r = sn->items[i]->r;
            ibp_result_key k = ibp_result_key_of(r);
            const struct sres *prev = snap_find(old, &k);
            if ((prev && prev->r->up != r->up) || (!prev && !r->up)) {
                /* Point the event at the caller's copy, which outlives the swap. */
                const ibp_result *src = NULL;
                for (size_t j = n; j-- > 0 && !src;)
                    if (key_equal(&k, results[j]))
                        src = results[j];
                if ((st = pending_add(&pe, src)) != IBP_OK)
                    goto fail;
            }
        }
    }
    publish(s, sn);
    pthread_mutex_unlock(&s->wlock);
    pending_deliver(s, &pe);
    return IBP_OK;
fail:
    pthread_mutex_unlock(&s->wlock);
    snap_free(sn);
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

ibp_status ibp_store_update_official(ibp_store *s, const ibp_result *r, ibp_err *err)
{
    struct snap *sn = NULL;
    struct pending_events pe = {0};
    ibp_status st = IBP_OK;
    if (!r)
        return ibp_err_set(err, IBP_E_INVAL, "update official: no result");
    struct sres *fresh = sres_new(r);
    if (!fresh)
        return ibp_err_set(err, IBP_E_NOMEM, "update official: out of memory");

    pthread_mutex_lock(&s->wlock);
    struct snap *old = atomic_load(&s->cur);
    if ((st = snap_with_overrides_of(old, &sn)) != IBP_OK)
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
        if (sres_cmp(&old->items[mid], &fresh) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const struct sres *prev =
        (lo < old->n && sres_cmp(&old->items[lo], &fresh) == 0) ? old->items[lo] : NULL;
    for (size_t i = 0; i < lo; i++)
        sres_ref(sn->items[sn->n++] = old->items[i]);
    sn->items[sn->n++] = fresh;
    fresh = NULL;
    for (size_t i = lo + (prev ? 1 : 0); i < old->n; i++)
        sres_ref(sn->items[sn->n++] = old->items[i]);
    if ((st = snap_index(sn)) != IBP_OK)
        goto fail;
    if ((prev && prev->r->up != r->up) || (!prev && !r->up))
        if ((st = pending_add(&pe, r)) != IBP_OK)
            goto fail;
    publish(s, sn);
    pthread_mutex_unlock(&s->wlock);
    pending_deliver(s, &pe);
    return IBP_OK;
fail:
    pthread_mutex_unlock(&s->wlock);
    sres_unref(fresh);
    snap_free(sn);
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
        sres_ref(sn->items[sn->n++] = old->items[i]);
    if (snap_index(sn) != IBP_OK)
        goto nomem;
    publish(s, sn);
    return IBP_OK;
nomem:
    if (ovr) {
        for (size_t i = 0; i < n_ovr; i++) {
            free(ovr[i].member);
            free(ovr[i].reason);
        }
        free(ovr);
    }
    snap_free(sn);
    return IBP_E_NOMEM;
}

ibp_status ibp_store_set_overrides(ibp_store *s, const ibp_override *ovr, size_t n, ibp_err *err)
{
    struct ovr *copy = NULL;
    ibp_status st = ovr_copy(ovr, n, &copy);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "set overrides: out of memory");
    size_t w = ovr_sort_dedupe(copy, n); /* one entry per member; the later wins */
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
    int64_t now = store_now_ms(s);
    ibp_status st = IBP_OK;
    bool changed = false;

    pthread_mutex_lock(&s->wlock);
    struct snap *old = atomic_load(&s->cur);
    bool is_disabled = snap_find_ovr(old, member) != NULL;
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
            st = ovr_copy(list, w, &copy);
            if (st == IBP_OK) {
                qsort(copy, w, sizeof *copy, ovr_cmp);
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

/* ---- readers ------------------------------------------------------------ */

/* Read sections: enter, use `sn`, leave. Nothing in between may block. */
#define READ_BEGIN(s, sn)                                                                          \
    unsigned rcu_token_ = ibp_rcu_read_lock(&(s)->rcu);                                            \
    const struct snap *sn = atomic_load(&(s)->cur)
#define READ_END(s) ibp_rcu_read_unlock(&(s)->rcu, rcu_token_)

bool ibp_store_member_overridden(ibp_store *s, const char *member)
{
    READ_BEGIN(s, sn);
    bool r = snap_find_ovr(sn, nz(member)) != NULL;
    READ_END(s);
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
    READ_BEGIN(s, sn);
    bool online = snap_member_online(sn, nd, nz(member), ipv6);
    READ_END(s);
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
    READ_BEGIN(s, sn);
    for (size_t i = 0; i < n; i++)
        if (snap_member_online(sn, nd, nz(candidates[i]), ipv6))
            online[k++] = candidates[i];
    READ_END(s);
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
    READ_BEGIN(s, sn);
    const struct sres *r = snap_find(sn, key);
    if (r) {
        *out = ibp_result_dup(r->r);
        st = *out ? IBP_OK : IBP_E_NOMEM;
    }
    READ_END(s);
    return st;
}

void ibp_store_official_status(ibp_store *s, const ibp_result_key *key, bool *found, bool *up)
{
    READ_BEGIN(s, sn);
    const struct sres *r = snap_find(sn, key);
    *found = r != NULL;
    if (r)
        *up = r->r->up;
    READ_END(s);
}

ibp_status ibp_store_official_all(ibp_store *s, ibp_result_list *out)
{
    ibp_status st = IBP_OK;
    ibp_result_list list = {0};
    READ_BEGIN(s, sn);
    list.items = calloc(sn->n ? sn->n : 1, sizeof *list.items);
    if (!list.items)
        st = IBP_E_NOMEM;
    for (size_t i = 0; st == IBP_OK && i < sn->n; i++) {
        if (!(list.items[i] = ibp_result_dup(sn->items[i]->r)))
            st = IBP_E_NOMEM;
        else
            list.count++;
    }
    READ_END(s);
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
    READ_BEGIN(s, sn);
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
    READ_END(s);
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
    READ_BEGIN(s, sn);
    uint64_t e = sn->epoch;
    READ_END(s);
    return e;
}

size_t ibp_store_official_count(ibp_store *s)
{
    READ_BEGIN(s, sn);
    size_t n = sn->n;
    READ_END(s);
    return n;
}

/* ---- local -------------------------------------------------------------- */

static struct lent *local_slot(struct lent *t, size_t mask, const ibp_result_key *k, uint64_t h)
{
    for (size_t i = h & mask;; i = (i + 1) & mask)
        if (!t[i].r || (t[i].hash == h && key_equal(k, t[i].r)))
            return &t[i];
}

static ibp_status local_grow(ibp_store *s)
{
    size_t ncap = (s->lmask + 1) * 2;
    struct lent *nt = calloc(ncap, sizeof *nt);
    if (!nt)
        return IBP_E_NOMEM;
    for (size_t i = 0; i <= s->lmask; i++) {
        if (!s->local[i].r)
            continue;
        ibp_result_key k = ibp_result_key_of(s->local[i].r);
        *local_slot(nt, ncap - 1, &k, s->local[i].hash) = s->local[i];
    }
    free(s->local);
    s->local = nt;
    s->lmask = ncap - 1;
    return IBP_OK;
}

ibp_status ibp_store_update_local(ibp_store *s, const ibp_result *r, ibp_err *err)
{
    if (!r)
        return ibp_err_set(err, IBP_E_INVAL, "update local: no result");
    ibp_result *copy = ibp_result_dup(r);
    if (!copy)
        return ibp_err_set(err, IBP_E_NOMEM, "update local: out of memory");
    ibp_result_key k = ibp_result_key_of(copy);
    uint64_t h = key_hash(&k);
    pthread_mutex_lock(&s->llock);
    if ((s->lcount + 1) * 2 > s->lmask + 1 && local_grow(s) != IBP_OK) {
        pthread_mutex_unlock(&s->llock);
        ibp_result_free(copy);
        return ibp_err_set(err, IBP_E_NOMEM, "update local: out of memory");
    }
    struct lent *e = local_slot(s->local, s->lmask, &k, h);
    if (e->r)
        ibp_result_free(e->r);
    else
        s->lcount++;
    e->r = copy;
    e->hash = h;
    e->version = ++s->lversion;
    pthread_mutex_unlock(&s->llock);
    return IBP_OK;
}

ibp_status ibp_store_local_retain(ibp_store *s, ibp_store_keep_fn keep, void *user,
                                  size_t *removed)
{
    if (removed)
        *removed = 0;
    if (!keep)
        return IBP_E_INVAL;
    pthread_mutex_lock(&s->llock);
    /* A table of the same size, filled with what stays: open addressing
     * leaves no holes to repair this way. */
    struct lent *nt = calloc(s->lmask + 1, sizeof *nt);
    if (!nt) {
        pthread_mutex_unlock(&s->llock);
        return IBP_E_NOMEM;
    }
    size_t gone = 0;
    for (size_t i = 0; i <= s->lmask; i++) {
        struct lent *e = &s->local[i];
        if (!e->r)
            continue;
        if (!keep(e->r, user)) {
            ibp_result_free(e->r);
            gone++;
            continue;
        }
        ibp_result_key k = ibp_result_key_of(e->r);
        *local_slot(nt, s->lmask, &k, e->hash) = *e;
    }
    free(s->local);
    s->local = nt;
    s->lcount -= gone;
    if (gone)
        s->lversion++;
    pthread_mutex_unlock(&s->llock);
    if (removed)
        *removed = gone;
    return IBP_OK;
}

void ibp_store_local_status(ibp_store *s, const ibp_result_key *key, bool *found, bool *up)
{
    uint64_t h = key_hash(key);
    pthread_mutex_lock(&s->llock);
    const struct lent *e = local_slot(s->local, s->lmask, key, h);
    *found = e->r != NULL;
    if (e->r)
        *up = e->r->up;
    pthread_mutex_unlock(&s->llock);
}

ibp_status ibp_store_local_get(ibp_store *s, const ibp_result_key *key, ibp_result **out)
{
    uint64_t h = key_hash(key);
    ibp_status st = IBP_E_NOT_FOUND;
    pthread_mutex_lock(&s->llock);
    const struct lent *e = local_slot(s->local, s->lmask, key, h);
    if (e->r) {
        *out = ibp_result_dup(e->r);
        st = *out ? IBP_OK : IBP_E_NOMEM;
    }
    pthread_mutex_unlock(&s->llock);
    return st;
}

static int result_ptr_cmp(const void *a, const void *b)
{
    const ibp_result *x = *(ibp_result *const *)a, *y = *(ibp_result *const *)b;
    ibp_result_key kx = ibp_result_key_of(x), ky = ibp_result_key_of(y);
    return ibp_result_key_cmp(&kx, &ky);
}

ibp_status ibp_store_local_changed_since(ibp_store *s, uint64_t since, ibp_result_list *out,
                                         uint64_t *version_out)
{
    ibp_status st = IBP_OK;
    ibp_result_list list = {0};
    pthread_mutex_lock(&s->llock);
    list.items = calloc(s->lcount ? s->lcount : 1, sizeof *list.items);
    if (!list.items)
        st = IBP_E_NOMEM;
    for (size_t i = 0; st == IBP_OK && i <= s->lmask; i++) {
        const struct lent *e = &s->local[i];
        if (!e->r || e->version <= since)
            continue;
        if (!(list.items[list.count] = ibp_result_dup(e->r)))
            st = IBP_E_NOMEM;
        else
            list.count++;
    }
    uint64_t version = s->lversion;
    pthread_mutex_unlock(&s->llock);
    if (st != IBP_OK) {
        ibp_result_list_free(&list);
        return st;
    }
    qsort(list.items, list.count, sizeof *list.items, result_ptr_cmp);
    *out = list;
    if (version_out)
        *version_out = version;
    return IBP_OK;
}

ibp_status ibp_store_local_all(ibp_store *s, ibp_result_list *out)
{
    return ibp_store_local_changed_since(s, 0, out, NULL);
}
