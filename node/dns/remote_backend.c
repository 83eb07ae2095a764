/*
 * The PowerDNS remote backend protocol; see ibp/dns_backend.h.
 */
#include "ibp/dns_backend.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ibp/log.h"

#define COMPONENT "dns-backend"

struct ibp_dns_backend {
    ibp_dns_backend_opts opts;
    _Atomic uint64_t requests, lookups, dynamic_answers, last_resort_answers, country_answers,
        no_member_answers, hits, hit_errors;
    _Atomic uint64_t rejected[IBP_DNS_REJECT_COUNT];
};

/* Lines a hostile client can cause: limited per thread (ibp_log_limit is not thread-safe). */
static _Thread_local ibp_log_limit reject_limit;

#define INC(field) atomic_fetch_add_explicit(&(field), 1, memory_order_relaxed)

void ibp_dns_backend_opts_init(ibp_dns_backend_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->max_request_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
}

ibp_status ibp_dns_backend_new(const ibp_dns_backend_opts *opts, ibp_dns_backend **out,
                               ibp_err *err)
{
    if (!opts || !opts->zones || !opts->selector || !opts->store || !out)
        return ibp_err_set(err, IBP_E_INVAL, "dns backend needs zones, a selector and a store");
    ibp_dns_backend *b = calloc(1, sizeof *b);
    if (!b)
        return ibp_err_set(err, IBP_E_NOMEM, "dns backend: out of memory");
    b->opts = *opts;
    if (!b->opts.max_request_bytes)
        b->opts.max_request_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
    *out = b;
    return IBP_OK;
}

void ibp_dns_backend_free(ibp_dns_backend *b)
{
    free(b);
}

void ibp_dns_backend_count_reject(ibp_dns_backend *b, ibp_dns_reject why, const char *detail)
{
    if (why <= IBP_DNS_REJECT_NONE || why >= IBP_DNS_REJECT_COUNT)
        return;
    INC(b->rejected[why]);
    IBP_LOG_LIMITED(&reject_limit, IBP_LOG_WARN, COMPONENT, "request refused reason=%s %s",
                    ibp_dns_reject_name(why), detail ? detail : "");
}

void ibp_dns_backend_stats_get(const ibp_dns_backend *b, ibp_dns_backend_stats *out)
{
    ibp_dns_backend *m = (ibp_dns_backend *)b;
    memset(out, 0, sizeof *out);
    out->requests = atomic_load(&m->requests);
    out->lookups = atomic_load(&m->lookups);
    out->dynamic_answers = atomic_load(&m->dynamic_answers);
    out->last_resort_answers = atomic_load(&m->last_resort_answers);
    out->country_answers = atomic_load(&m->country_answers);
    out->no_member_answers = atomic_load(&m->no_member_answers);
    out->hits = atomic_load(&m->hits);
    out->hit_errors = atomic_load(&m->hit_errors);
    for (int i = 0; i < IBP_DNS_REJECT_COUNT; i++)
        out->rejected[i] = atomic_load(&m->rejected[i]);
}

/* ---- writing records ------------------------------------------------------- */

typedef struct writer {
    ibp_dns_buf *out;
    size_t count;
} writer;

static void record(writer *w, const char *qname, const char *qtype, const char *content,
                   uint32_t ttl, int domain_id, int scope_mask)
{
    ibp_dns_buf *b = w->out;
    ibp_dns_buf_puts(b, w->count++ ? ",{\"qtype\":" : "{\"qtype\":");
    ibp_dns_buf_json_str(b, qtype);
    ibp_dns_buf_puts(b, ",\"qname\":\"");
    ibp_dns_buf_puts(b, qname); /* normalised: [a-z0-9_*-.] only */
    ibp_dns_buf_puts(b, ".\",\"content\":");
    ibp_dns_buf_json_str(b, content);
    ibp_dns_buf_printf(b, ",\"ttl\":%" PRIu32 ",\"auth\":true,\"domain_id\":%d", ttl, domain_id);
    if (scope_mask > 0)
        ibp_dns_buf_printf(b, ",\"scopeMask\":%d", scope_mask);
    ibp_dns_buf_puts(b, "}");
}

