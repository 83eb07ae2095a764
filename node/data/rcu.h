/*
 * Read-copy-update for one published pointer: readers never wait for writers.
 *
 * A reader brackets its use of the published object with
 * ibp_rcu_read_lock()/ibp_rcu_read_unlock(); a writer publishes a new object
 * with an atomic store, calls ibp_rcu_synchronize(), and only then frees the
 * old one. synchronize waits until every reader that might have seen the old
 * object has left its read section.
 *
 * How: two generations of reader counters, each spread over cache-line-padded
 * slots (a thread always uses the same slot) so readers on different cores do
 * not fight over one counter. synchronize flips the current generation and
 * waits for the old one to drain, twice, as in Linux's SRCU: one flip alone
 * could miss a reader that read the generation just before the flip and
 * incremented its counter just after the writer found it at zero.
 *
 * Read sections must be short and must not call synchronize (that would wait
 * for itself). Writers must be serialised by the caller.
 */
#ifndef IBP_NODE_RCU_H
#define IBP_NODE_RCU_H

#include <stdatomic.h>

#define IBP_RCU_SLOTS 32

typedef struct ibp_rcu {
    _Atomic unsigned gen;
    struct {
        _Atomic long readers;
        char pad[64 - sizeof(long)];
    } slot[2][IBP_RCU_SLOTS];
} ibp_rcu;

/* Zero-initialises; an ibp_rcu needs no other set-up or tear-down. */
void ibp_rcu_init(ibp_rcu *rcu);

/* Enters a read section; returns the token to pass to ibp_rcu_read_unlock(). */
unsigned ibp_rcu_read_lock(ibp_rcu *rcu);

void ibp_rcu_read_unlock(ibp_rcu *rcu, unsigned token);

/* Waits until every read section that began before the call has ended. */
void ibp_rcu_synchronize(ibp_rcu *rcu);

#endif
