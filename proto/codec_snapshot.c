/* OfficialSnapshot between a plain struct and its payload bytes; see ibp/codec_snapshot.h. */
#include "ibp/codec_snapshot.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/envelope.h"
#include "ibp/ibp.pb-c.h"
#include "ibp/pb_bound.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- string interning (encode) ------------------------------------------ */

struct intern {
    const char **strings; /* index -> string (borrowed from the caller) */
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
    s = nz(s);
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

/* ---- encode ------------------------------------------------------------- */

static int entry_ptr_cmp(const void *a, const void *b)
{
    const ibp_codec_snapshot_entry *x = *(const ibp_codec_snapshot_entry *const *)a;
    const ibp_codec_snapshot_entry *y = *(const ibp_codec_snapshot_entry *const *)b;
    return ibp_codec_key_cmp(&x->key, &y->key);
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

static void key_to_pb(Ibp__V1__ResultKey *out, const ibp_codec_key *k)
{
    ibp__v1__result_key__init(out);
    out->check_type = (Ibp__V1__CheckType)k->type;
    out->check_name = (char *)nz(k->check_name);
    out->member = (char *)nz(k->member);
    out->domain = (char *)nz(k->domain);
    out->endpoint = (char *)nz(k->endpoint);
    out->ipv6 = k->ipv6;
}

ibp_status ibp_codec_snapshot_encode(const ibp_codec_snapshot *s, uint8_t **out, size_t *out_len,
                                     ibp_err *err)
{
    ibp_status st = IBP_E_NOMEM;
    struct intern t = {0};
    const ibp_codec_snapshot_entry **sorted = NULL;
    Ibp__V1__SnapshotEntry *pe = NULL, **pep = NULL;
    Ibp__V1__SnapshotOverride *po = NULL, **pop = NULL;
    Ibp__V1__SnapshotEvidence *pv = NULL, **pvp = NULL;
    Ibp__V1__SnapshotVote *votes = NULL, **votep = NULL;
    Ibp__V1__ResultKey *removed = NULL;
    uint8_t *buf = NULL;
    size_t n = s->nentries, n_ovr = s->noverrides, nchanges = s->nevidence, nvotes = 0;

    sorted = calloc(n ? n : 1, sizeof *sorted);
    if (!sorted)
        goto nomem;
    for (size_t i = 0; i < n; i++)
        sorted[i] = &s->entries[i];
    qsort(sorted, n, sizeof *sorted, entry_ptr_cmp);
    for (size_t i = 1; i < n; i++) {
        if (entry_ptr_cmp(&sorted[i - 1], &sorted[i]) == 0) {
            st = ibp_err_set(err, IBP_E_INVAL, "snapshot epoch %llu: a key appears twice",
                             (unsigned long long)s->epoch);
            goto out;
        }
    }

    if (intern(&t, "") == UINT32_MAX)
        goto nomem;
    pe = calloc(n ? n : 1, sizeof *pe);
    pep = calloc(n ? n : 1, sizeof *pep);
    if (!pe || !pep)
        goto nomem;
    char scheme[64];
    const char *path = NULL;
    for (size_t i = 0; i < n; i++) {
        const ibp_codec_snapshot_entry *en = sorted[i];
        Ibp__V1__SnapshotEntry *x = &pe[i];
        ibp__v1__snapshot_entry__init(x);
        x->check_type = (Ibp__V1__CheckType)en->key.type;
        x->check_name = intern(&t, en->key.check_name);
        x->member = intern(&t, en->key.member);
        x->domain = intern(&t, en->key.domain);
        if (split_url(en->key.endpoint, en->key.domain, scheme, sizeof scheme, &path)) {
            x->endpoint = 0;
            x->endpoint_scheme = intern(&t, scheme);
            x->endpoint_path = intern(&t, path);
            if (x->endpoint_scheme == UINT32_MAX || x->endpoint_path == UINT32_MAX)
                goto nomem;
        } else {
            x->endpoint = intern(&t, en->key.endpoint);
        }
        x->ipv6 = en->key.ipv6;
        x->status = (Ibp__V1__Status)en->status;
        x->check_time_ms = en->check_time_ms;
        x->error = intern(&t, en->error);
        x->data_json = intern(&t, en->data_json);
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
        po[i].member = intern(&t, s->overrides[i].member);
        po[i].disabled = s->overrides[i].disabled;
        po[i].reason = intern(&t, s->overrides[i].reason);
        if (po[i].member == UINT32_MAX || po[i].reason == UINT32_MAX)
            goto nomem;
        pop[i] = &po[i];
    }

    for (size_t c = 0; c < nchanges; c++)
        nvotes += s->evidence[c].nvotes;
    pv = calloc(nchanges ? nchanges : 1, sizeof *pv);
    pvp = calloc(nchanges ? nchanges : 1, sizeof *pvp);
    removed = calloc(nchanges ? nchanges : 1, sizeof *removed);
    votes = calloc(nvotes ? nvotes : 1, sizeof *votes);
    votep = calloc(nvotes ? nvotes : 1, sizeof *votep);
    if (!pv || !pvp || !removed || !votes || !votep)
        goto nomem;
    size_t vi = 0;
    for (size_t c = 0; c < nchanges; c++) {
        const ibp_codec_snapshot_evidence *ch = &s->evidence[c];
        Ibp__V1__SnapshotEvidence *ev = &pv[c];
        ibp__v1__snapshot_evidence__init(ev);
        if (ch->removed) {
            key_to_pb(&removed[c], &ch->key);
            ev->removed = &removed[c];
        } else {
            ibp_codec_snapshot_entry probe = {.key = ch->key};
            const ibp_codec_snapshot_entry *pp = &probe;
            const ibp_codec_snapshot_entry **hit =
                bsearch(&pp, sorted, n, sizeof *sorted, entry_ptr_cmp);
            ev->entry = hit ? (uint32_t)(hit - sorted) : 0;
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
            v->status = (Ibp__V1__Status)ch->votes[k].status;
            votep[vi] = v;
        }
        ev->n_votes = ch->nvotes;
        pvp[c] = ev;
    }

    Ibp__V1__OfficialSnapshot snap = IBP__V1__OFFICIAL_SNAPSHOT__INIT;
    snap.epoch = s->epoch;
    snap.local_seq = s->local_seq;
    snap.applied_ms = s->applied_ms;
    snap.state_digest.data = (uint8_t *)s->digest;
    snap.state_digest.len = s->digest ? s->digest_len : 0;
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
                         (unsigned long long)s->epoch, len, n);
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
    free(sorted);
    intern_free(&t);
    return st;
}

/* ---- decode ------------------------------------------------------------- */

/* Everything a decoded snapshot points into. */
struct owned {
    Ibp__V1__OfficialSnapshot *pb; /* NULL when borrowed from a verified envelope */
    ibp_codec_snapshot_entry *entries;
    ibp_codec_snapshot_override *overrides;
    ibp_codec_snapshot_evidence *evidence;
    ibp_codec_snapshot_vote *votes;
    char *urls; /* rebuilt split endpoint URLs, one after another */
};

static void owned_free(struct owned *o)
{
    if (!o)
        return;
    if (o->pb)
        ibp__v1__official_snapshot__free_unpacked(o->pb, NULL);
    free(o->entries);
    free(o->overrides);
    free(o->evidence);
    free(o->votes);
    free(o->urls);
    free(o);
}

void ibp_codec_snapshot_clear(ibp_codec_snapshot *s)
{
    if (!s)
        return;
    owned_free(s->owned);
    memset(s, 0, sizeof *s);
}

static const char *str_at(const Ibp__V1__OfficialSnapshot *s, uint32_t idx, bool *ok)
{
    if (idx >= s->n_strings || !s->strings[idx]) {
        *ok = false;
        return "";
    }
    return s->strings[idx];
}

static bool status_ok(Ibp__V1__Status s)
{
    return s == IBP__V1__STATUS__STATUS_UP || s == IBP__V1__STATUS__STATUS_DOWN;
}

static ibp_status check_data(const char *data, ibp_err *err)
{
    size_t len = strlen(data);
    if (len == 0)
        return IBP_OK;
    if (len > IBP_DATA_MAX)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "result data: %zu bytes of JSON is over the limit of %d (IBP_DATA_MAX)",
                           len, IBP_DATA_MAX);
    json_error_t jerr;
    json_t *j = json_loadb(data, len, 0, &jerr);
    int ok = json_is_object(j);
    json_decref(j);
    if (!ok)
        return ibp_err_set(err, IBP_E_INVAL, "result data: not a JSON object");
    return IBP_OK;
}

