/*
 * The records the engine votes over: keys (with each monitor's latest
 * observation) and monitors, their indexes, and the two time-ordered lists
 * that schedule expiry (keys, by newest observation) and leaving the active
 * window (monitors, by last message). Engine time never goes back, so keeping
 * a list ordered only takes "move to the tail" when something is seen again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vote_internal.h"

/* ---- strings and keys ------------------------------------------------------ */

static const char *nz(const char *s)
{
    return s ? s : "";
}

size_t ibp__vote_bounded_len(const char *s, size_t max)
{
    const char *z = memchr(s, '\0', max + 1);
    return z ? (size_t)(z - s) : max + 1;
}

const char *ibp__vote_extra_error(const char *extra)
{
    return extra ? extra : "";
}

const char *ibp__vote_extra_data(const char *extra, uint16_t errlen)
{
    return extra ? extra + errlen + 1 : "";
}

bool ibp__vote_extra_make(const char *error, size_t errlen, const char *data, size_t datalen,
                          char **out)
{
    if (errlen == 0 && datalen == 0) {
        *out = NULL;
        return true;
    }
    char *b = malloc(errlen + datalen + 2);
    if (!b)
        return false;
    memcpy(b, error, errlen);
    b[errlen] = '\0';
    memcpy(b + errlen + 1, data, datalen);
    b[errlen + 1 + datalen] = '\0';
    *out = b;
    return true;
}

/* The view of a held key. */
static void key_view(const struct vkey *k, vote_kview *v)
{
    v->type = k->type;
    v->ipv6 = k->ipv6 != 0;
    v->s[0] = k->str;
    v->len[0] = (size_t)k->off_member - 1;
    v->s[1] = k->str + k->off_member;
    v->len[1] = (size_t)(k->off_domain - k->off_member) - 1;
    v->s[2] = k->str + k->off_domain;
    v->len[2] = (size_t)(k->off_endpoint - k->off_domain) - 1;
    v->s[3] = k->str + k->off_endpoint;
    v->len[3] = (size_t)(k->len_total - k->off_endpoint) - 1;
}

void ibp__vote_key_public(const struct vkey *k, ibp_vote_key *out)
{
    out->type = (ibp_vote_check)k->type;
    out->check_name = k->str;
    out->member = k->str + k->off_member;
    out->domain = k->str + k->off_domain;
    out->endpoint = k->str + k->off_endpoint;
    out->ipv6 = k->ipv6 != 0;
}

void ibp__vote_official_element(const struct vkey *k, uint64_t lanes[4])
{
    vote_kview v;
    key_view(k, &v);
    const char *err = ibp__vote_extra_error(k->off_extra);
    const char *data = ibp__vote_extra_data(k->off_extra, k->off_errlen);
    ibp__vote_entry_element(&v, k->official, k->off_check_time_ms, err, k->off_errlen, data,
                            strlen(data), lanes);
}

