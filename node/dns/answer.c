/*
 * Answer selection; see ibp/dns_answer.h for the rules. Everything a query
 * needs is precomputed here once (candidates per host and family, member
 * positions in radians), so a selection is a pass over the candidates with
 * one store read and no allocation.
 */
#include "ibp/dns_answer.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEG_TO_RAD (M_PI / 180.0)

typedef struct host_family {
    const ibp_network_member **members; /* candidates, sorted by name */
    const char **names;                 /* their names, for the store */
    size_t count;
} host_family;

typedef struct host_entry {
    const char *name;
    host_family fam[2]; /* [0] IPv4, [1] IPv6 */
} host_entry;

typedef struct override {
    char country[3];
    char *member;
    char *addr[2];
} override;

struct ibp_dns_selector {
    const ibp_network *net;
    ibp_dns_answer_opts opts;
    host_entry *hosts;
    size_t host_count;
    override *overrides;
    size_t override_count;
};

void ibp_dns_answer_opts_init(ibp_dns_answer_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->ttl_s = IBP_DNS_TTL_DEFAULT;
    opts->last_resort_ttl_s = IBP_DNS_LAST_RESORT_TTL_DEFAULT;
}

double ibp_dns_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    double p1 = lat1 * DEG_TO_RAD, p2 = lat2 * DEG_TO_RAD;
    double dp = (lat2 - lat1) * DEG_TO_RAD, dl = (lon2 - lon1) * DEG_TO_RAD;
    double a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2);
    if (a > 1.0)
        a = 1.0;
    return 2.0 * IBP_DNS_EARTH_RADIUS_KM * atan2(sqrt(a), sqrt(1.0 - a));
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

uint64_t ibp_dns_client_key(const char *address)
{
    return fnv1a(UINT64_C(14695981039346656037), address ? address : "");
}

/* splitmix64 finaliser: spreads (client, member) pairs over the whole range. */
static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static bool is_address(const char *s, bool ipv6)
{
    unsigned char buf[16];
    return s && inet_pton(ipv6 ? AF_INET6 : AF_INET, s, buf) == 1;
}

ibp_status ibp_dns_country_override_parse(const char *text, ibp_dns_country_override *out,
                                          ibp_err *err)
{
    if (!text || strlen(text) < 4 || text[2] != '=' || !isalpha((unsigned char)text[0]) ||
        !isalpha((unsigned char)text[1]))
        return ibp_err_set(err, IBP_E_CONFIG,
                           "country override \"%s\" is not CC=member or CC=address",
                           text ? text : "");
    memset(out, 0, sizeof *out);
    out->country[0] = (char)toupper((unsigned char)text[0]);
    out->country[1] = (char)toupper((unsigned char)text[1]);
    const char *v = text + 3;
    if (is_address(v, false))
        out->ipv4 = v;
    else if (is_address(v, true))
        out->ipv6 = v;
    else
        out->member = v;
    return IBP_OK;
}

static int cmp_member(const void *a, const void *b)
{
    const ibp_network_member *x = *(const ibp_network_member *const *)a;
    const ibp_network_member *y = *(const ibp_network_member *const *)b;
    return strcmp(x->name, y->name);
}

/* True when member may serve host by config: an active service on the host
 * assigned to the member, at its level, and the member active. */
static bool candidate(const ibp_network *net, const ibp_network_domain *d,
                      const ibp_network_member *m)
{
    if (!m->active)
        return false;
    for (size_t i = 0; i < d->service_count; i++) {
        const ibp_network_service *s = ibp_network_service_find(net, d->services[i]);
        if (s && s->active && m->level >= s->level_required &&
            ibp_network_member_serves(m, s->name))
            return true;
    }
    return false;
}

