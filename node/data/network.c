/*
 * The IBP network config of ibp/network.h: the model (freeing, the derived
 * domains and the name indexes) and its queries. Loading the JSON files is
 * network_load.c; URL parsing is url.c.
 */
#include "ibp/network.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/vec.h"
#include "network_internal.h"

/* ---- small helpers ----------------------------------------------------------------------- */

char *ibp__network_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void ibp__network_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

ibp_status ibp__network_strv_push(char ***v, size_t *n, const char *s)
{
    char **grown = realloc(*v, (*n + 1) * sizeof *grown);
    if (!grown)
        return IBP_E_NOMEM;
    *v = grown;
    if (!(grown[*n] = ibp__network_strdup(s)))
        return IBP_E_NOMEM;
    (*n)++;
    return IBP_OK;
}

/* Makes room for one more element of size elem in *arr (zeroed). */
ibp_status ibp__network_grow(void **arr, size_t *cap, size_t count, size_t elem)
{
    if (count < *cap)
        return IBP_OK;
    size_t old = *cap;
    char *p = ibp_grow(*arr, cap, count + 1, elem);
    if (!p)
        return IBP_E_NOMEM;
    memset(p + old * elem, 0, (*cap - old) * elem);
    *arr = p;
    return IBP_OK;
}

typedef struct ordered {
    const char *s;
    size_t seq;
} ordered;

static int cmp_ordered(const void *a, const void *b)
{
    const ordered *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Removes repeated strings, keeping each first occurrence where it was. Sorting
 * a copy keeps this O(n log n) even for hostile files with huge lists.
 */
ibp_status ibp__network_strv_distinct(char **v, size_t *n)
{
    if (*n < 2)
        return IBP_OK;
    ordered *o = malloc(*n * sizeof *o);
    if (!o)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < *n; i++)
        o[i] = (ordered){v[i], i};
    qsort(o, *n, sizeof *o, cmp_ordered);
    /* Equal strings are adjacent, the first occurrence first: free the rest. */
    const char *kept = o[0].s;
    for (size_t i = 1; i < *n; i++) {
        if (strcmp(o[i].s, kept) == 0) {
            free(v[o[i].seq]);
            v[o[i].seq] = NULL;
        } else {
            kept = o[i].s;
        }
    }
    free(o);
    size_t w = 0;
    for (size_t i = 0; i < *n; i++)
        if (v[i])
            v[w++] = v[i];
    *n = w;
    return IBP_OK;
}

int ibp__network_cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- freeing ----------------------------------------------------------------------------- */

static void member_free(ibp_network_member *m)
{
    free(m->name);
    free(m->display_name);
    free(m->website);
    free(m->ipv4);
    free(m->ipv6);
    free(m->monitor_url);
    free(m->region);
    ibp__network_strv_free(m->services, m->service_count);
}

static void service_free(ibp_network_service *s)
{
    free(s->name);
    free(s->type);
    free(s->network_name);
    for (size_t i = 0; i < s->provider_count; i++) {
        free(s->providers[i].name);
        ibp__network_strv_free(s->providers[i].rpc_urls, s->providers[i].rpc_url_count);
    }
    free(s->providers);
    ibp__network_strv_free(s->domains, s->domain_count);
}

static void check_free(ibp_network_check *c)
{
    free(c->name);
    free(c->extra_options);
}

void ibp_network_free(ibp_network *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->member_count; i++)
        member_free(&net->members[i]);
    for (size_t i = 0; i < net->service_count; i++)
        service_free(&net->services[i]);
    for (size_t i = 0; i < net->check_count; i++)
        check_free(&net->checks[i]);
    for (size_t i = 0; i < net->domain_count; i++) {
        free(net->domains[i].name);
        ibp__network_strv_free(net->domains[i].urls, net->domains[i].url_count);
        ibp__network_strv_free(net->domains[i].services, net->domains[i].service_count);
    }
    free(net->members);
    free(net->services);
    free(net->checks);
    free(net->domains);
    free(net->member_index);
    free(net->service_index);
    free(net->check_index);
    free(net);
}

/* ---- derived data ------------------------------------------------------------------------ */

typedef struct endpoint_ref {
    char *host; /* owned */
    const char *url;
    const char *service;
    size_t seq;
} endpoint_ref;