static void soa(writer *w, const ibp_dns_zone *z)
{
    record(w, z->name, "SOA", z->soa, z->soa_ttl_s, z->id, 0);
}

/* ---- the client ------------------------------------------------------------ */

typedef struct client_info {
    char address[64]; /* "" when PowerDNS passed none */
    int bits;         /* prefix length of real-remote; 0 when unknown */
    bool ipv6;
} client_info;

/* real-remote "a.b.c.d/nn" (the ECS subnet, or the resolver /32), else remote. */
static void client_of(const ibp_dns_request *r, client_info *c)
{
    memset(c, 0, sizeof *c);
    const char *src = r->real_remote[0] ? r->real_remote : r->remote;
    size_t n = strcspn(src, "/%");
    if (n >= sizeof c->address)
        return;
    memcpy(c->address, src, n);
    c->address[n] = '\0';
    c->ipv6 = strchr(c->address, ':') != NULL;
    if (src[n] == '/')
        c->bits = atoi(src + n + 1);
    if (c->bits <= 0 || c->bits > (c->ipv6 ? 128 : 32))
        c->bits = c->ipv6 ? 128 : 32;
    if (strcmp(c->address, "0.0.0.0") == 0 || strcmp(c->address, "::") == 0)
        c->address[0] = '\0';
}

/* ---- methods ---------------------------------------------------------------- */

static bool want(const char *qtype, const char *type)
{
    return strcmp(qtype, "ANY") == 0 || strcmp(qtype, type) == 0;
}

/* A and AAAA of a host name for one client; counts the hit. */
static void dynamic(ibp_dns_backend *b, writer *w, const ibp_dns_name *n, const char *qname,
                    const ibp_dns_request *r)
{
    bool any = strcmp(r->qtype, "ANY") == 0;
    bool fam[2] = {any || strcmp(r->qtype, "A") == 0, any || strcmp(r->qtype, "AAAA") == 0};
    if (!fam[0] && !fam[1])
        return;
    client_info ci;
    client_of(r, &ci);
    ibp_dns_client client;
    ibp_dns_locator_locate(b->opts.locator, ci.address[0] ? ci.address : NULL, &client);
    ibp_dns_pick pick[2] = {{0}, {0}};
    for (int f = 0; f < 2; f++) {
        if (!fam[f])
            continue;
        ibp_dns_select(b->opts.selector, b->opts.store, (size_t)n->host, f == 1, &client, &pick[f]);
        if (pick[f].kind != IBP_DNS_PICK_NONE)
            record(w, qname, f ? "AAAA" : "A", pick[f].address, pick[f].ttl_s, n->zone->id,
                   ci.bits);
    }
    INC(b->dynamic_answers);
    bool lr = pick[0].kind == IBP_DNS_PICK_LAST_RESORT || pick[1].kind == IBP_DNS_PICK_LAST_RESORT;
    bool co = pick[0].kind == IBP_DNS_PICK_COUNTRY || pick[1].kind == IBP_DNS_PICK_COUNTRY;
    if (lr)
        INC(b->last_resort_answers);
    if (co)
        INC(b->country_answers);
    int hf = any ? (ci.ipv6 ? 1 : 0) : (fam[1] ? 1 : 0);
    if (pick[hf].kind == IBP_DNS_PICK_NONE && fam[!hf] && pick[!hf].kind != IBP_DNS_PICK_NONE)
        hf = !hf;
    if (pick[hf].kind == IBP_DNS_PICK_NONE) {
        INC(b->no_member_answers);
        return;
    }
    if (!b->opts.usage || !ci.address[0])
        return;
    if (ibp_usage_record_dns_hit(b->opts.usage, hf == 1, ci.address, qname, pick[hf].member) ==
        IBP_OK)
        INC(b->hits);
    else
        INC(b->hit_errors);
}

