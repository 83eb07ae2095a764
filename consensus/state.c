/*
 * Export and import of the whole engine state (see ibp_vote_state in vote.h).
 *
 * What a restored engine needs to continue exactly like one that never
 * stopped: the rules read each monitor's last-message time, each monitor's
 * latest observation per key with the engine time that carried it, each key's
 * last-observed time, the official results, the overrides, the epoch, the
 * LOCAL sequence and the engine time. The order of the expiry list decides the
 * order of removals within one update, so keys travel oldest first in that
 * order; monitors travel sorted by (last message, node id), which rebuilds the
 * active list exactly (its order only decides who leaves first, never a
 * result). Everything else (slot layout, key ids, observation order inside a
 * key) never shows in a result: tallies count, tie-breaks use node ids, and
 * evidence is sorted by node id.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vote_internal.h"

struct mon_order {
    int64_t last;
    const char *id;
    uint32_t idx;
};

static int mon_order_cmp(const void *pa, const void *pb)
{
    const struct mon_order *a = pa, *b = pb;
    if (a->last != b->last)
        return a->last < b->last ? -1 : 1;
    return strcmp(a->id, b->id);
}

ibp_vote_rc ibp_vote_export(ibp_vote *e, ibp_vote_state *out)
{
    if (!e || !out)
        return IBP_VOTE_E_INVAL;
    if (e->poisoned)
        return IBP_VOTE_E_POISONED;
    free(e->x_mons);
    free(e->x_keys);
    free(e->x_obs);
    free(e->x_monpos);
    e->x_mons = NULL;
    e->x_keys = NULL;
    e->x_obs = NULL;
    e->x_monpos = NULL;
    size_t nm = e->nmons;
    struct mon_order *ord = nm ? malloc(nm * sizeof *ord) : NULL;
    e->x_mons = nm ? malloc(nm * sizeof *e->x_mons) : NULL;
    e->x_monpos = nm ? malloc(nm * sizeof *e->x_monpos) : NULL;
    e->x_keys = e->nkeys ? malloc(e->nkeys * sizeof *e->x_keys) : NULL;
    e->x_obs = e->nobs ? malloc(e->nobs * sizeof *e->x_obs) : NULL;
    if ((nm && (!ord || !e->x_mons || !e->x_monpos)) || (e->nkeys && !e->x_keys) ||
        (e->nobs && !e->x_obs)) {
        free(ord);
        return ibp__vote_fail(e, IBP_VOTE_E_NOMEM, "export: out of memory");
    }
    for (size_t i = 0; i < nm; i++)
        ord[i] = (struct mon_order){e->mons[i].last_msg_ms, e->mons[i].id, (uint32_t)i};
    if (nm)
        qsort(ord, nm, sizeof *ord, mon_order_cmp);
    for (size_t i = 0; i < nm; i++) {
        e->x_mons[i].node = ord[i].id;
        e->x_mons[i].last_msg_ms = ord[i].last;
        e->x_monpos[ord[i].idx] = (uint32_t)i;
    }
    free(ord);

    size_t nk = 0, no = 0;
    for (uint32_t id = e->lru_head; id != VOTE_NONE; id = e->keys[id].next) {
        const struct vkey *k = &e->keys[id];
        VOTE_ASSERT(k->live && nk < e->nkeys);
        ibp_vote_state_key *x = &e->x_keys[nk++];
        ibp__vote_key_public(k, &x->key);
        x->last_seen_ms = k->last_seen_ms;
        x->official = (ibp_vote_status)k->official;
        x->check_time_ms = k->official ? k->off_check_time_ms : 0;
        x->error = ibp__vote_extra_error(k->off_extra);
        x->data_json = ibp__vote_extra_data(k->off_extra, k->off_errlen);
        x->obs = k->nobs ? &e->x_obs[no] : NULL;
        x->nobs = k->nobs;
        for (uint32_t j = 0; j < k->nobs; j++) {
            const struct vobs *o = &k->obs[j];
            VOTE_ASSERT(no < e->nobs);
            ibp_vote_state_obs *xo = &e->x_obs[no++];
            xo->monitor = e->x_monpos[o->mon];
            xo->status = (ibp_vote_status)o->status;
            xo->check_time_ms = o->check_time_ms;
            xo->stream_ms = o->stream_ms;
            xo->local_seq = o->local_seq;
            xo->batch_seq = o->batch_seq;
            xo->error = ibp__vote_extra_error(o->extra);
            xo->data_json = ibp__vote_extra_data(o->extra, o->errlen);
        }
    }
    VOTE_ASSERT(nk == e->nkeys && no == e->nobs);

    memset(out, 0, sizeof *out);
    out->epoch = e->epoch;
    out->local_seq = e->local_seq;
    out->now_ms = e->now_ms;
    ibp__vote_digest_bytes(e->digest, out->digest);
    out->monitors = e->x_mons;
    out->nmonitors = nm;
    out->keys = e->x_keys;
    out->nkeys = nk;
    out->overrides = e->nover ? e->overs : NULL;
    out->noverrides = e->nover;
    return IBP_VOTE_OK;
}

/* ---- import ---------------------------------------------------------------- */

