/*
 * The simulated cluster for the vote engine (tests/sim, ctest label `sim`).
 *
 * One process, one virtual clock, no threads: monitors publish signed (modelled)
 * envelopes with latency, loss, duplication and partitions; a stream server
 * appends what arrives to one ordered log (the LOCAL stream) with its own
 * timestamps; three consensus replicas read that log at their own pace through
 * a model of the driver's verification filter, crash and restart from saved
 * states, and apply what passes to real ibp_vote engines. An event queue ordered
 * by (time, node, seq) fires one event per step; after each step the checker
 * compares every replica with an independent reference model (ref.c) and
 * checks the safety invariants from the log itself. Everything random comes
 * from one seeded PRNG, so a seed replays exactly.
 */
#ifndef IBP_SIM_H
#define IBP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ibp/vote.h"

/* ---- PRNG: xoshiro256** seeded through splitmix64 -------------------------- */

typedef struct sim_rng {
    uint64_t s[4];
} sim_rng;

static inline uint64_t sim_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void sim_rng_seed(sim_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = sim_splitmix64(&seed);
}

static inline uint64_t sim_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t sim_next(sim_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = sim_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = sim_rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n) (n > 0; the tiny modulo bias does not matter here). */
static inline uint64_t sim_below(sim_rng *r, uint64_t n)
{
    return sim_next(r) % n;
}

/* Uniform in [lo, hi]. */
static inline int64_t sim_range(sim_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)sim_below(r, (uint64_t)(hi - lo + 1));
}

/* true with probability p_ppm / 1e6. */
static inline bool sim_chance(sim_rng *r, uint32_t p_ppm)
{
    return sim_below(r, 1000000) < p_ppm;
}

/* ---- the key universe ------------------------------------------------------- */

#define SIM_MAX_KEYS 64
#define SIM_MAX_MON 8
#define SIM_MAX_MEMBERS 8
#define SIM_STR 48

typedef struct sim_universe {
    int nkeys;
    ibp_vote_key keys[SIM_MAX_KEYS];
    char strs[SIM_MAX_KEYS][4][SIM_STR];
    int nmembers;
    char members[SIM_MAX_MEMBERS][SIM_STR];
    int key_member[SIM_MAX_KEYS];
} sim_universe;

/* Builds nmembers members x (site, 1 domain, 1 endpoint) x (ipv4, ipv6) keys,
 * at most SIM_MAX_KEYS. */
void ibp_test_sim_universe_init(sim_universe *u, int nmembers);
/* Index of a key, or -1. */
int ibp_test_sim_universe_find(const sim_universe *u, const ibp_vote_key *k);
/* "site/ping/Member 1/v6"-style short name. */
const char *ibp_test_sim_key_name(const sim_universe *u, int k, char *buf, size_t cap);

/* ---- messages (modelled envelopes) ------------------------------------------ */

typedef struct sim_obs {
    int key;
    ibp_vote_status status;
    int64_t check_time_ms;
    char error[SIM_STR];
    char data[SIM_STR];
} sim_obs;

/* Where an envelope came from (for the checker; receivers never look). */
enum sim_origin {
    SIM_HONEST = 0,
    SIM_LIAR,
    SIM_ADMIN,
    SIM_FORGED_UNKNOWN, /* a signer not in the roster */
    SIM_FORGED_SIG,     /* a roster signer's name with a bad signature */
    SIM_WRONG_ROLE,     /* a monitor sending an override */
    SIM_REPLAY,         /* an old envelope sent again */
};

typedef struct sim_env {
    char signer[SIM_STR];
    uint64_t signer_seq; /* Envelope.seq */
    bool sig_ok;
    enum sim_origin origin;
    ibp_vote_kind kind;
    uint64_t batch_seq;
    bool full;
    int nobs;
    sim_obs *obs;
    int member; /* override: index into the universe's members */
    bool disabled;
    char reason[SIM_STR];
    int accepted; /* times the reference filter accepted it (must stay <= 1) */
} sim_env;

/* ---- reference model (ref.c) ------------------------------------------------- */

typedef struct ref_vote {
    int mon;
    uint64_t local_seq;
    uint64_t batch_seq;
    ibp_vote_status status;
} ref_vote;

typedef struct ref_change {
    int key; /* -1 for an override change */
    ibp_vote_change_kind kind;
    ibp_vote_status status, previous;
    int64_t check_time_ms;
    char error[SIM_STR];
    char data[SIM_STR];
    int nvotes;
    ref_vote votes[SIM_MAX_MON];
} ref_change;

typedef struct ref_obs {
    bool has;
    ibp_vote_status status;
    int64_t check_time_ms;
    int64_t stream_ms;
    uint64_t local_seq, batch_seq;
    char error[SIM_STR], data[SIM_STR];
} ref_obs;

/*
 * The rules of DESIGN.md §6 written the plain way: arrays indexed by monitor
 * and key, every count recomputed from scratch. Slow and obviously right, so
 * the engine's incremental structures can be checked against it.
 */
