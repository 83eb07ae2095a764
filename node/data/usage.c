/*
 * Usage counters of a dns node; see ibp/usage.h.
 *
 * Two levels of tables:
 *   - one shard per recording thread: an open-addressing table keyed on the
 *     cheap hot-path key (day, interned domain and member, ipv6, geo record
 *     refs), behind a mutex that only the flusher contends; each entry owns
 *     one "block" of the strings of its row:
 *     domain\0member\0country_code\0asn\0network_name\0country_name\0
 *   - the aggregate, owned by the flusher (flush_mu): rows keyed by (day,
 *     ipv6, block bytes), i.e. by the strings that go on the wire. It holds
 *     counts between leaving the shards and being journaled.
 * A drain swaps each shard's table for an empty one (O(1) under the shard
 * mutex) and merges the old table into the aggregate afterwards, moving each
 * block over instead of copying it.
 *
 * Lock order: flush_mu, then reg_mu, then a shard's mu. The hot path takes a
 * shard mu only (and reg_mu once per thread, to register its shard).
 */
#include "ibp/usage.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include "geo_text.h"
#include "ibp/log.h"
#include "ibp/result.h"
#include "ibp/roster.h"

#define COMPONENT "usage"
#define OVERFLOW_REF UINT64_MAX /* geo refs of overflow keys */
#define TABLE_MIN 64
#define DM_MIN 16
#define HUGE_PAGE ((size_t)2 << 20)
#define SUMMARY_EVERY_MS 60000
#define CACHE_LINE 64

/* ---- keys and tables ------------------------------------------------------------------------- */

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

/* 48 bytes: the key, the count and the strings of the row it becomes. */
typedef struct entry {
    uint64_t country_ref;
    uint64_t asn_ref;
    uint64_t count;
    char *block; /* NULL: empty slot */
    uint32_t hash;
    int32_t day;
    uint32_t dm;
    uint16_t blen; /* bytes of block, NULs included */
    uint8_t ipv6;
    uint8_t geo_error; /* resolving the refs failed: hits count as database errors */
} entry;

/* An interned (domain, member): id of the keys that have them. */
typedef struct dmslot {
    uint64_t hash;
    char *str; /* domain\0member\0; NULL: empty slot */
    uint16_t dlen;
    uint16_t mlen;
    uint32_t id;
} dmslot;

/* A shard's counters of one flush period: swapped out whole by a drain. */
typedef struct table {
    entry *slots;
    size_t cap; /* power of two, or 0 (no slots) */
    size_t used;
    dmslot *dms;
    size_t dcap; /* power of two, or 0 */
    size_t dused;
} table;

typedef struct shard {
    pthread_mutex_t mu;
    table t; /* under mu */
    /* Counters since open, under mu. */
    uint64_t hits;
    uint64_t bad_ip;
    uint64_t geo_err;
    uint64_t overflow;
    uint64_t rejected;
    /* For the rate-limited log summary, under mu; reset by each drain. */
    uint64_t bad_ip_report;
    uint64_t geo_err_report;
    char bad_ip_example[IBP_GEO_IP_MAX + 1];
    atomic_bool orphaned; /* its thread exited: the next drain frees it */
    struct shard *next;   /* under reg_mu */
} shard;

/* A row of the aggregate: the wire strings of one HitRow (block) and its count. */
typedef struct arow {
    uint64_t hash;
    uint64_t count; /* 0: journaled (or merged nothing); dropped at compaction */
    char *block;    /* NULL: empty slot */
    int32_t day;
    uint16_t blen;
    uint8_t ipv6;
} arow;

typedef struct agg {
    arow *slots;
    size_t cap;
    size_t used;
} agg;

struct ibp_usage {
    const ibp_geo *geo;
    const ibp_usage_sink *sink;
    ibp_usage_clock_fn clock;
    void *clock_user;
    int64_t flush_interval_ms;
    size_t max_keys;
    size_t max_overflow_keys;
    size_t max_rows;
    size_t max_batch_bytes;
    int64_t retry_min_ms;
    int64_t retry_max_ms;
    int64_t tick_ms;
    uint64_t seed;

    pthread_key_t tls; /* the calling thread's shard */
    pthread_mutex_t reg_mu;
    shard *shards; /* under reg_mu */
    atomic_size_t keys;
    /* Set by a hit that went to an overflow key: the next tick flushes early. */
    atomic_bool early_wanted;

    pthread_mutex_t flush_mu; /* everything below */
    agg agg;
    table *held; /* tables drained from shards, not yet merged into agg */
    size_t nheld;
    size_t held_cap;
    uint64_t held_hits; /* counts in held and agg: out of the shards, not journaled */
    ibp_usage_journal *journal;
    int64_t last_day;
    int64_t next_flush_ms;
    int64_t flush_backoff_ms;
    int64_t next_retry_ms;
    int64_t deliver_backoff_ms;
    int64_t last_summary_ms;
    uint64_t bad_ip_report;
    uint64_t geo_err_report;
    char bad_ip_example[IBP_GEO_IP_MAX + 1];
    ibp_usage_stats retired; /* counters of freed shards */
    uint64_t flushes;
    uint64_t flush_errors;
    uint64_t early_flushes;

