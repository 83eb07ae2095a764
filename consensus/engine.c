/*
 * The vote engine: applying LOCAL messages in stream order (DESIGN.md §6).
 *
 * Scheduling. An apply costs O(observations in the message + keys and
 * monitors whose time ran out), never O(all keys):
 *  - Keys are re-evaluated only when the message carries an observation of
 *    them (tally.c). Time passing can only lower the vote counts (votes go
 *    stale) or the quorum (monitors leave the active window); by the rules
 *    in vote.h the lower quorum takes effect at the key's next observation.
 *  - Active monitors sit in a list ordered by the engine time of their last
 *    message; engine time never goes back, so a monitor that speaks moves to
 *    the tail, and the ones that left the window are popped from the head.
 *  - Keys sit in a list ordered by the engine time of their newest
 *    observation, maintained the same way; expired keys are popped from the
 *    head. Both lists are part of the exported state, so a restored replica
 *    pops them in the same order.
 *
 * Atomicity. A message is first validated and staged (keys it names are
 * looked up or created, limits checked); a rejected message rolls the created
 * keys back and changes nothing but the consumed LOCAL sequence. Only then
 * does time move and the message apply. Running out of memory while applying
 * poisons the engine rather than leaving half a message applied unnoticed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/vec.h"
#include "vote_internal.h"

static const char *const rc_msgs[] = {
#define RC_MSG(name, msg) msg,
    IBP_VOTE_RC_LIST(RC_MSG)
#undef RC_MSG
};

static const char *const rc_names[] = {
#define RC_NAME(name, msg) #name,
    IBP_VOTE_RC_LIST(RC_NAME)
#undef RC_NAME
};

const char *ibp_vote_strerror(ibp_vote_rc rc)
{
    if ((unsigned)rc >= IBP_VOTE_RC_COUNT)
        return "unknown vote engine error";
    return rc_msgs[rc];
}

const char *ibp_vote_rc_name(ibp_vote_rc rc)
{
    if ((unsigned)rc >= IBP_VOTE_RC_COUNT)
        return "IBP_VOTE_E_UNKNOWN";
    return rc_names[rc];
}

const uint8_t ibp_vote_empty_digest[IBP_VOTE_DIGEST_SIZE];

_Noreturn void ibp__vote_assert_fail(const char *what, const char *file, int line)
{
    /* The one place the engine writes anything: a bug report on the way down. */
    fprintf(stderr, "ibp_vote: invariant broken: %s (%s:%d)\n", what, file, line);
    abort();
}

ibp_vote_rc ibp__vote_fail(ibp_vote *e, ibp_vote_rc rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->errmsg, sizeof e->errmsg, fmt, ap);
    va_end(ap);
    return rc;
}

bool ibp__vote_grow(void *arrp, size_t *cap, size_t need, size_t esz)
{
    if (need <= *cap)
        return true; /* ibp_grow would return the array, which may be NULL */
    /* arrp points at a T* variable; copy it through void * without punning. */
    void *p;
    memcpy(&p, arrp, sizeof p);
    void *q = ibp_grow(p, cap, need, esz);
    if (!q)
        return false;
    memcpy(arrp, &q, sizeof q);
    return true;
}

/* ---- configuration --------------------------------------------------------- */

void ibp_vote_config_init(ibp_vote_config *cfg)
{
    cfg->active_window_ms = 600000;
    cfg->staleness_ms = 180000;
    cfg->expiry_ms = 3600000;
    cfg->quorum_min = 2;
    cfg->max_batch_obs = 65536;
    cfg->max_keys_per_node = 250000;
    cfg->max_keys = 250000;
    cfg->max_monitors = 4096;
    cfg->max_overrides = 65536;
}

