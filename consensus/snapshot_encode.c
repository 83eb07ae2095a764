/* The official state as an OfficialSnapshot; see ibp/snapshot_encode.h. */
#include "ibp/snapshot_encode.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/local_msg.h"
#include "ibp/result.h"

/* ---- string interning --------------------------------------------------- */

struct intern {
    const char **strings; /* index -> string (borrowed from the engine) */
    size_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 empty */
    size_t mask;
};

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h ^ (h >> 29);
}

static int intern_grow(struct intern *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    const char **ns = realloc(t->strings, ncap * sizeof *ns);
    if (!ns)
        return -1;
    t->strings = ns;
    t->cap = ncap;
    size_t nslots = ncap * 2;
    uint32_t *sl = calloc(nslots, sizeof *sl);
    if (!sl)
        return -1;
    free(t->slots);
    t->slots = sl;
    t->mask = nslots - 1;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = str_hash(t->strings[i]) & t->mask;
        while (t->slots[j])
            j = (j + 1) & t->mask;
        t->slots[j] = (uint32_t)(i + 1);
    }
    return 0;
}

/* Index of s in the table, adding it when new; UINT32_MAX when out of memory. */
static uint32_t intern(struct intern *t, const char *s)
{
    if (!s)
        s = "";
    if (t->n + 1 > t->cap && intern_grow(t) != 0)
        return UINT32_MAX;
    size_t j = str_hash(s) & t->mask;
    for (; t->slots[j]; j = (j + 1) & t->mask)
        if (strcmp(t->strings[t->slots[j] - 1], s) == 0)
            return t->slots[j] - 1;
    t->strings[t->n] = s;
    t->slots[j] = (uint32_t)(t->n + 1);
    return (uint32_t)t->n++;
}

static void intern_free(struct intern *t)
{
    free(t->strings);
    free(t->slots);
}

/* ---- keys --------------------------------------------------------------- */

/* Entries are ordered like the store orders results (ibp_result_key_cmp). */
static int key_cmp(const ibp_vote_key *a, const ibp_vote_key *b)
{
    ibp_result_key ra = {
        (ibp_check_type)a->type, a->check_name, a->member, a->domain, a->endpoint, a->ipv6};
    ibp_result_key rb = {
        (ibp_check_type)b->type, b->check_name, b->member, b->domain, b->endpoint, b->ipv6};
    return ibp_result_key_cmp(&ra, &rb);
}

static int entry_cmp(const void *a, const void *b)
{
    return key_cmp(&((const ibp_vote_entry *)a)->key, &((const ibp_vote_entry *)b)->key);
}

/*
 * Splits url into scheme ("wss://") and the part after the domain ("/polkadot")
 * when it is scheme + domain + path; see SnapshotEntry.endpoint_scheme. The
 * scheme is copied into buf (it is interned right away); *path points into url.
 */
static bool split_url(const char *url, const char *domain, char *buf, size_t cap, const char **path)
{
    if (!url || !domain || !*domain)
        return false;
    const char *sep = strstr(url, "://");
    if (!sep)
        return false;
    size_t slen = (size_t)(sep - url) + 3, dlen = strlen(domain);
    if (slen + 1 > cap || strncmp(url + slen, domain, dlen) != 0)
        return false;
    const char *rest = url + slen + dlen;
    if (*rest != '\0' && *rest != '/' && *rest != ':' && *rest != '?')
        return false; /* "wss://rpc.example.net.evil/" is not on rpc.example.net */
    memcpy(buf, url, slen);
    buf[slen] = '\0';
    *path = rest;
    return true;
}