static ibp_status build_host(const ibp_network *net, const ibp_network_domain *d, host_entry *h,
                             ibp_err *err)
{
    size_t nm = ibp_network_member_count(net);
    h->name = d->name;
    for (int f = 0; f < 2; f++) {
        host_family *hf = &h->fam[f];
        hf->members = calloc(nm ? nm : 1, sizeof *hf->members);
        hf->names = calloc(nm ? nm : 1, sizeof *hf->names);
        if (!hf->members || !hf->names)
            return ibp_err_set(err, IBP_E_NOMEM, "dns: out of memory");
        for (size_t i = 0; i < nm; i++) {
            const ibp_network_member *m = ibp_network_member_at(net, i);
            const char *addr = f ? m->ipv6 : m->ipv4;
            if (addr[0] && candidate(net, d, m))
                hf->members[hf->count++] = m;
        }
        if (hf->count > IBP_DNS_MAX_CANDIDATES)
            return ibp_err_set(err, IBP_E_CONFIG, "dns: host %s has %zu candidates (limit %d)",
                               d->name, hf->count, IBP_DNS_MAX_CANDIDATES);
        qsort(hf->members, hf->count, sizeof *hf->members, cmp_member);
        for (size_t i = 0; i < hf->count; i++)
            hf->names[i] = hf->members[i]->name;
    }
    return IBP_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static ibp_status add_override(ibp_dns_selector *sel, const ibp_dns_country_override *o,
                               ibp_err *err)
{
    if (!isupper((unsigned char)o->country[0]) || !isupper((unsigned char)o->country[1]) ||
        o->country[2])
        return ibp_err_set(err, IBP_E_CONFIG, "dns: country override: bad country code");
    if (o->member && !ibp_network_member_find(sel->net, o->member))
        return ibp_err_set(err, IBP_E_CONFIG, "dns: country override %s: unknown member \"%s\"",
                           o->country, o->member);
    if ((o->ipv4 && !is_address(o->ipv4, false)) || (o->ipv6 && !is_address(o->ipv6, true)))
        return ibp_err_set(err, IBP_E_CONFIG, "dns: country override %s: bad address", o->country);
    /* Entries of one country merge: "DE=192.0.2.1" and "DE=2001:db8::1" give both families. */
    override *dst = NULL;
    for (size_t i = 0; i < sel->override_count; i++)
        if (memcmp(sel->overrides[i].country, o->country, 3) == 0)
            dst = &sel->overrides[i];
    if (!dst) {
        dst = &sel->overrides[sel->override_count++];
        memcpy(dst->country, o->country, 3);
    }
    char **slots[3] = {&dst->member, &dst->addr[0], &dst->addr[1]};
    const char *vals[3] = {o->member, o->ipv4, o->ipv6};
    for (int i = 0; i < 3; i++) {
        if (!vals[i])
            continue;
        free(*slots[i]);
        if (!(*slots[i] = dup_or_null(vals[i])))
            return ibp_err_set(err, IBP_E_NOMEM, "dns: out of memory");
    }
    return IBP_OK;
}

ibp_status ibp_dns_selector_new(const ibp_network *net, const ibp_dns_answer_opts *opts,
                                ibp_dns_selector **out, ibp_err *err)
{
    if (!net || !out)
        return ibp_err_set(err, IBP_E_INVAL, "dns: selector needs a network");
    ibp_dns_selector *sel = calloc(1, sizeof *sel);
    if (!sel)
        return ibp_err_set(err, IBP_E_NOMEM, "dns: out of memory");
    sel->net = net;
    if (opts)
        sel->opts = *opts;
    else
        ibp_dns_answer_opts_init(&sel->opts);
    sel->opts.overrides = NULL;
    sel->host_count = ibp_network_domain_count(net);
    sel->hosts = calloc(sel->host_count ? sel->host_count : 1, sizeof *sel->hosts);
    size_t n_ovr = opts ? opts->override_count : 0;
    sel->overrides = calloc(n_ovr ? n_ovr : 1, sizeof *sel->overrides);
    ibp_status st = IBP_OK;
    if (!sel->hosts || !sel->overrides)
        st = ibp_err_set(err, IBP_E_NOMEM, "dns: out of memory");
    for (size_t i = 0; st == IBP_OK && i < sel->host_count; i++)
        st = build_host(net, ibp_network_domain_at(net, i), &sel->hosts[i], err);
    for (size_t i = 0; st == IBP_OK && i < n_ovr; i++)
        st = add_override(sel, &opts->overrides[i], err);
    if (st != IBP_OK) {
        ibp_dns_selector_free(sel);
        return st;
    }
    *out = sel;
    return IBP_OK;
}

void ibp_dns_selector_free(ibp_dns_selector *sel)
{
    if (!sel)
        return;
    for (size_t i = 0; sel->hosts && i < sel->host_count; i++) {
        for (int f = 0; f < 2; f++) {
            free(sel->hosts[i].fam[f].members);
            free(sel->hosts[i].fam[f].names);
        }
    }
    for (size_t i = 0; sel->overrides && i < sel->override_count; i++) {
        free(sel->overrides[i].member);
        free(sel->overrides[i].addr[0]);
        free(sel->overrides[i].addr[1]);
    }
    free(sel->overrides);
    free(sel->hosts);
    free(sel);
}

uint32_t ibp_dns_selector_ttl(const ibp_dns_selector *sel)
{
    return sel ? sel->opts.ttl_s : IBP_DNS_TTL_DEFAULT;
}

size_t ibp_dns_selector_host_count(const ibp_dns_selector *sel)
{
    return sel ? sel->host_count : 0;
}

size_t ibp_dns_selector_candidates(const ibp_dns_selector *sel, size_t host_index, bool ipv6,
                                   const ibp_network_member *const **out)
{
    if (!sel || host_index >= sel->host_count) {
        *out = NULL;
        return 0;
    }
    const host_family *hf = &sel->hosts[host_index].fam[ipv6 ? 1 : 0];
    *out = hf->members;
    return hf->count;
}

/* Ordering of two candidates for a client: <0 when a is better. */
typedef struct score {
    double distance; /* INFINITY: member without a location; -1 unlocated client */
    uint64_t rendezvous;
} score;

static score score_of(const ibp_network_member *m, const ibp_dns_client *c)
{
    score s = {.distance = -1, .rendezvous = 0};
    if (c && c->has_location)
        s.distance = m->has_location
                         ? ibp_dns_distance_km(c->latitude, c->longitude, m->latitude, m->longitude)
                         : INFINITY;
    else
        s.rendezvous = mix((c ? c->key : 0) ^ fnv1a(UINT64_C(14695981039346656037), m->name));
    return s;
}

/* Candidates are sorted by name, so keeping the first of equals breaks ties by name. */
static bool better(score a, score b)
{
    if (a.distance != b.distance)
        return a.distance < b.distance;
    return a.rendezvous > b.rendezvous;
}

static void pick_member(ibp_dns_pick *out, ibp_dns_pick_kind kind, const ibp_network_member *m,
                        bool ipv6, uint32_t ttl, const score *s)
{
    out->kind = kind;
    out->member = m->name;
    out->address = ipv6 ? m->ipv6 : m->ipv4;
    out->ttl_s = ttl;
    out->distance_km = s && s->distance >= 0 && s->distance != INFINITY ? s->distance : -1;
}

static const override *find_override(const ibp_dns_selector *sel, const ibp_dns_client *c)
{
    if (!c || !sel->override_count || !isupper((unsigned char)c->country[0]))
        return NULL;
    for (size_t i = 0; i < sel->override_count; i++)
        if (sel->overrides[i].country[0] == c->country[0] &&
            sel->overrides[i].country[1] == c->country[1])
            return &sel->overrides[i];
    return NULL;
}

void ibp_dns_select(const ibp_dns_selector *sel, ibp_store *store, size_t host_index, bool ipv6,
                    const ibp_dns_client *client, ibp_dns_pick *out)
{
    memset(out, 0, sizeof *out);
    out->distance_km = -1;
    if (!sel || host_index >= sel->host_count)
        return;
    const host_entry *h = &sel->hosts[host_index];
    const host_family *hf = &h->fam[ipv6 ? 1 : 0];
    const override *ovr = find_override(sel, client);
    if (ovr && ovr->addr[ipv6 ? 1 : 0]) {
        out->kind = IBP_DNS_PICK_COUNTRY;
        out->address = ovr->addr[ipv6 ? 1 : 0];
        out->ttl_s = sel->opts.ttl_s;
        return;
    }
    if (hf->count == 0)
        return;

    const char *online[IBP_DNS_MAX_CANDIDATES];
    size_t n_online = 0;
    bool last_resort = false;
    ibp_store_online_members(store, h->name, ipv6, hf->names, hf->count, online, &n_online,
                             &last_resort);
    if (!last_resort) {
        /* online[] is in candidate order: walk both lists together. */
        const ibp_network_member *best = NULL;
        score best_s = {0};
        size_t j = 0;
        for (size_t i = 0; i < hf->count && j < n_online; i++) {
            if (hf->names[i] != online[j])
                continue;
            j++;
            const ibp_network_member *m = hf->members[i];
            if (ovr && ovr->member && strcmp(ovr->member, m->name) == 0) {
                pick_member(out, IBP_DNS_PICK_COUNTRY, m, ipv6, sel->opts.ttl_s, NULL);
                return;
            }
            score s = score_of(m, client);
            if (!best || better(s, best_s)) {
                best = m;
                best_s = s;
            }
        }
        if (best) {
            pick_member(out, IBP_DNS_PICK_NEAREST, best, ipv6, sel->opts.ttl_s, &best_s);
            return;
        }
    }
    /* Nobody healthy: the nearest candidate that an operator has not taken out. */
    const ibp_network_member *best = NULL;
    score best_s = {0};
    for (size_t i = 0; i < hf->count; i++) {
        const ibp_network_member *m = hf->members[i];
        if (ibp_store_member_overridden(store, m->name))
            continue;
        score s = score_of(m, client);
        if (!best || better(s, best_s)) {
            best = m;
            best_s = s;
        }
    }
    if (best)
        pick_member(out, IBP_DNS_PICK_LAST_RESORT, best, ipv6, sel->opts.last_resort_ttl_s,
                    &best_s);
}