static void lookup(ibp_dns_backend *b, const ibp_dns_request *r, ibp_dns_buf *out)
{
    INC(b->lookups);
    char qname[IBP_DNS_NAME_MAX + 1], qtype[16];
    ibp_dns_name n;
    size_t i;
    for (i = 0; r->qtype[i] && i < sizeof qtype - 1; i++)
        qtype[i] =
            (char)(r->qtype[i] >= 'a' && r->qtype[i] <= 'z' ? r->qtype[i] - 32 : r->qtype[i]);
    qtype[i] = '\0';
    writer w = {out, 0};
    ibp_dns_buf_puts(out, "{\"result\":[");
    if (ibp_dns_name_normalize(r->qname, strlen(r->qname), qname, sizeof qname) &&
        ibp_dns_zones_lookup(b->opts.zones, qname, &n)) {
        if (n.apex && want(qtype, "SOA"))
            soa(&w, n.zone);
        for (size_t k = 0; k < n.record_count; k++)
            if (want(qtype, n.records[k].qtype))
                record(&w, qname, n.records[k].qtype, n.records[k].content, n.records[k].ttl_s,
                       n.zone->id, 0);
        if (n.host >= 0)
            dynamic(b, &w, &n, qname, r);
        /* Names exist below: PowerDNS answers NODATA (its ENT type), not NXDOMAIN. */
        if (n.ent && strcmp(qtype, "ANY") == 0)
            record(&w, qname, "ENT", "", 0, n.zone->id, 0);
    }
    ibp_dns_buf_puts(out, "]}");
}

static void zone_json(ibp_dns_buf *out, const ibp_dns_zone *z)
{
    ibp_dns_buf_printf(out,
                       "{\"id\":%d,\"zone\":\"%s.\",\"masters\":[],\"notified_serial\":%" PRIu32
                       ",\"serial\":%" PRIu32 ",\"last_check\":0,\"kind\":\"native\"}",
                       z->id, z->name, z->serial, z->serial);
}

static const ibp_dns_zone *zone_named(ibp_dns_backend *b, const char *name)
{
    char nn[IBP_DNS_NAME_MAX + 1];
    if (!ibp_dns_name_normalize(name, strlen(name), nn, sizeof nn))
        return NULL;
    return ibp_dns_zones_find_zone(b->opts.zones, nn);
}

typedef struct list_ctx {
    ibp_dns_backend *b;
    writer *w;
} list_ctx;

/* Every eligible member of a host and family (else the not-overridden candidates). */
static void list_host(ibp_dns_backend *b, writer *w, const ibp_dns_name *n, const char *name)
{
    for (int f = 0; f < 2; f++) {
        const ibp_network_member *const *m;
        size_t count = ibp_dns_selector_candidates(b->opts.selector, (size_t)n->host, f, &m);
        size_t shown = 0;
        for (int pass = 0; pass < 2 && shown == 0; pass++) {
            for (size_t i = 0; i < count; i++) {
                bool ok = pass == 0 ? ibp_store_member_online(b->opts.store, name, m[i]->name, f)
                                    : !ibp_store_member_overridden(b->opts.store, m[i]->name);
                if (!ok)
                    continue;
                record(w, name, f ? "AAAA" : "A", f ? m[i]->ipv6 : m[i]->ipv4,
                       ibp_dns_selector_ttl(b->opts.selector), n->zone->id, 0);
                shown++;
            }
        }
    }
}

static bool list_name(const ibp_dns_name *n, const char *name, void *user)
{
    list_ctx *c = user;
    for (size_t k = 0; k < n->record_count; k++)
        record(c->w, name, n->records[k].qtype, n->records[k].content, n->records[k].ttl_s,
               n->zone->id, 0);
    if (n->host >= 0)
        list_host(c->b, c->w, n, name);
    return true;
}

