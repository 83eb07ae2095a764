/*
 * The recording hot path of usage (ibp_usage_record_dns_hit; see ibp/usage.h
 * and usage_internal.h): per-thread shards, their key tables, interning of
 * (domain, member), the max_keys limit and its overflow keys.
 *
 * A hit on a key that exists compares integers, allocates nothing, takes no
 * process-wide lock and does no I/O: everything here is in one translation
 * unit so the compiler inlines the whole lookup. The flusher (usage.c) only
 * ever takes a shard's mutex to swap its table out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ibp/result.h"
#include "ibp/roster.h"
#include "usage_hash.h"
#include "usage_internal.h"

#define OVERFLOW_REF UINT64_MAX /* geo refs of overflow keys */
#define TABLE_MIN IBP_USAGE_TABLE_MIN
#define HUGE_PAGE ((size_t)2 << 20)
#define CACHE_LINE 64

/* ---- keys ------------------------------------------------------------------------------------ */

/*
 * The hot-path key of one hit. Domain and member are interned per table into
 * a small "dm" id first (a lookup in a table that stays in cache), so the key
 * compares as integers and a hit on an existing key touches one entry.
 */
typedef struct hkey {
    uint64_t country_ref;
    uint64_t asn_ref;
    const char *dom; /* borrowed: for building the entry's strings */
    const char *mem;
    size_t dlen;
    size_t mlen;
    uint64_t dm_hash; /* of (dom, mem) */
    uint32_t dm;
    uint32_t hash; /* of the whole key */
    int32_t day;
    bool ipv6;
} hkey;

/* ---- hashing --------------------------------------------------------------------------------- */

static uint64_t hash_dm(uint64_t seed, const char *dom, size_t dlen, const char *mem, size_t mlen)
{
    return usage_finish(usage_mix_bytes(usage_mix_bytes(seed, dom, dlen), mem, mlen));
}

/*
 * Neither the day nor the dm id is hashed (both are compared): the hash is
 * known before the shard lock is taken, so the slot can be fetched from
 * memory while the lock, the clock and the dm lookup run.
 */
static uint32_t hash_hkey(uint64_t seed, const hkey *k)
{
    uint64_t h = usage_mix(seed, k->dm_hash ^ (uint64_t)k->ipv6);
    h = usage_mix(h, k->country_ref);
    h = usage_mix(h, k->asn_ref);
    return (uint32_t)usage_finish(h);
}

/* ---- shard tables ---------------------------------------------------------------------------- */

size_t ibp__usage_pow2_at_least(size_t n)
{
    size_t c = TABLE_MIN;
    while (c < n && c < ((size_t)1 << 31))
        c <<= 1;
    return c;
}

/*
 * Zeroed slots. Big tables are touched here, by the flusher or at growth,
 * rather than page by page on the DNS path, and are asked to be backed by huge
 * pages: lookups are random, and 4 KiB pages make each one a TLB miss too.
 */
static void *slots_alloc(size_t n, size_t size)
{
    size_t bytes = n * size;
    if (bytes < HUGE_PAGE)
        return calloc(n, size);
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, bytes) != 0)
        return NULL;
    madvise(p, bytes, MADV_HUGEPAGE); /* advice only: fine if unsupported */
    memset(p, 0, bytes);
    return p;
}

/* dm_cap: room for the (domain, member) pairs, typically few. */
int ibp__usage_table_init(usage_table *t, size_t cap, size_t dm_cap)
{
    memset(t, 0, sizeof *t);
    t->slots = slots_alloc(cap, sizeof *t->slots);
    t->dms = calloc(dm_cap, sizeof *t->dms);
    if (!t->slots || !t->dms) {
        free(t->slots);
        free(t->dms);
        t->slots = NULL;
        t->dms = NULL;
        return -1;
    }
    t->cap = cap;
    t->dcap = dm_cap;
    return 0;
}

void ibp__usage_table_free(usage_table *t)
{
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].block);
    for (size_t i = 0; i < t->dcap; i++)
        free(t->dms[i].str);
    free(t->slots);
    free(t->dms);
    memset(t, 0, sizeof *t);
}

