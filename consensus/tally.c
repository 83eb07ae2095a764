/*
 * Per-key voting (DESIGN.md §6): who the voters are, whether a quorum of them
 * decides the key, which observation the official result copies, and the
 * evidence reported with the change.
 */
#include <stdlib.h>
#include <string.h>

#include "vote_internal.h"

/* Node-id order (bytes): the tie-break every replica applies alike. */
static int node_cmp(const ibp_vote *e, uint32_t a, uint32_t b)
{
    return strcmp(e->mons[a].id, e->mons[b].id);
}

static void drop_obs(ibp_vote *e, struct vkey *k, uint32_t j)
{
    struct vobs *o = &k->obs[j];
    struct vmon *m = &e->mons[o->mon];
    VOTE_ASSERT(m->nobs > 0);
    m->nobs--;
    e->nobs--;
    free(o->extra);
    k->obs[j] = k->obs[k->nobs - 1];
    k->nobs--;
}

bool ibp__vote_tally_key(ibp_vote *e, uint32_t kid, uint32_t quorum)
{
    struct vkey *k = &e->keys[kid];
    const int64_t now = e->now_ms;
    uint32_t count[3] = {0, 0, 0};

    /* Count the voters: observations younger than the staleness limit (their
     * monitors are active, since staleness <= window). Observations older than
     * expiry can never vote again before being replaced, so drop them here:
     * that frees the memory of monitors that stopped observing a key (or left)
     * without a sweep over all keys. Dropping them changes no result. */
    for (uint32_t j = 0; j < k->nobs;) {
        const struct vobs *o = &k->obs[j];
        int64_t age = now - o->stream_ms;
        VOTE_ASSERT(age >= 0);
        if (age >= e->cfg.expiry_ms) {
            drop_obs(e, k, j);
            continue;
        }
        if (age < e->cfg.staleness_ms) {
            VOTE_ASSERT(e->mons[o->mon].active);
            VOTE_ASSERT(o->status == IBP_VOTE_UP || o->status == IBP_VOTE_DOWN);
            count[o->status]++;
        }
        j++;
    }
    /* Two quorums cannot both exist: voters are distinct active monitors and
     * a quorum is more than half of them. */
    VOTE_ASSERT(!(count[IBP_VOTE_UP] >= quorum && count[IBP_VOTE_DOWN] >= quorum));

    uint8_t decided = IBP_VOTE_NONE;
    if (k->official == IBP_VOTE_NONE) {
        if (count[IBP_VOTE_UP] >= quorum)
            decided = IBP_VOTE_UP;
        else if (count[IBP_VOTE_DOWN] >= quorum)
            decided = IBP_VOTE_DOWN;
    } else {
        uint8_t other = k->official == IBP_VOTE_UP ? IBP_VOTE_DOWN : IBP_VOTE_UP;
        if (count[other] >= quorum)
            decided = other;
    }
    if (decided == IBP_VOTE_NONE)
        return true;

    /* Decided: collect the evidence and pick the newest deciding observation. */
    size_t nv = (size_t)count[IBP_VOTE_UP] + count[IBP_VOTE_DOWN];
    if (!VOTE_GROW(e->votes, e->votes_cap, e->nvotes + nv) ||
        !VOTE_GROW(e->changes, e->changes_cap, e->nchanges + 1) ||
        !VOTE_GROW(e->change_vote_off, e->change_vote_off_cap, e->nchanges + 1))
        return false;
    ibp_vote_vote *votes = &e->votes[e->nvotes];
    size_t n = 0;
    int best = -1;
    for (uint32_t j = 0; j < k->nobs; j++) {
        const struct vobs *o = &k->obs[j];
        if (now - o->stream_ms >= e->cfg.staleness_ms)
            continue;
        ibp_vote_vote vv = {e->mons[o->mon].id, o->local_seq, o->batch_seq,
                            (ibp_vote_status)o->status, o->check_time_ms};
        /* Insertion sort by node id: a handful of voters. */
        size_t at = n;
        while (at > 0 && strcmp(votes[at - 1].node, vv.node) > 0) {
            votes[at] = votes[at - 1];
            at--;
        }
        votes[at] = vv;
        n++;
        if (o->status == decided) {
            const struct vobs *b = best >= 0 ? &k->obs[best] : NULL;
            if (!b || o->check_time_ms > b->check_time_ms ||
                (o->check_time_ms == b->check_time_ms && node_cmp(e, o->mon, b->mon) < 0))
                best = (int)j;
        }
    }
    VOTE_ASSERT(n == nv && best >= 0);
    const struct vobs *b = &k->obs[best];

    char *extra = NULL;
    if (b->extra) {
        const char *data = b->extra + b->errlen + 1;
        if (!ibp__vote_extra_make(b->extra, b->errlen, data, strlen(data), &extra))
            return false;
    }
    uint8_t previous = k->official;
    uint64_t el[4];
    if (previous != IBP_VOTE_NONE) {
        ibp__vote_official_element(k, el);
        ibp__vote_digest_sub(e->digest, el);
    } else {
        e->nofficial++;
    }
    free(k->off_extra);
    k->off_extra = extra;
    k->off_errlen = b->errlen;
    k->off_check_time_ms = b->check_time_ms;
    k->official = decided;
    ibp__vote_official_element(k, el);
    ibp__vote_digest_add(e->digest, el);

    ibp_vote_change *c = &e->changes[e->nchanges];
    memset(c, 0, sizeof *c);
    c->kind = previous == IBP_VOTE_NONE ? IBP_VOTE_ADDED : IBP_VOTE_FLIPPED;
    ibp__vote_key_public(k, &c->key);
    c->status = (ibp_vote_status)decided;
    c->previous = (ibp_vote_status)previous;
    c->check_time_ms = k->off_check_time_ms;
    c->error = ibp__vote_extra_error(k->off_extra);
    c->data_json = ibp__vote_extra_data(k->off_extra, k->off_errlen);
    c->nvotes = n;
    e->change_vote_off[e->nchanges] = e->nvotes;
    e->nchanges++;
    e->nvotes += n;
    return true;
}
