/* Read-copy-update for one published pointer; see rcu.h. */
#include "rcu.h"

#include <sched.h>
#include <string.h>
#include <time.h>

static _Atomic unsigned next_slot;
static _Thread_local unsigned my_slot_plus_one;

static unsigned thread_slot(void)
{
    if (!my_slot_plus_one)
        my_slot_plus_one =
            atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % IBP_RCU_SLOTS + 1;
    return my_slot_plus_one - 1;
}

void ibp_rcu_init(ibp_rcu *rcu)
{
    memset(rcu, 0, sizeof *rcu);
}

unsigned ibp_rcu_read_lock(ibp_rcu *rcu)
{
    unsigned slot = thread_slot();
    /* seq_cst on both steps: the increment must be ordered before the reader's
     * load of the published pointer, and after its load of the generation. */
    unsigned gen = atomic_load(&rcu->gen) & 1u;
    atomic_fetch_add(&rcu->slot[gen][slot].readers, 1);
    return gen * IBP_RCU_SLOTS + slot;
}

void ibp_rcu_read_unlock(ibp_rcu *rcu, unsigned token)
{
    unsigned gen = token / IBP_RCU_SLOTS, slot = token % IBP_RCU_SLOTS;
    atomic_fetch_sub_explicit(&rcu->slot[gen][slot].readers, 1, memory_order_release);
}

static void wait_drained(ibp_rcu *rcu, unsigned gen)
{
    for (unsigned spins = 0;; spins++) {
        long sum = 0;
        for (unsigned s = 0; s < IBP_RCU_SLOTS; s++)
            sum += atomic_load_explicit(&rcu->slot[gen][s].readers, memory_order_acquire);
        if (sum == 0)
            return;
        if (spins < 64) {
            sched_yield();
        } else {
            struct timespec ts = {0, 50000}; /* read sections are short: 50 us naps */
            nanosleep(&ts, NULL);
        }
    }
}

void ibp_rcu_synchronize(ibp_rcu *rcu)
{
    atomic_thread_fence(memory_order_seq_cst);
    for (int round = 0; round < 2; round++) {
        unsigned old = atomic_fetch_xor(&rcu->gen, 1u) & 1u;
        wait_drained(rcu, old);
    }
    atomic_thread_fence(memory_order_seq_cst);
}
