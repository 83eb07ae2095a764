/*
 * Reference model of the vote rules (DESIGN.md §6), independent of the engine's
 * code: plain arrays, everything recomputed from scratch on every message,
 * no assumption the engine relies on (it checks "active" explicitly instead of
 * deducing it from freshness). It shares only the rules as written in vote.h.
 */
#include <string.h>

#include "sim.h"

static void copy_str(char *dst, const char *src)
{
    size_t n = strnlen(src, SIM_STR - 1);
    memmove(dst, src, n);
    dst[n] = '\0';
}

void ibp_test_ref_init(ref_model *r, const ibp_vote_config *cfg, const sim_universe *u, int nmon,
                       char names[][SIM_STR])
{
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->u = u;
    r->nmon = nmon;
    for (int i = 0; i < nmon; i++)
        copy_str(r->mon_names[i], names[i]);
    r->now = 0; /* as the engine: time is max(0, stream times seen) */
}

static bool active(const ref_model *r, int m)
{
    return r->heard[m] && r->now - r->last_msg[m] < r->cfg.active_window_ms;
}

static bool voter(const ref_model *r, int k, int m)
{
    const ref_obs *o = &r->obs[k][m];
    return o->has && active(r, m) && r->now - o->stream_ms < r->cfg.staleness_ms;
}

static void evaluate(ref_model *r, int k)
{
    int up = 0, down = 0;
    for (int m = 0; m < r->nmon; m++)
        if (voter(r, k, m)) {
            if (r->obs[k][m].status == IBP_VOTE_UP)
                up++;
            else
                down++;
        }
    ibp_vote_status decided = IBP_VOTE_NONE;
    if (r->official[k] == IBP_VOTE_NONE) {
        if (up >= r->quorum)
            decided = IBP_VOTE_UP;
        else if (down >= r->quorum)
            decided = IBP_VOTE_DOWN;
    } else if (r->official[k] == IBP_VOTE_UP && down >= r->quorum) {
        decided = IBP_VOTE_DOWN;
    } else if (r->official[k] == IBP_VOTE_DOWN && up >= r->quorum) {
        decided = IBP_VOTE_UP;
    }
    if (decided == IBP_VOTE_NONE)
        return;
    /* Newest deciding observation; ties: smallest node id. */
    int best = -1;
    for (int m = 0; m < r->nmon; m++) {
        if (!voter(r, k, m) || r->obs[k][m].status != decided)
            continue;
        if (best < 0 || r->obs[k][m].check_time_ms > r->obs[k][best].check_time_ms ||
            (r->obs[k][m].check_time_ms == r->obs[k][best].check_time_ms &&
             strcmp(r->mon_names[m], r->mon_names[best]) < 0))
            best = m;
    }
    ref_change *c = &r->changes[r->nchanges++];
    memset(c, 0, sizeof *c);
    c->key = k;
    c->kind = r->official[k] == IBP_VOTE_NONE ? IBP_VOTE_ADDED : IBP_VOTE_FLIPPED;
    c->previous = r->official[k];
    c->status = decided;
    c->check_time_ms = r->obs[k][best].check_time_ms;
    copy_str(c->error, r->obs[k][best].error);
    copy_str(c->data, r->obs[k][best].data);
    for (int m = 0; m < r->nmon; m++)
        if (voter(r, k, m))
            c->votes[c->nvotes++] =
                (ref_vote){m, r->obs[k][m].local_seq, r->obs[k][m].batch_seq, r->obs[k][m].status};
    r->official[k] = decided;
    r->off_ct[k] = c->check_time_ms;
    copy_str(r->off_err[k], c->error);
    copy_str(r->off_data[k], c->data);
}

void ibp_test_ref_apply(ref_model *r, const sim_env *env, int mon, uint64_t local_seq,
                        int64_t stream_ms)
{
    r->nchanges = 0;
    r->override_changed = false;
    if (stream_ms > r->now)
        r->now = stream_ms;
    bool touched[SIM_MAX_KEYS] = {false};
    int order[SIM_MAX_KEYS], norder = 0;
    if (env->kind == IBP_VOTE_MSG_OBSERVATION_BATCH || env->kind == IBP_VOTE_MSG_HEARTBEAT) {
        r->heard[mon] = true;
        r->last_msg[mon] = r->now;
    }
    if (env->kind == IBP_VOTE_MSG_OBSERVATION_BATCH) {
        for (int i = 0; i < env->nobs; i++) {
            const sim_obs *o = &env->obs[i];
            ref_obs *ro = &r->obs[o->key][mon];
            ro->has = true;
            ro->status = o->status;
            ro->check_time_ms = o->check_time_ms;
            ro->stream_ms = r->now;
            ro->local_seq = local_seq;
            ro->batch_seq = env->batch_seq;
            copy_str(ro->error, o->error);
            copy_str(ro->data, o->data);
            r->held[o->key] = true;
            r->last_seen[o->key] = r->now;
            if (!touched[o->key]) {
                touched[o->key] = true;
                order[norder++] = o->key;
            }
        }
    }
    r->active = 0;
    for (int m = 0; m < r->nmon; m++)
        r->active += active(r, m);
    r->quorum = r->active / 2 + 1;
    if (r->quorum < (int)r->cfg.quorum_min)
        r->quorum = (int)r->cfg.quorum_min;
    for (int i = 0; i < norder; i++)
        evaluate(r, order[i]);
    if (env->kind == IBP_VOTE_MSG_MEMBER_OVERRIDE) {
        int m = env->member;
        if (env->disabled) {
            if (!r->disabled[m] || strcmp(r->reason[m], env->reason) != 0) {
                r->disabled[m] = true;
                copy_str(r->reason[m], env->reason);
                r->override_changed = true;
            }
        } else if (r->disabled[m]) {
            r->disabled[m] = false;
            r->reason[m][0] = '\0';
            r->override_changed = true;
        }
    }
    /* Expiry: every held key, every message (O(keys), fine for a model). */
    for (int k = 0; k < r->u->nkeys; k++) {
        if (!r->held[k] || r->now - r->last_seen[k] < r->cfg.expiry_ms)
            continue;
        r->held[k] = false;
        memset(r->obs[k], 0, sizeof r->obs[k]);
        if (r->official[k] != IBP_VOTE_NONE) {
            ref_change *c = &r->changes[r->nchanges++];
            memset(c, 0, sizeof *c);
            c->key = k;
            c->kind = IBP_VOTE_REMOVED;
            c->previous = r->official[k];
            c->status = IBP_VOTE_NONE;
            c->check_time_ms = r->off_ct[k];
            copy_str(c->error, r->off_err[k]);
            copy_str(c->data, r->off_data[k]);
            r->official[k] = IBP_VOTE_NONE;
        }
    }
    if (r->nchanges > 0 || r->override_changed)
        r->epoch++;
    (void)local_seq;
}
