/*
 * Zones and static records; see ibp/dns_zones.h. Built once into sorted
 * arrays, so a lookup is one binary search over names and allocates nothing.
 */
#include "ibp/dns_zones.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/vec.h"

typedef struct name_entry {
    char *name;
    size_t zone;      /* index into zones */
    size_t rec_start; /* into records */
    size_t rec_count;
    long host;
    bool ent; /* an empty non-terminal: only names below it exist */
} name_entry;

struct ibp_dns_zones {
    ibp_dns_zone *zones;
    char **zone_names, **zone_soas;
    size_t zone_count;
    name_entry *names;
    size_t name_count;
    ibp_dns_record *records;
    size_t record_count;
    ibp_dns_zones_stats stats;
};

/* A record while building: its name owned here until the names are made. */
typedef struct raw_record {
    char name[IBP_DNS_NAME_MAX + 1];
    char qtype[12];
    char *content;
    uint32_t ttl_s;
    bool auth;
    size_t order;
} raw_record;

void ibp_dns_zones_opts_init(ibp_dns_zones_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->static_source = "static records";
    opts->soa_ttl_s = IBP_DNS_SOA_TTL_DEFAULT;
    opts->negative_ttl_s = IBP_DNS_NEGATIVE_TTL_DEFAULT;
}

bool ibp_dns_name_normalize(const char *name, size_t len, char *buf, size_t cap)
{
    if (!name || cap < 2)
        return false;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > IBP_DNS_NAME_MAX || len >= cap)
        return false;
    char prev = '.';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.' && prev == '.')
            return false;
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c == '*'))
            return false;
        buf[i] = (char)tolower(c);
        prev = (char)c;
    }
    buf[len] = '\0';
    return true;
}

/* True when name is zone or below it. */
static bool in_zone(const char *name, const char *zone)
{
    size_t n = strlen(name), z = strlen(zone);
    if (n == z)
        return strcmp(name, zone) == 0;
    return n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}

/* The longest zone that holds name, or -1. */
static long zone_of(char *const *zones, size_t n, const char *name)
{
    long best = -1;
    size_t best_len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(zones[i]);
        if (in_zone(name, zones[i]) && (best < 0 || l > best_len)) {
            best = (long)i;
            best_len = l;
        }
    }
    return best;
}

/* A small set of owned strings (zones while building). */
typedef struct strset {
    char **items;
    size_t count, cap;
} strset;

static int strset_add(strset *s, const char *v)
{
    for (size_t i = 0; i < s->count; i++)
        if (strcmp(s->items[i], v) == 0)
            return 0;
    char **n = ibp_grow(s->items, &s->cap, s->count + 1, sizeof *n);
    if (!n)
        return -1;
    s->items = n;
    if (!(s->items[s->count] = strdup(v)))
        return -1;
    s->count++;
    return 0;
}

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i]);
    free(s->items);
}

/* The registered-domain guess: the last two labels. */
static const char *last_two_labels(const char *name)
{
    const char *last = strrchr(name, '.');
    if (!last)
        return name;
    const char *p = last;
    while (p > name && p[-1] != '.')
        p--;
    return p;
}

static bool qtype_ok(const char *t, char *out)
{
    size_t n = strlen(t);
    if (n == 0 || n >= 12)
        return false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && !isalnum((unsigned char)t[i]))
            return false;
        out[i] = (char)toupper((unsigned char)t[i]);
    }
    return true;
}

