/*
 * Private to the store modules of ibp/store.h:
 *   - store.c: the store object (options, new, free, its clock);
 *   - official_store.c: the official side (RCU snapshots, whole-state
 *     replacement, the lock-free readers) and the snapshot helpers;
 *   - member_admin.c: the seed's single updates (one official result, member
 *     enable and disable, override lists) with their events;
 *   - local_store.c: the local side (this node's own results, versioned).
 *
 * Official side: `struct snap` is immutable once published. Results inside it
 * are reference counted (`struct sres`) so a new snapshot shares the results
 * it does not change with the one it replaces. Readers enter an RCU read
 * section, load the snapshot pointer and use it; writers (serialised by
 * wlock) build a new snapshot, swap the pointer (ibp__store_publish), wait
 * for a grace period and then release the old snapshot.
 */
#ifndef IBP_STORE_INTERNAL_H
#define IBP_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ibp/store.h"
#include "rcu.h"

/* ---- hashing ------------------------------------------------------------ */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static inline uint64_t hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
        h = (h ^ *p) * FNV_PRIME;
    return (h ^ 0xff) * FNV_PRIME; /* separator: ("ab","c") differs from ("a","bc") */
}

static inline uint64_t hash_final(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t key_hash(const ibp_result_key *k)
{
    uint64_t h = FNV_OFFSET ^ (uint64_t)k->type ^ ((uint64_t)k->ipv6 << 8);
    h = hash_str(h, k->check_name);
    h = hash_str(h, k->member);
    h = hash_str(h, k->domain);
    h = hash_str(h, k->endpoint);
    return hash_final(h);
}

static inline uint64_t member_hash(const char *member)
{
    return hash_final(hash_str(FNV_OFFSET, member));
}

static inline uint64_t member_domain_hash(const char *member, const char *ndomain, bool ipv6)
{
    return hash_final(hash_str(hash_str(FNV_OFFSET ^ (uint64_t)ipv6, member), ndomain));
}

static inline size_t table_cap(size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    return cap;
}

static inline const char *nz(const char *s)
{
    return s ? s : "";
}

static inline int key_equal(const ibp_result_key *a, const ibp_result *b)
{
    return a->type == b->type && a->ipv6 == b->ipv6 && strcmp(nz(a->member), b->member) == 0 &&
           strcmp(nz(a->check_name), b->check_name) == 0 && strcmp(nz(a->domain), b->domain) == 0 &&
           strcmp(nz(a->endpoint), b->endpoint) == 0;
}

/* ---- shared results and snapshots -------------------------------------- */

struct sres {
    _Atomic unsigned refs;
    uint64_t hash;
    ibp_result *r;
};

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

/* Events collected under wlock and delivered after it is released. */
struct pending_events {
    ibp_event_record *ev;
    size_t n, cap;
};

/* Read sections: enter, use `sn`, leave. Nothing in between may block. */
#define IBP_STORE_READ_BEGIN(s, sn)                                                                \
    unsigned rcu_token_ = ibp_rcu_read_lock(&(s)->rcu);                                            \
    const struct snap *sn = atomic_load(&(s)->cur)
#define IBP_STORE_READ_END(s) ibp_rcu_read_unlock(&(s)->rcu, rcu_token_)

/* The store's clock: opts.now_ms, or CLOCK_REALTIME. */
int64_t ibp__store_now_ms(const ibp_store *s);

/* A shared copy of r (one reference, hash of its key); NULL when out of memory. */
struct sres *ibp__store_sres_new(const ibp_result *r);
void ibp__store_sres_ref(struct sres *s);
/* Drops a reference; the last frees. Accepts NULL. */
void ibp__store_sres_unref(struct sres *s);
/* qsort comparator of struct sres * by result key. */
int ibp__store_sres_cmp(const void *a, const void *b);

/* Frees a snapshot and drops its references; accepts NULL. */
void ibp__store_snap_free(struct snap *sn);
/*
 * Builds the indexes of a snapshot whose items and overrides are set.
 * IBP_E_NOMEM (the snapshot is then left for ibp__store_snap_free).
 */
ibp_status ibp__store_snap_index(struct snap *sn);
/* The result of k in sn, or NULL. */
const struct sres *ibp__store_snap_find(const struct snap *sn, const ibp_result_key *k);
/* The override of member in sn, or NULL. */
const struct ovr *ibp__store_snap_find_ovr(const struct snap *sn, const char *member);
/* A new snapshot with old's overrides (copied) and epoch, no items; IBP_E_NOMEM. */
ibp_status ibp__store_snap_with_overrides_of(const struct snap *old, struct snap **out);

/* Copies n overrides (calloc'ed array, at least one slot); IBP_E_NOMEM. */
ibp_status ibp__store_ovr_copy(const ibp_override *src, size_t n, struct ovr **out);
/* qsort and bsearch comparator of struct ovr by member. */
int ibp__store_ovr_cmp(const void *a, const void *b);
/* Sorts overrides by member and keeps the last of each member; returns the count. */
size_t ibp__store_ovr_sort_dedupe(struct ovr *o, size_t n);

/* Swaps in sn (caller holds wlock), waits out the readers of the old one, frees it. */
void ibp__store_publish(ibp_store *s, struct snap *sn);

/* Queues the status event of r (borrowed until delivered); IBP_E_NOMEM. */
ibp_status ibp__store_pending_add(struct pending_events *pe, const ibp_result *r);
/* Delivers the queued events to opts.event_sink (call without wlock) and frees the queue. */
void ibp__store_pending_deliver(ibp_store *s, struct pending_events *pe);

#endif
