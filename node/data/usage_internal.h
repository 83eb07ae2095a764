/*
 * Private to the usage modules (usage.c, the facade, and usage_shard.c, the
 * recording hot path): the shard tables and the state of an ibp_usage.
 *
 * Each recording thread owns a shard: an open-addressing table keyed on the
 * cheap hot-path key (day, interned domain and member, ipv6, geo record
 * refs), behind a mutex that only the flusher contends; each entry owns one
 * block of the strings of its row (ibp/usage_aggregate.h). A drain (usage.c)
 * swaps each shard's table for an empty one (O(1) under the shard mutex) and
 * folds the old table into the aggregate afterwards, moving each block over
 * instead of copying it.
 *
 * Lock order: flush_mu, then reg_mu, then a shard's mu. The hot path takes a
 * shard mu only (and reg_mu once per thread, to register its shard).
 */
#ifndef IBP_USAGE_INTERNAL_H
#define IBP_USAGE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/usage.h"
#include "ibp/usage_aggregate.h"
#include "ibp/usage_flush.h"

#define IBP_USAGE_TABLE_MIN 64
#define IBP_USAGE_DM_MIN 16

/* 48 bytes: the key, the count and the strings of the row it becomes. */
typedef struct usage_entry {
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
} usage_entry;

/* An interned (domain, member): id of the keys that have them. */
typedef struct usage_dmslot {
    uint64_t hash;
    char *str; /* domain\0member\0; NULL: empty slot */
    uint16_t dlen;
    uint16_t mlen;
    uint32_t id;
} usage_dmslot;

/* A shard's counters of one flush period: swapped out whole by a drain. */
typedef struct usage_table {
    usage_entry *slots;
    size_t cap; /* power of two, or 0 (no slots) */
    size_t used;
    usage_dmslot *dms;
    size_t dcap; /* power of two, or 0 */
    size_t dused;
} usage_table;

typedef struct usage_shard {
    pthread_mutex_t mu;
    usage_table t; /* under mu */
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
    atomic_bool orphaned;     /* its thread exited: the next drain frees it */
    struct usage_shard *next; /* under reg_mu */
} usage_shard;

struct ibp_usage {
    const ibp_geo *geo;
    const ibp_usage_sink *sink;
    ibp_usage_clock_fn clock;
    void *clock_user;
    size_t max_keys;
    size_t max_overflow_keys;
    size_t max_rows;
    size_t max_batch_bytes;
    int64_t tick_ms;
    uint64_t seed;

    pthread_key_t tls; /* the calling thread's shard */
    pthread_mutex_t reg_mu;
    usage_shard *shards; /* under reg_mu */
    atomic_size_t keys;
    /* Set by a hit that went to an overflow key: the next tick flushes early. */
    atomic_bool early_wanted;

    pthread_mutex_t flush_mu; /* everything below */
    ibp_usage_agg agg;
    usage_table *held; /* tables drained from shards, not yet merged into agg */
    size_t nheld;
    size_t held_cap;
    uint64_t held_hits; /* counts in held and agg: out of the shards, not journaled */
    ibp_usage_journal *journal;
    ibp_usage_sched sched;
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

/* The smallest power of two >= n, at least IBP_USAGE_TABLE_MIN. */
size_t ibp__usage_pow2_at_least(size_t n);

/* Zeroed tables of cap entries and dm_cap interned pairs (powers of two); -1 when out of memory. */
int ibp__usage_table_init(usage_table *t, size_t cap, size_t dm_cap);

/* Frees the table's blocks, pairs and slots; t left empty. */
void ibp__usage_table_free(usage_table *t);

/* The destructor of u->tls: marks the shard of an exiting thread for the next drain to free. */
void ibp__usage_shard_orphan(void *shard);

#endif
