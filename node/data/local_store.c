/*
 * The local side of the store (ibp/store.h): this node's own results, one per
 * key, in an open-addressing table under llock, each stamped with a version
 * so ibp_store_local_changed_since can hand out what changed.
 */
#include "ibp/store.h"

#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

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

ibp_status ibp_store_local_retain(ibp_store *s, ibp_store_keep_fn keep, void *user, size_t *removed)
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