static int cmp_endpoint(const void *a, const void *b)
{
    const endpoint_ref *x = a, *y = b;
    int c = strcmp(x->host, y->host);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Groups every RPC URL by host: one ibp_network_domain per distinct host, sorted. */
ibp_status ibp__network_build_domains(ibp_network *net)
{
    size_t n = net->rpc_url_count, k = 0;
    ibp_status st = IBP_OK;
    if (n == 0)
        return IBP_OK;
    endpoint_ref *refs = calloc(n, sizeof *refs);
    if (!refs)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < net->service_count; i++) {
        const ibp_network_service *s = &net->services[i];
        for (size_t j = 0; j < s->provider_count; j++) {
            for (size_t u = 0; u < s->providers[j].rpc_url_count && k < n; u++) {
                ibp_network_url parsed;
                const char *url = s->providers[j].rpc_urls[u];
                if (ibp_network_url_parse(url, &parsed, NULL) != IBP_OK)
                    continue; /* cannot happen: every URL was checked while parsing */
                if (!(refs[k].host = ibp__network_strdup(parsed.host))) {
                    st = IBP_E_NOMEM;
                    goto out;
                }
                refs[k].url = url;
                refs[k].service = s->name;
                refs[k].seq = k;
                k++;
            }
        }
    }
    qsort(refs, k, sizeof *refs, cmp_endpoint);
    size_t groups = 0;
    for (size_t i = 0; i < k; i++)
        groups += i == 0 || strcmp(refs[i].host, refs[i - 1].host) != 0;
    if (!(net->domains = calloc(groups, sizeof *net->domains))) {
        st = IBP_E_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < k; i++) {
        if (net->domain_count == 0 ||
            strcmp(refs[i].host, net->domains[net->domain_count - 1].name) != 0) {
            net->domains[net->domain_count++].name = refs[i].host;
            refs[i].host = NULL; /* moved into the domain */
        }
        ibp_network_domain *d = &net->domains[net->domain_count - 1];
        if (ibp__network_strv_push(&d->urls, &d->url_count, refs[i].url) ||
            ibp__network_strv_push(&d->services, &d->service_count, refs[i].service)) {
            st = IBP_E_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < net->domain_count; i++) {
        if (ibp__network_strv_distinct(net->domains[i].urls, &net->domains[i].url_count) ||
            ibp__network_strv_distinct(net->domains[i].services, &net->domains[i].service_count)) {
            st = IBP_E_NOMEM;
            goto out;
        }
    }
out:
    for (size_t i = 0; i < k; i++)
        free(refs[i].host);
    free(refs);
    return st;
}

static int cmp_member_ptr(const void *a, const void *b)
{
    return strcmp((*(const ibp_network_member *const *)a)->name,
                  (*(const ibp_network_member *const *)b)->name);
}

static int cmp_service_ptr(const void *a, const void *b)
{
    return strcmp((*(const ibp_network_service *const *)a)->name,
                  (*(const ibp_network_service *const *)b)->name);
}

static int cmp_check_ptr(const void *a, const void *b)
{
    return strcmp((*(const ibp_network_check *const *)a)->name,
                  (*(const ibp_network_check *const *)b)->name);
}

ibp_status ibp__network_build_indexes(ibp_network *net, const char **dup_check)
{
    size_t nm = net->member_count ? net->member_count : 1;
    size_t ns = net->service_count ? net->service_count : 1;
    size_t nc = net->check_count ? net->check_count : 1;
    net->member_index = malloc(nm * sizeof *net->member_index);
    net->service_index = malloc(ns * sizeof *net->service_index);
    net->check_index = malloc(nc * sizeof *net->check_index);
    if (!net->member_index || !net->service_index || !net->check_index)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < net->member_count; i++)
        net->member_index[i] = &net->members[i];
    for (size_t i = 0; i < net->service_count; i++)
        net->service_index[i] = &net->services[i];
    for (size_t i = 0; i < net->check_count; i++)
        net->check_index[i] = &net->checks[i];
    qsort(net->member_index, net->member_count, sizeof *net->member_index, cmp_member_ptr);
    qsort(net->service_index, net->service_count, sizeof *net->service_index, cmp_service_ptr);
    qsort(net->check_index, net->check_count, sizeof *net->check_index, cmp_check_ptr);
    /* Object keys are unique (duplicates are rejected while parsing); array entries may not be. */
    for (size_t i = 1; i < net->check_count; i++) {
        if (strcmp(net->check_index[i]->name, net->check_index[i - 1]->name) == 0) {
            *dup_check = net->check_index[i]->name;
            return IBP_E_CONFIG;
        }
    }
    return IBP_OK;
}