ibp_vote_rc ibp_vote_config_check(const ibp_vote_config *cfg)
{
    if (!cfg)
        return IBP_VOTE_E_CONFIG;
    if (cfg->active_window_ms <= 0 || cfg->staleness_ms <= 0 || cfg->expiry_ms <= 0)
        return IBP_VOTE_E_CONFIG;
    /* staleness <= window: a fresh vote implies an active voter, and a monitor
     * coming back never revives votes (they are older than the window).
     * window <= expiry: dropping observations older than expiry never drops a
     * vote. */
    if (cfg->staleness_ms > cfg->active_window_ms || cfg->active_window_ms > cfg->expiry_ms)
        return IBP_VOTE_E_CONFIG;
    if (cfg->quorum_min < 1)
        return IBP_VOTE_E_CONFIG;
    if (cfg->max_batch_obs < 1 || cfg->max_keys_per_node < 1 || cfg->max_keys < 1 ||
        cfg->max_monitors < 1 || cfg->max_overrides < 1)
        return IBP_VOTE_E_CONFIG;
    /* Key ids are 32-bit (VOTE_NONE reserved); observations name their
     * monitor in 16 bits. */
    if (cfg->max_keys > ((size_t)1 << 31) || cfg->max_monitors > 65535 ||
        cfg->max_batch_obs > ((size_t)1 << 31))
        return IBP_VOTE_E_CONFIG;
    return IBP_VOTE_OK;
}

/* Quorum for n active monitors under e's configuration. */
static uint32_t quorum_of(const ibp_vote *e, uint32_t nactive)
{
    uint32_t q = nactive / 2 + 1;
    return q > e->cfg.quorum_min ? q : e->cfg.quorum_min;
}

/* ---- lifecycle ------------------------------------------------------------- */

ibp_vote_rc ibp_vote_new(const ibp_vote_config *cfg, ibp_vote **out)
{
    if (!out || ibp_vote_config_check(cfg) != IBP_VOTE_OK)
        return IBP_VOTE_E_CONFIG;
    ibp_vote *e = calloc(1, sizeof *e);
    if (!e)
        return IBP_VOTE_E_NOMEM;
    e->cfg = *cfg;
    e->free_head = VOTE_NONE;
    e->lru_head = e->lru_tail = VOTE_NONE;
    e->act_head = e->act_tail = VOTE_NONE;
    if (!ibp_hash_index_init(&e->key_index, 64) || !ibp_hash_index_init(&e->mon_index, 16)) {
        ibp_vote_free(e);
        return IBP_VOTE_E_NOMEM;
    }
    *out = e;
    return IBP_VOTE_OK;
}

static void release_update(ibp_vote *e);

void ibp_vote_free(ibp_vote *e)
{
    if (!e)
        return;
    release_update(e);
    for (size_t i = 0; i < e->keys_len; i++) {
        struct vkey *k = &e->keys[i];
        for (uint32_t j = 0; j < k->nobs; j++)
            free(k->obs[j].extra);
        free(k->obs);
        free(k->str);
        free(k->off_extra);
    }
    free(e->keys);
    for (size_t i = 0; i < e->nmons; i++)
        free(e->mons[i].id);
    free(e->mons);
    for (size_t i = 0; i < e->nover; i++) {
        free((char *)e->overs[i].member);
        free((char *)e->overs[i].reason);
    }
    free(e->overs);
    ibp_hash_index_destroy(&e->key_index);
    ibp_hash_index_destroy(&e->mon_index);
    free(e->obs_kid);
    free(e->touched);
    free(e->created);
    free(e->grave);
    free(e->dead_overs);
    free(e->changes);
    free(e->change_vote_off);
    free(e->votes);
    free(e->events);
    free(e->x_mons);
    free(e->x_keys);
    free(e->x_obs);
    free(e->x_monpos);
    free(e->stage);
    free(e);
}

