/*
 * Private to the usage modules: the seeded 64-bit mixing used by the shard
 * tables (usage_shard.c) and the aggregate (usage_aggregate.c). Pure, inline,
 * no state: the seed is per process (ibp_usage_open), because clients choose
 * the domains and addresses that are hashed.
 */
#ifndef IBP_USAGE_HASH_H
#define IBP_USAGE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t usage_mix(uint64_t h, uint64_t v)
{
    h ^= v * UINT64_C(0x9E3779B97F4A7C15);
    h = (h << 31 | h >> 33) * UINT64_C(0xBF58476D1CE4E5B9);
    return h;
}

static inline uint64_t usage_mix_bytes(uint64_t h, const char *p, size_t n)
{
    uint64_t v;
    h = usage_mix(h, n);
    while (n >= 8) {
        memcpy(&v, p, 8);
        h = usage_mix(h, v);
        p += 8;
        n -= 8;
    }
    v = 0;
    memcpy(&v, p, n);
    return usage_mix(h, v);
}

static inline uint64_t usage_finish(uint64_t h)
{
    h ^= h >> 29;
    h *= UINT64_C(0x94D049BB133111EB);
    h ^= h >> 32;
    return h;
}

#endif