struct import_ctx {
    char *err;
    size_t cap;
};

static ibp_vote_rc bad(struct import_ctx *c, ibp_vote_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static ibp_vote_rc bad(struct import_ctx *c, ibp_vote_rc rc, const char *fmt, ...)
{
    if (c->err && c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static bool text_ok(const char *s, size_t max)
{
    return ibp__vote_bounded_len(nz(s), max) <= max;
}

static ibp_vote_rc import_monitors(ibp_vote *e, const ibp_vote_state *st, struct import_ctx *c)
{
    if (st->nmonitors > e->cfg.max_monitors)
        return bad(c, IBP_VOTE_E_LIMIT, "import: %zu monitors, limit %zu", st->nmonitors,
                   e->cfg.max_monitors);
    for (size_t i = 0; i < st->nmonitors; i++) {
        const ibp_vote_state_monitor *m = &st->monitors[i];
        const char *node = nz(m->node);
        size_t len = ibp__vote_bounded_len(node, IBP_VOTE_NAME_MAX);
        if (len == 0 || len > IBP_VOTE_NAME_MAX)
            return bad(c, IBP_VOTE_E_STATE, "import: monitor %zu: bad node id", i);
        if (ibp__vote_mon_find(e, node, len) != VOTE_NONE)
            return bad(c, IBP_VOTE_E_STATE, "import: monitor %s twice", node);
        if (m->last_msg_ms > st->now_ms)
            return bad(c, IBP_VOTE_E_STATE, "import: monitor %s heard after now", node);
        if (i > 0 && m->last_msg_ms < st->monitors[i - 1].last_msg_ms)
            return bad(c, IBP_VOTE_E_STATE, "import: monitors not ordered by last message");
        uint32_t idx;
        if (ibp__vote_mon_create(e, node, len, m->last_msg_ms, &idx) != IBP_VOTE_OK)
            return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
        VOTE_ASSERT(idx == i);
        if (st->now_ms - m->last_msg_ms < e->cfg.active_window_ms) {
            e->mons[idx].active = true;
            e->nactive++;
            ibp__vote_act_append(e, idx);
        }
    }
    return IBP_VOTE_OK;
}

static ibp_vote_rc import_obs(ibp_vote *e, const ibp_vote_state *st, struct vkey *k,
                              const ibp_vote_state_key *x, size_t ki, struct import_ctx *c)
{
    if (x->nobs > st->nmonitors)
        return bad(c, IBP_VOTE_E_STATE, "import: key %zu: more observations than monitors", ki);
    if (x->nobs == 0)
        return IBP_VOTE_OK;
    k->obs = calloc(x->nobs, sizeof *k->obs);
    if (!k->obs)
        return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
    k->cap = (uint16_t)x->nobs;
    for (size_t j = 0; j < x->nobs; j++) {
        const ibp_vote_state_obs *o = &x->obs[j];
        if (o->monitor >= st->nmonitors)
            return bad(c, IBP_VOTE_E_STATE, "import: key %zu: monitor index %u out of range", ki,
                       o->monitor);
        for (size_t i = 0; i < k->nobs; i++)
            if (k->obs[i].mon == o->monitor)
                return bad(c, IBP_VOTE_E_STATE, "import: key %zu: two observations by %s", ki,
                           e->mons[o->monitor].id);
        if (o->status != IBP_VOTE_UP && o->status != IBP_VOTE_DOWN)
            return bad(c, IBP_VOTE_E_STATE, "import: key %zu: bad observation status", ki);
        /* A monitor's last message is at least as new as anything it sent,
         * and a key was last seen at least when any observation arrived. */
        if (o->stream_ms > x->last_seen_ms || o->stream_ms > st->monitors[o->monitor].last_msg_ms)
            return bad(c, IBP_VOTE_E_STATE, "import: key %zu: observation newer than its sender",
                       ki);
        if (!text_ok(o->error, IBP_VOTE_ERROR_MAX) || !text_ok(o->data_json, IBP_VOTE_DATA_MAX))
            return bad(c, IBP_VOTE_E_STATE, "import: key %zu: observation text too long", ki);
        struct vmon *m = &e->mons[o->monitor];
        if (m->nobs + 1 > e->cfg.max_keys_per_node)
            return bad(c, IBP_VOTE_E_LIMIT, "import: monitor %s over %zu keys", m->id,
                       e->cfg.max_keys_per_node);
        struct vobs *vo = &k->obs[k->nobs];
        const char *err = nz(o->error), *data = nz(o->data_json);
        size_t errlen = strlen(err);
        if (!ibp__vote_extra_make(err, errlen, data, strlen(data), &vo->extra))
            return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
        k->nobs++;
        vo->mon = (uint16_t)o->monitor;
        vo->status = (uint8_t)o->status;
        vo->errlen = (uint16_t)errlen;
        vo->check_time_ms = o->check_time_ms;
        vo->stream_ms = o->stream_ms;
        vo->local_seq = o->local_seq;
        vo->batch_seq = o->batch_seq;
        m->nobs++;
        e->nobs++;
    }
    return IBP_VOTE_OK;
}

static ibp_vote_rc import_keys(ibp_vote *e, const ibp_vote_state *st, struct import_ctx *c)
{
    if (st->nkeys > e->cfg.max_keys)
        return bad(c, IBP_VOTE_E_LIMIT, "import: %zu keys, limit %zu", st->nkeys, e->cfg.max_keys);
    if (!ibp_hash_index_reserve(&e->key_index, st->nkeys) ||
        !VOTE_GROW(e->keys, e->keys_cap, st->nkeys))
        return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
    for (size_t i = 0; i < st->nkeys; i++) {
        const ibp_vote_state_key *x = &st->keys[i];
        vote_kview v;
        char where[48], why[200];
        snprintf(where, sizeof where, "import: key %zu", i);
        if (!ibp__vote_key_validate(&x->key, &v, why, sizeof why, where))
            return bad(c, IBP_VOTE_E_STATE, "%s", why);
        uint64_t h = ibp__vote_key_hash(&v);
        if (ibp__vote_key_find(e, &v, h) != VOTE_NONE)
            return bad(c, IBP_VOTE_E_STATE, "%s: duplicate", where);
        if (x->last_seen_ms > st->now_ms ||
            (i > 0 && x->last_seen_ms < st->keys[i - 1].last_seen_ms))
            return bad(c, IBP_VOTE_E_STATE, "%s: last seen out of order or after now", where);
        if (x->official != IBP_VOTE_NONE && x->official != IBP_VOTE_UP &&
            x->official != IBP_VOTE_DOWN)
            return bad(c, IBP_VOTE_E_STATE, "%s: bad official status", where);
        if (!text_ok(x->error, IBP_VOTE_ERROR_MAX) || !text_ok(x->data_json, IBP_VOTE_DATA_MAX))
            return bad(c, IBP_VOTE_E_STATE, "%s: official text too long", where);
        uint32_t kid;
        if (ibp__vote_key_create(e, &v, h, &kid) != IBP_VOTE_OK)
            return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
        struct vkey *k = &e->keys[kid];
        k->last_seen_ms = x->last_seen_ms;
        ibp__vote_lru_append(e, kid);
        ibp_vote_rc rc = import_obs(e, st, k, x, i, c);
        if (rc != IBP_VOTE_OK)
            return rc;
        if (x->official != IBP_VOTE_NONE) {
            const char *err = nz(x->error), *data = nz(x->data_json);
            size_t errlen = strlen(err);
            if (!ibp__vote_extra_make(err, errlen, data, strlen(data), &k->off_extra))
                return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
            k->off_errlen = (uint16_t)errlen;
            k->off_check_time_ms = x->check_time_ms;
            k->official = (uint8_t)x->official;
            e->nofficial++;
            uint64_t el[4];
            ibp__vote_official_element(k, el);
            ibp__vote_digest_add(e->digest, el);
        }
    }
    return IBP_VOTE_OK;
}

static ibp_vote_rc import_overrides(ibp_vote *e, const ibp_vote_state *st, struct import_ctx *c)
{
    if (st->noverrides > e->cfg.max_overrides)
        return bad(c, IBP_VOTE_E_LIMIT, "import: %zu overrides, limit %zu", st->noverrides,
                   e->cfg.max_overrides);
    if (!VOTE_GROW(e->overs, e->over_cap, st->noverrides))
        return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
    for (size_t i = 0; i < st->noverrides; i++) {
        const ibp_vote_override *o = &st->overrides[i];
        const char *member = nz(o->member), *reason = nz(o->reason);
        size_t mlen = ibp__vote_bounded_len(member, IBP_VOTE_NAME_MAX);
        if (mlen == 0 || mlen > IBP_VOTE_NAME_MAX || !text_ok(reason, IBP_VOTE_ERROR_MAX) ||
            !o->disabled)
            return bad(c, IBP_VOTE_E_STATE, "import: override %zu malformed", i);
        for (size_t j = 0; j < e->nover; j++)
            if (strcmp(e->overs[j].member, member) == 0)
                return bad(c, IBP_VOTE_E_STATE, "import: override of %s twice", member);
        char *m = strdup(member), *r = strdup(reason);
        if (!m || !r) {
            free(m);
            free(r);
            return bad(c, IBP_VOTE_E_NOMEM, "import: out of memory");
        }
        e->overs[e->nover++] = (ibp_vote_override){m, true, r};
        uint64_t el[4];
        ibp__vote_override_element(m, r, el);
        ibp__vote_digest_add(e->digest, el);
    }
    return IBP_VOTE_OK;
}

ibp_vote_rc ibp_vote_import(const ibp_vote_config *cfg, const ibp_vote_state *st, ibp_vote **out,
                            char *err_out, size_t err_cap)
{
    struct import_ctx c = {err_out, err_cap};
    if (err_out && err_cap)
        err_out[0] = '\0';
    if (!out || !st)
        return bad(&c, IBP_VOTE_E_INVAL, "import: NULL argument");
    if ((st->nmonitors && !st->monitors) || (st->nkeys && !st->keys) ||
        (st->noverrides && !st->overrides))
        return bad(&c, IBP_VOTE_E_STATE, "import: missing array");
    for (size_t i = 0; i < st->nkeys; i++)
        if (st->keys[i].nobs && !st->keys[i].obs)
            return bad(&c, IBP_VOTE_E_STATE, "import: key %zu: missing observations", i);
    ibp_vote *e;
    ibp_vote_rc rc = ibp_vote_new(cfg, &e);
    if (rc != IBP_VOTE_OK)
        return bad(&c, rc, "import: %s", ibp_vote_strerror(rc));
    rc = import_monitors(e, st, &c);
    if (rc == IBP_VOTE_OK)
        rc = import_keys(e, st, &c);
    if (rc == IBP_VOTE_OK)
        rc = import_overrides(e, st, &c);
    if (rc == IBP_VOTE_OK) {
        uint8_t d[IBP_VOTE_DIGEST_SIZE];
        ibp__vote_digest_bytes(e->digest, d);
        if (memcmp(d, st->digest, sizeof d) != 0)
            rc = bad(&c, IBP_VOTE_E_DIGEST, "import: recomputed digest differs from the state's");
    }
    if (rc != IBP_VOTE_OK) {
        ibp_vote_free(e);
        return rc;
    }
    e->epoch = st->epoch;
    e->local_seq = st->local_seq;
    e->now_ms = st->now_ms;
    *out = e;
    return IBP_VOTE_OK;
}