/* The id of (k->dom, k->mem), or -1 with *slot = where it would go. t->dcap > t->dused. */
static int64_t dm_find(const usage_table *t, const hkey *k, size_t *slot)
{
    size_t mask = t->dcap - 1;
    for (size_t i = k->dm_hash & mask;; i = (i + 1) & mask) {
        const usage_dmslot *d = &t->dms[i];
        if (!d->str) {
            *slot = i;
            return -1;
        }
        if (d->hash == k->dm_hash && d->dlen == k->dlen && d->mlen == k->mlen &&
            memcmp(d->str, k->dom, k->dlen) == 0 &&
            memcmp(d->str + k->dlen + 1, k->mem, k->mlen) == 0)
            return d->id;
    }
}

static int dm_grow(usage_table *t)
{
    size_t cap = t->dcap * 2, mask = cap - 1;
    usage_dmslot *dms = calloc(cap, sizeof *dms);
    if (!dms)
        return -1;
    for (size_t i = 0; i < t->dcap; i++) {
        if (!t->dms[i].str)
            continue;
        size_t j = t->dms[i].hash & mask;
        while (dms[j].str)
            j = (j + 1) & mask;
        dms[j] = t->dms[i];
    }
    free(t->dms);
    t->dms = dms;
    t->dcap = cap;
    return 0;
}

/* Interns (k->dom, k->mem) and sets k->dm; -1 when out of memory. */
static int dm_intern(usage_table *t, hkey *k)
{
    size_t slot;
    int64_t id = dm_find(t, k, &slot);
    if (id >= 0) {
        k->dm = (uint32_t)id;
        return 0;
    }
    if ((t->dused + 1) * 2 > t->dcap) {
        if (dm_grow(t) != 0 && (t->dused + 1) * 8 > t->dcap * 7)
            return -1;
        dm_find(t, k, &slot);
    }
    char *str = malloc(k->dlen + k->mlen + 2);
    if (!str)
        return -1;
    memcpy(str, k->dom, k->dlen);
    str[k->dlen] = '\0';
    memcpy(str + k->dlen + 1, k->mem, k->mlen);
    str[k->dlen + 1 + k->mlen] = '\0';
    usage_dmslot *d = &t->dms[slot];
    d->hash = k->dm_hash;
    d->str = str;
    d->dlen = (uint16_t)k->dlen;
    d->mlen = (uint16_t)k->mlen;
    d->id = (uint32_t)t->dused++;
    k->dm = d->id;
    return 0;
}

static bool entry_is(const usage_entry *e, const hkey *k)
{
    return e->hash == k->hash && e->day == k->day && e->dm == k->dm && e->ipv6 == k->ipv6 &&
           e->country_ref == k->country_ref && e->asn_ref == k->asn_ref;
}

/* The entry of k, or NULL with *slot = where it would go. t->cap > t->used. */
static usage_entry *table_find(const usage_table *t, const hkey *k, size_t *slot)
{
    size_t mask = t->cap - 1;
    for (size_t i = k->hash & mask;; i = (i + 1) & mask) {
        usage_entry *e = &t->slots[i];
        if (!e->block) {
            *slot = i;
            return NULL;
        }
        if (entry_is(e, k))
            return e;
    }
}

static int table_grow(usage_table *t)
{
    size_t cap = t->cap * 2, mask = cap - 1;
    usage_entry *slots = slots_alloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        usage_entry *e = &t->slots[i];
        if (!e->block)
            continue;
        size_t j = e->hash & mask;
        while (slots[j].block)
            j = (j + 1) & mask;
        slots[j] = *e;
    }
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

/* ---- the hot path ---------------------------------------------------------------------------- */

void ibp__usage_shard_orphan(void *p)
{
    /* Thread exit: the shard stays registered (its counts are not flushed yet);
     * the next drain frees it. */
    atomic_store(&((usage_shard *)p)->orphaned, true);
}