    bool thread_started;
    bool stop; /* under thr_mu */
    pthread_t thread;
    pthread_mutex_t thr_mu;
    pthread_cond_t thr_cv;
};

/* ---- dates ----------------------------------------------------------------------------------- */

static int64_t day_of(int64_t ms)
{
    return ms >= 0 ? ms / IBP_USAGE_DAY_MS : -((-ms + IBP_USAGE_DAY_MS - 1) / IBP_USAGE_DAY_MS);
}

/* Howard Hinnant's civil-from-days and days-from-civil (proleptic Gregorian). */
void ibp_usage_format_date(int64_t z, char buf[11])
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    unsigned v[3] = {(unsigned)y, m, d};
    buf[0] = (char)('0' + v[0] / 1000);
    buf[1] = (char)('0' + v[0] / 100 % 10);
    buf[2] = (char)('0' + v[0] / 10 % 10);
    buf[3] = (char)('0' + v[0] % 10);
    buf[4] = '-';
    buf[5] = (char)('0' + v[1] / 10);
    buf[6] = (char)('0' + v[1] % 10);
    buf[7] = '-';
    buf[8] = (char)('0' + v[2] / 10);
    buf[9] = (char)('0' + v[2] % 10);
    buf[10] = '\0';
}

int ibp_usage_parse_date(const char *s, int64_t *day)
{
    static const unsigned dim[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    unsigned v[10];
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v[i] = (unsigned)(s[i] - '0');
    }
    int64_t y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3];
    unsigned m = v[5] * 10 + v[6], d = v[8] * 10 + v[9];
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m < 1 || m > 12 || d < 1 || d > dim[m - 1] || (m == 2 && d == 29 && !leap))
        return -1;
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    *day = era * 146097 + (int64_t)doe - 719468;
    return 0;
}

static int64_t default_clock(void *user)
{
    (void)user;
    struct timespec ts;
    /* A coarse clock is a vDSO read with no barrier; a day boundary needs no better. */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- hashing --------------------------------------------------------------------------------- */

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v * UINT64_C(0x9E3779B97F4A7C15);
    h = (h << 31 | h >> 33) * UINT64_C(0xBF58476D1CE4E5B9);
    return h;
}

static inline uint64_t mix_bytes(uint64_t h, const char *p, size_t n)
{
    uint64_t v;
    h = mix(h, n);
    while (n >= 8) {
        memcpy(&v, p, 8);
        h = mix(h, v);
        p += 8;
        n -= 8;
    }
    v = 0;
    memcpy(&v, p, n);
    return mix(h, v);
}

static inline uint64_t finish(uint64_t h)
{
    h ^= h >> 29;
    h *= UINT64_C(0x94D049BB133111EB);
    h ^= h >> 32;
    return h;
}

static uint64_t hash_dm(uint64_t seed, const char *dom, size_t dlen, const char *mem, size_t mlen)
{
    return finish(mix_bytes(mix_bytes(seed, dom, dlen), mem, mlen));
}

/*
 * Neither the day nor the dm id is hashed (both are compared): the hash is
 * known before the shard lock is taken, so the slot can be fetched from
 * memory while the lock, the clock and the dm lookup run.
 */
static uint32_t hash_hkey(uint64_t seed, const hkey *k)
{
    uint64_t h = mix(seed, k->dm_hash ^ (uint64_t)k->ipv6);
    h = mix(h, k->country_ref);
    h = mix(h, k->asn_ref);
    return (uint32_t)finish(h);
}

static uint64_t hash_row(uint64_t seed, int32_t day, bool ipv6, const char *block, size_t blen)
{
    uint64_t h = mix(seed ^ UINT64_C(0x5bd1e995), (uint64_t)(uint32_t)day | (uint64_t)ipv6 << 32);
    return finish(mix_bytes(h, block, blen));
}

/* ---- shard tables ---------------------------------------------------------------------------- */

static size_t pow2_at_least(size_t n)
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
static int table_init(table *t, size_t cap, size_t dm_cap)
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