ibp_status ibp_snapshot_encode(const ibp_vote *e, const ibp_vote_update *update, uint8_t **out,
                               size_t *out_len, ibp_err *err)
{
    ibp_status st = IBP_E_NOMEM;
    struct intern t = {0};
    ibp_vote_info info;
    ibp_vote_entry *entries = NULL;
    Ibp__V1__SnapshotEntry *pe = NULL, **pep = NULL;
    Ibp__V1__SnapshotOverride *po = NULL, **pop = NULL;
    Ibp__V1__SnapshotEvidence *pv = NULL, **pvp = NULL;
    Ibp__V1__SnapshotVote *votes = NULL, **votep = NULL;
    Ibp__V1__ResultKey *removed = NULL;
    uint8_t *buf = NULL;
    const ibp_vote_override *ovr = NULL;
    size_t n_ovr = ibp_vote_overrides(e, &ovr);
    size_t nchanges = update ? update->nchanges : 0, nvotes = 0;

    ibp_vote_get_info(e, &info);
    entries = calloc(info.official_keys ? info.official_keys : 1, sizeof *entries);
    if (!entries)
        goto nomem;
    size_t n = 0, cursor = 0;
    ibp_vote_entry ent;
    while (ibp_vote_official_next(e, &cursor, &ent) && n < info.official_keys)
        entries[n++] = ent;
    qsort(entries, n, sizeof *entries, entry_cmp);

    if (intern(&t, "") == UINT32_MAX)
        goto nomem;
    pe = calloc(n ? n : 1, sizeof *pe);
    pep = calloc(n ? n : 1, sizeof *pep);
    if (!pe || !pep)
        goto nomem;
    char scheme[64];
    const char *path = NULL;
    for (size_t i = 0; i < n; i++) {
        Ibp__V1__SnapshotEntry *x = &pe[i];
        ibp__v1__snapshot_entry__init(x);
        x->check_type = (Ibp__V1__CheckType)entries[i].key.type;
        x->check_name = intern(&t, entries[i].key.check_name);
        x->member = intern(&t, entries[i].key.member);
        x->domain = intern(&t, entries[i].key.domain);
        if (split_url(entries[i].key.endpoint, entries[i].key.domain, scheme, sizeof scheme,
                      &path)) {
            x->endpoint = 0;
            x->endpoint_scheme = intern(&t, scheme);
            x->endpoint_path = intern(&t, path);
            if (x->endpoint_scheme == UINT32_MAX || x->endpoint_path == UINT32_MAX)
                goto nomem;
        } else {
            x->endpoint = intern(&t, entries[i].key.endpoint);
        }
        x->ipv6 = entries[i].key.ipv6;
        x->status = ibp_local_status_to_wire(entries[i].status);
        x->check_time_ms = entries[i].check_time_ms;
        x->error = intern(&t, entries[i].error);
        x->data_json = intern(&t, entries[i].data_json);
        if (x->check_name == UINT32_MAX || x->member == UINT32_MAX || x->domain == UINT32_MAX ||
            x->endpoint == UINT32_MAX || x->error == UINT32_MAX || x->data_json == UINT32_MAX)
            goto nomem;
        pep[i] = x;
    }
    po = calloc(n_ovr ? n_ovr : 1, sizeof *po);
    pop = calloc(n_ovr ? n_ovr : 1, sizeof *pop);
    if (!po || !pop)
        goto nomem;
    for (size_t i = 0; i < n_ovr; i++) {
        ibp__v1__snapshot_override__init(&po[i]);
        po[i].member = intern(&t, ovr[i].member);
        po[i].disabled = ovr[i].disabled;
        po[i].reason = intern(&t, ovr[i].reason);
        if (po[i].member == UINT32_MAX || po[i].reason == UINT32_MAX)
            goto nomem;
        pop[i] = &po[i];
    }

    for (size_t c = 0; c < nchanges; c++)
        nvotes += update->changes[c].nvotes;
    pv = calloc(nchanges ? nchanges : 1, sizeof *pv);
    pvp = calloc(nchanges ? nchanges : 1, sizeof *pvp);
    removed = calloc(nchanges ? nchanges : 1, sizeof *removed);
    votes = calloc(nvotes ? nvotes : 1, sizeof *votes);
    votep = calloc(nvotes ? nvotes : 1, sizeof *votep);
    if (!pv || !pvp || !removed || !votes || !votep)
        goto nomem;
    size_t vi = 0;
    for (size_t c = 0; c < nchanges; c++) {
        const ibp_vote_change *ch = &update->changes[c];
        Ibp__V1__SnapshotEvidence *ev = &pv[c];
        ibp__v1__snapshot_evidence__init(ev);
        if (ch->kind == IBP_VOTE_REMOVED) {
            Ibp__V1__ResultKey *rk = &removed[c];
            ibp_local_key_to_wire(rk, &ch->key);
            ev->removed = rk;
        } else {
            ibp_vote_entry probe = {.key = ch->key};
            ibp_vote_entry *hit = bsearch(&probe, entries, n, sizeof *entries, entry_cmp);
            ev->entry = hit ? (uint32_t)(hit - entries) : 0;
        }
        ev->votes = &votep[vi];
        for (size_t k = 0; k < ch->nvotes; k++, vi++) {
            Ibp__V1__SnapshotVote *v = &votes[vi];
            ibp__v1__snapshot_vote__init(v);
            v->node = intern(&t, ch->votes[k].node);
            if (v->node == UINT32_MAX)
                goto nomem;
            v->local_seq = ch->votes[k].local_seq;
            v->batch_seq = ch->votes[k].batch_seq;
            v->status = ibp_local_status_to_wire(ch->votes[k].status);
            votep[vi] = v;
        }
        ev->n_votes = ch->nvotes;
        pvp[c] = ev;
    }

    Ibp__V1__OfficialSnapshot snap = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    snap.epoch = info.epoch;
    snap.local_seq = info.local_seq;
    snap.applied_ms = info.now_ms;
    snap.state_digest.data = info.digest;
    snap.state_digest.len = sizeof info.digest;
    snap.n_strings = t.n;
    snap.strings = (char **)t.strings;
    snap.n_entries = n;
    snap.entries = pep;
    snap.n_overrides = n_ovr;
    snap.overrides = pop;
    snap.n_evidence = nchanges;
    snap.evidence = pvp;
    size_t len = ibp__v1__official_snapshot__get_packed_size(&snap);
    if (len > IBP_MESSAGE_MAX_DEFAULT - 1024) {
        st = ibp_err_set(err, IBP_E_TOO_LARGE,
                         "snapshot epoch %llu: %zu bytes for %zu keys is over the message limit",
                         (unsigned long long)info.epoch, len, n);
        goto out;
    }
    if (!(buf = malloc(len ? len : 1)))
        goto nomem;
    ibp__v1__official_snapshot__pack(&snap, buf);
    *out = buf;
    *out_len = len;
    st = IBP_OK;
    goto out;
nomem:
    ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
out:
    free(votep);
    free(votes);
    free(removed);
    free(pvp);
    free(pv);
    free(pop);
    free(po);
    free(pep);
    free(pe);
    free(entries);
    intern_free(&t);
    return st;
}