/* Sort helper for the duplicate check: pointers to decoded entries. */
static int dup_cmp(const void *a, const void *b)
{
    return entry_ptr_cmp(a, b);
}

/* Length of the split-form URL of e (NUL excluded); false when an index is bad or it is too long.
 */
static bool split_len(const Ibp__V1__OfficialSnapshot *s, const Ibp__V1__SnapshotEntry *e,
                      size_t *len)
{
    bool ok = true;
    size_t n = strlen(str_at(s, e->endpoint_scheme, &ok)) + strlen(str_at(s, e->domain, &ok)) +
               strlen(str_at(s, e->endpoint_path, &ok));
    if (!ok || e->endpoint != 0 || n > IBP_URL_MAX)
        return false;
    *len = n;
    return true;
}

static ibp_status from_pb(const Ibp__V1__OfficialSnapshot *s, struct owned *o,
                          ibp_codec_snapshot *out, ibp_err *err)
{
    ibp_status st = IBP_OK;
    unsigned long long epoch = (unsigned long long)s->epoch;
    const ibp_codec_snapshot_entry **sorted = NULL;

    if (s->n_strings == 0 || !s->strings[0] || s->strings[0][0] != '\0')
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                           "snapshot epoch %llu: string table must start with \"\"", epoch);
    out->epoch = s->epoch;
    out->local_seq = s->local_seq;
    out->applied_ms = s->applied_ms;
    out->digest = s->state_digest.data;
    out->digest_len = s->state_digest.len;

    /* Pass 1: indices of the split URLs and the room they take. */
    size_t urls_len = 0;
    for (size_t i = 0; i < s->n_entries; i++) {
        size_t ul;
        if (s->entries[i]->endpoint_scheme == 0)
            continue;
        if (!split_len(s, s->entries[i], &ul))
            return ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                               "snapshot epoch %llu: entry %zu: string index out of range", epoch,
                               i);
        urls_len += ul + 1;
    }
    size_t nvotes = 0;
    for (size_t i = 0; i < s->n_evidence; i++)
        nvotes += s->evidence[i]->n_votes;
    o->entries = calloc(s->n_entries ? s->n_entries : 1, sizeof *o->entries);
    o->overrides = calloc(s->n_overrides ? s->n_overrides : 1, sizeof *o->overrides);
    o->evidence = calloc(s->n_evidence ? s->n_evidence : 1, sizeof *o->evidence);
    o->votes = calloc(nvotes ? nvotes : 1, sizeof *o->votes);
    o->urls = malloc(urls_len ? urls_len : 1);
    sorted = calloc(s->n_entries ? s->n_entries : 1, sizeof *sorted);
    if (!o->entries || !o->overrides || !o->evidence || !o->votes || !o->urls || !sorted) {
        st = ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
        goto out;
    }

    char *up = o->urls;
    for (size_t i = 0; i < s->n_entries; i++) {
        const Ibp__V1__SnapshotEntry *e = s->entries[i];
        ibp_codec_snapshot_entry *d = &o->entries[i];
        bool ok = true;
        d->key = (ibp_codec_key){
            .type = (ibp_check_type)e->check_type,
            .check_name = str_at(s, e->check_name, &ok),
            .member = str_at(s, e->member, &ok),
            .domain = str_at(s, e->domain, &ok),
            .endpoint = str_at(s, e->endpoint, &ok),
            .ipv6 = e->ipv6,
        };
        if (e->endpoint_scheme != 0) {
            /* Split form: scheme + domain + path (checked in pass 1). */
            int n = sprintf(up, "%s%s%s", str_at(s, e->endpoint_scheme, &ok), d->key.domain,
                            str_at(s, e->endpoint_path, &ok));
            d->key.endpoint = up;
            up += n + 1;
        }
        d->error = str_at(s, e->error, &ok);
        d->data_json = str_at(s, e->data_json, &ok);
        if (!ok) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: entry %zu: string index out of range", epoch, i);
            goto out;
        }
        if (!status_ok(e->status)) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: entry %zu: status %d is neither up nor down",
                             epoch, i, (int)e->status);
            goto out;
        }
        d->status = (ibp_result_status)e->status;
        d->check_time_ms = e->check_time_ms;
        ibp_err e2 = {0};
        ibp_status kst = ibp_codec_key_check(&d->key, &e2);
        if (kst == IBP_OK)
            kst = check_data(d->data_json, &e2);
        if (kst != IBP_OK) {
            /* A string over its cap keeps its own status; the message names the limit. */
            st = ibp_err_set(err, kst == IBP_E_TOO_LARGE ? kst : IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: entry %zu: %s", epoch, i, e2.msg);
            goto out;
        }
        sorted[i] = d;
    }
    /* Replicas send the entries in canonical order: then strictly increasing
     * neighbours prove there is no key twice, without sorting. */
    bool in_order = true;
    for (size_t i = 1; in_order && i < s->n_entries; i++)
        in_order = dup_cmp(&sorted[i - 1], &sorted[i]) < 0;
    if (!in_order)
        qsort(sorted, s->n_entries, sizeof *sorted, dup_cmp);
    for (size_t i = 1; !in_order && i < s->n_entries; i++) {
        if (dup_cmp(&sorted[i - 1], &sorted[i]) == 0) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "snapshot epoch %llu: a key appears twice",
                             epoch);
            goto out;
        }
    }

    for (size_t i = 0; i < s->n_overrides; i++) {
        const Ibp__V1__SnapshotOverride *po = s->overrides[i];
        ibp_codec_snapshot_override *d = &o->overrides[i];
        bool ok = true;
        d->member = str_at(s, po->member, &ok);
        d->reason = str_at(s, po->reason, &ok);
        d->disabled = po->disabled;
        if (!ok || !*d->member) {
            st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                             "snapshot epoch %llu: override %zu: bad member", epoch, i);
            goto out;
        }
        size_t mlen = strlen(d->member);
        if (mlen > IBP_NAME_MAX) {
            st = ibp_err_set(err, IBP_E_TOO_LARGE,
                             "snapshot epoch %llu: override %zu: member of %zu bytes is over the "
                             "limit of %d (IBP_NAME_MAX)",
                             epoch, i, mlen, IBP_NAME_MAX);
            goto out;
        }
        if (!d->disabled)
            continue;
        for (size_t j = 0; j < i; j++) {
            if (o->overrides[j].disabled && strcmp(o->overrides[j].member, d->member) == 0) {
                st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                                 "snapshot epoch %llu: member %s overridden twice", epoch,
                                 d->member);
                goto out;
            }
        }
    }

    size_t vi = 0;
    for (size_t i = 0; i < s->n_evidence; i++) {
        const Ibp__V1__SnapshotEvidence *pe = s->evidence[i];
        ibp_codec_snapshot_evidence *d = &o->evidence[i];
        if (pe->removed) {
            const Ibp__V1__ResultKey *rk = pe->removed;
            d->removed = true;
            d->key = (ibp_codec_key){(ibp_check_type)rk->check_type,
                                     rk->check_name,
                                     rk->member,
                                     rk->domain,
                                     rk->endpoint,
                                     rk->ipv6};
            ibp_err e2 = {0};
            ibp_status kst = ibp_codec_key_check(&d->key, &e2);
            if (kst != IBP_OK) {
                st = ibp_err_set(err, kst == IBP_E_TOO_LARGE ? kst : IBP_E_PAYLOAD_DECODE,
                                 "snapshot epoch %llu: evidence %zu: removed key: %s", epoch, i,
                                 e2.msg);
                goto out;
            }
        } else {
            if (pe->entry >= s->n_entries) {
                st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                                 "snapshot epoch %llu: evidence %zu: entry %u out of range", epoch,
                                 i, (unsigned)pe->entry);
                goto out;
            }
            d->entry = pe->entry;
            d->key = o->entries[pe->entry].key;
        }
        d->votes = &o->votes[vi];
        d->nvotes = pe->n_votes;
        for (size_t k = 0; k < pe->n_votes; k++, vi++) {
            const Ibp__V1__SnapshotVote *pv = pe->votes[k];
            bool ok = true;
            o->votes[vi].node = str_at(s, pv->node, &ok);
            if (!ok || !*o->votes[vi].node || !status_ok(pv->status)) {
                st = ibp_err_set(err, IBP_E_PAYLOAD_DECODE,
                                 "snapshot epoch %llu: evidence %zu: vote %zu: bad node or status",
                                 epoch, i, k);
                goto out;
            }
            o->votes[vi].local_seq = pv->local_seq;
            o->votes[vi].batch_seq = pv->batch_seq;
            o->votes[vi].status = (ibp_result_status)pv->status;
        }
    }

    out->entries = o->entries;
    out->nentries = s->n_entries;
    out->overrides = o->overrides;
    out->noverrides = s->n_overrides;
    out->evidence = o->evidence;
    out->nevidence = s->n_evidence;