typedef struct ref_model {
    ibp_vote_config cfg;
    const sim_universe *u;
    int nmon;
    char mon_names[SIM_MAX_MON][SIM_STR];
    int64_t now;
    uint64_t epoch;
    bool heard[SIM_MAX_MON];
    int64_t last_msg[SIM_MAX_MON];
    bool held[SIM_MAX_KEYS];
    int64_t last_seen[SIM_MAX_KEYS];
    ref_obs obs[SIM_MAX_KEYS][SIM_MAX_MON];
    ibp_vote_status official[SIM_MAX_KEYS];
    int64_t off_ct[SIM_MAX_KEYS];
    char off_err[SIM_MAX_KEYS][SIM_STR], off_data[SIM_MAX_KEYS][SIM_STR];
    bool disabled[SIM_MAX_MEMBERS];
    char reason[SIM_MAX_MEMBERS][SIM_STR];
    /* the last apply */
    int nchanges;
    ref_change changes[SIM_MAX_KEYS + 1];
    bool override_changed;
    int active, quorum;
} ref_model;

void ibp_test_ref_init(ref_model *r, const ibp_vote_config *cfg, const sim_universe *u, int nmon,
                       char names[][SIM_STR]);
/* Applies an accepted message: mon is the roster index of a monitor signer
 * (ignored for overrides). */
void ibp_test_ref_apply(ref_model *r, const sim_env *env, int mon, uint64_t local_seq,
                        int64_t stream_ms);

/* ---- the cluster ------------------------------------------------------------- */

typedef struct sim_knobs {
    int nmon;           /* 5..7 */
    int nmembers;       /* keys = 6 x nmembers */
    bool liar;          /* one compromised monitor lying about every key */
    int silent;         /* monitors in the roster that never send */
    int skewed;         /* honest monitors whose check_time_ms is minutes off */
    uint32_t loss_ppm;  /* publish lost */
    uint32_t dup_ppm;   /* delivered twice (dedup window missed) */
    uint32_t flake_ppm; /* an honest observation is wrong */
    int64_t lat_min_ms, lat_max_ms;
    uint32_t ts_back_ppm; /* stream timestamp steps back (leader change) */
    uint32_t crash_ppm;   /* per monitor tick: crash */
    uint32_t part_ppm;    /* per monitor tick: partitioned from the bus */
    uint32_t attack_ppm;  /* per monitor tick: an attacker injects something */
    uint32_t rcrash_ppm;  /* per replica step: crash */
    uint32_t snap_ppm;    /* per replica step: save a state */
    int64_t chaos_ms;     /* then a calm phase long enough to converge */
    int64_t calm_ms;
    int64_t tick_ms;    /* monitor check interval */
    int64_t refresh_ms; /* full batch interval */
    int64_t heartbeat_ms;
    int max_chunk;         /* observations per batch */
    int overrides;         /* admin overrides during the run */
    int churn;             /* keys dropped from every monitor's config mid-run */
    int64_t gran_ms;       /* times (ticks, latencies) are multiples of this, so ages hit
                              the limits exactly and check times tie */
    int64_t check_gran_ms; /* check_time_ms resolution (1 s makes ties common) */
    bool trim;             /* LOCAL's prefix is dropped now and then, and a replica rebuilt
                              without a state starts from another's checkpoint or waits */
} sim_knobs;

/* Draws knobs for a seed from its own stream of randomness. */
void ibp_test_sim_knobs_random(sim_knobs *k, uint64_t seed);

typedef struct sim_stats {
    uint64_t steps, messages, applied, changes, flips, removals, epochs;
    uint64_t drop_unknown, drop_sig, drop_role, drop_replay;
    uint64_t attacks, replica_crashes, restores, rebuilds, snapshots, monitor_crashes;
    uint64_t trims, bootstraps, bootstrap_waits, checkpoints_refused;
    uint64_t obs;
    uint8_t final_digest[IBP_VOTE_DIGEST_SIZE];
    uint64_t trace_hash; /* hash of every update, to prove a seed replays exactly */
} sim_stats;

typedef struct sim_cluster sim_cluster;

/* A scripted message for golden tests: sent at at_ms (relative to the start)
 * with zero latency. */
typedef struct sim_script {
    int64_t at_ms;
    int mon; /* roster index; -1: the admin */
    ibp_vote_kind kind;
    int nobs;
    struct {
        int key;
        ibp_vote_status status;
    } obs[8];
    int member; /* override */
    bool disabled;
} sim_script;

/*
 * Runs one random seed with the given knobs (NULL: drawn from the seed).
 * Returns 0 when every invariant held; on a violation prints the seed, step and
 * virtual time and returns 1. verbose prints the trace.
 */
int ibp_test_sim_run_seed(uint64_t seed, const sim_knobs *knobs, bool verbose, sim_stats *stats);

/*
 * Runs a scripted scenario with cfg, nmon monitors (mon1..monN) and nmembers
 * members, through the same stream, filter, replicas and checks; writes the
 * trace (one line per epoch) into trace. Returns 0, or 1 on a violation.
 */
int ibp_test_sim_run_script(const ibp_vote_config *cfg, int nmon, int nmembers,
                            const sim_script *steps, size_t nsteps, int64_t end_ms, char *trace,
                            size_t trace_cap);

#endif