const char *ibp_vote_last_error(const ibp_vote *e)
{
    return e ? e->errmsg : "no engine";
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

static bool key_expire(ibp_vote *e, uint32_t id)
{
    struct vkey *k = &e->keys[id];
    if (!VOTE_GROW(e->grave, e->grave_cap, e->ngrave + 1))
        return false;
    if (k->official != IBP_VOTE_NONE &&
        (!VOTE_GROW(e->changes, e->changes_cap, e->nchanges + 1) ||
         !VOTE_GROW(e->change_vote_off, e->change_vote_off_cap, e->nchanges + 1)))
        return false;
    ibp__vote_lru_unlink(e, id);
    ibp_hash_index_remove(&e->key_index, k->hash, id);
    for (uint32_t j = 0; j < k->nobs; j++) {
        struct vmon *m = &e->mons[k->obs[j].mon];
        VOTE_ASSERT(m->nobs > 0);
        m->nobs--;
        free(k->obs[j].extra);
    }
    e->nobs -= k->nobs;
    free(k->obs);
    k->obs = NULL;
    k->nobs = k->cap = 0;
    if (k->official != IBP_VOTE_NONE) {
        uint64_t el[4];
        ibp__vote_official_element(k, el);
        ibp__vote_digest_sub(e->digest, el);
        ibp_vote_change *c = &e->changes[e->nchanges];
        memset(c, 0, sizeof *c);
        c->kind = IBP_VOTE_REMOVED;
        ibp__vote_key_public(k, &c->key);
        c->status = IBP_VOTE_NONE;
        c->previous = (ibp_vote_status)k->official;
        c->check_time_ms = k->off_check_time_ms;
        c->error = ibp__vote_extra_error(k->off_extra);
        c->data_json = ibp__vote_extra_data(k->off_extra, k->off_errlen);
        e->change_vote_off[e->nchanges] = e->nvotes;
        e->nchanges++;
        e->nofficial--;
        k->official = IBP_VOTE_NONE;
    }
    k->live = 0;
    e->nkeys--;
    e->grave[e->ngrave++] = id;
    return true;
}

/* ---- per-apply bookkeeping ------------------------------------------------- */

/* Frees what the previous update pointed at. */
static void release_update(ibp_vote *e)
{
    for (size_t i = 0; i < e->ngrave; i++) {
        uint32_t id = e->grave[i];
        struct vkey *k = &e->keys[id];
        VOTE_ASSERT(!k->live && k->nobs == 0);
        free(k->str);
        free(k->off_extra);
        memset(k, 0, sizeof *k);
        k->next = e->free_head;
        e->free_head = id;
    }
    e->ngrave = 0;
    for (size_t i = 0; i < e->ndead; i++) {
        free((char *)e->dead_overs[i].member);
        free((char *)e->dead_overs[i].reason);
    }
    e->ndead = 0;
    free(e->ev_member);
    free(e->ev_reason);
    e->ev_member = e->ev_reason = NULL;
    e->nchanges = 0;
    e->nvotes = 0;
    e->nevents = 0;
}

static void next_stamp(ibp_vote *e)
{
    /* After 2^32 messages the stamp wraps; clear the old ones so a key is
     * never mistaken for one already touched by this message. */
    if (++e->stamp == 0) {
        for (size_t i = 0; i < e->keys_len; i++)
            e->keys[i].stamp = 0;
        e->stamp = 1;
    }
}

static void rollback_created(ibp_vote *e)
{
    while (e->ncreated > 0)
        ibp__vote_key_uncreate(e, e->created[--e->ncreated]);
}

/* ---- staging (validation, no visible change) ------------------------------- */

static ibp_vote_rc check_signer(ibp_vote *e, const ibp_vote_msg *msg, size_t *len)
{
    const char *s = nz(msg->signer);
    *len = ibp__vote_bounded_len(s, IBP_VOTE_NAME_MAX);
    if (*len == 0)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL, "LOCAL %llu: empty signer",
                              (unsigned long long)msg->local_seq);
    if (*len > IBP_VOTE_NAME_MAX)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL,
                              "LOCAL %llu: signer of %zu bytes is over the limit of %d "
                              "(IBP_NAME_MAX)",
                              (unsigned long long)msg->local_seq, strlen(s), IBP_VOTE_NAME_MAX);
    return IBP_VOTE_OK;
}