out:
    free(sorted);
    return st;
}

static ibp_status decode_pb(const Ibp__V1__OfficialSnapshot *s, Ibp__V1__OfficialSnapshot *owned_pb,
                            ibp_codec_snapshot *out, ibp_err *err)
{
    struct owned *o = calloc(1, sizeof *o);
    if (!o) {
        if (owned_pb)
            ibp__v1__official_snapshot__free_unpacked(owned_pb, NULL);
        return ibp_err_set(err, IBP_E_NOMEM, "snapshot: out of memory");
    }
    o->pb = owned_pb;
    ibp_status st = from_pb(s, o, out, err);
    if (st != IBP_OK) {
        owned_free(o);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->owned = o;
    return IBP_OK;
}

ibp_status ibp_codec_snapshot_decode(const uint8_t *data, size_t len, ibp_codec_snapshot *out,
                                     ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!data && len)
        return ibp_err_set(err, IBP_E_INVAL, "snapshot: no data");
    size_t decoded = 0;
    ibp_err berr = {0};
    ibp_status bst = ibp_pb_decoded_bound(&ibp__v1__official_snapshot__descriptor, data, len,
                                          IBP_DECODED_MAX_DEFAULT, &decoded, &berr);
    if (bst == IBP_E_TOO_LARGE)
        return ibp_err_set(err, IBP_E_TOO_LARGE,
                           "snapshot: %zu bytes would decode to more than %u bytes", len,
                           (unsigned)IBP_DECODED_MAX_DEFAULT);
    if (bst != IBP_OK)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "snapshot: %zu bytes are not a snapshot: %s",
                           len, berr.msg);
    Ibp__V1__OfficialSnapshot *pb = ibp__v1__official_snapshot__unpack(NULL, len, data);
    if (!pb)
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "snapshot: %zu bytes are not a snapshot",
                           len);
    return decode_pb(pb, pb, out, err);
}

ibp_status ibp_codec_snapshot_decode_verified(const struct ibp_verified *vm,
                                              ibp_codec_snapshot *out, ibp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!vm || !vm->envelope || !vm->payload ||
        vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT)
        return ibp_err_set(err, IBP_E_INVAL, "snapshot: not an OfficialSnapshot envelope");
    return decode_pb((const Ibp__V1__OfficialSnapshot *)vm->payload, NULL, out, err);
}
