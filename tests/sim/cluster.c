/*
 * The simulated cluster (see sim.h): virtual time, monitors, the LOCAL stream,
 * the driver's verification filter, three replicas, and the checker.
 *
 * Invariants checked after every step (a violation prints seed, step, time):
 *  - every replica that consumed log position p agrees with the reference
 *    model on the filter verdict, the epoch, engine time, active monitors,
 *    quorum and the exact set of changes (with result fields and evidence);
 *  - all replicas that consumed the same prefix have the same digest, and a
 *    replica's digest changes exactly when its epoch advances;
 *  - epochs never go back;
 *  - from the log alone (not the models): every ADDED/FLIPPED change is
 *    backed by at least a quorum of deciding votes, each the voter's latest
 *    observation of the key, carried by an accepted batch younger than the
 *    staleness limit, from a monitor active by the log, with the quorum
 *    recomputed from the log; at least quorum-1 of them (so at least one) come
 *    from monitors other than the compromised one; every REMOVED key had no
 *    observation for the expiry time;
 *  - no forged, mis-signed, wrong-role, replayed or duplicated envelope is ever
 *    accepted (each envelope is accepted at most once);
 *  - trimmed-LOCAL seeds: no replica reads a position LOCAL dropped; a replica
 *    without a usable state starts only from a checkpoint whose digest is the
 *    published one of its epoch (a forged one is refused by that rule and by
 *    the import), and otherwise waits; from the checkpoint on, the checks
 *    above hold for it like for any replica (same epochs, same digests);
 *  - at the end: replicas are identical (exports compared field by field),
 *    equal to the reference, and after the calm phase every key's official
 *    status equals the ground truth; keys dropped from the monitors' config
 *    long enough ago are gone.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define T0 1700000000000LL
#define NREP 3
#define NODE_STREAM 100
#define NODE_REPLICA 200
#define NODE_CTRL 300

/* ---- universe ------------------------------------------------------------------ */

static const char *const member_names[SIM_MAX_MEMBERS] = {
    "Alpha", "Beta Net", "Gamma", "Stake Plus", "Delta", "Epsilon", "Zeta", "Eta"};

void ibp_test_sim_universe_init(sim_universe *u, int nmembers)
{
    memset(u, 0, sizeof *u);
    if (nmembers > SIM_MAX_MEMBERS)
        nmembers = SIM_MAX_MEMBERS;
    u->nmembers = nmembers;
    for (int m = 0; m < nmembers; m++) {
        snprintf(u->members[m], SIM_STR, "%s", member_names[m]);
        for (int t = 0; t < 3; t++)
            for (int v6 = 0; v6 < 2; v6++) {
                int k = u->nkeys++;
                char(*s)[SIM_STR] = u->strs[k];
                snprintf(s[0], SIM_STR, "%s", t == 0 ? "ping" : t == 1 ? "ssl" : "wss");
                snprintf(s[1], SIM_STR, "%s", u->members[m]);
                snprintf(s[2], SIM_STR, "%s", t == 0 ? "" : "rpc.ibp.network");
                snprintf(s[3], SIM_STR, "%s", t == 2 ? "wss://rpc.ibp.network/polkadot" : "");
                u->keys[k] =
                    (ibp_vote_key){(ibp_vote_check)(t + 1), s[0], s[1], s[2], s[3], v6 != 0};
                u->key_member[k] = m;
            }
    }
}

int ibp_test_sim_universe_find(const sim_universe *u, const ibp_vote_key *k)
{
    for (int i = 0; i < u->nkeys; i++) {
        const ibp_vote_key *x = &u->keys[i];
        if (x->type == k->type && x->ipv6 == k->ipv6 && !strcmp(x->check_name, k->check_name) &&
            !strcmp(x->member, k->member) && !strcmp(x->domain, k->domain) &&
            !strcmp(x->endpoint, k->endpoint))
            return i;
    }
    return -1;
}

const char *ibp_test_sim_key_name(const sim_universe *u, int k, char *buf, size_t cap)
{
    static const char *const types[] = {"?", "site", "domain", "endpoint"};
    snprintf(buf, cap, "%s/%s/%s", u->keys[k].member, types[u->keys[k].type],
             u->keys[k].ipv6 ? "v6" : "v4");
    return buf;
}

static const char *status_name(ibp_vote_status s)
{
    return s == IBP_VOTE_UP ? "up" : s == IBP_VOTE_DOWN ? "down" : "none";
}

/* ---- knobs ------------------------------------------------------------------- */

void ibp_test_sim_knobs_random(sim_knobs *k, uint64_t seed)
{
    sim_rng r;
    sim_rng_seed(&r, seed ^ 0x6b6e6f6273ULL);
    memset(k, 0, sizeof *k);
    k->nmon = (int)sim_range(&r, 5, 7);
    k->nmembers = (int)sim_range(&r, 2, 6);
    k->liar = sim_chance(&r, 900000);
    /* A silent minority: with the liar, the rest still make a quorum
     * (h >= 2 honest of h + 1 active always do). */
    k->silent = (int)sim_range(&r, 0, (k->nmon - 1) / 2);
    k->skewed = (int)sim_range(&r, 0, 2);
    k->loss_ppm = (uint32_t)sim_range(&r, 0, 100000);
    k->dup_ppm = (uint32_t)sim_range(&r, 0, 50000);
    k->flake_ppm = (uint32_t)sim_range(&r, 0, 20000);
    k->lat_min_ms = sim_range(&r, 1, 100);
    k->lat_max_ms = k->lat_min_ms + sim_range(&r, 0, 3000);
    k->ts_back_ppm = (uint32_t)sim_range(&r, 0, 5000);
    k->crash_ppm = (uint32_t)sim_range(&r, 0, 4000);
    k->part_ppm = (uint32_t)sim_range(&r, 0, 2000);
    k->attack_ppm = (uint32_t)sim_range(&r, 0, 5000);
    k->rcrash_ppm = (uint32_t)sim_range(&r, 0, 6000);
    k->snap_ppm = (uint32_t)sim_range(&r, 20000, 200000);
    k->chaos_ms = sim_range(&r, 25, 40) * 60000;
    k->tick_ms = 5000;
    k->refresh_ms = 15000;
    k->heartbeat_ms = 10000;
    k->max_chunk = (int)sim_range(&r, 4, 32);
    k->overrides = (int)sim_range(&r, 0, 4);
    k->churn = (int)sim_range(&r, 0, 3);
    k->calm_ms = 0; /* derived from the configuration */
    static const int64_t grans[] = {1, 1, 250, 1000, 1000, 5000};
    k->gran_ms = grans[sim_below(&r, 6)];
    k->check_gran_ms = sim_chance(&r, 500000) ? 1000 : 1;
    k->trim = sim_chance(&r, 300000); /* drawn last: the other knobs stay what they were */
}

/* Rounds v down to a multiple of gran (the seed's time granularity). */
static int64_t quantize(int64_t v, int64_t gran)
{
    return gran > 1 ? (v / gran) * gran : v;
}

/* ---- event queue: a binary heap ordered by (time, node, seq) ----------------- */

enum ev_type {
    EV_MON_TICK,
    EV_ARRIVE,
    EV_REPLICA_STEP,
    EV_REPLICA_RESTART,
    EV_TRUTH,
    EV_CALM,
    EV_CHURN,
    EV_OVERRIDE,
    EV_SCRIPT,
    EV_TRIM,
    EV_END,
};

struct ev {
    int64_t t;
    int node;
    uint64_t seq;
    int type;
    int a;
    sim_env *env;
};

struct heap {
    struct ev *v;
    size_t n, cap;
};

static bool ev_before(const struct ev *a, const struct ev *b)
{
    if (a->t != b->t)
        return a->t < b->t;
    if (a->node != b->node)
        return a->node < b->node;
    return a->seq < b->seq;
}

static void heap_push(struct heap *h, struct ev e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->v = realloc(h->v, h->cap * sizeof *h->v);
        if (!h->v)
            abort();
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&e, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
}