/* Checks one observation's shape and measures it; err may be NULL. */
static bool check_obs(const ibp_vote_obs *o, struct vote_stage *st, char *err, size_t cap,
                      const char *where)
{
    if (!ibp__vote_key_validate(&o->key, &st->v, err, cap, where))
        return false;
    if (o->status != IBP_VOTE_UP && o->status != IBP_VOTE_DOWN) {
        snprintf(err, cap, "%s: status %d is neither up nor down", where, (int)o->status);
        return false;
    }
    st->errlen = ibp__vote_bounded_len(nz(o->error), IBP_VOTE_ERROR_MAX);
    if (st->errlen > IBP_VOTE_ERROR_MAX) {
        if (err != NULL)
            snprintf(err, cap,
                     "%s: error text of %zu bytes is over the limit of %d (IBP_ERROR_MAX)", where,
                     strlen(nz(o->error)), IBP_VOTE_ERROR_MAX);
        return false;
    }
    st->datalen = ibp__vote_bounded_len(nz(o->data_json), IBP_VOTE_DATA_MAX);
    if (st->datalen > IBP_VOTE_DATA_MAX) {
        if (err != NULL)
            snprintf(err, cap, "%s: data of %zu bytes is over the limit of %d (IBP_DATA_MAX)",
                     where, strlen(nz(o->data_json)), IBP_VOTE_DATA_MAX);
        return false;
    }
    return true;
}

/* Validates a monitor message and stages its keys; *mon is the sender's index
 * or VOTE_NONE when it is new. */
static ibp_vote_rc stage_monitor_msg(ibp_vote *e, const ibp_vote_msg *msg, size_t signer_len,
                                     uint32_t *mon)
{
    unsigned long long seq = (unsigned long long)msg->local_seq;
    *mon = ibp__vote_mon_find(e, msg->signer, signer_len);
    if (*mon == VOTE_NONE && e->nmons >= e->cfg.max_monitors)
        return ibp__vote_fail(e, IBP_VOTE_E_LIMIT, "LOCAL %llu: more than %zu monitors (new: %s)",
                              seq, e->cfg.max_monitors, msg->signer);
    if (msg->kind != IBP_VOTE_MSG_OBSERVATION_BATCH || msg->nobs == 0)
        return IBP_VOTE_OK;
    size_t n = msg->nobs;
    if (n > e->cfg.max_batch_obs)
        return ibp__vote_fail(e, IBP_VOTE_E_LIMIT,
                              "LOCAL %llu: batch from %s has %zu observations, limit %zu", seq,
                              msg->signer, n, e->cfg.max_batch_obs);
    if (!msg->obs)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL, "LOCAL %llu: observations missing", seq);
    if (!VOTE_GROW(e->stage, e->stage_cap, n) || !VOTE_GROW(e->obs_kid, e->obs_kid_cap, n) ||
        !VOTE_GROW(e->touched, e->touched_cap, n) || !VOTE_GROW(e->created, e->created_cap, n))
        return IBP_VOTE_E_NOMEM;

    /* Pass 1: shape of every observation, before touching the state. The
     * error context is only formatted once something is wrong. */
    for (size_t i = 0; i < n; i++) {
        if (!check_obs(&msg->obs[i], &e->stage[i], NULL, 0, "")) {
            char where[64];
            snprintf(where, sizeof where, "LOCAL %llu observation %zu", seq, i);
            check_obs(&msg->obs[i], &e->stage[i], e->errmsg, sizeof e->errmsg, where);
            return IBP_VOTE_E_INVAL;
        }
    }

    /* Pass 2: find or create the keys, count the ones new to this monitor. */
    next_stamp(e);
    e->ntouched = 0;
    e->ncreated = 0;
    size_t fresh_for_mon = 0;
    for (size_t i = 0; i < n; i++) {
        const vote_kview *v = &e->stage[i].v;
        uint64_t h = ibp__vote_key_hash(v);
        uint32_t kid = ibp__vote_key_find(e, v, h);
        if (kid == VOTE_NONE) {
            if (e->nkeys >= e->cfg.max_keys)
                return ibp__vote_fail(e, IBP_VOTE_E_LIMIT, "LOCAL %llu: more than %zu keys", seq,
                                      e->cfg.max_keys);
            ibp_vote_rc rc = ibp__vote_key_create(e, v, h, &kid);
            if (rc != IBP_VOTE_OK)
                return rc;
            e->created[e->ncreated++] = kid;
        }
        e->obs_kid[i] = kid;
        struct vkey *k = &e->keys[kid];
        e->stage[i].slot = *mon == VOTE_NONE ? -1 : ibp__vote_obs_slot(k, *mon);
        if (k->stamp != e->stamp) {
            k->stamp = e->stamp;
            e->touched[e->ntouched++] = kid;
            if (e->stage[i].slot < 0)
                fresh_for_mon++;
        }
    }
    size_t held = *mon == VOTE_NONE ? 0 : e->mons[*mon].nobs;
    if (held + fresh_for_mon > e->cfg.max_keys_per_node)
        return ibp__vote_fail(e, IBP_VOTE_E_LIMIT,
                              "LOCAL %llu: monitor %s would hold %zu keys, limit %zu", seq,
                              msg->signer, held + fresh_for_mon, e->cfg.max_keys_per_node);
    return IBP_VOTE_OK;
}

