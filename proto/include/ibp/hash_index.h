/*
 * A portable 64-bit hash and an open-addressing index from a 64-bit hash to a
 * 32-bit id. The index holds no records: its user keeps them in its own
 * arrays and answers "is record id the one I am looking for?" through a
 * callback, so one index type serves every table of the project.
 *
 * Pure (memory only, no clock, no I/O): the vote engine uses it. Not
 * thread-safe on one index; separate indexes are independent.
 */
#ifndef IBP_HASH_INDEX_H
#define IBP_HASH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * 64-bit hash of data[0..len) under seed: an xxh64-style round per 8-byte
 * word with the murmur3 finaliser. The same bits on every machine (words are
 * read little-endian), which the vote engine's digests rely on: never change
 * its output. The length enters first, so chaining fields as
 * h = ibp_hash_bytes(b, blen, ibp_hash_bytes(a, alen, seed)) is unambiguous.
 * Not cryptographic. data may be NULL when len is 0.
 */
uint64_t ibp_hash_bytes(const void *data, size_t len, uint64_t seed);

/* Bijective 64-bit finaliser (murmur3 fmix64): mixes an integer into a hash. */
uint64_t ibp_hash_mix64(uint64_t x);

/* The id find returns when nothing matches; never a valid id. */
#define IBP_HASH_INDEX_NONE UINT32_MAX

/*
 * Linear-probing index of 32-bit ids by 64-bit hash. Each slot packs the id
 * and the low 32 bits of the hash (enough to find the home slot while the
 * index has at most 2^32 slots, and to skip most foreign entries without a
 * call to eq). Deletion shifts entries back, so there are no tombstones and
 * lookups stay fast under churn. Lookups never depend on the slot layout
 * (which differs with the insertion history), so it never shows in results.
 * Treat the fields as private.
 */
typedef struct ibp_hash_index {
    uint64_t *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t count;
} ibp_hash_index;

/* True when record id is the one ctx describes. */
typedef bool (*ibp_hash_index_eq_fn)(const void *ctx, uint32_t id);

/* An empty index with room for about capacity / 2 entries. false on ENOMEM. */
bool ibp_hash_index_init(ibp_hash_index *t, size_t capacity);

/* Frees the slots; t may then be initialised again. */
void ibp_hash_index_destroy(ibp_hash_index *t);

/* Empties the index, keeping its slots (no allocation). */
void ibp_hash_index_clear(ibp_hash_index *t);

/*
 * Ensures room for count + extra entries at load <= 1/2, rehashing when
 * needed. false on ENOMEM or past 2^32 slots (the index is unchanged then).
 */
bool ibp_hash_index_reserve(ibp_hash_index *t, size_t extra);

/*
 * The id of the entry with this hash for which eq(ctx, id) holds, or
 * IBP_HASH_INDEX_NONE. eq is called only for entries whose hash agrees in its
 * low 32 bits.
 */
uint32_t ibp_hash_index_find(const ibp_hash_index *t, uint64_t hash, ibp_hash_index_eq_fn eq,
                             const void *ctx);

/*
 * Adds id under hash. The id must not be in the index, must not be
 * IBP_HASH_INDEX_NONE, and room must have been reserved (aborts otherwise:
 * a caller bug).
 */
void ibp_hash_index_insert(ibp_hash_index *t, uint64_t hash, uint32_t id);

/* Removes id, which must be in the index under hash (aborts otherwise). */
void ibp_hash_index_remove(ibp_hash_index *t, uint64_t hash, uint32_t id);

#endif