static bool valid_domain(const char *s, size_t n)
{
    if (n == 0 || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            return false;
    return true;
}

bool ibp__vote_key_validate(const ibp_vote_key *key, vote_kview *v, char *err, size_t errcap,
                            const char *where)
{
    static const size_t caps[4] = {IBP_VOTE_NAME_MAX, IBP_VOTE_NAME_MAX, IBP_VOTE_DOMAIN_MAX,
                                   IBP_VOTE_URL_MAX};
    static const char *const cap_names[4] = {"IBP_NAME_MAX", "IBP_NAME_MAX", "IBP_DOMAIN_MAX",
                                             "IBP_URL_MAX"};
    static const char *const names[4] = {"check name", "member", "domain", "endpoint URL"};
    if (key->type < IBP_VOTE_SITE || key->type > IBP_VOTE_ENDPOINT) {
        snprintf(err, errcap, "%s: unknown check type %d", where, (int)key->type);
        return false;
    }
    v->type = (uint8_t)key->type;
    v->ipv6 = key->ipv6;
    v->s[0] = nz(key->check_name);
    v->s[1] = nz(key->member);
    v->s[2] = nz(key->domain);
    v->s[3] = nz(key->endpoint);
    for (int i = 0; i < 4; i++) {
        v->len[i] = ibp__vote_bounded_len(v->s[i], caps[i]);
        if (v->len[i] > caps[i]) {
            /* Only the message measures the whole string (bounded by the message size). */
            if (err != NULL)
                snprintf(err, errcap, "%s: %s of %zu bytes is over the limit of %zu (%s)", where,
                         names[i], strlen(v->s[i]), caps[i], cap_names[i]);
            return false;
        }
    }
    if (v->len[0] == 0 || v->len[1] == 0) {
        snprintf(err, errcap, "%s: empty %s", where, v->len[0] ? "member" : "check name");
        return false;
    }
    bool want_domain = key->type != IBP_VOTE_SITE;
    bool want_endpoint = key->type == IBP_VOTE_ENDPOINT;
    if (want_domain != (v->len[2] > 0) || want_endpoint != (v->len[3] > 0)) {
        snprintf(err, errcap, "%s: a%s key takes %s and %s", where,
                 key->type == IBP_VOTE_SITE     ? " site"
                 : key->type == IBP_VOTE_DOMAIN ? " domain"
                                                : "n endpoint",
                 want_domain ? "a domain" : "no domain",
                 want_endpoint ? "an endpoint" : "no endpoint");
        return false;
    }
    if (want_domain && !valid_domain(v->s[2], v->len[2])) {
        snprintf(err, errcap, "%s: domain must be lower-case without a trailing dot", where);
        return false;
    }
    return true;
}

struct key_probe {
    const ibp_vote *e;
    const vote_kview *v;
};

static bool key_eq(const void *ctx, uint32_t id)
{
    const struct key_probe *p = ctx;
    const struct vkey *k = &p->e->keys[id];
    const vote_kview *v = p->v;
    if (k->type != v->type || (k->ipv6 != 0) != v->ipv6)
        return false;
    if ((size_t)k->len_total != v->len[0] + v->len[1] + v->len[2] + v->len[3] + 4)
        return false;
    vote_kview kv;
    key_view(k, &kv);
    for (int i = 0; i < 4; i++)
        if (kv.len[i] != v->len[i] || memcmp(kv.s[i], v->s[i], v->len[i]) != 0)
            return false;
    return true;
}

uint32_t ibp__vote_key_find(const ibp_vote *e, const vote_kview *v, uint64_t hash)
{
    struct key_probe p = {e, v};
    return ibp_hash_index_find(&e->key_index, hash, key_eq, &p);
}

/* Creates a key record (no observation, not official, not yet in the expiry
 * list). Caller checked max_keys. */
ibp_vote_rc ibp__vote_key_create(ibp_vote *e, const vote_kview *v, uint64_t hash, uint32_t *out)
{
    size_t total = v->len[0] + v->len[1] + v->len[2] + v->len[3] + 4;
    if (!ibp_hash_index_reserve(&e->key_index, 1))
        return IBP_VOTE_E_NOMEM;
    char *str = malloc(total);
    if (!str)
        return IBP_VOTE_E_NOMEM;
    uint32_t id;
    if (e->free_head != VOTE_NONE) {
        id = e->free_head;
        e->free_head = e->keys[id].next;
    } else {
        if (!VOTE_GROW(e->keys, e->keys_cap, e->keys_len + 1)) {
            free(str);
            return IBP_VOTE_E_NOMEM;
        }
        id = (uint32_t)e->keys_len++;
    }
    struct vkey *k = &e->keys[id];
    memset(k, 0, sizeof *k);
    size_t off = 0;
    uint16_t offs[4];
    for (int i = 0; i < 4; i++) {
        offs[i] = (uint16_t)off;
        memcpy(str + off, v->s[i], v->len[i]);
        str[off + v->len[i]] = '\0';
        off += v->len[i] + 1;
    }
    k->hash = hash;
    k->str = str;
    k->len_total = (uint16_t)total;
    k->off_member = offs[1];
    k->off_domain = offs[2];
    k->off_endpoint = offs[3];
    k->type = v->type;
    k->ipv6 = v->ipv6;
    k->official = IBP_VOTE_NONE;
    k->live = 1;
    k->last_seen_ms = INT64_MIN; /* not in the expiry list yet */
    k->prev = k->next = VOTE_NONE;
    ibp_hash_index_insert(&e->key_index, hash, id);
    e->nkeys++;
    *out = id;
    return IBP_VOTE_OK;
}

/* Undoes ibp__vote_key_create() of a key that never got an observation. */
void ibp__vote_key_uncreate(ibp_vote *e, uint32_t id)
{
    struct vkey *k = &e->keys[id];
    VOTE_ASSERT(k->live && k->nobs == 0 && k->official == IBP_VOTE_NONE &&
                k->last_seen_ms == INT64_MIN);
    ibp_hash_index_remove(&e->key_index, k->hash, id);
    free(k->str);
    free(k->obs);
    memset(k, 0, sizeof *k);
    k->next = e->free_head;
    e->free_head = id;
    e->nkeys--;
}

void ibp__vote_lru_unlink(ibp_vote *e, uint32_t id)
{
    struct vkey *k = &e->keys[id];
    if (k->prev != VOTE_NONE)
        e->keys[k->prev].next = k->next;
    else
        e->lru_head = k->next;
    if (k->next != VOTE_NONE)
        e->keys[k->next].prev = k->prev;
    else
        e->lru_tail = k->prev;
    k->prev = k->next = VOTE_NONE;
}

void ibp__vote_lru_append(ibp_vote *e, uint32_t id)
{
    struct vkey *k = &e->keys[id];
    k->next = VOTE_NONE;
    k->prev = e->lru_tail;
    if (e->lru_tail != VOTE_NONE)
        e->keys[e->lru_tail].next = id;
    else
        e->lru_head = id;
    e->lru_tail = id;
}

/* Removes an expired key; reports it when it was official. The record keeps
 * its strings until the next apply (the change points at them). */
/* ---- monitors -------------------------------------------------------------- */

struct mon_probe {
    const ibp_vote *e;
    const char *s;
    size_t len;
};

static bool mon_eq(const void *ctx, uint32_t id)
{
    const struct mon_probe *p = ctx;
    const struct vmon *m = &p->e->mons[id];
    return m->idlen == p->len && memcmp(m->id, p->s, p->len) == 0;
}

static uint64_t mon_hash(const char *s, size_t len)
{
    return ibp_hash_bytes(s, len, 0x6d6f6e69746f7231ULL /* "monitor1" */);
}

uint32_t ibp__vote_mon_find(const ibp_vote *e, const char *s, size_t len)
{
    struct mon_probe p = {e, s, len};
    return ibp_hash_index_find(&e->mon_index, mon_hash(s, len), mon_eq, &p);
}

/* Adds a monitor (inactive, never heard from). Caller checked max_monitors. */
ibp_vote_rc ibp__vote_mon_create(ibp_vote *e, const char *s, size_t len, int64_t last_msg_ms,
                                 uint32_t *out)
{
    if (!ibp_hash_index_reserve(&e->mon_index, 1) || !VOTE_GROW(e->mons, e->mons_cap, e->nmons + 1))
        return IBP_VOTE_E_NOMEM;
    char *id = malloc(len + 1);
    if (!id)
        return IBP_VOTE_E_NOMEM;
    memcpy(id, s, len);
    id[len] = '\0';
    uint32_t idx = (uint32_t)e->nmons++;
    struct vmon *m = &e->mons[idx];
    memset(m, 0, sizeof *m);
    m->id = id;
    m->idlen = len;
    m->hash = mon_hash(s, len);
    m->last_msg_ms = last_msg_ms;
    m->prev = m->next = VOTE_NONE;
    ibp_hash_index_insert(&e->mon_index, m->hash, idx);
    *out = idx;
    return IBP_VOTE_OK;
}

static void act_unlink(ibp_vote *e, uint32_t id)
{
    struct vmon *m = &e->mons[id];
    if (m->prev != VOTE_NONE)
        e->mons[m->prev].next = m->next;
    else
        e->act_head = m->next;
    if (m->next != VOTE_NONE)
        e->mons[m->next].prev = m->prev;
    else
        e->act_tail = m->prev;
    m->prev = m->next = VOTE_NONE;
}

void ibp__vote_act_append(ibp_vote *e, uint32_t id)
{
    struct vmon *m = &e->mons[id];
    m->next = VOTE_NONE;
    m->prev = e->act_tail;
    if (e->act_tail != VOTE_NONE)
        e->mons[e->act_tail].next = id;
    else
        e->act_head = id;
    e->act_tail = id;
}

/* Monitors whose last message is no longer younger than the window leave. */
void ibp__vote_mons_sweep(ibp_vote *e)
{
    while (e->act_head != VOTE_NONE &&
           e->now_ms - e->mons[e->act_head].last_msg_ms >= e->cfg.active_window_ms) {
        uint32_t id = e->act_head;
        act_unlink(e, id);
        e->mons[id].active = false;
        e->nactive--;
    }
}

/* The sender of a batch or heartbeat is active as of now. */
void ibp__vote_mon_touch(ibp_vote *e, uint32_t id)
{
    struct vmon *m = &e->mons[id];
    VOTE_ASSERT(m->last_msg_ms <= e->now_ms);
    m->last_msg_ms = e->now_ms;
    if (m->active) {
        act_unlink(e, id);
    } else {
        m->active = true;
        e->nactive++;
    }
    ibp__vote_act_append(e, id);
}

int ibp__vote_obs_slot(const struct vkey *k, uint32_t mon)
{
    for (uint32_t j = 0; j < k->nobs; j++)
        if (k->obs[j].mon == mon)
            return (int)j;
    return -1;
}