static ibp_vote_rc stage_override(ibp_vote *e, const ibp_vote_msg *msg, size_t *at, bool *changes)
{
    unsigned long long seq = (unsigned long long)msg->local_seq;
    const char *member = nz(msg->override.member);
    const char *reason = nz(msg->override.reason);
    size_t mlen = ibp__vote_bounded_len(member, IBP_VOTE_NAME_MAX);
    if (mlen == 0)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL, "LOCAL %llu: override member empty", seq);
    if (mlen > IBP_VOTE_NAME_MAX)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL,
                              "LOCAL %llu: override member of %zu bytes is over the limit of %d "
                              "(IBP_NAME_MAX)",
                              seq, strlen(member), IBP_VOTE_NAME_MAX);
    if (ibp__vote_bounded_len(reason, IBP_VOTE_ERROR_MAX) > IBP_VOTE_ERROR_MAX)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL,
                              "LOCAL %llu: override reason of %zu bytes is over the limit of %d "
                              "(IBP_ERROR_MAX)",
                              seq, strlen(reason), IBP_VOTE_ERROR_MAX);
    *at = e->nover;
    for (size_t i = 0; i < e->nover; i++)
        if (strcmp(e->overs[i].member, member) == 0)
            *at = i;
    bool exists = *at < e->nover;
    if (msg->override.disabled) {
        *changes = !exists || strcmp(e->overs[*at].reason, reason) != 0;
        if (!exists && e->nover >= e->cfg.max_overrides)
            return ibp__vote_fail(e, IBP_VOTE_E_LIMIT, "LOCAL %llu: more than %zu overrides", seq,
                                  e->cfg.max_overrides);
    } else {
        *changes = exists;
    }
    return IBP_VOTE_OK;
}

/* ---- applying -------------------------------------------------------------- */

/* Stores the observation as the monitor's latest for key kid. */
static bool put_obs(ibp_vote *e, uint32_t kid, uint32_t mon, const ibp_vote_msg *msg,
                    const ibp_vote_obs *in, const struct vote_stage *st)
{
    struct vkey *k = &e->keys[kid];
    int slot = st->slot;
    /* A key twice in one batch: the first occurrence appended the slot. */
    if (slot < 0 && k->nobs > 0 && k->obs[k->nobs - 1].mon == mon)
        slot = (int)k->nobs - 1;
    VOTE_ASSERT(slot < 0 ? ibp__vote_obs_slot(k, mon) < 0 : k->obs[slot].mon == mon);
    struct vobs *o;
    if (slot < 0) {
        if (k->nobs == k->cap) {
            /* Slow growth: a key ends up with one slot per monitor, and
             * doubling would leave a third of a 20-monitor vector empty. */
            size_t want = (size_t)k->nobs + (k->nobs < 8 ? 2 : k->nobs / 4);
            if (want > 65535)
                want = 65535;
            VOTE_ASSERT(want > k->nobs);
            struct vobs *grown = realloc(k->obs, want * sizeof *grown);
            if (!grown)
                return false;
            k->obs = grown;
            k->cap = (uint16_t)want;
        }
        o = &k->obs[k->nobs++];
        o->mon = (uint16_t)mon;
        o->extra = NULL;
        o->errlen = 0;
        e->mons[mon].nobs++;
        e->nobs++;
    } else {
        o = &k->obs[slot];
    }
    o->status = (uint8_t)in->status;
    o->check_time_ms = in->check_time_ms;
    o->stream_ms = e->now_ms;
    o->local_seq = msg->local_seq;
    o->batch_seq = msg->batch_seq;
    o->pad = 0;
    const char *err = nz(in->error);
    const char *data = nz(in->data_json);
    size_t errlen = st->errlen;
    /* Monitors repeat the same error and data most of the time: keep the
     * stored copy instead of reallocating it. */
    bool same = o->extra ? (o->errlen == errlen && memcmp(o->extra, err, errlen) == 0 &&
                            strcmp(o->extra + errlen + 1, data) == 0)
                         : (errlen == 0 && st->datalen == 0);
    if (!same) {
        char *x;
        if (!ibp__vote_extra_make(err, errlen, data, st->datalen, &x))
            return false;
        free(o->extra);
        o->extra = x;
        o->errlen = (uint16_t)errlen;
    }
    if (k->last_seen_ms == INT64_MIN) {
        ibp__vote_lru_append(e, kid);
    } else if (e->lru_tail != kid) {
        ibp__vote_lru_unlink(e, kid);
        ibp__vote_lru_append(e, kid);
    }
    k->last_seen_ms = e->now_ms;
    return true;
}

