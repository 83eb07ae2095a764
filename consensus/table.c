/*
 * Open-addressing index: 64-bit hash -> 32-bit id, linear probing, backward
 * shift deletion. The engine keeps the records (keys, monitors) in its own
 * arrays; this table only finds them.
 */
#include <stdlib.h>

#include "vote_internal.h"

#define EMPTY UINT64_MAX

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

static bool alloc_slots(vote_table *t, size_t capacity)
{
    uint64_t *s = malloc(capacity * sizeof *s);
    if (!s)
        return false;
    for (size_t i = 0; i < capacity; i++)
        s[i] = EMPTY;
    t->slots = s;
    t->mask = capacity - 1;
    return true;
}

bool vote_table_init(vote_table *t, size_t capacity)
{
    size_t c = 16;
    while (c < capacity)
        c <<= 1;
    t->count = 0;
    return alloc_slots(t, c);
}

void vote_table_destroy(vote_table *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->count = 0;
}

bool vote_table_reserve(vote_table *t, size_t extra)
{
    size_t need = t->count + extra;
    size_t cap = t->mask + 1;
    if (need <= cap / 2)
        return true;
    size_t c = cap;
    while (need > c / 2)
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

uint32_t vote_table_find(const vote_table *t, uint64_t hash, vote_eq_fn eq, const void *ctx)
{
    uint32_t tag = (uint32_t)hash;
    size_t j = tag & t->mask;
    for (;;) {
        uint64_t s = t->slots[j];
        if (s == EMPTY)
            return VOTE_NONE;
        if (slot_tag(s) == tag && eq(ctx, slot_id(s)))
            return slot_id(s);
        j = (j + 1) & t->mask;
    }
}

void vote_table_insert(vote_table *t, uint64_t hash, uint32_t id)
{
    VOTE_ASSERT(id != VOTE_NONE);
    VOTE_ASSERT(t->count + 1 <= (t->mask + 1) / 2);
    size_t j = (uint32_t)hash & t->mask;
    while (t->slots[j] != EMPTY)
        j = (j + 1) & t->mask;
    t->slots[j] = pack(hash, id);
    t->count++;
}

void vote_table_remove(vote_table *t, uint64_t hash, uint32_t id)
{
    uint64_t want = pack(hash, id);
    size_t j = (uint32_t)hash & t->mask;
    while (t->slots[j] != want) {
        VOTE_ASSERT(t->slots[j] != EMPTY);
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