static struct ev heap_pop(struct heap *h)
{
    struct ev top = h->v[0];
    struct ev last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ev *best = &last;
        if (l < h->n && ev_before(&h->v[l], best)) {
            m = l;
            best = &h->v[l];
        }
        if (r < h->n && ev_before(&h->v[r], best))
            m = r;
        if (m == i)
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* ---- state copies (what the driver's encode + decode would give) -------------- */

struct state_copy {
    ibp_vote_state st;
    ibp_vote_state_monitor *mons;
    ibp_vote_state_key *keys;
    ibp_vote_state_obs *obs;
    ibp_vote_override *ovs;
    char *arena;
    size_t arena_len, arena_cap;
};

static size_t arena_put(struct state_copy *c, const char *s)
{
    size_t n = strlen(s) + 1;
    if (c->arena_len + n > c->arena_cap) {
        while (c->arena_len + n > c->arena_cap)
            c->arena_cap = c->arena_cap ? c->arena_cap * 2 : 4096;
        c->arena = realloc(c->arena, c->arena_cap);
        if (!c->arena)
            abort();
    }
    memcpy(c->arena + c->arena_len, s, n);
    size_t off = c->arena_len;
    c->arena_len += n;
    return off;
}

static void state_copy_free(struct state_copy *c)
{
    free(c->mons);
    free(c->keys);
    free(c->obs);
    free(c->ovs);
    free(c->arena);
    memset(c, 0, sizeof *c);
}

/* Deep-copies st. Strings go to one arena by offset first (it may move), then
 * pointers are fixed up. */
static void state_copy_make(struct state_copy *c, const ibp_vote_state *st)
{
    memset(c, 0, sizeof *c);
    c->st = *st;
    size_t nobs = 0;
    for (size_t i = 0; i < st->nkeys; i++)
        nobs += st->keys[i].nobs;
    c->mons = calloc(st->nmonitors + 1, sizeof *c->mons);
    c->keys = calloc(st->nkeys + 1, sizeof *c->keys);
    c->obs = calloc(nobs + 1, sizeof *c->obs);
    c->ovs = calloc(st->noverrides + 1, sizeof *c->ovs);
    if (!c->mons || !c->keys || !c->obs || !c->ovs)
        abort();
        /* Offsets are stashed in the pointer fields as uintptr_t, fixed up below. */
#define PUT(field, s) (field) = (const char *)(uintptr_t)arena_put(c, (s))
#define FIX(field) (field) = c->arena + (uintptr_t)(field)
    for (size_t i = 0; i < st->nmonitors; i++) {
        c->mons[i] = st->monitors[i];
        PUT(c->mons[i].node, st->monitors[i].node);
    }
    size_t o = 0;
    for (size_t i = 0; i < st->nkeys; i++) {
        ibp_vote_state_key *k = &c->keys[i];
        *k = st->keys[i];
        PUT(k->key.check_name, st->keys[i].key.check_name);
        PUT(k->key.member, st->keys[i].key.member);
        PUT(k->key.domain, st->keys[i].key.domain);
        PUT(k->key.endpoint, st->keys[i].key.endpoint);
        PUT(k->error, st->keys[i].error);
        PUT(k->data_json, st->keys[i].data_json);
        k->obs = &c->obs[o];
        for (size_t j = 0; j < st->keys[i].nobs; j++, o++) {
            c->obs[o] = st->keys[i].obs[j];
            PUT(c->obs[o].error, st->keys[i].obs[j].error);
            PUT(c->obs[o].data_json, st->keys[i].obs[j].data_json);
        }
    }
    for (size_t i = 0; i < st->noverrides; i++) {
        c->ovs[i] = st->overrides[i];
        PUT(c->ovs[i].member, st->overrides[i].member);
        PUT(c->ovs[i].reason, st->overrides[i].reason);
    }
    for (size_t i = 0; i < st->nmonitors; i++)
        FIX(c->mons[i].node);
    for (size_t i = 0; i < st->nkeys; i++) {
        ibp_vote_state_key *k = &c->keys[i];
        FIX(k->key.check_name);
        FIX(k->key.member);
        FIX(k->key.domain);
        FIX(k->key.endpoint);
        FIX(k->error);
        FIX(k->data_json);
    }
    for (size_t i = 0; i < nobs; i++) {
        FIX(c->obs[i].error);
        FIX(c->obs[i].data_json);
    }
    for (size_t i = 0; i < st->noverrides; i++) {
        FIX(c->ovs[i].member);
        FIX(c->ovs[i].reason);
    }
#undef PUT
#undef FIX
    c->st.monitors = c->mons;
    c->st.keys = c->keys;
    c->st.overrides = c->ovs;
}

/* ---- the cluster --------------------------------------------------------------- */

enum verdict { V_ACCEPT = 0, V_UNKNOWN, V_SIG, V_ROLE, V_REPLAY };
static const char *const verdict_names[] = {"accept", "unknown signer", "bad signature",
                                            "role denied", "replay"};

/* The driver's verification (DESIGN.md §4) in miniature: roster, signature,
 * role, strictly increasing sequence per signer. */
struct filter {
    uint64_t last_seq[SIM_MAX_MON + 1];
};

enum mon_kind { MON_HONEST, MON_LIAR, MON_SILENT };

struct monitor {
    enum mon_kind kind;
    int64_t silent_from; /* MON_SILENT: quiet from here on (T0: never spoke) */
    int64_t skew_ms;
    bool crashed;
    int64_t crash_until, part_until;
    uint64_t signer_seq, batch_seq;
    int64_t last_full, last_send, last_arrival;
    bool reported_any[SIM_MAX_KEYS];
    ibp_vote_status reported[SIM_MAX_KEYS];
};

struct snapshot {
    bool has;
    struct state_copy copy;
    struct filter f;
    size_t cursor;
};

struct replica {
    ibp_vote *e;
    struct filter f;
    size_t cursor;
    bool down;
    uint64_t last_epoch;
    uint8_t last_digest[IBP_VOTE_DIGEST_SIZE];
    struct snapshot snap;
};

struct logent {
    int64_t ts;
    sim_env *env;
};

/* What the reference said about one log position. */
struct posrec {
    int verdict;
    int mon; /* roster index of the signer when accepted */
    uint64_t epoch;
    int64_t now;
    int active, quorum;
    bool override_changed;
    size_t change_off;
    int nchanges;
    bool has_digest;
    uint8_t digest[IBP_VOTE_DIGEST_SIZE];
};

struct sim_cluster {
    uint64_t seed;
    sim_knobs kn;
    ibp_vote_config cfg;
    sim_rng rng;
    int64_t now;
    uint64_t evseq;
    bool failed;
    bool verbose;
    bool scripted;

    sim_universe u;
    int nmon;
    char names[SIM_MAX_MON + 1][SIM_STR]; /* monitors, then "admin" */
    struct monitor mons[SIM_MAX_MON];
    uint64_t admin_seq;
    bool cfg_has[SIM_MAX_KEYS];
    int64_t dropped_at[SIM_MAX_KEYS];
    ibp_vote_status truth[SIM_MAX_KEYS];
    bool calm;
    int64_t end;

    struct heap q;
    struct logent *log;
    size_t nlog, logcap;
    sim_env **pool;
    size_t npool, poolcap;

    struct replica rep[NREP];
    size_t trim; /* LOCAL positions below this are gone (nats.local_max_age_ms) */
    ref_model ref;
    struct filter rf;
    size_t refpos;
    struct posrec *pos;
    size_t poscap;
    ref_change *rch;
    size_t nrch, rchcap;

    ibp_vote_obs *mobs;
    size_t mobs_cap;

    char *trace;
    size_t trace_cap, trace_len;
    sim_stats st;
};

static void fail(sim_cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(sim_cluster *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sim: FAIL seed=%llu step=%llu t=+%lld ms: %s\n", (unsigned long long)c->seed,
            (unsigned long long)c->st.steps, (long long)(c->now - T0), msg);
    if (!c->scripted)
        fprintf(stderr, "sim: replay with IBP_SIM_SEED=%llu (IBP_SIM_VERBOSE=1 for a trace)\n",
                (unsigned long long)c->seed);
}

#define CHECK(c, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fail((c), __VA_ARGS__);                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void push(sim_cluster *c, int64_t t, int node, int type, int a, sim_env *env)
{
    heap_push(&c->q, (struct ev){t, node, c->evseq++, type, a, env});
}

static sim_env *env_new(sim_cluster *c, int nobs)
{
    sim_env *e = calloc(1, sizeof *e);
    if (!e)
        abort();
    if (nobs > 0) {
        e->obs = calloc((size_t)nobs, sizeof *e->obs);
        if (!e->obs)
            abort();
    }
    if (c->npool == c->poolcap) {
        c->poolcap = c->poolcap ? c->poolcap * 2 : 1024;
        c->pool = realloc(c->pool, c->poolcap * sizeof *c->pool);
        if (!c->pool)
            abort();
    }
    c->pool[c->npool++] = e;
    return e;
}

static int roster_index(const sim_cluster *c, const char *signer)
{
    for (int i = 0; i <= c->nmon; i++)
        if (strcmp(c->names[i], signer) == 0)
            return i;
    return -1;
}

static int filter_check(const sim_cluster *c, struct filter *f, const sim_env *env)
{
    int idx = roster_index(c, env->signer);
    if (idx < 0)
        return V_UNKNOWN;
    if (!env->sig_ok)
        return V_SIG;
    bool is_admin = idx == c->nmon;
    bool monitor_kind =
        env->kind == IBP_VOTE_MSG_OBSERVATION_BATCH || env->kind == IBP_VOTE_MSG_HEARTBEAT;
    if (is_admin ? env->kind != IBP_VOTE_MSG_MEMBER_OVERRIDE : !monitor_kind)
        return V_ROLE;
    if (env->signer_seq <= f->last_seq[idx])
        return V_REPLAY;
    f->last_seq[idx] = env->signer_seq;
    return V_ACCEPT;
}

/* ---- publishing ------------------------------------------------------------------ */

/* A monitor (or the admin) publishes: loss, partitions, latency, duplicates. */
static void publish(sim_cluster *c, struct monitor *m, sim_env *env, bool reliable)
{
    if (!reliable) {
        if (m && c->now < m->part_until)
            return;
        if (!c->calm && sim_chance(&c->rng, c->kn.loss_ppm))
            return;
    }
    int64_t at =
        c->now + (reliable ? 0
                           : quantize(sim_range(&c->rng, c->kn.lat_min_ms, c->kn.lat_max_ms),
                                      c->kn.gran_ms));
    if (m) {
        /* A monitor publishes synchronously: its own messages stay in order. */
        if (at < m->last_arrival)
            at = m->last_arrival;
        m->last_arrival = at;
    }
    push(c, at, NODE_STREAM, EV_ARRIVE, 0, env);
    if (!reliable && !c->calm && sim_chance(&c->rng, c->kn.dup_ppm))
        push(c, at + sim_range(&c->rng, 1, 5000), NODE_STREAM, EV_ARRIVE, 0, env);
}

static sim_env *monitor_env(sim_cluster *c, int mi, ibp_vote_kind kind, int nobs)
{
    struct monitor *m = &c->mons[mi];
    sim_env *e = env_new(c, nobs);
    snprintf(e->signer, SIM_STR, "%s", c->names[mi]);
    e->signer_seq = ++m->signer_seq;
    e->sig_ok = true;
    e->origin = m->kind == MON_LIAR ? SIM_LIAR : SIM_HONEST;
    e->kind = kind;
    if (kind == IBP_VOTE_MSG_OBSERVATION_BATCH)
        e->batch_seq = ++m->batch_seq;
    m->last_send = c->now;
    return e;
}

static void fill_obs(sim_cluster *c, sim_obs *o, int k, ibp_vote_status st, int64_t skew)
{
    memset(o, 0, sizeof *o);
    o->key = k;
    o->status = st;
    o->check_time_ms = quantize(c->now + skew, c->kn.check_gran_ms);
    if (st == IBP_VOTE_DOWN)
        snprintf(o->error, SIM_STR, "%s",
                 sim_chance(&c->rng, 500000) ? "timeout" : "connection refused");
    if (sim_chance(&c->rng, 300000))
        snprintf(o->data, SIM_STR, "{\"ms\":%d}", (int)sim_range(&c->rng, 1, 900));
}

static void attack(sim_cluster *c)
{
    c->st.attacks++;
    int what = (int)sim_below(&c->rng, 4);
    if (what == 3 && c->nlog > 0) {
        /* Replay an old envelope, byte for byte. */
        sim_env *old = c->log[sim_below(&c->rng, c->nlog)].env;
        push(c, c->now + sim_range(&c->rng, 1, 2000), NODE_STREAM, EV_ARRIVE, 0, old);
        return;
    }
    if (what == 3)
        what = 0;
    int victim = (int)sim_below(&c->rng, (uint64_t)c->nmon);
    sim_env *e;
    if (what == 2) {
        /* A monitor's key sends an admin command: role denied. */
        e = env_new(c, 0);
        snprintf(e->signer, SIM_STR, "%s", c->names[victim]);
        e->signer_seq = ++c->mons[victim].signer_seq;
        e->sig_ok = true;
        e->origin = SIM_WRONG_ROLE;
        e->kind = IBP_VOTE_MSG_MEMBER_OVERRIDE;
        e->member = (int)sim_below(&c->rng, (uint64_t)c->u.nmembers);
        e->disabled = true;
        snprintf(e->reason, SIM_STR, "pwned");
    } else {
        /* Everything down, from "evil" or in a monitor's name without its key. */
        e = env_new(c, c->u.nkeys);
        if (what == 0) {
            snprintf(e->signer, SIM_STR, "evil");
            e->signer_seq = c->st.attacks;
            e->sig_ok = true;
            e->origin = SIM_FORGED_UNKNOWN;
        } else {
            snprintf(e->signer, SIM_STR, "%s", c->names[victim]);
            e->signer_seq = c->mons[victim].signer_seq + 1;
            e->sig_ok = false;
            e->origin = SIM_FORGED_SIG;
        }
        e->kind = IBP_VOTE_MSG_OBSERVATION_BATCH;
        e->batch_seq = 1;
        e->nobs = c->u.nkeys;
        for (int k = 0; k < c->u.nkeys; k++)
            fill_obs(c, &e->obs[k], k, IBP_VOTE_DOWN, 0);
    }
    push(c, c->now + sim_range(&c->rng, 1, 2000), NODE_STREAM, EV_ARRIVE, 0, e);
}

static void send_batches(sim_cluster *c, int mi, const int *keys, const ibp_vote_status *sts, int n,
                         bool full)
{
    struct monitor *m = &c->mons[mi];
    for (int s = 0; s < n; s += c->kn.max_chunk) {
        int cnt = n - s < c->kn.max_chunk ? n - s : c->kn.max_chunk;
        sim_env *e = monitor_env(c, mi, IBP_VOTE_MSG_OBSERVATION_BATCH, cnt);
        e->full = full;
        e->nobs = cnt;
        for (int i = 0; i < cnt; i++)
            fill_obs(c, &e->obs[i], keys[s + i], sts[s + i], m->skew_ms);
        publish(c, m, e, false);
    }
}

static void monitor_tick(sim_cluster *c, int mi)
{
    struct monitor *m = &c->mons[mi];
    if (m->kind == MON_SILENT && c->now >= m->silent_from)
        return;
    if (m->crashed) {
        if (c->now < m->crash_until)
            return;
        /* Restarted: it forgot what it reported; the next batch is full. */
        m->crashed = false;
        m->last_full = INT64_MIN / 2;
        memset(m->reported_any, 0, sizeof m->reported_any);
    }
    if (!c->calm) {
        if (m->kind == MON_HONEST && sim_chance(&c->rng, c->kn.crash_ppm)) {
            m->crashed = true;
            m->crash_until = c->now + sim_range(&c->rng, 10000, 300000);
            c->st.monitor_crashes++;
            return;
        }
        if (sim_chance(&c->rng, c->kn.part_ppm))
            m->part_until = c->now + sim_range(&c->rng, 30000, 240000);
        if (sim_chance(&c->rng, c->kn.attack_ppm))
            attack(c);
    }
    int keys[SIM_MAX_KEYS], changed[SIM_MAX_KEYS];
    ibp_vote_status sts[SIM_MAX_KEYS], csts[SIM_MAX_KEYS];
    int n = 0, nc = 0;
    for (int k = 0; k < c->u.nkeys; k++) {
        if (!c->cfg_has[k])
            continue;
        ibp_vote_status st = c->truth[k];
        bool wrong = m->kind == MON_LIAR || (!c->calm && sim_chance(&c->rng, c->kn.flake_ppm));
        if (wrong)
            st = st == IBP_VOTE_UP ? IBP_VOTE_DOWN : IBP_VOTE_UP;
        keys[n] = k;
        sts[n++] = st;
        if (!m->reported_any[k] || m->reported[k] != st) {
            changed[nc] = k;
            csts[nc++] = st;
        }
        m->reported_any[k] = true;
        m->reported[k] = st;
    }
    if (c->now - m->last_full >= c->kn.refresh_ms) {
        m->last_full = c->now;
        send_batches(c, mi, keys, sts, n, true);
    } else if (nc > 0) {
        send_batches(c, mi, changed, csts, nc, false);
    }
    if (c->now - m->last_send >= c->kn.heartbeat_ms)
        publish(c, m, monitor_env(c, mi, IBP_VOTE_MSG_HEARTBEAT, 0), false);
}

/* ---- the reference pass: verdict, model, and the log-based safety checks ------ */

static bool batch_has_key(const sim_env *e, int key, ibp_vote_status *st)
{
    bool found = false;
    if (e->kind != IBP_VOTE_MSG_OBSERVATION_BATCH)
        return false;
    for (int i = 0; i < e->nobs; i++)
        if (e->obs[i].key == key) {
            found = true;
            if (st)
                *st = e->obs[i].status; /* the last one in the batch wins */
        }
    return found;
}

/* Active monitors at log position p, from the log alone. */
static int log_active(const sim_cluster *c, size_t p, bool active[SIM_MAX_MON])
{
    int64_t now = c->pos[p].now;
    memset(active, 0, SIM_MAX_MON * sizeof active[0]);
    int n = 0;
    for (size_t q = p + 1; q-- > 0;) {
        if (now - c->pos[q].now >= c->cfg.active_window_ms)
            break; /* engine time never goes back: older positions are older still */
        const struct posrec *r = &c->pos[q];
        const sim_env *e = c->log[q].env;
        if (r->verdict != V_ACCEPT || e->kind == IBP_VOTE_MSG_MEMBER_OVERRIDE)
            continue;
        if (!active[r->mon]) {
            active[r->mon] = true;
            n++;
        }
    }
    return n;
}

static void safety_check(sim_cluster *c, size_t p)
{
    const struct posrec *r = &c->pos[p];
    int64_t now = r->now;
    bool active[SIM_MAX_MON];
    int nactive = log_active(c, p, active);
    int quorum =
        nactive / 2 + 1 > (int)c->cfg.quorum_min ? nactive / 2 + 1 : (int)c->cfg.quorum_min;
    CHECK(c, nactive == r->active && quorum == r->quorum,
          "LOCAL %zu: log says %d active (quorum %d), model %d (%d)", p + 1, nactive, quorum,
          r->active, r->quorum);
    for (int i = 0; i < r->nchanges; i++) {
        const ref_change *ch = &c->rch[r->change_off + (size_t)i];
        char kn[96];
        ibp_test_sim_key_name(&c->u, ch->key, kn, sizeof kn);
        if (ch->kind == IBP_VOTE_REMOVED) {
            for (size_t q = p + 1; q-- > 0;) {
                if (now - c->pos[q].now >= c->cfg.expiry_ms)
                    break;
                CHECK(c,
                      c->pos[q].verdict != V_ACCEPT || !batch_has_key(c->log[q].env, ch->key, NULL),
                      "LOCAL %zu: %s removed but observed at LOCAL %zu", p + 1, kn, q + 1);
            }
            continue;
        }
        int deciding = 0, not_liar = 0;
        bool seen[SIM_MAX_MON] = {false};
        for (int v = 0; v < ch->nvotes; v++) {
            const ref_vote *vt = &ch->votes[v];
            if (vt->status != ch->status)
                continue;
            size_t q = (size_t)vt->local_seq - 1;
            CHECK(c, q <= p && c->pos[q].verdict == V_ACCEPT && c->pos[q].mon == vt->mon,
                  "LOCAL %zu: %s: vote of %s cites LOCAL %llu, not its accepted batch", p + 1, kn,
                  c->names[vt->mon], (unsigned long long)vt->local_seq);
            ibp_vote_status said = IBP_VOTE_NONE;
            CHECK(c, batch_has_key(c->log[q].env, ch->key, &said) && said == vt->status,
                  "LOCAL %zu: %s: LOCAL %zu does not say %s", p + 1, kn, q + 1,
                  status_name(vt->status));
            CHECK(c, now - c->pos[q].now < c->cfg.staleness_ms,
                  "LOCAL %zu: %s: stale vote from %s (LOCAL %zu)", p + 1, kn, c->names[vt->mon],
                  q + 1);
            CHECK(c, active[vt->mon], "LOCAL %zu: %s: vote from inactive %s", p + 1, kn,
                  c->names[vt->mon]);
            for (size_t x = q + 1; x <= p; x++)
                CHECK(c,
                      c->pos[x].verdict != V_ACCEPT || c->pos[x].mon != vt->mon ||
                          !batch_has_key(c->log[x].env, ch->key, NULL),
                      "LOCAL %zu: %s: vote of %s is not its latest (LOCAL %zu is newer)", p + 1, kn,
                      c->names[vt->mon], x + 1);
            CHECK(c, !seen[vt->mon], "LOCAL %zu: %s: %s counted twice", p + 1, kn,
                  c->names[vt->mon]);
            seen[vt->mon] = true;
            deciding++;
            if (c->mons[vt->mon].kind != MON_LIAR)
                not_liar++;
        }
        CHECK(c, deciding >= quorum, "LOCAL %zu: %s flipped to %s with %d votes, quorum %d", p + 1,
              kn, status_name(ch->status), deciding, quorum);
        CHECK(c, not_liar >= 1 && not_liar >= quorum - 1,
              "LOCAL %zu: %s flipped to %s on the liar's word (%d honest votes)", p + 1, kn,
              status_name(ch->status), not_liar);
    }
}

static void ref_advance(sim_cluster *c, size_t upto)
{
    while (!c->failed && c->refpos <= upto) {
        size_t p = c->refpos++;
        if (p >= c->poscap) {
            c->poscap = c->poscap ? c->poscap * 2 : 1024;
            c->pos = realloc(c->pos, c->poscap * sizeof *c->pos);
            if (!c->pos)
                abort();
        }
        struct posrec *r = &c->pos[p];
        memset(r, 0, sizeof *r);
        sim_env *env = c->log[p].env;
        r->verdict = filter_check(c, &c->rf, env);
        switch (r->verdict) {
        case V_UNKNOWN:
            c->st.drop_unknown++;
            break;
        case V_SIG:
            c->st.drop_sig++;
            break;
        case V_ROLE:
            c->st.drop_role++;
            break;
        case V_REPLAY:
            c->st.drop_replay++;
            break;
        default:
            break;
        }
        if (r->verdict == V_ACCEPT) {
            CHECK(c, env->origin <= SIM_ADMIN, "LOCAL %zu: %s envelope accepted", p + 1,
                  env->origin == SIM_FORGED_UNKNOWN ? "unknown-signer"
                  : env->origin == SIM_FORGED_SIG   ? "mis-signed"
                                                    : "wrong-role");
            /* Each envelope is accepted at most once: replays and duplicates never. */
            CHECK(c, env->accepted == 0, "LOCAL %zu: envelope %s/%llu accepted twice", p + 1,
                  env->signer, (unsigned long long)env->signer_seq);
            env->accepted++;
            r->mon = roster_index(c, env->signer);
            ibp_test_ref_apply(&c->ref, env, r->mon, p + 1, c->log[p].ts);
            if (c->ref.nchanges > 0) {
                size_t need = c->nrch + (size_t)c->ref.nchanges;
                if (need > c->rchcap) {
                    while (need > c->rchcap)
                        c->rchcap = c->rchcap ? c->rchcap * 2 : 256;
                    c->rch = realloc(c->rch, c->rchcap * sizeof *c->rch);
                    if (!c->rch)
                        abort();
                }
                memcpy(&c->rch[c->nrch], c->ref.changes, (size_t)c->ref.nchanges * sizeof *c->rch);
            }
            r->change_off = c->nrch;
            r->nchanges = c->ref.nchanges;
            c->nrch += (size_t)c->ref.nchanges;
            r->override_changed = c->ref.override_changed;
            r->active = c->ref.active;
            r->quorum = c->ref.quorum;
        }
        r->epoch = c->ref.epoch;
        r->now = c->ref.now;
        if (r->verdict == V_ACCEPT)
            safety_check(c, p);
    }
}

/* ---- replicas -------------------------------------------------------------------- */

static const ibp_vote_msg *build_msg(sim_cluster *c, const sim_env *env, uint64_t local_seq,
                                     int64_t ts, ibp_vote_msg *m)
{
    memset(m, 0, sizeof *m);
    m->kind = env->kind;
    m->signer = env->signer;
    m->local_seq = local_seq;
    m->stream_ms = ts;
    m->batch_seq = env->batch_seq;
    m->full = env->full;
    if (env->kind == IBP_VOTE_MSG_OBSERVATION_BATCH && env->nobs > 0) {
        if ((size_t)env->nobs > c->mobs_cap) {
            c->mobs_cap = (size_t)env->nobs * 2;
            c->mobs = realloc(c->mobs, c->mobs_cap * sizeof *c->mobs);
            if (!c->mobs)
                abort();
        }
        for (int i = 0; i < env->nobs; i++) {
            const sim_obs *o = &env->obs[i];
            c->mobs[i] =
                (ibp_vote_obs){c->u.keys[o->key], o->status, o->check_time_ms, o->error, o->data};
        }
        m->obs = c->mobs;
        m->nobs = (size_t)env->nobs;
    }
    if (env->kind == IBP_VOTE_MSG_MEMBER_OVERRIDE) {
        m->override.member = c->u.members[env->member];
        m->override.disabled = env->disabled;
        m->override.reason = env->reason;
    }
    return m;
}

static int vote_cmp_name(const sim_cluster *c, const ref_vote *a, const ref_vote *b)
{
    return strcmp(c->names[a->mon], c->names[b->mon]);
}

static void trace_line(sim_cluster *c, size_t p, const ibp_vote_update *up);

static void compare_update(sim_cluster *c, int ri, size_t p, const ibp_vote_update *up)
{
    struct replica *R = &c->rep[ri];
    struct posrec *r = &c->pos[p];
    CHECK(c, up->epoch == r->epoch, "replica %d LOCAL %zu: epoch %llu, model %llu", ri, p + 1,
          (unsigned long long)up->epoch, (unsigned long long)r->epoch);
    CHECK(c, up->epoch >= R->last_epoch, "replica %d LOCAL %zu: epoch went back", ri, p + 1);
    CHECK(c, up->now_ms == r->now, "replica %d LOCAL %zu: time %lld, model %lld", ri, p + 1,
          (long long)up->now_ms, (long long)r->now);
    CHECK(c, (int)up->active_monitors == r->active && (int)up->quorum == r->quorum,
          "replica %d LOCAL %zu: %u active quorum %u, model %d/%d", ri, p + 1, up->active_monitors,
          up->quorum, r->active, r->quorum);
    CHECK(c, (int)up->nchanges == r->nchanges, "replica %d LOCAL %zu: %zu changes, model %d", ri,
          p + 1, up->nchanges, r->nchanges);
    CHECK(c, up->epoch_advanced == (r->nchanges > 0 || r->override_changed),
          "replica %d LOCAL %zu: epoch_advanced wrong", ri, p + 1);
    bool matched[SIM_MAX_KEYS + 1] = {false};
    for (size_t i = 0; i < up->nchanges; i++) {
        const ibp_vote_change *x = &up->changes[i];
        int k = ibp_test_sim_universe_find(&c->u, &x->key);
        CHECK(c, k >= 0, "replica %d LOCAL %zu: change of an unknown key", ri, p + 1);
        const ref_change *y = NULL;
        for (int j = 0; j < r->nchanges; j++)
            if (c->rch[r->change_off + (size_t)j].key == k && !matched[j]) {
                y = &c->rch[r->change_off + (size_t)j];
                matched[j] = true;
            }
        char kn[96];
        ibp_test_sim_key_name(&c->u, k, kn, sizeof kn);
        CHECK(c, y, "replica %d LOCAL %zu: change of %s the model did not make", ri, p + 1, kn);
        CHECK(c,
              x->kind == y->kind && x->status == y->status && x->previous == y->previous &&
                  x->check_time_ms == y->check_time_ms && !strcmp(x->error, y->error) &&
                  !strcmp(x->data_json, y->data),
              "replica %d LOCAL %zu: %s: engine %d %s->%s ct=%lld err='%s' data='%s', model %d "
              "%s->%s ct=%lld err='%s' data='%s'",
              ri, p + 1, kn, x->kind, status_name(x->previous), status_name(x->status),
              (long long)x->check_time_ms, x->error, x->data_json, y->kind,
              status_name(y->previous), status_name(y->status), (long long)y->check_time_ms,
              y->error, y->data);
        CHECK(c, (int)x->nvotes == y->nvotes, "replica %d LOCAL %zu: %s: %zu votes, model %d", ri,
              p + 1, kn, x->nvotes, y->nvotes);
        /* Model votes in node-id order, as the engine reports them. */
        ref_vote sorted[SIM_MAX_MON];
        memcpy(sorted, y->votes, (size_t)y->nvotes * sizeof sorted[0]);
        for (int a = 1; a < y->nvotes; a++)
            for (int b = a; b > 0 && vote_cmp_name(c, &sorted[b - 1], &sorted[b]) > 0; b--) {
                ref_vote t = sorted[b];
                sorted[b] = sorted[b - 1];
                sorted[b - 1] = t;
            }
        for (size_t v = 0; v < x->nvotes; v++)
            CHECK(c,
                  !strcmp(x->votes[v].node, c->names[sorted[v].mon]) &&
                      x->votes[v].local_seq == sorted[v].local_seq &&
                      x->votes[v].batch_seq == sorted[v].batch_seq &&
                      x->votes[v].status == sorted[v].status,
                  "replica %d LOCAL %zu: %s: vote %zu differs", ri, p + 1, kn, v);
    }
    /* Every change has its event (REMOVED ones too), and an override one more. */
    CHECK(c, up->nevents == up->nchanges + (r->override_changed ? 1 : 0),
          "replica %d LOCAL %zu: %zu events", ri, p + 1, up->nevents);
    for (size_t i = 0; i < up->nevents; i++)
        for (size_t j = i + 1; j < up->nevents; j++)
            CHECK(c, strcmp(up->events[i].id, up->events[j].id) != 0,
                  "replica %d LOCAL %zu: duplicate event id %s", ri, p + 1, up->events[i].id);
    /* Same prefix, same digest; the digest moves exactly with the epoch. */
    if (!r->has_digest) {
        r->has_digest = true;
        memcpy(r->digest, up->digest, sizeof r->digest);
        trace_line(c, p, up);
    } else {
        CHECK(c, memcmp(r->digest, up->digest, sizeof r->digest) == 0,
              "replica %d LOCAL %zu: digest differs from another replica's at the same prefix", ri,
              p + 1);
    }
    CHECK(c, up->epoch_advanced == (memcmp(R->last_digest, up->digest, sizeof R->last_digest) != 0),
          "replica %d LOCAL %zu: digest %s", ri, p + 1,
          up->epoch_advanced ? "unchanged by a new epoch" : "changed without an epoch");
    R->last_epoch = up->epoch;
    memcpy(R->last_digest, up->digest, sizeof R->last_digest);
}

static void replica_consume(sim_cluster *c, int ri)
{
    struct replica *R = &c->rep[ri];
    size_t p = R->cursor;
    ref_advance(c, p);
    if (c->failed)
        return;
    CHECK(c, p >= c->trim, "replica %d read LOCAL %zu, which LOCAL dropped (first is %zu)", ri,
          p + 1, c->trim + 1);
    const struct logent *le = &c->log[p];
    int v = filter_check(c, &R->f, le->env);
    CHECK(c, v == c->pos[p].verdict, "replica %d LOCAL %zu: verdict %s, reference %s", ri, p + 1,
          verdict_names[v], verdict_names[c->pos[p].verdict]);
    R->cursor = p + 1;
    if (v != V_ACCEPT)
        return;
    ibp_vote_msg m;
    ibp_vote_update up;
    build_msg(c, le->env, p + 1, le->ts, &m);
    ibp_vote_rc rc = ibp_vote_apply(R->e, &m, &up);
    CHECK(c, rc == IBP_VOTE_OK, "replica %d LOCAL %zu: apply: %s (%s)", ri, p + 1,
          ibp_vote_strerror(rc), ibp_vote_last_error(R->e));
    c->st.applied++;
    c->st.obs += m.nobs;
    compare_update(c, ri, p, &up);
}

static void replica_snapshot(sim_cluster *c, int ri)
{
    struct replica *R = &c->rep[ri];
    ibp_vote_state st;
    ibp_vote_rc rc = ibp_vote_export(R->e, &st);
    CHECK(c, rc == IBP_VOTE_OK, "replica %d: export: %s", ri, ibp_vote_strerror(rc));
    CHECK(c, st.local_seq <= R->cursor && st.epoch == R->last_epoch,
          "replica %d: export reports LOCAL %llu epoch %llu", ri, (unsigned long long)st.local_seq,
          (unsigned long long)st.epoch);
    state_copy_free(&R->snap.copy);
    state_copy_make(&R->snap.copy, &st);
    R->snap.has = true;
    R->snap.f = R->f;
    R->snap.cursor = R->cursor;
    c->st.snapshots++;
}

/* Takes state s (its own, or another replica's checkpoint) into replica ri: an
 * import checked against the reference at that prefix. */
static void adopt_state(sim_cluster *c, int ri, const struct snapshot *s)
{
    struct replica *R = &c->rep[ri];
    char why[256];
    ibp_vote_rc rc = ibp_vote_import(&c->cfg, &s->copy.st, &R->e, why, sizeof why);
    CHECK(c, rc == IBP_VOTE_OK, "replica %d: import: %s: %s", ri, ibp_vote_strerror(rc), why);
    R->f = s->f;
    R->cursor = s->cursor;
    ibp_vote_info info;
    ibp_vote_get_info(R->e, &info);
    R->last_epoch = info.epoch;
    memcpy(R->last_digest, info.digest, sizeof R->last_digest);
    if (R->cursor > 0) {
        /* The restored state is exactly the one at that prefix. */
        const struct posrec *r = &c->pos[R->cursor - 1];
        CHECK(c, info.epoch == r->epoch, "replica %d: restored epoch %llu, expected %llu", ri,
              (unsigned long long)info.epoch, (unsigned long long)r->epoch);
        size_t q = R->cursor;
        while (q-- > 0 && !c->pos[q].has_digest)
            ;
        if (q < R->cursor)
            CHECK(c, memcmp(info.digest, c->pos[q].digest, sizeof info.digest) == 0,
                  "replica %d: restored digest differs from LOCAL %zu's", ri, q + 1);
    }
}

/* The digest published for epoch (the OfficialSnapshot's): false when no replica
 * computed it yet. Epoch 0 is the empty state. */
static bool published_digest(const sim_cluster *c, uint64_t epoch, uint8_t *out)
{
    if (epoch == 0) {
        memcpy(out, ibp_vote_empty_digest, IBP_VOTE_DIGEST_SIZE);
        return true;
    }
    for (size_t p = 0; p < c->refpos; p++)
        if (c->pos[p].epoch == epoch && c->pos[p].has_digest) {
            memcpy(out, c->pos[p].digest, IBP_VOTE_DIGEST_SIZE);
            return true;
        }
    return false;
}

/* The checkpoint rules (ibp/checkpoint.h) on state s: LOCAL still holds what
 * follows it, and its digest is the published one of its epoch. */
static bool checkpoint_usable(const sim_cluster *c, const struct snapshot *s)
{
    uint8_t d[IBP_VOTE_DIGEST_SIZE];
    return s->cursor >= c->trim && published_digest(c, s->copy.st.epoch, d) &&
           memcmp(d, s->copy.st.digest, sizeof d) == 0;
}

/*
 * A replica without a usable state of its own after LOCAL lost its prefix
 * takes the newest usable checkpoint of the replicas (their last saved
 * states, as on stream CHECKPOINT), or waits, computing and publishing
 * nothing. Now and then a forged candidate (a real state with a digest that
 * is not its entries') is offered first: both the digest rule and the import
 * must refuse it.
 */
static bool replica_bootstrap(sim_cluster *c, int ri)
{
    if (sim_chance(&c->rng, 200000)) {
        for (int o = 0; o < NREP; o++) {
            if (!c->rep[o].snap.has)
                continue;
            struct snapshot forged = c->rep[o].snap;
            forged.copy.st.digest[sim_below(&c->rng, IBP_VOTE_DIGEST_SIZE)] ^= 0x5a;
            ibp_vote *e = NULL;
            char why[256];
            ibp_vote_rc rc = ibp_vote_import(&c->cfg, &forged.copy.st, &e, why, sizeof why);
            ibp_vote_free(e);
            if (rc != IBP_VOTE_E_DIGEST || checkpoint_usable(c, &forged)) {
                fail(c, "replica %d: a forged checkpoint passed (import %s)", ri,
                     ibp_vote_strerror(rc));
                return false;
            }
            c->st.checkpoints_refused++;
            break;
        }
    }
    const struct snapshot *best = NULL;
    for (int o = 0; o < NREP; o++) {
        const struct snapshot *s = &c->rep[o].snap;
        if (!s->has)
            continue;
        if (!checkpoint_usable(c, s)) {
            c->st.checkpoints_refused++;
            continue;
        }
        if (!best || s->copy.st.epoch > best->copy.st.epoch ||
            (s->copy.st.epoch == best->copy.st.epoch && s->cursor > best->cursor))
            best = s;
    }
    if (!best) {
        c->st.bootstrap_waits++;
        return false;
    }
    struct snapshot taken = *best; /* the replica's own snap may be the one replaced */
    struct state_copy copy;
    state_copy_make(&copy, &best->copy.st);
    taken.copy = copy;
    adopt_state(c, ri, &taken);
    /* It saves its state at once. */
    state_copy_free(&c->rep[ri].snap.copy);
    c->rep[ri].snap = taken;
    c->rep[ri].snap.has = true;
    c->st.bootstraps++;
    return true;
}

static void replica_restart(sim_cluster *c, int ri)
{
    struct replica *R = &c->rep[ri];
    bool own = R->snap.has && R->snap.cursor >= c->trim;
    if (own && (c->scripted || sim_chance(&c->rng, 800000))) {
        adopt_state(c, ri, &R->snap);
        c->st.restores++;
    } else if (c->trim > 0) {
        /* LOCAL lost its prefix: replaying from the start would diverge for ever. */
        if (!replica_bootstrap(c, ri)) {
            if (!c->failed)
                push(c, c->now + sim_range(&c->rng, 2000, 20000), NODE_REPLICA + ri,
                     EV_REPLICA_RESTART, ri, NULL);
            return; /* still down: waits, publishes nothing */
        }
    } else {
        CHECK(c, ibp_vote_new(&c->cfg, &R->e) == IBP_VOTE_OK, "replica %d: new", ri);
        memset(&R->f, 0, sizeof R->f);
        R->cursor = 0;
        R->last_epoch = 0;
        memset(R->last_digest, 0, sizeof R->last_digest);
        c->st.rebuilds++;
    }
    R->down = false;
}

/*
 * LOCAL drops its prefix up to the slowest replica's position (a running
 * replica never loses a message it has not read), and one replica is rebuilt
 * without its state: it must start from a checkpoint or wait. Only when all
 * replicas run, so that someone is left to publish checkpoints.
 */
static void trim_local(sim_cluster *c)
{
    size_t lo = c->nlog;
    for (int r = 0; r < NREP; r++) {
        if (c->rep[r].down)
            return;
        if (c->rep[r].cursor < lo)
            lo = c->rep[r].cursor;
    }
    if (lo <= c->trim)
        return;
    c->trim = lo;
    c->st.trims++;
    int victim = (int)sim_below(&c->rng, NREP);
    struct replica *R = &c->rep[victim];
    ibp_vote_free(R->e);
    R->e = NULL;
    R->down = true;
    state_copy_free(&R->snap.copy);
    memset(&R->snap, 0, sizeof R->snap);
    push(c, c->now + sim_range(&c->rng, 1000, 30000), NODE_REPLICA + victim, EV_REPLICA_RESTART,
         victim, NULL);
}

static void replica_step(sim_cluster *c, int ri, bool all)
{
    struct replica *R = &c->rep[ri];
    if (R->down)
        return;
    /* With a trimmed LOCAL, the last running replica does not crash: a cluster whose
     * every replica lost its place in LOCAL has no checkpoint to start from. */
    bool may_crash = !c->kn.trim;
    for (int o = 0; o < NREP && !may_crash; o++)
        may_crash = o != ri && !c->rep[o].down;
    if (!all && !c->scripted && may_crash && sim_chance(&c->rng, c->kn.rcrash_ppm)) {
        ibp_vote_free(R->e);
        R->e = NULL;
        R->down = true;
        c->st.replica_crashes++;
        push(c, c->now + sim_range(&c->rng, 1000, 60000), NODE_REPLICA + ri, EV_REPLICA_RESTART, ri,
             NULL);
        return;
    }
    size_t n = all ? c->nlog : (size_t)sim_range(&c->rng, 1, 60);
    for (size_t i = 0; i < n && R->cursor < c->nlog && !c->failed; i++)
        replica_consume(c, ri);
    if (!all && !c->scripted && sim_chance(&c->rng, c->kn.snap_ppm))
        replica_snapshot(c, ri);
}

/* ---- trace ----------------------------------------------------------------------- */

static void trace_add(sim_cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace_add(sim_cluster *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (c->verbose)
        fputs(buf, stdout);
    if (c->trace && c->trace_len + (size_t)n + 1 < c->trace_cap) {
        memcpy(c->trace + c->trace_len, buf, (size_t)n + 1);
        c->trace_len += (size_t)n;
    }
}

static void trace_line(sim_cluster *c, size_t p, const ibp_vote_update *up)
{
    /* Fold every first-seen update into the determinism hash. */
    uint64_t h = c->st.trace_hash ^ (p * 0x9e3779b97f4a7c15ULL) ^ up->epoch;
    for (int i = 0; i < IBP_VOTE_DIGEST_SIZE; i++)
        h = (h ^ up->digest[i]) * 0x100000001b3ULL;
    c->st.trace_hash = h;
    if (!up->epoch_advanced)
        return;
    c->st.epochs++;
    c->st.changes += up->nchanges;
    for (size_t i = 0; i < up->nchanges; i++) {
        c->st.flips += up->changes[i].kind == IBP_VOTE_FLIPPED;
        c->st.removals += up->changes[i].kind == IBP_VOTE_REMOVED;
    }
    const sim_env *env = c->log[p].env;
    if (!c->verbose && !c->trace)
        return;
    char line[2048];
    size_t len = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int n_ = snprintf(line + len, sizeof line - len, __VA_ARGS__);                             \
        if (n_ > 0 && (size_t)n_ < sizeof line - len)                                              \
            len += (size_t)n_;                                                                     \
    } while (0)
    APPEND("+%lld #%zu %s %s:", (long long)(up->now_ms - T0), p + 1, env->signer,
           env->kind == IBP_VOTE_MSG_OBSERVATION_BATCH ? "batch"
           : env->kind == IBP_VOTE_MSG_HEARTBEAT       ? "heartbeat"
                                                       : "override");
    for (size_t i = 0; i < up->nchanges; i++) {
        const ibp_vote_change *x = &up->changes[i];
        char kn[96];
        ibp_test_sim_key_name(&c->u, ibp_test_sim_universe_find(&c->u, &x->key), kn, sizeof kn);
        APPEND(" %s %s->%s", kn, status_name(x->previous), status_name(x->status));
        if (x->kind != IBP_VOTE_REMOVED) {
            APPEND(" by");
            const char *sep = " ";
            for (size_t v = 0; v < x->nvotes; v++)
                if (x->votes[v].status == x->status) {
                    APPEND("%s%s", sep, x->votes[v].node);
                    sep = ",";
                }
        }
        APPEND(";");
    }
    for (size_t i = 0; i < up->nevents; i++)
        if (up->events[i].kind == IBP_VOTE_EVENT_OVERRIDE)
            APPEND(" override %s %s;", up->events[i].key.member,
                   up->events[i].status == IBP_VOTE_DOWN ? "disabled" : "enabled");
    APPEND(" active %u quorum %u epoch %llu\n", up->active_monitors, up->quorum,
           (unsigned long long)up->epoch);
#undef APPEND
    trace_add(c, "%s", line);
    if (c->verbose && !c->trace)
        fflush(stdout);
}

/* ---- setup, run, final checks ----------------------------------------------------- */

static void sim_config(ibp_vote_config *cfg)
{
    ibp_vote_config_init(cfg);
    /* Scaled down so an hour of churn fits in a short run: refresh 15 s. */
    cfg->active_window_ms = 120000;
    cfg->staleness_ms = 45000;
    cfg->expiry_ms = 600000;
}

static void cluster_init(sim_cluster *c, uint64_t seed, const sim_knobs *kn,
                         const ibp_vote_config *cfg)
{
    memset(c, 0, sizeof *c);
    c->seed = seed;
    c->kn = *kn;
    c->cfg = *cfg;
    sim_rng_seed(&c->rng, seed);
    c->now = T0;
    ibp_test_sim_universe_init(&c->u, kn->nmembers);
    c->nmon = kn->nmon;
    for (int i = 0; i < c->nmon; i++)
        snprintf(c->names[i], SIM_STR, "mon%d", i + 1);
    snprintf(c->names[c->nmon], SIM_STR, "admin");
    for (int k = 0; k < c->u.nkeys; k++) {
        c->cfg_has[k] = true;
        c->truth[k] = IBP_VOTE_UP;
    }
    ibp_test_ref_init(&c->ref, cfg, &c->u, c->nmon, c->names);
    for (int r = 0; r < NREP; r++)
        if (ibp_vote_new(cfg, &c->rep[r].e) != IBP_VOTE_OK)
            abort();
}

static void cluster_free(sim_cluster *c)
{
    for (int r = 0; r < NREP; r++) {
        ibp_vote_free(c->rep[r].e);
        state_copy_free(&c->rep[r].snap.copy);
    }
    for (size_t i = 0; i < c->npool; i++) {
        free(c->pool[i]->obs);
        free(c->pool[i]);
    }
    free(c->pool);
    free(c->q.v);
    free(c->log);
    free(c->pos);
    free(c->rch);
    free(c->mobs);
}

static void arrive(sim_cluster *c, sim_env *env)
{
    if (c->nlog == c->logcap) {
        c->logcap = c->logcap ? c->logcap * 2 : 1024;
        c->log = realloc(c->log, c->logcap * sizeof *c->log);
        if (!c->log)
            abort();
    }
    int64_t ts = c->now;
    /* A JetStream leader change can step the stream clock back a little. */
    if (!c->scripted && sim_chance(&c->rng, c->kn.ts_back_ppm))
        ts -= quantize(sim_range(&c->rng, 1, 3000), c->kn.gran_ms) + 1;
    c->log[c->nlog++] = (struct logent){ts, env};
    c->st.messages++;
    if (c->scripted)
        for (int r = 0; r < NREP; r++)
            push(c, c->now, NODE_REPLICA + r, EV_REPLICA_STEP, r, NULL);
}

/* Compares two exports field by field. */
static void compare_exports(sim_cluster *c, int ra, const ibp_vote_state *a, int rb,
                            const ibp_vote_state *b)
{
    CHECK(c,
          a->epoch == b->epoch && a->local_seq == b->local_seq && a->now_ms == b->now_ms &&
              !memcmp(a->digest, b->digest, sizeof a->digest) && a->nmonitors == b->nmonitors &&
              a->nkeys == b->nkeys && a->noverrides == b->noverrides,
          "final: replicas %d and %d differ in their headers", ra, rb);
    for (size_t i = 0; i < a->nmonitors; i++)
        CHECK(c,
              !strcmp(a->monitors[i].node, b->monitors[i].node) &&
                  a->monitors[i].last_msg_ms == b->monitors[i].last_msg_ms,
              "final: replicas %d and %d differ at monitor %zu", ra, rb, i);
    for (size_t i = 0; i < a->nkeys; i++) {
        const ibp_vote_state_key *x = &a->keys[i], *y = &b->keys[i];
        CHECK(c,
              ibp_test_sim_universe_find(&c->u, &x->key) ==
                      ibp_test_sim_universe_find(&c->u, &y->key) &&
                  x->last_seen_ms == y->last_seen_ms && x->official == y->official &&
                  x->check_time_ms == y->check_time_ms && !strcmp(x->error, y->error) &&
                  !strcmp(x->data_json, y->data_json) && x->nobs == y->nobs,
              "final: replicas %d and %d differ at key %zu", ra, rb, i);
        for (size_t j = 0; j < x->nobs; j++) {
            const ibp_vote_state_obs *o = &x->obs[j], *q = &y->obs[j];
            CHECK(c,
                  o->monitor == q->monitor && o->status == q->status &&
                      o->check_time_ms == q->check_time_ms && o->stream_ms == q->stream_ms &&
                      o->local_seq == q->local_seq && o->batch_seq == q->batch_seq &&
                      !strcmp(o->error, q->error) && !strcmp(o->data_json, q->data_json),
                  "final: replicas %d and %d differ at key %zu observation %zu", ra, rb, i, j);
        }
    }
    for (size_t i = 0; i < a->noverrides; i++)
        CHECK(c,
              !strcmp(a->overrides[i].member, b->overrides[i].member) &&
                  !strcmp(a->overrides[i].reason, b->overrides[i].reason),
              "final: replicas %d and %d differ at override %zu", ra, rb, i);
}

static void final_checks(sim_cluster *c, bool ground_truth)
{
    /* Everyone up and caught up: those that can start first; their checkpoints
     * then let a waiting replica start. */
    for (int pass = 0; pass < 2 && !c->failed; pass++)
        for (int r = 0; r < NREP && !c->failed; r++) {
            if (c->rep[r].down)
                replica_restart(c, r);
            if (c->rep[r].down)
                continue;
            replica_step(c, r, true);
            if (c->trim > 0 && !c->failed)
                replica_snapshot(c, r);
        }
    for (int r = 0; r < NREP && !c->failed; r++)
        CHECK(c, !c->rep[r].down, "final: replica %d found no usable checkpoint", r);
    if (c->failed)
        return;
    if (c->nlog > 0)
        ref_advance(c, c->nlog - 1);
    /* Replica 0 against the reference model, entry by entry. */
    for (int r = 0; r < NREP; r++) {
        ibp_vote *e = c->rep[r].e;
        bool seen[SIM_MAX_KEYS] = {false};
        size_t cur = 0;
        ibp_vote_entry en;
        while (ibp_vote_official_next(e, &cur, &en)) {
            int k = ibp_test_sim_universe_find(&c->u, &en.key);
            char kn[96];
            CHECK(c, k >= 0 && !seen[k], "final: replica %d: odd official key", r);
            seen[k] = true;
            ibp_test_sim_key_name(&c->u, k, kn, sizeof kn);
            CHECK(c,
                  en.status == c->ref.official[k] && en.check_time_ms == c->ref.off_ct[k] &&
                      !strcmp(en.error, c->ref.off_err[k]) &&
                      !strcmp(en.data_json, c->ref.off_data[k]),
                  "final: replica %d: %s differs from the model", r, kn);
        }
        for (int k = 0; k < c->u.nkeys; k++)
            CHECK(c, seen[k] == (c->ref.official[k] != IBP_VOTE_NONE),
                  "final: replica %d: key %d official mismatch", r, k);
        const ibp_vote_override *ov;
        size_t nov = ibp_vote_overrides(e, &ov);
        int ndis = 0;
        for (int m = 0; m < c->u.nmembers; m++)
            ndis += c->ref.disabled[m];
        CHECK(c, (int)nov == ndis, "final: replica %d: %zu overrides, model %d", r, nov, ndis);
        for (size_t i = 0; i < nov; i++) {
            int m = 0;
            while (m < c->u.nmembers && strcmp(c->u.members[m], ov[i].member))
                m++;
            CHECK(c,
                  m < c->u.nmembers && c->ref.disabled[m] &&
                      !strcmp(ov[i].reason, c->ref.reason[m]),
                  "final: replica %d: override of %s differs", r, ov[i].member);
        }
    }
    /* Identical replicas, down to every stored observation. */
    ibp_vote_state s0;
    CHECK(c, ibp_vote_export(c->rep[0].e, &s0) == IBP_VOTE_OK, "final: export");
    for (int r = 1; r < NREP && !c->failed; r++) {
        ibp_vote_state sr;
        CHECK(c, ibp_vote_export(c->rep[r].e, &sr) == IBP_VOTE_OK, "final: export");
        compare_exports(c, 0, &s0, r, &sr);
    }
    memcpy(c->st.final_digest, s0.digest, sizeof s0.digest);
    if (!ground_truth)
        return;
    /* The honest majority agreed long enough: official equals the truth. */
    for (int k = 0; k < c->u.nkeys; k++) {
        char kn[96];
        ibp_test_sim_key_name(&c->u, k, kn, sizeof kn);
        ibp_vote_entry en;
        bool is = ibp_vote_official_get(c->rep[0].e, &c->u.keys[k], &en);
        if (c->cfg_has[k]) {
            CHECK(c, is && en.status == c->truth[k],
                  "final: %s is %s after the calm phase, the truth is %s", kn,
                  is ? status_name(en.status) : "absent", status_name(c->truth[k]));
        } else if (c->now - c->dropped_at[k] > c->cfg.expiry_ms + 60000) {
            CHECK(c, !is, "final: %s still official %lld ms after leaving the config", kn,
                  (long long)(c->now - c->dropped_at[k]));
        }
    }
}

static void run_events(sim_cluster *c)
{
    while (c->q.n > 0 && !c->failed) {
        struct ev e = heap_pop(&c->q);
        if (e.t < c->now) {
            fail(c, "event queue went back in time");
            return;
        }
        c->now = e.t;
        c->st.steps++;
        switch (e.type) {
        case EV_MON_TICK:
            monitor_tick(c, e.a);
            push(c, c->now + c->kn.tick_ms + quantize(sim_range(&c->rng, -500, 500), c->kn.gran_ms),
                 e.node, EV_MON_TICK, e.a, NULL);
            break;
        case EV_ARRIVE:
            arrive(c, e.env);
            break;
        case EV_REPLICA_STEP:
            replica_step(c, e.a, c->scripted);
            if (!c->scripted && !c->rep[e.a].down)
                push(c, c->now + sim_range(&c->rng, 200, 4000), e.node, EV_REPLICA_STEP, e.a, NULL);
            break;
        case EV_REPLICA_RESTART:
            if (!c->rep[e.a].down)
                break;
            replica_restart(c, e.a);
            if (!c->rep[e.a].down)
                push(c, c->now + sim_range(&c->rng, 200, 4000), NODE_REPLICA + e.a,
                     EV_REPLICA_STEP, e.a, NULL);
            break;
        case EV_TRIM:
            trim_local(c);
            break;
        case EV_TRUTH:
            if (!c->calm) {
                c->truth[e.a] = c->truth[e.a] == IBP_VOTE_UP ? IBP_VOTE_DOWN : IBP_VOTE_UP;
                push(c, c->now + sim_range(&c->rng, 30000, 600000), e.node, EV_TRUTH, e.a, NULL);
            }
            break;
        case EV_CHURN:
            if (c->cfg_has[e.a]) {
                c->cfg_has[e.a] = false;
                c->dropped_at[e.a] = c->now;
            }
            break;
        case EV_CALM:
            c->calm = true;
            for (int m = 0; m < c->nmon; m++) {
                c->mons[m].crash_until = c->now;
                c->mons[m].part_until = 0;
            }
            /* Half the dropped keys come back (in the config again). */
            for (int k = 0; k < c->u.nkeys; k++)
                if (!c->cfg_has[k] && (k & 1))
                    c->cfg_has[k] = true;
            break;
        case EV_OVERRIDE: {
            sim_env *env = env_new(c, 0);
            snprintf(env->signer, SIM_STR, "admin");
            env->signer_seq = ++c->admin_seq;
            env->sig_ok = true;
            env->origin = SIM_ADMIN;
            env->kind = IBP_VOTE_MSG_MEMBER_OVERRIDE;
            env->member = (int)sim_below(&c->rng, (uint64_t)c->u.nmembers);
            env->disabled = sim_chance(&c->rng, 700000);
            snprintf(env->reason, SIM_STR, "%s",
                     sim_chance(&c->rng, 500000) ? "maintenance" : "billing");
            publish(c, NULL, env, false);
            break;
        }
        case EV_SCRIPT:
            publish(c, e.a >= 0 ? &c->mons[e.a] : NULL, e.env, true);
            break;
        case EV_END:
            c->q.n = 0;
            break;
        default:
            fail(c, "unknown event %d", e.type);
        }
    }
}

int ibp_test_sim_run_seed(uint64_t seed, const sim_knobs *knobs, bool verbose, sim_stats *stats)
{
    sim_knobs kn;
    if (knobs)
        kn = *knobs;
    else
        ibp_test_sim_knobs_random(&kn, seed);
    ibp_vote_config cfg;
    sim_config(&cfg);
    if (kn.calm_ms == 0)
        kn.calm_ms = cfg.active_window_ms + cfg.staleness_ms + 3 * kn.refresh_ms + 60000;
    sim_cluster *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    cluster_init(c, seed, &kn, &cfg);
    c->verbose = verbose;
    if (verbose)
        printf("seed %llu: %d monitors (liar %d, silent %d, skewed %d), %d keys, loss %u ppm, "
               "dup %u ppm, flake %u ppm, latency %lld-%lld ms, chaos %lld min\n",
               (unsigned long long)seed, kn.nmon, kn.liar, kn.silent, kn.skewed, c->u.nkeys,
               kn.loss_ppm, kn.dup_ppm, kn.flake_ppm, (long long)kn.lat_min_ms,
               (long long)kn.lat_max_ms, (long long)(kn.chaos_ms / 60000));
    /* Roles: the last monitors are the silent one and the liar; some honest
     * ones have clocks minutes off. */
    int next = c->nmon - 1;
    for (int s = 0; s < kn.silent; s++) {
        /* Half never speak; the others fall silent for good mid-chaos. */
        c->mons[next].kind = MON_SILENT;
        c->mons[next--].silent_from =
            sim_chance(&c->rng, 500000) ? T0 : T0 + sim_range(&c->rng, 0, kn.chaos_ms / 2);
    }
    if (kn.liar)
        c->mons[next--].kind = MON_LIAR;
    for (int s = 0; s < kn.skewed && s <= next; s++)
        c->mons[s].skew_ms =
            (sim_chance(&c->rng, 500000) ? 1 : -1) * sim_range(&c->rng, 60000, 600000);
    for (int k = 0; k < c->u.nkeys; k++) {
        c->truth[k] = sim_chance(&c->rng, 850000) ? IBP_VOTE_UP : IBP_VOTE_DOWN;
        push(c, T0 + sim_range(&c->rng, 30000, 600000), NODE_CTRL, EV_TRUTH, k, NULL);
    }
    for (int m = 0; m < c->nmon; m++) {
        c->mons[m].last_full = INT64_MIN / 2;
        push(c, T0 + quantize(sim_range(&c->rng, 0, kn.tick_ms), kn.gran_ms), m, EV_MON_TICK, m,
             NULL);
    }
    for (int r = 0; r < NREP; r++)
        push(c, T0 + sim_range(&c->rng, 100, 3000), NODE_REPLICA + r, EV_REPLICA_STEP, r, NULL);
    for (int i = 0; i < kn.churn; i++)
        push(c, T0 + sim_range(&c->rng, 60000, kn.chaos_ms - 60000), NODE_CTRL, EV_CHURN,
             (int)sim_below(&c->rng, (uint64_t)c->u.nkeys), NULL);
    for (int i = 0; i < kn.overrides; i++)
        push(c, T0 + sim_range(&c->rng, 1000, kn.chaos_ms), NODE_CTRL, EV_OVERRIDE, 0, NULL);
    if (kn.trim)
        for (int i = 0; i < 4; i++)
            push(c, T0 + sim_range(&c->rng, 120000, kn.chaos_ms), NODE_CTRL, EV_TRIM, 0, NULL);
    push(c, T0 + kn.chaos_ms, NODE_CTRL, EV_CALM, 0, NULL);
    c->end = T0 + kn.chaos_ms + kn.calm_ms;
    push(c, c->end, NODE_CTRL + 1, EV_END, 0, NULL);
    run_events(c);
    if (!c->failed)
        final_checks(c, true);
    int rc = c->failed ? 1 : 0;
    if (stats)
        *stats = c->st;
    cluster_free(c);
    free(c);
    return rc;
}

int ibp_test_sim_run_script(const ibp_vote_config *cfg, int nmon, int nmembers,
                            const sim_script *steps, size_t nsteps, int64_t end_ms, char *trace,
                            size_t trace_cap)
{
    sim_knobs kn;
    memset(&kn, 0, sizeof kn);
    kn.nmon = nmon;
    kn.nmembers = nmembers;
    kn.max_chunk = 8;
    kn.gran_ms = kn.check_gran_ms = 1;
    sim_cluster *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    cluster_init(c, 0, &kn, cfg);
    c->scripted = true;
    c->trace = trace;
    c->trace_cap = trace_cap;
    if (trace_cap)
        trace[0] = '\0';
    c->calm = true; /* no loss, no duplicates, no chaos */
    for (size_t i = 0; i < nsteps; i++) {
        const sim_script *s = &steps[i];
        sim_env *env;
        if (s->mon >= 0) {
            env = monitor_env(c, s->mon, s->kind, s->nobs);
            env->nobs = s->kind == IBP_VOTE_MSG_OBSERVATION_BATCH ? s->nobs : 0;
            for (int j = 0; j < env->nobs; j++) {
                sim_obs *o = &env->obs[j];
                o->key = s->obs[j].key;
                o->status = s->obs[j].status;
                o->check_time_ms = T0 + s->at_ms;
                if (o->status == IBP_VOTE_DOWN)
                    snprintf(o->error, SIM_STR, "timeout");
            }
        } else {
            env = env_new(c, 0);
            snprintf(env->signer, SIM_STR, "admin");
            env->signer_seq = ++c->admin_seq;
            env->sig_ok = true;
            env->origin = SIM_ADMIN;
            env->kind = IBP_VOTE_MSG_MEMBER_OVERRIDE;
            env->member = s->member;
            env->disabled = s->disabled;
            snprintf(env->reason, SIM_STR, "%s", s->disabled ? "maintenance" : "");
        }
        /* The monitor's clock for sending is the script's; monitor_env took now. */
        push(c, T0 + s->at_ms, s->mon >= 0 ? s->mon : NODE_CTRL, EV_SCRIPT, s->mon, env);
    }
    push(c, T0 + end_ms, NODE_CTRL + 1, EV_END, 0, NULL);
    run_events(c);
    if (!c->failed)
        final_checks(c, false);
    int rc = c->failed ? 1 : 0;
    cluster_free(c);
    free(c);
    return rc;
}