static ibp_status parse_static(const ibp_dns_zones_opts *o, raw_record **out, size_t *n_out,
                               ibp_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (!o->static_json)
        return IBP_OK;
    const char *src = o->static_source ? o->static_source : "static records";
    json_error_t je;
    json_t *root = json_loadb(o->static_json, o->static_len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return ibp_err_set(err, IBP_E_CONFIG, "%s:%d:%d: %s", src, je.line, je.column, je.text);
    ibp_status st = IBP_OK;
    raw_record *recs = NULL;
    size_t n = json_is_array(root) ? json_array_size(root) : 0;
    if (!json_is_array(root)) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s: expected an array of records", src);
        goto out;
    }
    if (n > IBP_DNS_STATIC_MAX) {
        st = ibp_err_set(err, IBP_E_TOO_LARGE, "%s: %zu records (limit %d)", src, n,
                         IBP_DNS_STATIC_MAX);
        goto out;
    }
    recs = calloc(n ? n : 1, sizeof *recs);
    if (!recs) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", src);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *r = json_array_get(root, i);
        json_t *qn = json_object_get(r, "qname"), *qt = json_object_get(r, "qtype");
        json_t *ct = json_object_get(r, "content"), *ttl = json_object_get(r, "ttl");
        json_t *auth = json_object_get(r, "auth");
        raw_record *rr = &recs[i];
        rr->order = i;
        if (!json_is_object(r) || !json_is_string(qn) || !json_is_string(qt) ||
            !json_is_string(ct)) {
            st = ibp_err_set(err, IBP_E_CONFIG,
                             "%s: record %zu: needs string qname, qtype and content", src, i);
            goto out;
        }
        if (!ibp_dns_name_normalize(json_string_value(qn), json_string_length(qn), rr->name,
                                    sizeof rr->name)) {
            st = ibp_err_set(err, IBP_E_CONFIG, "%s: record %zu: bad qname", src, i);
            goto out;
        }
        if (!qtype_ok(json_string_value(qt), rr->qtype)) {
            st = ibp_err_set(err, IBP_E_CONFIG, "%s: record %zu: bad qtype", src, i);
            goto out;
        }
        if (json_string_length(ct) > IBP_DNS_CONTENT_MAX ||
            strlen(json_string_value(ct)) != json_string_length(ct)) {
            st = ibp_err_set(err, IBP_E_CONFIG, "%s: record %zu: bad content", src, i);
            goto out;
        }
        rr->ttl_s = IBP_DNS_SOA_TTL_DEFAULT;
        if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
                    json_integer_value(ttl) > INT32_MAX)) {
            st =
                ibp_err_set(err, IBP_E_CONFIG, "%s: record %zu: ttl must be 0..2147483647", src, i);
            goto out;
        }
        if (ttl)
            rr->ttl_s = (uint32_t)json_integer_value(ttl);
        if (auth && !json_is_boolean(auth)) {
            st = ibp_err_set(err, IBP_E_CONFIG, "%s: record %zu: auth must be a boolean", src, i);
            goto out;
        }
        rr->auth = auth ? json_is_true(auth) : true;
        if (!(rr->content = strdup(json_string_value(ct)))) {
            st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", src);
            goto out;
        }
    }
out:
    json_decref(root);
    if (st != IBP_OK) {
        for (size_t i = 0; recs && i < n; i++)
            free(recs[i].content);
        free(recs);
        return st;
    }
    *out = recs;
    *n_out = n;
    return IBP_OK;
}

