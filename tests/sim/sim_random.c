/*
 * Runs the simulated cluster over many seeds (see sim.h, cluster.c).
 *
 *   IBP_SIM_SEEDS=<n>   how many seeds (default 500, 100 in sanitizer builds), starting
 *                       at IBP_SIM_BASE (default 1)
 *   IBP_SIM_SEED=<s>    run exactly seed s (prints its knobs and stats)
 *   IBP_SIM_VERBOSE=1   print the trace (one line per epoch)
 *
 * A failure prints the seed, step and virtual time, and how to replay it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

/* About 14 s in a RelWithDebInfo build; sanitizers run several times slower. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_SEEDS 100
#else
#define DEFAULT_SEEDS 500
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : dflt;
}

static void print_stats(const char *what, const sim_stats *s, double secs)
{
    printf("%s: %llu steps, %llu messages in LOCAL, %llu applied (%llu observations), "
           "%llu epochs, %llu changes (%llu flips, %llu removals); dropped by the filter: "
           "%llu unknown signer, %llu bad signature, %llu wrong role, %llu replay/duplicate "
           "(%llu attacks injected); %llu monitor crashes, %llu replica crashes, "
           "%llu snapshots, %llu restores, %llu rebuilds from scratch; %llu LOCAL trims, "
           "%llu starts from a checkpoint, %llu waits for one, %llu checkpoints refused; "
           "%.2f s\n",
           what, (unsigned long long)s->steps, (unsigned long long)s->messages,
           (unsigned long long)s->applied, (unsigned long long)s->obs,
           (unsigned long long)s->epochs, (unsigned long long)s->changes,
           (unsigned long long)s->flips, (unsigned long long)s->removals,
           (unsigned long long)s->drop_unknown, (unsigned long long)s->drop_sig,
           (unsigned long long)s->drop_role, (unsigned long long)s->drop_replay,
           (unsigned long long)s->attacks, (unsigned long long)s->monitor_crashes,
           (unsigned long long)s->replica_crashes, (unsigned long long)s->snapshots,
           (unsigned long long)s->restores, (unsigned long long)s->rebuilds,
           (unsigned long long)s->trims, (unsigned long long)s->bootstraps,
           (unsigned long long)s->bootstrap_waits, (unsigned long long)s->checkpoints_refused, secs);
}

static void add(sim_stats *t, const sim_stats *s)
{
    t->steps += s->steps;
    t->messages += s->messages;
    t->applied += s->applied;
    t->obs += s->obs;
    t->epochs += s->epochs;
    t->changes += s->changes;
    t->flips += s->flips;
    t->removals += s->removals;
    t->drop_unknown += s->drop_unknown;
    t->drop_sig += s->drop_sig;
    t->drop_role += s->drop_role;
    t->drop_replay += s->drop_replay;
    t->attacks += s->attacks;
    t->monitor_crashes += s->monitor_crashes;
    t->replica_crashes += s->replica_crashes;
    t->snapshots += s->snapshots;
    t->restores += s->restores;
    t->rebuilds += s->rebuilds;
    t->trims += s->trims;
    t->bootstraps += s->bootstraps;
    t->bootstrap_waits += s->bootstrap_waits;
    t->checkpoints_refused += s->checkpoints_refused;
}

int main(void)
{
    bool verbose = env_u64("IBP_SIM_VERBOSE", 0) != 0;
    const char *one = getenv("IBP_SIM_SEED");
    if (one && *one) {
        uint64_t seed = strtoull(one, NULL, 10);
        sim_stats st;
        double t = now_s();
        int rc = ibp_test_sim_run_seed(seed, NULL, verbose, &st);
        char what[64];
        snprintf(what, sizeof what, "seed %llu %s", (unsigned long long)seed, rc ? "FAILED" : "ok");
        print_stats(what, &st, now_s() - t);
        return rc;
    }
    uint64_t n = env_u64("IBP_SIM_SEEDS", DEFAULT_SEEDS);
    uint64_t base = env_u64("IBP_SIM_BASE", 1);
    sim_stats total;
    memset(&total, 0, sizeof total);
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t seed = base + i;
        sim_stats st;
        if (ibp_test_sim_run_seed(seed, NULL, verbose, &st) != 0)
            return 1;
        add(&total, &st);
        /* The simulation itself must be deterministic: run a few seeds twice. */
        if (i < 3) {
            sim_stats again;
            if (ibp_test_sim_run_seed(seed, NULL, false, &again) != 0 ||
                again.trace_hash != st.trace_hash ||
                memcmp(again.final_digest, st.final_digest, sizeof st.final_digest) != 0 ||
                again.steps != st.steps) {
                fprintf(stderr, "sim: FAIL seed=%llu does not replay identically\n",
                        (unsigned long long)seed);
                return 1;
            }
        }
    }
    char what[96];
    snprintf(what, sizeof what, "sim: %llu seeds (%llu..%llu) ok", (unsigned long long)n,
             (unsigned long long)base, (unsigned long long)(base + n - 1));
    print_stats(what, &total, now_s() - t0);
    return 0;
}