static bool keys_sweep(ibp_vote *e)
{
    while (e->lru_head != VOTE_NONE &&
           e->now_ms - e->keys[e->lru_head].last_seen_ms >= e->cfg.expiry_ms)
        if (!key_expire(e, e->lru_head))
            return false;
    return true;
}

static bool apply_override(ibp_vote *e, const ibp_vote_msg *msg, size_t at)
{
    const char *member = nz(msg->override.member);
    const char *reason = nz(msg->override.reason);
    uint64_t el[4];
    /* The event reports the message's own member and reason (an enable has
     * a reason too, though the state drops the member). */
    e->ev_member = strdup(member);
    e->ev_reason = strdup(reason);
    if (!e->ev_member || !e->ev_reason)
        return false;
    if (at < e->nover) {
        /* Replaced or removed: the old record lives until the next apply. */
        if (!VOTE_GROW(e->dead_overs, e->dead_cap, e->ndead + 1))
            return false;
        ibp__vote_override_element(e->overs[at].member, e->overs[at].reason, el);
        ibp__vote_digest_sub(e->digest, el);
        e->dead_overs[e->ndead++] = e->overs[at];
        memmove(&e->overs[at], &e->overs[at + 1], (e->nover - at - 1) * sizeof e->overs[0]);
        e->nover--;
    }
    if (msg->override.disabled) {
        /* A changed reason keeps the member's place in the order. */
        if (!VOTE_GROW(e->overs, e->over_cap, e->nover + 1))
            return false;
        char *m = strdup(member), *r = strdup(reason);
        if (!m || !r) {
            free(m);
            free(r);
            return false;
        }
        ibp_vote_override ov = {m, true, r};
        if (at > e->nover)
            at = e->nover;
        memmove(&e->overs[at + 1], &e->overs[at], (e->nover - at) * sizeof e->overs[0]);
        e->overs[at] = ov;
        e->nover++;
        ibp__vote_override_element(ov.member, ov.reason, el);
        ibp__vote_digest_add(e->digest, el);
    }
    return true;
}

static ibp_vote_rc poison(ibp_vote *e)
{
    e->poisoned = true;
    return ibp__vote_fail(e, IBP_VOTE_E_NOMEM, "out of memory while applying; engine unusable");
}

