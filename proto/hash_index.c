/*
 * Portable hash and open-addressing index; see ibp/hash_index.h. Linear
 * probing with backward shift deletion: a miss stops at the first empty slot,
 * and at load <= 1/2 the probe sequences stay a cache line or two long.
 */
#include "ibp/hash_index.h"

#include <stdlib.h>
#include <string.h>

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL

#define EMPTY UINT64_MAX

/* Caller bugs stop the program in every build (never compiled out). */
#define INDEX_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* ---- hash --------------------------------------------------------------- */

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64le(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint64_t ibp_hash_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t round64(uint64_t h, uint64_t w)
{
    w *= P2;
    w = rotl64(w, 31);
    w *= P1;
    h ^= w;
    return rotl64(h, 27) * P1 + P4;
}

uint64_t ibp_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed + P3 + (uint64_t)len * P1;
    size_t n = len;
    while (n >= 8) {
        h = round64(h, read64le(p));
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)p[i] << (8 * i);
        h = round64(h, w ^ ((uint64_t)n << 59));
    }
    return ibp_hash_mix64(h);
}

/* ---- index -------------------------------------------------------------- */

static inline uint64_t pack(uint64_t hash, uint32_t id)
{
    return (uint64_t)id << 32 | (uint32_t)hash;
}

static inline uint32_t slot_id(uint64_t s)
{
    return (uint32_t)(s >> 32);
}

static inline uint32_t slot_tag(uint64_t s)
{
    return (uint32_t)s;
}

static bool alloc_slots(ibp_hash_index *t, size_t capacity)
{
    if (capacity > SIZE_MAX / sizeof(uint64_t))
        return false;
    uint64_t *s = malloc(capacity * sizeof *s);
    if (!s)
        return false;
    /* EMPTY is all ones: one memset instead of a loop of stores. */
    memset(s, 0xFF, capacity * sizeof *s);
    t->slots = s;
    t->mask = capacity - 1;
    return true;
}

bool ibp_hash_index_init(ibp_hash_index *t, size_t capacity)
{
    size_t c = 16;
    while (c < capacity && c <= ((size_t)1 << 31))
        c <<= 1;
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
    return alloc_slots(t, c);
}

void ibp_hash_index_destroy(ibp_hash_index *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
}

void ibp_hash_index_clear(ibp_hash_index *t)
{
    if (t->slots)
        memset(t->slots, 0xFF, (t->mask + 1) * sizeof *t->slots);
    t->count = 0;
}

bool ibp_hash_index_reserve(ibp_hash_index *t, size_t extra)
{
    if (extra > SIZE_MAX / 2 - t->count)
        return false;
    size_t need = t->count + extra;
    size_t cap = t->mask + 1;
    if (need <= cap / 2)
        return true;
    size_t c = cap;
    while (need > c / 2 && c <= ((size_t)1 << 32))
        c <<= 1;
    /* Slots pack 32-bit tags: the home slot must be derivable from them. */
    if (c > ((size_t)1 << 32))
        return false;
    uint64_t *old = t->slots;
    size_t oldcap = cap;
    if (!alloc_slots(t, c)) {
        t->slots = old;
        return false;
    }
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i] == EMPTY)
            continue;
        size_t j = slot_tag(old[i]) & t->mask;
        while (t->slots[j] != EMPTY)
            j = (j + 1) & t->mask;
        t->slots[j] = old[i];
    }
    free(old);
    return true;
}

uint32_t ibp_hash_index_find(const ibp_hash_index *t, uint64_t hash, ibp_hash_index_eq_fn eq,
                             const void *ctx)
{
    uint32_t tag = (uint32_t)hash;
    size_t j = tag & t->mask;
    for (;;) {
        uint64_t s = t->slots[j];
        if (s == EMPTY)
            return IBP_HASH_INDEX_NONE;
        if (slot_tag(s) == tag && eq(ctx, slot_id(s)))
            return slot_id(s);
        j = (j + 1) & t->mask;
    }
}

void ibp_hash_index_insert(ibp_hash_index *t, uint64_t hash, uint32_t id)
{
    INDEX_CHECK(id != IBP_HASH_INDEX_NONE);
    INDEX_CHECK(t->count + 1 <= (t->mask + 1) / 2);
    size_t j = (uint32_t)hash & t->mask;
    while (t->slots[j] != EMPTY)
        j = (j + 1) & t->mask;
    t->slots[j] = pack(hash, id);
    t->count++;
}

void ibp_hash_index_remove(ibp_hash_index *t, uint64_t hash, uint32_t id)
{
    uint64_t want = pack(hash, id);
    size_t j = (uint32_t)hash & t->mask;
    while (t->slots[j] != want) {
        INDEX_CHECK(t->slots[j] != EMPTY);
        j = (j + 1) & t->mask;
    }
    /* Backward shift: pull later entries of the cluster into the hole when
     * their home slot does not lie cyclically in (hole, their slot]. */
    size_t hole = j;
    size_t k = (j + 1) & t->mask;
    while (t->slots[k] != EMPTY) {
        size_t home = slot_tag(t->slots[k]) & t->mask;
        bool stays = hole <= k ? (hole < home && home <= k) : (hole < home || home <= k);
        if (!stays) {
            t->slots[hole] = t->slots[k];
            hole = k;
        }
        k = (k + 1) & t->mask;
    }
    t->slots[hole] = EMPTY;
    t->count--;
}
