/* The chain of official snapshots; see ibp/snapshot_chain.h for the rule. */
#include "ibp/snapshot_chain.h"

#include <string.h>

/* Candidates wait for their predecessor; the walk keeps the newest few. A
 * forger can make more, but each one only costs a slot: once the slots are
 * full the oldest candidate (the one nearest the walk) replaces the newest. */
#define CANDIDATES_MAX 64

ibp_status ibp_chain_find_head(ibp_chain_fetch_fn fetch, void *ctx, uint64_t first_seq,
                               uint64_t last_seq, size_t max_scan, ibp_chain_head *out)
{
    if (!fetch || !out)
        return IBP_E_INVAL;
    memset(out, 0, sizeof *out);
    out->last_seq = last_seq;
    if (last_seq == 0)
        return IBP_OK;
    if (first_seq == 0)
        first_seq = 1;

    ibp_chain_msg cand[CANDIDATES_MAX]; /* newest first */
    size_t ncand = 0;
    ibp_chain_msg oldest = {0};
    bool have_oldest = false;

    for (uint64_t seq = last_seq; seq >= first_seq && out->scanned < max_scan; seq--) {
        ibp_chain_msg m;
        memset(&m, 0, sizeof m);
        ibp_status st = fetch(ctx, seq, &m);
        out->scanned++;
        if (st == IBP_E_NOT_FOUND)
            continue;
        if (st != IBP_OK)
            return st;
        m.stream_seq = seq;
        if (!m.valid)
            continue;
        oldest = m;
        have_oldest = true;
        /* Does m confirm a candidate? The newest one it confirms is the head. */
        for (size_t i = 0; i < ncand; i++) {
            if (m.epoch != UINT64_MAX && cand[i].epoch == m.epoch + 1) {
                out->found = true;
                out->head = cand[i];
                goto found;
            }
        }
        if (ncand < CANDIDATES_MAX)
            cand[ncand++] = m;
        else
            cand[CANDIDATES_MAX - 1] = m;
    }
    /* Nothing confirmed: the oldest valid snapshot seen anchors the chain. */
    if (have_oldest) {
        out->found = true;
        out->head = oldest;
    }
found:
    if (out->found) {
        /* Everything after the head on the subject is foreign to the chain
         * (a candidate newer than the head has no legitimate predecessor). */
        out->foreign = last_seq - out->head.stream_seq;
    } else {
        out->foreign = out->scanned;
    }
    return IBP_OK;
}

void ibp_chain_follow_init(ibp_chain_follower *f, uint64_t applied_epoch)
{
    memset(f, 0, sizeof *f);
    f->applied_epoch = applied_epoch;
}

void ibp_chain_follow_applied(ibp_chain_follower *f, uint64_t applied_epoch)
{
    f->applied_epoch = applied_epoch;
}

ibp_chain_verdict ibp_chain_follow(ibp_chain_follower *f, const ibp_chain_msg *m)
{
    if (!m->valid)
        return IBP_CHAIN_FOREIGN;
    bool follows_prev =
        f->have_prev && f->prev_valid_epoch != UINT64_MAX && m->epoch == f->prev_valid_epoch + 1;
    f->prev_valid_epoch = m->epoch;
    f->have_prev = true;
    if (m->epoch <= f->applied_epoch)
        return IBP_CHAIN_OLD;
    if (m->epoch == f->applied_epoch + 1 || follows_prev) {
        f->applied_epoch = m->epoch;
        return IBP_CHAIN_APPLY;
    }
    return IBP_CHAIN_FOREIGN;
}

const char *ibp_chain_verdict_name(ibp_chain_verdict v)
{
    switch (v) {
    case IBP_CHAIN_APPLY:
        return "apply";
    case IBP_CHAIN_OLD:
        return "old";
    case IBP_CHAIN_FOREIGN:
        return "foreign";
    }
    return "?";
}