static void list(ibp_dns_backend *b, const ibp_dns_request *r, ibp_dns_buf *out)
{
    const ibp_dns_zone *z = r->zonename[0] ? zone_named(b, r->zonename) : NULL;
    if (!z && r->domain_id > 0)
        z = ibp_dns_zones_at(b->opts.zones, (size_t)(r->domain_id - 1));
    if (!z) {
        ibp_dns_buf_puts(out, "{\"result\":false}");
        return;
    }
    writer w = {out, 0};
    ibp_dns_buf_puts(out, "{\"result\":[");
    soa(&w, z);
    list_ctx c = {b, &w};
    ibp_dns_zones_each_name(b->opts.zones, z, list_name, &c);
    ibp_dns_buf_puts(out, "]}");
}

static void answer(ibp_dns_backend *b, const ibp_dns_request *r, ibp_dns_buf *out)
{
    const ibp_dns_zone *z;
    switch (r->method) {
    case IBP_DNS_M_INITIALIZE:
        ibp_dns_buf_puts(out, "{\"result\":true}");
        break;
    case IBP_DNS_M_LOOKUP:
        lookup(b, r, out);
        break;
    case IBP_DNS_M_LIST:
        list(b, r, out);
        break;
    case IBP_DNS_M_GET_ALL_DOMAINS:
        ibp_dns_buf_puts(out, "{\"result\":[");
        for (size_t i = 0; i < ibp_dns_zones_count(b->opts.zones); i++) {
            if (i)
                ibp_dns_buf_puts(out, ",");
            zone_json(out, ibp_dns_zones_at(b->opts.zones, i));
        }
        ibp_dns_buf_puts(out, "]}");
        break;
    case IBP_DNS_M_GET_DOMAIN_INFO:
        if ((z = zone_named(b, r->name))) {
            ibp_dns_buf_puts(out, "{\"result\":");
            zone_json(out, z);
            ibp_dns_buf_puts(out, "}");
        } else {
            ibp_dns_buf_puts(out, "{\"result\":false}");
        }
        break;
    case IBP_DNS_M_GET_ALL_DOMAIN_METADATA:
        ibp_dns_buf_puts(out, zone_named(b, r->name) ? "{\"result\":{}}" : "{\"result\":false}");
        break;
    case IBP_DNS_M_GET_DOMAIN_METADATA:
    case IBP_DNS_M_GET_DOMAIN_KEYS:
        ibp_dns_buf_puts(out, zone_named(b, r->name) ? "{\"result\":[]}" : "{\"result\":false}");
        break;
    default:
        ibp_dns_buf_puts(out, "{\"result\":false}");
        break;
    }
}

void ibp_dns_backend_handle(ibp_dns_backend *b, const char *req, size_t len, ibp_dns_buf *out)
{
    ibp_dns_buf_reset(out);
    INC(b->requests);
    ibp_dns_request r;
    ibp_dns_reject why = ibp_dns_request_parse(req, len, b->opts.max_request_bytes, &r);
    if (why != IBP_DNS_REJECT_NONE) {
        char detail[96];
        snprintf(detail, sizeof detail, "method=%.64s bytes=%zu", r.method_name, len);
        ibp_dns_backend_count_reject(b, why, detail);
        ibp_dns_buf_puts(out, "{\"result\":false}");
        return;
    }
    answer(b, &r, out);
    if (out->failed) { /* out of memory: still a well-formed answer if the buffer exists */
        ibp_dns_buf_reset(out);
        ibp_dns_buf_puts(out, "{\"result\":false}");
    }
}

void ibp_dns_backend_handler(void *user, const char *req, size_t len, ibp_dns_buf *out)
{
    ibp_dns_backend_handle(user, req, len, out);
}
