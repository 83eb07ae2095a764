/*
 * Internal to ibp_data (ibp__ names; not part of the embedding API): the usage
 * aggregator. It folds counts that left the recording shards (ibp/usage.h)
 * into rows keyed by the strings that go on the wire, per UTC day and ipv6
 * flag, and hands back the rows of the dates being flushed, sorted.
 *
 * Pure: no clock, no I/O, no threads, no locks; the caller (usage.c, under
 * its flush mutex) serialises every call on one aggregate.
 *
 * A row's strings are one "block": the six fields of a HitRow after the date,
 * each NUL-terminated, in this order:
 *     domain\0member\0country_code\0asn\0network_name\0country_name\0
 * Blocks are at most UINT16_MAX bytes (domains and names are bounded far
 * below that). Comparing blocks bytewise compares them field by field.
 */
#ifndef IBP_USAGE_AGGREGATE_H
#define IBP_USAGE_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IBP_USAGE_FIELDS 6 /* domain, member, country_code, asn, network_name, country_name */

/* One row: its strings (owned), its count. count 0: journaled, dropped at the next compaction. */
typedef struct ibp_usage_row {
    uint64_t hash;
    uint64_t count;
    char *block;   /* NULL: empty slot */
    int32_t day;   /* UTC day number (days since 1970-01-01) */
    uint16_t blen; /* bytes of block, NULs included */
    uint8_t ipv6;
} ibp_usage_row;

/* An open-addressing table of rows. Zero it, or use ibp__usage_agg_init. */
typedef struct ibp_usage_agg {
    ibp_usage_row *slots;
    size_t cap;  /* power of two, or 0 */
    size_t used; /* rows held, journaled ones (count 0) included until compacted */
    uint64_t seed;
} ibp_usage_agg;

/* Which rows a flush takes: every date, one date, or the dates before one. */
typedef enum ibp_usage_select {
    IBP_USAGE_SELECT_ALL,
    IBP_USAGE_SELECT_DAY,
    IBP_USAGE_SELECT_BEFORE
} ibp_usage_select;

/* The fields of a block, each with its length (no NUL needed at f[i][len[i]]). */
typedef struct ibp_usage_fields {
    const char *f[IBP_USAGE_FIELDS];
    size_t len[IBP_USAGE_FIELDS];
} ibp_usage_fields;

/* Bytes of the block of fields (NULs included). */
size_t ibp__usage_block_size(const ibp_usage_fields *fields);

/* Writes the block of fields into dst (ibp__usage_block_size bytes). */
void ibp__usage_block_pack(char *dst, const ibp_usage_fields *fields);

/* A new block of NUL-terminated strings f[0..5], its size in *blen; NULL when out of memory. */
char *ibp__usage_block_new(const char *const f[IBP_USAGE_FIELDS], size_t *blen);

/* Points f[0..5] at the fields of block (borrowed from it). */
void ibp__usage_block_fields(const char *block, const char *f[IBP_USAGE_FIELDS]);

/* An empty aggregate hashing with seed. Allocates nothing. */
void ibp__usage_agg_init(ibp_usage_agg *a, uint64_t seed);

/* Frees every row and the table; a leaves empty (seed kept). Accepts an empty aggregate. */
void ibp__usage_agg_free(ibp_usage_agg *a);

/*
 * Adds count to the row (day, ipv6, block), taking ownership of block (moved
 * into a new row or freed). The domain and member of block are first made
 * valid UTF-8 in place (invalid bytes replaced, same length), since they come
 * from outside and become protobuf strings. -1 with block untouched when out
 * of memory; 0 otherwise.
 */
int ibp__usage_agg_add(ibp_usage_agg *a, int32_t day, bool ipv6, char *block, size_t blen,
                       uint64_t count);

/*
 * The rows with a count that `which` selects (day: the date of SELECT_DAY, the
 * first date not taken by SELECT_BEFORE), sorted by (day, block, ipv6), into
 * *out (caller frees the array with free(); the rows stay owned by a and are
 * valid until the next add or compaction) and their number into *n. *out is
 * NULL when *n is 0. -1 when out of memory (nothing set).
 */
int ibp__usage_agg_select(const ibp_usage_agg *a, ibp_usage_select which, int64_t day,
                          ibp_usage_row ***out, size_t *n);

/*
 * Drops the rows whose count is 0 (journaled), shrinking the table to fit
 * the rest. A table that cannot be reallocated keeps them, harmlessly.
 */
void ibp__usage_agg_compact(ibp_usage_agg *a);

/* Sum of the counts held. */
uint64_t ibp__usage_agg_hits(const ibp_usage_agg *a);

#endif