static void table_free(table *t)
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
static int64_t dm_find(const table *t, const hkey *k, size_t *slot)
{
    size_t mask = t->dcap - 1;
    for (size_t i = k->dm_hash & mask;; i = (i + 1) & mask) {
        const dmslot *d = &t->dms[i];
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

static int dm_grow(table *t)
{
    size_t cap = t->dcap * 2, mask = cap - 1;
    dmslot *dms = calloc(cap, sizeof *dms);
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
static int dm_intern(table *t, hkey *k)
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
    dmslot *d = &t->dms[slot];
    d->hash = k->dm_hash;
    d->str = str;
    d->dlen = (uint16_t)k->dlen;
    d->mlen = (uint16_t)k->mlen;
    d->id = (uint32_t)t->dused++;
    k->dm = d->id;
    return 0;
}

static bool entry_is(const entry *e, const hkey *k)
{
    return e->hash == k->hash && e->day == k->day && e->dm == k->dm && e->ipv6 == k->ipv6 &&
           e->country_ref == k->country_ref && e->asn_ref == k->asn_ref;
}

/* The entry of k, or NULL with *slot = where it would go. t->cap > t->used. */
static entry *table_find(const table *t, const hkey *k, size_t *slot)
{
    size_t mask = t->cap - 1;
    for (size_t i = k->hash & mask;; i = (i + 1) & mask) {
        entry *e = &t->slots[i];
        if (!e->block) {
            *slot = i;
            return NULL;
        }
        if (entry_is(e, k))
            return e;
    }
}

static int table_grow(table *t)
{
    size_t cap = t->cap * 2, mask = cap - 1;
    entry *slots = slots_alloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->slots[i];
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

static void shard_orphan(void *p)
{
    /* Thread exit: the shard stays registered (its counts are not flushed yet);
     * the next drain frees it. */
    atomic_store(&((shard *)p)->orphaned, true);
}

static shard *shard_register(ibp_usage *u)
{
    size_t size = (sizeof(shard) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    shard *s = aligned_alloc(CACHE_LINE, size); /* no false sharing between threads */
    if (!s)
        return NULL;
    memset(s, 0, size);
    if (table_init(&s->t, TABLE_MIN, DM_MIN) != 0) {
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
static entry *insert(ibp_usage *u, shard *s, const hkey *k, size_t slot)
{
    table *t = &s->t;
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
    size_t cl = strlen(gi.country_code), al = strlen(gi.asn), nl = strlen(gi.network_name),
           cnl = strlen(gi.country_name);
    size_t blen = k->dlen + k->mlen + cl + al + nl + cnl + 6;
    char *b = malloc(blen);
    if (!b)
        return NULL;
    char *p = b;
    memcpy(p, k->dom, k->dlen);
    p += k->dlen;
    *p++ = '\0';
    memcpy(p, k->mem, k->mlen);
    p += k->mlen;
    *p++ = '\0';
    memcpy(p, gi.country_code, cl + 1);
    p += cl + 1;
    memcpy(p, gi.asn, al + 1);
    p += al + 1;
    memcpy(p, gi.network_name, nl + 1);
    p += nl + 1;
    memcpy(p, gi.country_name, cnl + 1);
    entry *e = &t->slots[slot];
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
static entry *overflow_key(ibp_usage *u, shard *s, hkey *k, size_t limit)
{
    size_t slot;
    entry *e;
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
static entry *find_or_insert(ibp_usage *u, shard *s, hkey *k, bool *overflowed)
{
    size_t slot, dslot;
    entry *e;
    table *t = &s->t;
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
    shard *s = pthread_getspecific(u->tls);
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
    k.day = (int32_t)day_of(u->clock(u->clock_user));
    entry *e = find_or_insert(u, s, &k, &overflowed);
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

/* ---- the aggregate --------------------------------------------------------------------------- */

static int agg_resize(agg *a, size_t cap)
{
    arow *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    size_t mask = cap - 1, used = 0;
    for (size_t i = 0; i < a->cap; i++) {
        arow *r = &a->slots[i];
        if (!r->block)
            continue;
        if (r->count == 0) { /* journaled: drop */
            free(r->block);
            continue;
        }
        size_t j = r->hash & mask;
        while (slots[j].block)
            j = (j + 1) & mask;
        slots[j] = *r;
        used++;
    }
    free(a->slots);
    a->slots = slots;
    a->cap = cap;
    a->used = used;
    return 0;
}

/*
 * Adds count to the row (day, ipv6, block), taking ownership of block (moved
 * into a new row or freed). -1 (block untouched) when out of memory.
 */
static int agg_add(ibp_usage *u, int32_t day, bool ipv6, char *block, size_t blen, uint64_t count)
{
    agg *a = &u->agg;
    if ((a->used + 1) * 2 > a->cap) {
        if (agg_resize(a, a->cap ? a->cap * 2 : TABLE_MIN) != 0 && (a->used + 1) * 16 > a->cap * 15)
            return -1;
    }
    uint64_t h = hash_row(u->seed, day, ipv6, block, blen);
    size_t mask = a->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        arow *r = &a->slots[i];
        if (!r->block) {
            r->hash = h;
            r->count = count;
            r->block = block;
            r->day = day;
            r->blen = (uint16_t)blen;
            r->ipv6 = ipv6;
            a->used++;
            return 0;
        }
        if (r->hash == h && r->day == day && r->ipv6 == ipv6 && r->blen == blen &&
            memcmp(r->block, block, blen) == 0) {
            r->count += count;
            free(block);
            return 0;
        }
    }
}

/* Merges the held tables into the aggregate, emptying each slot it moves. */
static ibp_status merge_held(ibp_usage *u, ibp_err *err)
{
    while (u->nheld > 0) {
        table *t = &u->held[u->nheld - 1];
        for (size_t i = 0; i < t->cap; i++) {
            entry *e = &t->slots[i];
            if (!e->block)
                continue;
            /* Domains and members come from outside: make them valid UTF-8
             * (same length) before they become protobuf strings. */
            size_t dlen = strlen(e->block);
            geo_text_clean(e->block, dlen);
            geo_text_clean(e->block + dlen + 1, strlen(e->block + dlen + 1));
            if (agg_add(u, e->day, e->ipv6, e->block, e->blen, e->count) != 0)
                return ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory merging counters");
            e->block = NULL;
            t->used--;
        }
        table_free(t);
        u->nheld--;
    }
    return IBP_OK;
}

/* Folds a shard's counters into dst. Caller holds the shard's mu. */
static void add_shard_stats(ibp_usage_stats *dst, const shard *s)
{
    dst->hits += s->hits;
    dst->bad_ip_hits += s->bad_ip;
    dst->geo_error_hits += s->geo_err;
    dst->overflow_hits += s->overflow;
    dst->rejected += s->rejected;
}

/*
 * Moves every shard's counts into the aggregate: each table is swapped for an
 * empty one under its shard mutex (the only moment a recording thread can
 * wait on the flusher), then merged. Shards of exited threads are freed.
 */
static ibp_status drain(ibp_usage *u, ibp_err *err)
{
    ibp_status st = IBP_OK;
    pthread_mutex_lock(&u->reg_mu);
    size_t nshards = 0;
    for (shard *s = u->shards; s; s = s->next)
        nshards++;
    if (u->nheld + nshards > u->held_cap) {
        size_t cap = u->nheld + nshards + 8;
        table *h = realloc(u->held, cap * sizeof *h);
        if (!h) {
            pthread_mutex_unlock(&u->reg_mu);
            return ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory draining counters");
        }
        u->held = h;
        u->held_cap = cap;
    }
    for (shard **link = &u->shards; *link;) {
        shard *s = *link;
        pthread_mutex_lock(&s->mu);
        size_t used = s->t.used, dused = s->t.dused;
        bool orphan = atomic_load(&s->orphaned);
        if (s->bad_ip_report) {
            if (u->bad_ip_report == 0)
                memcpy(u->bad_ip_example, s->bad_ip_example, sizeof u->bad_ip_example);
            u->bad_ip_report += s->bad_ip_report;
            s->bad_ip_report = 0;
        }
        u->geo_err_report += s->geo_err_report;
        s->geo_err_report = 0;
        pthread_mutex_unlock(&s->mu);

        table fresh;
        memset(&fresh, 0, sizeof fresh);
        /* Sized for the keys seen last time, so a steady load never regrows. */
        if (used > 0 && !orphan &&
            table_init(&fresh, pow2_at_least(2 * used), pow2_at_least(2 * dused)) != 0) {
            st = ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory draining counters");
            link = &s->next;
            continue;
        }
        if (used > 0) {
            pthread_mutex_lock(&s->mu);
            table old = s->t;
            s->t = fresh;
            pthread_mutex_unlock(&s->mu);
            for (size_t i = 0; i < old.cap; i++)
                u->held_hits += old.slots[i].block ? old.slots[i].count : 0;
            atomic_fetch_sub_explicit(&u->keys, old.used, memory_order_relaxed);
            u->held[u->nheld++] = old;
        }
        if (orphan) {
            /* Its thread is gone: nobody can reach it but us. */
            *link = s->next;
            add_shard_stats(&u->retired, s);
            table_free(&s->t);
            pthread_mutex_destroy(&s->mu);
            free(s);
            continue;
        }
        link = &s->next;
    }
    pthread_mutex_unlock(&u->reg_mu);
    ibp_status mst = merge_held(u, err);
    return st != IBP_OK ? st : mst;
}

/* ---- flushing -------------------------------------------------------------------------------- */

enum flush_mode { FLUSH_ALL, FLUSH_DAY, FLUSH_BEFORE };

static int cmp_rows(const void *pa, const void *pb)
{
    const arow *a = *(const arow *const *)pa, *b = *(const arow *const *)pb;
    if (a->day != b->day)
        return a->day < b->day ? -1 : 1;
    /* Blocks are NUL-separated fields: byte order is field-by-field order. */
    size_t n = a->blen < b->blen ? a->blen : b->blen;
    int c = memcmp(a->block, b->block, n);
    if (c != 0)
        return c;
    if (a->blen != b->blen)
        return a->blen < b->blen ? -1 : 1;
    return (int)a->ipv6 - (int)b->ipv6;
}

static void row_of(const arow *r, Ibp__V1__HitRow *row, char *date)
{
    char *p = r->block;
    ibp__v1__hit_row__init(row);
    row->date = date;
    row->domain = p;
    p += strlen(p) + 1;
    row->member = p;
    p += strlen(p) + 1;
    row->country_code = p;
    p += strlen(p) + 1;
    row->asn = p;
    p += strlen(p) + 1;
    row->network_name = p;
    p += strlen(p) + 1;
    row->country_name = p;
    row->ipv6 = r->ipv6;
    row->hits = r->count;
}

/*
 * Drains the shards, then journals the aggregate rows of the dates mode
 * selects, one batch per date and max_rows, oldest date first. Rows journaled
 * are forgotten; on a journal error the rest stay for a later flush.
 */
static ibp_status flush_locked(ibp_usage *u, enum flush_mode mode, int64_t day, ibp_err *err)
{
    ibp_err local;
    if (!err)
        err = &local; /* the log lines below want the reason */
    ibp_status st = drain(u, err);
    arow **sel = NULL;
    Ibp__V1__HitRow *rows = NULL;
    Ibp__V1__HitRow **rowp = NULL;
    size_t n = 0, journaled = 0;
    if (u->agg.used > 0) {
        sel = malloc(u->agg.used * sizeof *sel);
        if (!sel) {
            st = ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory flushing");
            goto done;
        }
    }
    for (size_t i = 0; i < u->agg.cap; i++) {
        arow *r = &u->agg.slots[i];
        if (!r->block || r->count == 0)
            continue;
        if ((mode == FLUSH_DAY && r->day != day) || (mode == FLUSH_BEFORE && r->day >= day))
            continue;
        sel[n++] = r;
    }
    if (n == 0)
        goto done;
    qsort(sel, n, sizeof *sel, cmp_rows);
    size_t per = n < u->max_rows ? n : u->max_rows;
    rows = malloc(per * sizeof *rows);
    rowp = malloc(per * sizeof *rowp);
    if (!rows || !rowp) {
        st = ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory flushing");
        goto done;
    }
    for (size_t i = 0; i < n;) {
        char date[11];
        size_t j = i;
        uint64_t hits = 0;
        ibp_usage_format_date(sel[i]->day, date);
        /* Room for node and flush_seq; each row costs its bytes plus tag and length. */
        size_t bytes = 2 + IBP_NODE_ID_MAX + 11;
        while (j < n && sel[j]->day == sel[i]->day && j - i < per) {
            row_of(sel[j], &rows[j - i], date);
            size_t rb = ibp__v1__hit_row__get_packed_size(&rows[j - i]) + 1 + 3;
            if (j > i && bytes + rb > u->max_batch_bytes)
                break; /* a batch always takes one row: a row is far below any limit */
            bytes += rb;
            rowp[j - i] = &rows[j - i];
            hits += sel[j]->count;
            j++;
        }
        Ibp__V1__HitBatch batch = IBP__V1__HIT_BATCH__INIT;
        batch.rows = rowp;
        batch.n_rows = j - i;
        uint64_t seq = 0;
        ibp_status jst = ibp_usage_journal_append(u->journal, &batch, &seq, err);
        if (jst != IBP_OK) {
            /* The counts stay in the aggregate: the next flush takes them again. */
            IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                    "cannot journal usage; counts kept for the next flush date=%s rows=%zu "
                    "hits=%" PRIu64 " error=\"%s\"",
                    date, j - i, hits, err->msg);
            st = jst;
            break;
        }
        for (size_t r = i; r < j; r++)
            sel[r]->count = 0;
        u->held_hits -= hits;
        journaled += j - i;
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
                "journaled usage batch seq=%" PRIu64 " date=%s rows=%zu hits=%" PRIu64, seq, date,
                j - i, hits);
        i = j;
    }
done:
    free(rows);
    free(rowp);
    free(sel);
    /* Drop journaled rows; a table that cannot shrink now keeps them (count 0) harmlessly. */
    if (journaled > 0)
        agg_resize(&u->agg, pow2_at_least(2 * (u->agg.used - journaled) + 1));
    if (st == IBP_OK)
        u->flushes++;
    else
        u->flush_errors++;
    return st;
}

static ibp_status deliver_locked(ibp_usage *u, int64_t now, bool force, ibp_err *err)
{
    ibp_err local;
    if (!err)
        err = &local; /* the log line below wants the reason */
    ibp_usage_journal_stats js;
    ibp_usage_journal_stats_get(u->journal, &js);
    if (js.pending == 0 || (!force && now < u->next_retry_ms))
        return IBP_OK;
    size_t delivered = 0;
    ibp_status st = ibp_usage_journal_deliver(u->journal, u->sink, &delivered, err);
    if (st == IBP_OK) {
        u->deliver_backoff_ms = 0;
        u->next_retry_ms = 0;
        return IBP_OK;
    }
    u->deliver_backoff_ms = u->deliver_backoff_ms ? u->deliver_backoff_ms * 2 : u->retry_min_ms;
    if (u->deliver_backoff_ms > u->retry_max_ms)
        u->deliver_backoff_ms = u->retry_max_ms;
    u->next_retry_ms = now + u->deliver_backoff_ms;
    ibp_usage_journal_stats_get(u->journal, &js);
    IBP_LOG(IBP_LOG_WARN, COMPONENT,
            "usage sink did not confirm; retrying later delivered=%zu pending=%" PRIu64
            " retry_in_ms=%" PRId64 " error=\"%s\"",
            delivered, js.pending, u->deliver_backoff_ms, err->msg);
    return st;
}

/* A journal failure retries the flush with a backoff, never later than the interval. */
static void schedule_flush(ibp_usage *u, int64_t now, ibp_status st)
{
    if (st == IBP_OK) {
        u->flush_backoff_ms = 0;
        u->next_flush_ms = now + u->flush_interval_ms;
        return;
    }
    u->flush_backoff_ms = u->flush_backoff_ms ? u->flush_backoff_ms * 2 : u->retry_min_ms;
    if (u->flush_backoff_ms > u->retry_max_ms)
        u->flush_backoff_ms = u->retry_max_ms;
    if (u->flush_backoff_ms > u->flush_interval_ms)
        u->flush_backoff_ms = u->flush_interval_ms;
    u->next_flush_ms = now + u->flush_backoff_ms;
}

static void log_summary(ibp_usage *u, int64_t now, bool force)
{
    if (!u->bad_ip_report && !u->geo_err_report)
        return;
    if (!force && now - u->last_summary_ms < SUMMARY_EVERY_MS)
        return;
    u->last_summary_ms = now;
    if (u->bad_ip_report) {
        /* The example comes from the caller: keep the log line printable. */
        char ex[IBP_GEO_IP_MAX + 1];
        size_t i;
        for (i = 0; u->bad_ip_example[i] && i < IBP_GEO_IP_MAX; i++) {
            unsigned char c = (unsigned char)u->bad_ip_example[i];
            ex[i] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
        }
        ex[i] = '\0';
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "hits from client addresses that do not parse counted under ?? count=%" PRIu64
                " example=\"%s\"",
                u->bad_ip_report, ex);
    }
    if (u->geo_err_report)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "MaxMind lookups failed; hits counted under ?? count=%" PRIu64, u->geo_err_report);
    u->bad_ip_report = u->geo_err_report = 0;
    u->bad_ip_example[0] = '\0';
}

ibp_status ibp_usage_tick(ibp_usage *u, ibp_err *err)
{
    ibp_status st = IBP_OK, st2;
    ibp_err e2;
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    int64_t today = day_of(now);
    if (today > u->last_day) {
        /* Right after midnight: the old date(s) go out first, on their own. */
        u->last_day = today;
        st = flush_locked(u, FLUSH_BEFORE, today, err);
        if (st != IBP_OK)
            schedule_flush(u, now, st);
    }
    /* An early flush waits out a journal backoff like any other flush. */
    bool early = atomic_exchange_explicit(&u->early_wanted, false, memory_order_relaxed) &&
                 now < u->next_flush_ms && u->flush_backoff_ms == 0;
    if (early) {
        u->early_flushes++;
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "usage counters reached max_keys=%zu: new keys go to overflow rows (country \?\?) "
                "until this early flush empties the tables early_flushes=%" PRIu64,
                u->max_keys, u->early_flushes);
    }
    if (early || now >= u->next_flush_ms) {
        st2 = flush_locked(u, FLUSH_ALL, 0, st == IBP_OK ? err : &e2);
        schedule_flush(u, now, st2);
        st = st != IBP_OK ? st : st2;
    }
    st2 = deliver_locked(u, now, false, st == IBP_OK ? err : &e2);
    st = st != IBP_OK ? st : st2;
    log_summary(u, now, false);
    pthread_mutex_unlock(&u->flush_mu);
    return st;
}

int64_t ibp_usage_next_due_ms(ibp_usage *u)
{
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    int64_t due = u->next_flush_ms;
    if (atomic_load_explicit(&u->early_wanted, memory_order_relaxed) && u->flush_backoff_ms == 0)
        due = now;
    int64_t midnight = (u->last_day + 1) * IBP_USAGE_DAY_MS;
    if (midnight < due)
        due = midnight;
    ibp_usage_journal_stats js;
    ibp_usage_journal_stats_get(u->journal, &js);
    if (js.pending > 0 && u->next_retry_ms < due)
        due = u->next_retry_ms;
    pthread_mutex_unlock(&u->flush_mu);
    return due > now ? due - now : 0;
}

static ibp_status flush_now(ibp_usage *u, enum flush_mode mode, int64_t day, ibp_err *err)
{
    ibp_err e2;
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    ibp_status st = flush_locked(u, mode, day, err);
    if (mode == FLUSH_ALL)
        schedule_flush(u, now, st);
    deliver_locked(u, now, true, &e2);
    pthread_mutex_unlock(&u->flush_mu);
    return st;
}

ibp_status ibp_usage_flush(ibp_usage *u, ibp_err *err)
{
    if (!u)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no usage");
    return flush_now(u, FLUSH_ALL, 0, err);
}

ibp_status ibp_usage_flush_date(ibp_usage *u, const char *date, ibp_err *err)
{
    int64_t day;
    if (!u)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no usage");
    if (ibp_usage_parse_date(date, &day) != 0)
        return ibp_err_set(err, IBP_E_INVAL, "usage: flush: \"%s\" is not a date (YYYY-MM-DD)",
                           date ? date : "(null)");
    return flush_now(u, FLUSH_DAY, day, err);
}

ibp_status ibp_usage_deliver(ibp_usage *u, ibp_err *err)
{
    if (!u)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no usage");
    pthread_mutex_lock(&u->flush_mu);
    ibp_status st = deliver_locked(u, u->clock(u->clock_user), true, err);
    pthread_mutex_unlock(&u->flush_mu);
    return st;
}

void ibp_usage_stats_get(ibp_usage *u, ibp_usage_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&u->flush_mu);
    *out = u->retired;
    pthread_mutex_lock(&u->reg_mu);
    for (shard *s = u->shards; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        add_shard_stats(out, s);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&u->reg_mu);
    out->keys = atomic_load_explicit(&u->keys, memory_order_relaxed);
    out->unjournaled_hits = u->held_hits;
    out->flushes = u->flushes;
    out->flush_errors = u->flush_errors;
    out->early_flushes = u->early_flushes;
    ibp_usage_journal_stats_get(u->journal, &out->journal);
    pthread_mutex_unlock(&u->flush_mu);
}

/* ---- open / close ---------------------------------------------------------------------------- */

void ibp_usage_opts_init(ibp_usage_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->flush_interval_ms = 300000;
    opts->max_keys = 1u << 20;
    opts->max_rows_per_batch = 10000;
    opts->max_batch_bytes = 900000;
    opts->retry_min_ms = 1000;
    opts->retry_max_ms = 300000;
    opts->tick_ms = 1000;
}

static void *background_main(void *arg)
{
    ibp_usage *u = arg;
    pthread_mutex_lock(&u->thr_mu);
    while (!u->stop) {
        pthread_mutex_unlock(&u->thr_mu);
        ibp_usage_tick(u, NULL); /* logs its own errors */
        pthread_mutex_lock(&u->thr_mu);
        if (u->stop)
            break;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += u->tick_ms / 1000;
        until.tv_nsec += (long)(u->tick_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&u->thr_cv, &u->thr_mu, &until);
    }
    pthread_mutex_unlock(&u->thr_mu);
    return NULL;
}

static ibp_status check_opts(const ibp_usage_opts *o, ibp_err *err)
{
    if (!o->node_id || !ibp_node_id_valid(o->node_id))
        return ibp_err_set(err, IBP_E_INVAL, "usage: node_id is not a valid node id");
    if (!o->work_dir || !*o->work_dir)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no work_dir");
    if (!o->sink || !o->sink->deliver)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no sink");
    if (o->flush_interval_ms < 1 || o->retry_min_ms < 1 || o->retry_max_ms < o->retry_min_ms ||
        (o->background && o->tick_ms < 1))
        return ibp_err_set(err, IBP_E_INVAL,
                           "usage: flush_interval_ms, retry_min_ms, retry_max_ms and tick_ms "
                           "must be positive, retry_max_ms >= retry_min_ms");
    if (o->max_keys < 1 || o->max_keys > ((size_t)1 << 32) || o->max_rows_per_batch < 1)
        return ibp_err_set(err, IBP_E_INVAL,
                           "usage: max_keys must be 1..2^32 and max_rows_per_batch positive");
    if (o->max_batch_bytes < 4096 || o->max_batch_bytes > IBP_USAGE_JOURNAL_ENTRY_MAX / 2)
        return ibp_err_set(err, IBP_E_INVAL, "usage: max_batch_bytes must be 4096..%u",
                           IBP_USAGE_JOURNAL_ENTRY_MAX / 2);
    return IBP_OK;
}

static void free_usage(ibp_usage *u)
{
    for (shard *s = u->shards, *next; s; s = next) {
        next = s->next;
        table_free(&s->t);
        pthread_mutex_destroy(&s->mu);
        free(s);
    }
    for (size_t i = 0; i < u->nheld; i++)
        table_free(&u->held[i]);
    free(u->held);
    for (size_t i = 0; i < u->agg.cap; i++)
        free(u->agg.slots[i].block);
    free(u->agg.slots);
    ibp_usage_journal_close(u->journal);
    pthread_key_delete(u->tls);
    pthread_cond_destroy(&u->thr_cv);
    pthread_mutex_destroy(&u->thr_mu);
    pthread_mutex_destroy(&u->flush_mu);
    pthread_mutex_destroy(&u->reg_mu);
    free(u);
}

ibp_status ibp_usage_open(const ibp_usage_opts *opts, ibp_usage **out, ibp_err *err)
{
    char jdir[4200], seq[4200];
    if (!opts || !out)
        return ibp_err_set(err, IBP_E_INVAL, "usage: no options or no result pointer");
    ibp_status st = check_opts(opts, err);
    if (st != IBP_OK)
        return st;
    int n1 = snprintf(jdir, sizeof jdir, "%s/usage-journal", opts->work_dir);
    int n2 = snprintf(seq, sizeof seq, "%s/usage.seq", opts->work_dir);
    if (n1 < 0 || (size_t)n1 >= sizeof jdir || n2 < 0 || (size_t)n2 >= sizeof seq)
        return ibp_err_set(err, IBP_E_INVAL, "usage: work_dir path too long");
    ibp_usage *u = calloc(1, sizeof *u);
    if (!u)
        return ibp_err_set(err, IBP_E_NOMEM, "usage: out of memory");
    if (pthread_key_create(&u->tls, shard_orphan) != 0) {
        free(u);
        return ibp_err_set(err, IBP_E_NOMEM, "usage: no thread-specific key left");
    }
    pthread_mutex_init(&u->reg_mu, NULL);
    pthread_mutex_init(&u->flush_mu, NULL);
    pthread_mutex_init(&u->thr_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&u->thr_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&u->keys, 0);
    atomic_init(&u->early_wanted, false);

    u->geo = opts->geo;
    u->sink = opts->sink;
    u->clock = opts->clock ? opts->clock : default_clock;
    u->clock_user = opts->clock ? opts->clock_user : NULL;
    u->flush_interval_ms = opts->flush_interval_ms;
    u->max_keys = opts->max_keys;
    u->max_overflow_keys = opts->max_keys / 16 + 64;
    u->max_rows = opts->max_rows_per_batch;
    u->max_batch_bytes = opts->max_batch_bytes;
    u->retry_min_ms = opts->retry_min_ms;
    u->retry_max_ms = opts->retry_max_ms;
    u->tick_ms = opts->tick_ms;
    /* A per-process hash seed: clients choose domains and addresses. */
    if (getrandom(&u->seed, sizeof u->seed, GRND_NONBLOCK) != (ssize_t)sizeof u->seed)
        u->seed = (uint64_t)(uintptr_t)u ^ (uint64_t)default_clock(NULL);

    st = ibp_usage_journal_open(jdir, seq, opts->node_id, &u->journal, err);
    if (st != IBP_OK) {
        free_usage(u);
        return st;
    }
    int64_t now = u->clock(u->clock_user);
    u->last_day = day_of(now);
    u->next_flush_ms = now + u->flush_interval_ms;
    u->last_summary_ms = now - SUMMARY_EVERY_MS;
    if (opts->background) {
        if (pthread_create(&u->thread, NULL, background_main, u) != 0) {
            free_usage(u);
            return ibp_err_set(err, IBP_E_NOMEM, "usage: cannot start the flush thread");
        }
        u->thread_started = true;
    }
    *out = u;
    return IBP_OK;
}

ibp_status ibp_usage_close(ibp_usage *u, ibp_err *err)
{
    ibp_err e2;
    if (!u)
        return IBP_OK;
    if (u->thread_started) {
        pthread_mutex_lock(&u->thr_mu);
        u->stop = true;
        pthread_cond_signal(&u->thr_cv);
        pthread_mutex_unlock(&u->thr_mu);
        pthread_join(u->thread, NULL);
    }
    pthread_mutex_lock(&u->flush_mu);
    int64_t now = u->clock(u->clock_user);
    ibp_status st = flush_locked(u, FLUSH_ALL, 0, err);
    deliver_locked(u, now, true, &e2);
    log_summary(u, now, true);
    if (u->held_hits > 0)
        IBP_LOG(IBP_LOG_ERROR, COMPONENT,
                "shutting down with usage that could not be journaled; lost hits=%" PRIu64,
                u->held_hits);
    pthread_mutex_unlock(&u->flush_mu);
    free_usage(u);
    return st;
}