static int cmp_raw(const void *a, const void *b)
{
    const raw_record *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const name_entry *)a)->name, ((const name_entry *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The network's host names that are DNS names (IP literals are not). */
static bool host_name(const ibp_network_domain *d, char *buf)
{
    return ibp_dns_name_normalize(d->name, strlen(d->name), buf, IBP_DNS_NAME_MAX + 1) &&
           strchr(d->name, ':') == NULL;
}

static name_entry *find_entry(const ibp_dns_zones *z, const char *name)
{
    name_entry key = {.name = (char *)name};
    if (z->name_count == 0)
        return NULL;
    return bsearch(&key, z->names, z->name_count, sizeof *z->names, cmp_name);
}

/* Appends name to the names array (duplicates are merged by merge_names). */
static name_entry *add_name(ibp_dns_zones *z, size_t *cap, const char *name)
{
    name_entry *n = ibp_grow(z->names, cap, z->name_count + 1, sizeof *n);
    if (!n)
        return NULL;
    z->names = n;
    name_entry *e = &z->names[z->name_count];
    memset(e, 0, sizeof *e);
    e->host = -1;
    if (!(e->name = strdup(name)))
        return NULL;
    z->name_count++;
    return e;
}

/* Sorts the names and merges equal ones (keeping the host index of any). */
static void merge_names(ibp_dns_zones *z)
{
    if (z->name_count == 0)
        return;
    qsort(z->names, z->name_count, sizeof *z->names, cmp_name);
    size_t k = 0;
    for (size_t i = 0; i < z->name_count; i++) {
        if (k > 0 && strcmp(z->names[k - 1].name, z->names[i].name) == 0) {
            if (z->names[i].host >= 0)
                z->names[k - 1].host = z->names[i].host;
            free(z->names[i].name);
            continue;
        }
        z->names[k++] = z->names[i];
    }
    z->name_count = k;
}

/* The entry named name among the first count (sorted) entries, or NULL. */
static name_entry *find_in(name_entry *names, size_t count, const char *name)
{
    name_entry key = {.name = (char *)name};
    return count ? bsearch(&key, names, count, sizeof *names, cmp_name) : NULL;
}

/*
 * Adds the empty non-terminals: every name between a name and its zone's apex
 * that has nothing of its own ("deep.example.net" of "_acme.deep.example.net"),
 * so PowerDNS answers NODATA for it, not NXDOMAIN (which a resolver may take as
 * "nothing below exists either", RFC 8020).
 */
static int add_ents(ibp_dns_zones *z, size_t *cap)
{
    size_t base = z->name_count;
    for (size_t i = 0; i < base; i++) {
        const char *name = z->names[i].name;
        size_t zone = z->names[i].zone, zlen = strlen(z->zone_names[zone]);
        for (const char *p = strchr(name, '.'); p && strlen(p + 1) > zlen; p = strchr(p + 1, '.')) {
            if (find_in(z->names, base, p + 1))
                continue;
            name_entry *e = add_name(z, cap, p + 1);
            if (!e)
                return -1;
            e->zone = zone;
            e->ent = true;
        }
    }
    merge_names(z);
    z->stats.ents = z->name_count - base;
    return 0;
}

static ibp_status make_zones(ibp_dns_zones *z, strset *zs, const raw_record *recs, size_t n,
                             const ibp_dns_zones_opts *o)
{
    if (zs->count > 1)
        qsort(zs->items, zs->count, sizeof *zs->items, cmp_str);
    z->zone_count = zs->count;
    z->zones = calloc(zs->count ? zs->count : 1, sizeof *z->zones);
    z->zone_names = calloc(zs->count ? zs->count : 1, sizeof *z->zone_names);
    z->zone_soas = calloc(zs->count ? zs->count : 1, sizeof *z->zone_soas);
    if (!z->zones || !z->zone_names || !z->zone_soas)
        return IBP_E_NOMEM;
    for (size_t i = 0; i < zs->count; i++) {
        const char *zn = zs->items[i];
        const char *mname = NULL;
        for (size_t r = 0; r < n && !mname; r++)
            if (strcmp(recs[r].name, zn) == 0 && strcmp(recs[r].qtype, "NS") == 0)
                mname = recs[r].content;
        char soa[IBP_DNS_NAME_MAX * 2 + 128];
        if (mname)
            snprintf(soa, sizeof soa, "%s hostmaster.%s. %" PRIu32 " 10800 3600 604800 %" PRIu32,
                     mname, zn, o->serial, o->negative_ttl_s);
        else
            snprintf(soa, sizeof soa,
                     "ns1.%s. hostmaster.%s. %" PRIu32 " 10800 3600 604800 %" PRIu32, zn, zn,
                     o->serial, o->negative_ttl_s);
        z->zone_names[i] = strdup(zn);
        z->zone_soas[i] = strdup(soa);
        if (!z->zone_names[i] || !z->zone_soas[i])
            return IBP_E_NOMEM;
        z->zones[i] = (ibp_dns_zone){.name = z->zone_names[i],
                                     .id = (int)i + 1,
                                     .serial = o->serial,
                                     .soa = z->zone_soas[i],
                                     .soa_ttl_s = o->soa_ttl_s};
    }
    return IBP_OK;
}

ibp_status ibp_dns_zones_build(const ibp_dns_zones_opts *opts, ibp_dns_zones **out, ibp_err *err)
{
    if (!out)
        return ibp_err_set(err, IBP_E_INVAL, "dns zones: NULL out");
    ibp_dns_zones_opts o;
    if (opts)
        o = *opts;
    else
        ibp_dns_zones_opts_init(&o);
    raw_record *recs = NULL;
    size_t n = 0, cap = 0;
    strset zs = {0};
    char buf[IBP_DNS_NAME_MAX + 1];
    ibp_status st = parse_static(&o, &recs, &n, err);
    if (st != IBP_OK)
        return st;
    ibp_dns_zones *z = calloc(1, sizeof *z);
    if (!z)
        goto nomem;
    size_t hosts = o.network ? ibp_network_domain_count(o.network) : 0;

    /* Zones: explicit, NS owners, then the last two labels of whatever is left. */
    for (size_t i = 0; i < o.zone_count; i++) {
        if (!ibp_dns_name_normalize(o.zones[i], strlen(o.zones[i]), buf, sizeof buf)) {
            st = ibp_err_set(err, IBP_E_CONFIG, "dns zones: bad zone name \"%s\"", o.zones[i]);
            goto fail;
        }
        if (strset_add(&zs, buf))
            goto nomem;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(recs[i].qtype, "NS") == 0 && strset_add(&zs, recs[i].name))
            goto nomem;
    for (size_t i = 0; i < n + hosts; i++) {
        const char *name = buf;
        if (i < n)
            name = recs[i].name;
        else if (!host_name(ibp_network_domain_at(o.network, i - n), buf))
            continue;
        if (zone_of(zs.items, zs.count, name) < 0 && strset_add(&zs, last_two_labels(name)))
            goto nomem;
    }
    if (make_zones(z, &zs, recs, n, &o) != IBP_OK)
        goto nomem;

    /* Names: apexes, hosts, static owners; then the records, sorted by name. */
    for (size_t i = 0; i < z->zone_count; i++)
        if (!add_name(z, &cap, z->zone_names[i]))
            goto nomem;
    for (size_t i = 0; i < hosts; i++) {
        if (!host_name(ibp_network_domain_at(o.network, i), buf))
            continue;
        name_entry *e = add_name(z, &cap, buf);
        if (!e)
            goto nomem;
        e->host = (long)i;
        z->stats.dynamic_hosts++;
    }
    for (size_t i = 0; i < n; i++)
        if (!add_name(z, &cap, recs[i].name))
            goto nomem;
    merge_names(z);
    if (n > 1)
        qsort(recs, n, sizeof *recs, cmp_raw);
    z->records = calloc(n ? n : 1, sizeof *z->records);
    if (!z->records)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        name_entry *e = find_entry(z, recs[i].name);
        bool addr = strcmp(recs[i].qtype, "A") == 0 || strcmp(recs[i].qtype, "AAAA") == 0;
        if (e->host >= 0 && addr) {
            z->stats.shadowed++;
            continue;
        }
        if (e->rec_count == 0)
            e->rec_start = z->record_count;
        ibp_dns_record *r = &z->records[z->record_count++];
        r->qname = e->name;
        memcpy(r->qtype, recs[i].qtype, sizeof r->qtype);
        r->content = recs[i].content;
        recs[i].content = NULL; /* owned by z now */
        r->ttl_s = recs[i].ttl_s;
        r->auth = recs[i].auth;
        e->rec_count++;
    }
    for (size_t i = 0; i < z->name_count; i++)
        z->names[i].zone = (size_t)zone_of(z->zone_names, z->zone_count, z->names[i].name);
    if (add_ents(z, &cap) != 0)
        goto nomem;
    z->stats.zones = z->zone_count;
    z->stats.names = z->name_count;
    z->stats.static_records = z->record_count;
    st = IBP_OK;
    goto done;
nomem:
    st = ibp_err_set(err, IBP_E_NOMEM, "dns zones: out of memory");
fail:
    ibp_dns_zones_free(z);
    z = NULL;
done:
    for (size_t i = 0; i < n; i++)
        free(recs[i].content);
    free(recs);
    strset_free(&zs);
    if (st == IBP_OK)
        *out = z;
    return st;
}

void ibp_dns_zones_free(ibp_dns_zones *z)
{
    if (!z)
        return;
    for (size_t i = 0; i < z->record_count; i++)
        free((char *)z->records[i].content);
    free(z->records);
    for (size_t i = 0; i < z->name_count; i++)
        free(z->names[i].name);
    free(z->names);
    for (size_t i = 0; i < z->zone_count; i++) {
        if (z->zone_names)
            free(z->zone_names[i]);
        if (z->zone_soas)
            free(z->zone_soas[i]);
    }
    free(z->zone_names);
    free(z->zone_soas);
    free(z->zones);
    free(z);
}

size_t ibp_dns_zones_count(const ibp_dns_zones *z)
{
    return z ? z->zone_count : 0;
}

const ibp_dns_zone *ibp_dns_zones_at(const ibp_dns_zones *z, size_t i)
{
    return z && i < z->zone_count ? &z->zones[i] : NULL;
}

const ibp_dns_zone *ibp_dns_zones_find_zone(const ibp_dns_zones *z, const char *name)
{
    if (!z || !name)
        return NULL;
    char *key = (char *)name;
    char **hit = bsearch(&key, z->zone_names, z->zone_count, sizeof *z->zone_names, cmp_str);
    return hit ? &z->zones[hit - z->zone_names] : NULL;
}

static void fill_name(const ibp_dns_zones *z, const name_entry *e, ibp_dns_name *out)
{
    out->zone = &z->zones[e->zone];
    out->apex = strcmp(e->name, z->zone_names[e->zone]) == 0;
    out->records = e->rec_count ? &z->records[e->rec_start] : NULL;
    out->record_count = e->rec_count;
    out->host = e->host;
    out->ent = e->ent;
}

bool ibp_dns_zones_lookup(const ibp_dns_zones *z, const char *name, ibp_dns_name *out)
{
    if (!z || !name)
        return false;
    const name_entry *e = find_entry(z, name);
    if (!e)
        return false;
    fill_name(z, e, out);
    return true;
}

void ibp_dns_zones_each_name(const ibp_dns_zones *z, const ibp_dns_zone *zone,
                             bool (*fn)(const ibp_dns_name *n, const char *name, void *user),
                             void *user)
{
    if (!z || !zone)
        return;
    for (size_t i = 0; i < z->name_count; i++) {
        if (&z->zones[z->names[i].zone] != zone)
            continue;
        ibp_dns_name n;
        fill_name(z, &z->names[i], &n);
        if (!fn(&n, z->names[i].name, user))
            return;
    }
}

void ibp_dns_zones_stats_get(const ibp_dns_zones *z, ibp_dns_zones_stats *out)
{
    memset(out, 0, sizeof *out);
    if (z)
        *out = z->stats;
}