/* Builds the events of the update once the epoch is known. */
static bool build_events(ibp_vote *e, const ibp_vote_msg *msg, bool override_changed)
{
    size_t want = e->nchanges + (override_changed ? 1 : 0);
    if (!VOTE_GROW(e->events, e->events_cap, want))
        return false;
    for (size_t i = 0; i < e->nchanges; i++) {
        const ibp_vote_change *c = &e->changes[i];
        bool removed = c->kind == IBP_VOTE_REMOVED;
        ibp_vote_event *ev = &e->events[e->nevents++];
        memset(ev, 0, sizeof *ev);
        vote_kview v;
        v.type = (uint8_t)c->key.type;
        v.ipv6 = c->key.ipv6;
        v.s[0] = c->key.check_name;
        v.s[1] = c->key.member;
        v.s[2] = c->key.domain;
        v.s[3] = c->key.endpoint;
        for (int j = 0; j < 4; j++)
            v.len[j] = strlen(v.s[j]);
        ibp__vote_event_id_key(e->epoch, &v, ev->id);
        ev->kind = removed ? IBP_VOTE_EVENT_REMOVED : IBP_VOTE_EVENT_STATUS;
        ev->key = c->key;
        ev->status = removed ? c->previous : c->status;
        ev->error = c->error;
        ev->data_json = c->data_json;
        ev->check_time_ms = c->check_time_ms;
        ev->time_ms = e->now_ms;
        ev->epoch = e->epoch;
        ev->votes = c->votes;
        ev->nvotes = c->nvotes;
    }
    if (override_changed) {
        ibp_vote_event *ev = &e->events[e->nevents++];
        memset(ev, 0, sizeof *ev);
        const char *member = e->ev_member, *reason = e->ev_reason;
        VOTE_ASSERT(member && reason);
        ibp__vote_event_id_override(e->epoch, member, ev->id);
        ev->kind = IBP_VOTE_EVENT_OVERRIDE;
        ev->key.type = 0;
        ev->key.check_name = "override";
        ev->key.member = member;
        ev->key.domain = "";
        ev->key.endpoint = "";
        ev->status = msg->override.disabled ? IBP_VOTE_DOWN : IBP_VOTE_UP;
        ev->error = reason;
        ev->data_json = "";
        ev->time_ms = e->now_ms;
        ev->epoch = e->epoch;
        /* The signer is borrowed from the message: point at the engine's copy. */
        snprintf(e->over_signer, sizeof e->over_signer, "%s", nz(msg->signer));
        ev->signer = e->over_signer;
    }
    return true;
}

ibp_vote_rc ibp_vote_apply(ibp_vote *e, const ibp_vote_msg *msg, ibp_vote_update *update)
{
    if (!e)
        return IBP_VOTE_E_INVAL;
    if (e->poisoned)
        return ibp__vote_fail(e, IBP_VOTE_E_POISONED, "engine unusable after out of memory");
    if (!msg || !update)
        return ibp__vote_fail(e, IBP_VOTE_E_INVAL, "NULL message or update");
    if (msg->local_seq <= e->local_seq)
        return ibp__vote_fail(e, IBP_VOTE_E_SEQ, "LOCAL %llu after %llu",
                              (unsigned long long)msg->local_seq, (unsigned long long)e->local_seq);
    release_update(e);
    e->errmsg[0] = '\0';
    e->ncreated = 0;

    size_t signer_len = 0;
    uint32_t mon = VOTE_NONE;
    size_t over_at = 0;
    bool over_changes = false;
    ibp_vote_rc rc = IBP_VOTE_OK;
    switch (msg->kind) {
    case IBP_VOTE_MSG_OBSERVATION_BATCH:
    case IBP_VOTE_MSG_HEARTBEAT:
        rc = check_signer(e, msg, &signer_len);
        if (rc == IBP_VOTE_OK)
            rc = stage_monitor_msg(e, msg, signer_len, &mon);
        break;
    case IBP_VOTE_MSG_MEMBER_OVERRIDE:
        rc = check_signer(e, msg, &signer_len);
        if (rc == IBP_VOTE_OK)
            rc = stage_override(e, msg, &over_at, &over_changes);
        break;
    default:
        rc = ibp__vote_fail(e, IBP_VOTE_E_INVAL, "LOCAL %llu: unknown message kind %d",
                            (unsigned long long)msg->local_seq, (int)msg->kind);
    }
    if (rc == IBP_VOTE_E_NOMEM) {
        rollback_created(e);
        return poison(e);
    }
    if (rc != IBP_VOTE_OK) {
        /* Skipped whole; every replica skips it alike. */
        rollback_created(e);
        e->local_seq = msg->local_seq;
        return rc;
    }

    /* The message is valid: time moves and it applies. */
    if (msg->stream_ms > e->now_ms)
        e->now_ms = msg->stream_ms;
    ibp__vote_mons_sweep(e);
    if (msg->kind != IBP_VOTE_MSG_MEMBER_OVERRIDE) {
        if (mon == VOTE_NONE &&
            ibp__vote_mon_create(e, msg->signer, signer_len, e->now_ms, &mon) != IBP_VOTE_OK)
            return poison(e);
        ibp__vote_mon_touch(e, mon);
    }
    uint32_t quorum = quorum_of(e, e->nactive);
    if (msg->kind == IBP_VOTE_MSG_OBSERVATION_BATCH) {
        for (size_t i = 0; i < msg->nobs; i++)
            if (!put_obs(e, e->obs_kid[i], mon, msg, &msg->obs[i], &e->stage[i]))
                return poison(e);
        e->ncreated = 0;
        for (size_t i = 0; i < e->ntouched; i++)
            if (!ibp__vote_tally_key(e, e->touched[i], quorum))
                return poison(e);
    }
    if (msg->kind == IBP_VOTE_MSG_MEMBER_OVERRIDE && over_changes &&
        !apply_override(e, msg, over_at))
        return poison(e);
    if (!keys_sweep(e))
        return poison(e);

    bool advanced = e->nchanges > 0 || over_changes;
    if (advanced)
        e->epoch++;
    for (size_t i = 0; i < e->nchanges; i++) {
        e->changes[i].votes = e->changes[i].nvotes ? &e->votes[e->change_vote_off[i]] : NULL;
    }
    if (advanced && !build_events(e, msg, over_changes))
        return poison(e);
    e->local_seq = msg->local_seq;

    memset(update, 0, sizeof *update);
    update->epoch_advanced = advanced;
    update->epoch = e->epoch;
    update->local_seq = e->local_seq;
    update->now_ms = e->now_ms;
    update->changes = e->nchanges ? e->changes : NULL;
    update->nchanges = e->nchanges;
    update->events = e->nevents ? e->events : NULL;
    update->nevents = e->nevents;
    ibp__vote_digest_bytes(e->digest, update->digest);
    update->active_monitors = e->nactive;
    update->quorum = quorum;
    return IBP_VOTE_OK;
}

