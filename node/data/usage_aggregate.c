/*
 * The usage aggregator; see ibp/usage_aggregate.h. Pure: no clock, no I/O,
 * no threads.
 *
 * Rows live in an open-addressing table (linear probing, at most half full)
 * keyed by (day, ipv6, block). A journaled row keeps its slot with count 0
 * until the next resize or compaction drops it, so a flush that journals
 * only part of its rows never has to move the others.
 */
#include "ibp/usage_aggregate.h"

#include <stdlib.h>
#include <string.h>

#include "geo_text.h"
#include "usage_hash.h"

#define AGG_MIN 64

static size_t pow2_at_least(size_t n)
{
    size_t c = AGG_MIN;
    while (c < n && c < ((size_t)1 << 31))
        c <<= 1;
    return c;
}

size_t ibp__usage_block_size(const ibp_usage_fields *fields)
{
    size_t n = 0;
    for (int i = 0; i < IBP_USAGE_FIELDS; i++)
        n += fields->len[i] + 1;
    return n;
}

void ibp__usage_block_pack(char *dst, const ibp_usage_fields *fields)
{
    for (int i = 0; i < IBP_USAGE_FIELDS; i++) {
        memcpy(dst, fields->f[i], fields->len[i]);
        dst += fields->len[i];
        *dst++ = '\0';
    }
}

char *ibp__usage_block_new(const char *const f[IBP_USAGE_FIELDS], size_t *blen)
{
    ibp_usage_fields fields;
    for (int i = 0; i < IBP_USAGE_FIELDS; i++) {
        fields.f[i] = f[i];
        fields.len[i] = strlen(f[i]);
    }
    size_t n = ibp__usage_block_size(&fields);
    char *b = malloc(n);
    if (!b)
        return NULL;
    ibp__usage_block_pack(b, &fields);
    *blen = n;
    return b;
}

void ibp__usage_block_fields(const char *block, const char *f[IBP_USAGE_FIELDS])
{
    for (int i = 0; i < IBP_USAGE_FIELDS; i++) {
        f[i] = block;
        block += strlen(block) + 1;
    }
}

static uint64_t hash_row(uint64_t seed, int32_t day, bool ipv6, const char *block, size_t blen)
{
    uint64_t h =
        usage_mix(seed ^ UINT64_C(0x5bd1e995), (uint64_t)(uint32_t)day | (uint64_t)ipv6 << 32);
    return usage_finish(usage_mix_bytes(h, block, blen));
}

void ibp__usage_agg_init(ibp_usage_agg *a, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    a->seed = seed;
}

void ibp__usage_agg_free(ibp_usage_agg *a)
{
    for (size_t i = 0; i < a->cap; i++)
        free(a->slots[i].block);
    free(a->slots);
    a->slots = NULL;
    a->cap = a->used = 0;
}

/* Rehashes into cap slots, dropping journaled rows (count 0). -1 (a untouched) when out of memory.
 */
static int agg_resize(ibp_usage_agg *a, size_t cap)
{
    ibp_usage_row *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    size_t mask = cap - 1, used = 0;
    for (size_t i = 0; i < a->cap; i++) {
        ibp_usage_row *r = &a->slots[i];
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

int ibp__usage_agg_add(ibp_usage_agg *a, int32_t day, bool ipv6, char *block, size_t blen,
                       uint64_t count)
{
    /* Domains and members come from outside: make them valid UTF-8 (same
     * length) before they become protobuf strings, and before they are
     * compared, so rows that clean to the same strings are one row. */
    size_t dlen = strlen(block);
    geo_text_clean(block, dlen);
    geo_text_clean(block + dlen + 1, strlen(block + dlen + 1));
    if ((a->used + 1) * 2 > a->cap) {
        if (agg_resize(a, a->cap ? a->cap * 2 : AGG_MIN) != 0 && (a->used + 1) * 16 > a->cap * 15)
            return -1;
    }
    uint64_t h = hash_row(a->seed, day, ipv6, block, blen);
    size_t mask = a->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ibp_usage_row *r = &a->slots[i];
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

static int cmp_rows(const void *pa, const void *pb)
{
    const ibp_usage_row *a = *(const ibp_usage_row *const *)pa;
    const ibp_usage_row *b = *(const ibp_usage_row *const *)pb;
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

int ibp__usage_agg_select(const ibp_usage_agg *a, ibp_usage_select which, int64_t day,
                          ibp_usage_row ***out, size_t *n)
{
    ibp_usage_row **sel = NULL;
    size_t k = 0;
    if (a->used > 0) {
        sel = malloc(a->used * sizeof *sel);
        if (!sel)
            return -1;
    }
    for (size_t i = 0; i < a->cap; i++) {
        ibp_usage_row *r = &a->slots[i];
        if (!r->block || r->count == 0)
            continue;
        if ((which == IBP_USAGE_SELECT_DAY && r->day != day) ||
            (which == IBP_USAGE_SELECT_BEFORE && r->day >= day))
            continue;
        sel[k++] = r;
    }
    if (k == 0) {
        free(sel);
        sel = NULL;
    } else {
        qsort(sel, k, sizeof *sel, cmp_rows);
    }
    *out = sel;
    *n = k;
    return 0;
}

void ibp__usage_agg_compact(ibp_usage_agg *a)
{
    size_t live = 0;
    for (size_t i = 0; i < a->cap; i++)
        live += a->slots[i].block && a->slots[i].count > 0;
    if (live == a->used)
        return; /* nothing journaled since the last resize */
    agg_resize(a, pow2_at_least(2 * live + 1));
}

uint64_t ibp__usage_agg_hits(const ibp_usage_agg *a)
{
    uint64_t n = 0;
    for (size_t i = 0; i < a->cap; i++)
        n += a->slots[i].block ? a->slots[i].count : 0;
    return n;
}