static usage_shard *shard_register(ibp_usage *u)
{
    size_t size = (sizeof(usage_shard) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    usage_shard *s = aligned_alloc(CACHE_LINE, size); /* no false sharing between threads */
    if (!s)
        return NULL;
    memset(s, 0, size);
    if (ibp__usage_table_init(&s->t, TABLE_MIN, IBP_USAGE_DM_MIN) != 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->orphaned, false);
    pthread_mutex_lock(&u->reg_mu);
    s->next = u->shards;
    u->shards = s;
    pthread_mutex_unlock(&u->reg_mu);
    /* On failure the shard still serves this call and is freed at close. */
    pthread_setspecific(u->tls, s);
    return s;
}

/* Takes one of limit key slots; false when they are all taken. */
static bool take_key(ibp_usage *u, size_t limit)
{
    size_t n = atomic_fetch_add_explicit(&u->keys, 1, memory_order_relaxed);
    if (n < limit)
        return true;
    atomic_fetch_sub_explicit(&u->keys, 1, memory_order_relaxed);
    return false;
}

static void give_key(ibp_usage *u)
{
    atomic_fetch_sub_explicit(&u->keys, 1, memory_order_relaxed);
}

/* Inserts k (interned, hashed) at slot (from table_find); the key slot is already taken. */
static usage_entry *insert(ibp_usage *u, usage_shard *s, const hkey *k, size_t slot)
{
    usage_table *t = &s->t;
    if ((t->used + 1) * 2 > t->cap) {
        /* Growing keeps probes short; a table that cannot grow still takes keys
         * up to 7/8 full. */
        if (table_grow(t) != 0 && (t->used + 1) * 8 > t->cap * 7)
            return NULL;
        if (table_find(t, k, &slot))
            return NULL; /* cannot happen: k was not there */
    }
    ibp_geo_info gi;
    bool geo_error = false;
    if (k->country_ref == OVERFLOW_REF) {
        memcpy(gi.country_code, IBP_GEO_UNKNOWN_CODE, 3);
        strcpy(gi.country_name, IBP_GEO_UNKNOWN_NAME);
        gi.asn[0] = gi.network_name[0] = '\0';
    } else {
        /* The only time a key reads strings from the databases. */
        ibp_geo_ref ref = {k->country_ref, k->asn_ref};
        geo_error = ibp_geo_resolve(u->geo, &ref, &gi) != IBP_OK;
    }
    ibp_usage_fields f = {
        .f = {k->dom, k->mem, gi.country_code, gi.asn, gi.network_name, gi.country_name},
        .len = {k->dlen, k->mlen, strlen(gi.country_code), strlen(gi.asn), strlen(gi.network_name),
                strlen(gi.country_name)},
    };
    size_t blen = ibp__usage_block_size(&f);
    char *b = malloc(blen);
    if (!b)
        return NULL;
    ibp__usage_block_pack(b, &f);
    usage_entry *e = &t->slots[slot];
    e->country_ref = k->country_ref;
    e->asn_ref = k->asn_ref;
    e->count = 0;
    e->block = b;
    e->hash = k->hash;
    e->day = k->day;
    e->dm = k->dm;
    e->blen = (uint16_t)blen;
    e->ipv6 = k->ipv6;
    e->geo_error = geo_error;
    t->used++;
    return e;
}

/* Looks k up as an overflow key (geo refs replaced), inserting it when allowed. */
static usage_entry *overflow_key(ibp_usage *u, usage_shard *s, hkey *k, size_t limit)
{
    size_t slot;
    usage_entry *e;
    k->country_ref = k->asn_ref = OVERFLOW_REF;
    k->hash = hash_hkey(u->seed, k);
    if ((e = table_find(&s->t, k, &slot)))
        return e;
    if (limit && !take_key(u, limit))
        return NULL;
    if (!limit)
        atomic_fetch_add_explicit(&u->keys, 1, memory_order_relaxed);
    if ((e = insert(u, s, k, slot)))
        return e;
    give_key(u);
    return NULL;
}

/*
 * The entry to count k in: its own, or past max_keys an overflow key (see
 * ibp/usage.h). *overflowed tells which. NULL only when out of memory.
 */
static usage_entry *find_or_insert(ibp_usage *u, usage_shard *s, hkey *k, bool *overflowed)
{
    size_t slot = 0, dslot;
    usage_entry *e;
    usage_table *t = &s->t;
    size_t hard = u->max_keys + u->max_overflow_keys;
    *overflowed = false;
    int64_t dm = dm_find(t, k, &dslot);
    if (dm >= 0) {
        k->dm = (uint32_t)dm;
        if ((e = table_find(t, k, &slot)))
            return e; /* the common case: a known key */
        if (take_key(u, u->max_keys)) {
            if ((e = insert(u, s, k, slot)))
                return e;
            give_key(u);
            return NULL;
        }
        *overflowed = true;
        if ((e = overflow_key(u, s, k, hard)))
            return e;
    } else if (take_key(u, u->max_keys)) {
        /* A new pair means a new key: the pairs are bounded by the keys. */
        if (dm_intern(t, k) != 0) {
            give_key(u);
            return NULL;
        }
        table_find(t, k, &slot);
        if ((e = insert(u, s, k, slot)))
            return e;
        give_key(u);
        return NULL;
    } else if (take_key(u, hard)) {
        give_key(u); /* overflow_key takes it again */
        *overflowed = true;
        if (dm_intern(t, k) != 0)
            return NULL;
        if ((e = overflow_key(u, s, k, hard)))
            return e;
    }
    /* Past every limit: one key per shard, date and ipv6, outside the limits. */
    *overflowed = true;
    k->dom = k->mem = IBP_USAGE_OVERFLOW;
    k->dlen = k->mlen = strlen(IBP_USAGE_OVERFLOW);
    k->dm_hash = hash_dm(u->seed, k->dom, k->dlen, k->mem, k->mlen);
    if (dm_intern(t, k) != 0)
        return NULL;
    return overflow_key(u, s, k, 0);
}

ibp_status ibp_usage_record_dns_hit(ibp_usage *u, bool ipv6, const char *client_ip,
                                    const char *domain, const char *member)
{
    char dom[IBP_DOMAIN_MAX + 1];
    if (!u || !domain)
        return IBP_E_INVAL;
    usage_shard *s = pthread_getspecific(u->tls);
    if (!s && !(s = shard_register(u)))
        return IBP_E_NOMEM;
    hkey k;
    ibp_status st = IBP_OK;
    if (!member || !*member)
        member = IBP_USAGE_NO_MEMBER;
    k.mlen = strnlen(member, IBP_NAME_MAX + 1);
    if (ibp_domain_normalize(domain, dom, sizeof dom) != IBP_OK || k.mlen > IBP_NAME_MAX) {
        st = IBP_E_RANGE;
        goto reject;
    }
    ibp_geo_ref ref;
    ibp_status geo_st = ibp_geo_lookup_ref(u->geo, client_ip, &ref);
    if (geo_st != IBP_OK)
        ref.country = ref.asn = 0; /* bad address or database error: "??" */
    k.ipv6 = ipv6;
    k.country_ref = ref.country;
    k.asn_ref = ref.asn;
    k.dom = dom;
    k.dlen = strlen(dom);
    k.mem = member;
    k.dm_hash = hash_dm(u->seed, dom, k.dlen, member, k.mlen);
    k.hash = hash_hkey(u->seed, &k);

    bool overflowed;
    pthread_mutex_lock(&s->mu);
    /* The one likely cache miss of a hit; the rest of the work overlaps it. */
    __builtin_prefetch(&s->t.slots[k.hash & (s->t.cap - 1)]);
    k.day = (int32_t)ibp__usage_day_of(u->clock(u->clock_user));
    usage_entry *e = find_or_insert(u, s, &k, &overflowed);
    if (!e) {
        s->rejected++;
        pthread_mutex_unlock(&s->mu);
        return IBP_E_NOMEM;
    }
    e->count++;
    s->hits++;
    s->overflow += overflowed;
    /* Past max_keys: ask the flusher to empty the tables now rather than at the
     * interval. A load first, so a flood of overflow hits does not keep
     * writing the shared flag. */
    if (overflowed && !atomic_load_explicit(&u->early_wanted, memory_order_relaxed))
        atomic_store_explicit(&u->early_wanted, true, memory_order_relaxed);
    if (geo_st == IBP_E_INVAL) {
        s->bad_ip++;
        /* Logged later, by the flusher: no I/O here. */
        if (s->bad_ip_report++ == 0)
            snprintf(s->bad_ip_example, sizeof s->bad_ip_example, "%s",
                     client_ip ? client_ip : "(null)");
    } else if (geo_st == IBP_E_IO || e->geo_error) {
        s->geo_err++;
        s->geo_err_report++;
    }
    pthread_mutex_unlock(&s->mu);
    return IBP_OK;

reject:
    pthread_mutex_lock(&s->mu);
    s->rejected++;
    pthread_mutex_unlock(&s->mu);
    return st;
}