/* ---- lookups ----------------------------------------------------------------------------- */

size_t ibp_network_member_count(const ibp_network *net)
{
    return net ? net->member_count : 0;
}

const ibp_network_member *ibp_network_member_at(const ibp_network *net, size_t i)
{
    return net && i < net->member_count ? &net->members[i] : NULL;
}

size_t ibp_network_service_count(const ibp_network *net)
{
    return net ? net->service_count : 0;
}

const ibp_network_service *ibp_network_service_at(const ibp_network *net, size_t i)
{
    return net && i < net->service_count ? &net->services[i] : NULL;
}

size_t ibp_network_check_count(const ibp_network *net)
{
    return net ? net->check_count : 0;
}

const ibp_network_check *ibp_network_check_at(const ibp_network *net, size_t i)
{
    return net && i < net->check_count ? &net->checks[i] : NULL;
}

size_t ibp_network_rpc_url_count(const ibp_network *net)
{
    return net ? net->rpc_url_count : 0;
}

size_t ibp_network_domain_count(const ibp_network *net)
{
    return net ? net->domain_count : 0;
}

const ibp_network_domain *ibp_network_domain_at(const ibp_network *net, size_t i)
{
    return net && i < net->domain_count ? &net->domains[i] : NULL;
}

/* bsearch keys: a name against an element pointer's name. */
static int key_member(const void *key, const void *elem)
{
    return strcmp(key, (*(const ibp_network_member *const *)elem)->name);
}

static int key_service(const void *key, const void *elem)
{
    return strcmp(key, (*(const ibp_network_service *const *)elem)->name);
}

static int key_check(const void *key, const void *elem)
{
    return strcmp(key, (*(const ibp_network_check *const *)elem)->name);
}

static int key_domain(const void *key, const void *elem)
{
    return strcmp(key, ((const ibp_network_domain *)elem)->name);
}

const ibp_network_member *ibp_network_member_find(const ibp_network *net, const char *name)
{
    if (!net || !name || !net->member_count)
        return NULL;
    const ibp_network_member *const *hit =
        bsearch(name, net->member_index, net->member_count, sizeof *net->member_index, key_member);
    return hit ? *hit : NULL;
}

const ibp_network_service *ibp_network_service_find(const ibp_network *net, const char *name)
{
    if (!net || !name || !net->service_count)
        return NULL;
    const ibp_network_service *const *hit = bsearch(name, net->service_index, net->service_count,
                                                    sizeof *net->service_index, key_service);
    return hit ? *hit : NULL;
}

const ibp_network_check *ibp_network_check_find(const ibp_network *net, const char *name)
{
    if (!net || !name || !net->check_count)
        return NULL;
    const ibp_network_check *const *hit =
        bsearch(name, net->check_index, net->check_count, sizeof *net->check_index, key_check);
    return hit ? *hit : NULL;
}

bool ibp_network_member_serves(const ibp_network_member *member, const char *service)
{
    if (!member || !service)
        return false;
    for (size_t i = 0; i < member->service_count; i++)
        if (strcmp(member->services[i], service) == 0)
            return true;
    return false;
}

const ibp_network_domain *ibp_network_domain_find(const ibp_network *net, const char *domain)
{
    if (!net || !domain || !net->domain_count)
        return NULL;
    char key[256];
    size_t n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n >= sizeof key)
        return NULL;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)domain[i]);
    key[n] = '\0';
    return bsearch(key, net->domains, net->domain_count, sizeof *net->domains, key_domain);
}

bool ibp_network_member_serves_domain(const ibp_network *net, const ibp_network_member *member,
                                      const char *domain)
{
    const ibp_network_domain *d = ibp_network_domain_find(net, domain);
    if (!d || !member)
        return false;
    for (size_t i = 0; i < d->service_count; i++)
        if (ibp_network_member_serves(member, d->services[i]))
            return true;
    return false;
}

const char *ibp_network_check_type_name(ibp_network_check_type type)
{
    switch (type) {
    case IBP_NETWORK_CHECK_SITE:
        return "site";
    case IBP_NETWORK_CHECK_DOMAIN:
        return "domain";
    case IBP_NETWORK_CHECK_ENDPOINT:
        return "endpoint";
    }
    return "?";
}