/* ---- reading the state ----------------------------------------------------- */

void ibp_vote_get_info(const ibp_vote *e, ibp_vote_info *info)
{
    memset(info, 0, sizeof *info);
    info->epoch = e->epoch;
    info->local_seq = e->local_seq;
    info->now_ms = e->now_ms;
    ibp__vote_digest_bytes(e->digest, info->digest);
    info->official_keys = e->nofficial;
    info->keys = e->nkeys;
    info->observations = e->nobs;
    info->monitors = e->nmons;
    info->active_monitors = e->nactive;
    info->overrides = e->nover;
}

void ibp_vote_digest(const ibp_vote *e, uint8_t out[IBP_VOTE_DIGEST_SIZE])
{
    ibp__vote_digest_bytes(e->digest, out);
}

static void entry_of(const struct vkey *k, ibp_vote_entry *out)
{
    ibp__vote_key_public(k, &out->key);
    out->status = (ibp_vote_status)k->official;
    out->check_time_ms = k->off_check_time_ms;
    out->error = ibp__vote_extra_error(k->off_extra);
    out->data_json = ibp__vote_extra_data(k->off_extra, k->off_errlen);
}

bool ibp_vote_official_next(const ibp_vote *e, size_t *cursor, ibp_vote_entry *out)
{
    for (size_t i = *cursor; i < e->keys_len; i++) {
        const struct vkey *k = &e->keys[i];
        if (k->live && k->official != IBP_VOTE_NONE) {
            entry_of(k, out);
            *cursor = i + 1;
            return true;
        }
    }
    *cursor = e->keys_len;
    return false;
}

bool ibp_vote_official_get(const ibp_vote *e, const ibp_vote_key *key, ibp_vote_entry *out)
{
    vote_kview v;
    char err[160];
    if (!key || !ibp__vote_key_validate(key, &v, err, sizeof err, "lookup"))
        return false;
    uint32_t id = ibp__vote_key_find(e, &v, ibp__vote_key_hash(&v));
    if (id == VOTE_NONE || e->keys[id].official == IBP_VOTE_NONE)
        return false;
    entry_of(&e->keys[id], out);
    return true;
}

size_t ibp_vote_overrides(const ibp_vote *e, const ibp_vote_override **out)
{
    *out = e->nover ? e->overs : NULL;
    return e->nover;
}
