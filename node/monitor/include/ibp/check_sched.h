/*
 * The check scheduler's queue: entries ordered by due time (a binary
 * min-heap; ties by insertion order), so the checker always starts the
 * target that is most overdue. Pure (the caller passes times); not
 * thread-safe (the checker holds its lock around it).
 */
#ifndef IBP_CHECK_SCHED_H
#define IBP_CHECK_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/status.h"

typedef struct ibp_check_sched_entry {
    int64_t due_ms;
    uint64_t order; /* insertion counter: earlier first among equal due times */
    void *item;     /* borrowed */
} ibp_check_sched_entry;

typedef struct ibp_check_sched {
    ibp_check_sched_entry *heap;
    size_t count, cap;
    uint64_t next_order;
} ibp_check_sched;

/* Adds item due at due_ms. IBP_E_NOMEM. */
ibp_status ibp_check_sched_push(ibp_check_sched *s, int64_t due_ms, void *item);

/* The earliest entry, or NULL when empty. */
const ibp_check_sched_entry *ibp_check_sched_peek(const ibp_check_sched *s);

/* Removes the earliest entry into *out; false when empty. */
bool ibp_check_sched_pop(ibp_check_sched *s, ibp_check_sched_entry *out);

/* Entries due at or before now_ms (waiting for a slot when all are busy). O(n). */
size_t ibp_check_sched_due(const ibp_check_sched *s, int64_t now_ms);

/* Empties the queue (keeps its memory). */
void ibp_check_sched_clear(ibp_check_sched *s);

/* Frees the queue's memory; accepts NULL. */
void ibp_check_sched_free(ibp_check_sched *s);

#endif
