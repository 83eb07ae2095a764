/* The targets of the network's checks (see ibp/check_plan.h). Pure. */
#include "ibp/check_plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ibp/vec.h"

typedef struct plan_builder {
    ibp_check_plan *plan;
    size_t cap, skip_cap;
} plan_builder;

static char *dup_s(const char *s)
{
    return strdup(s ? s : "");
}

void ibp_check_target_free(ibp_check_target *t)
{
    if (!t)
        return;
    free(t->check);
    free(t->member);
    free(t->domain);
    free(t->endpoint);
    free(t->host);
    free(t->path);
    free(t->addr);
    free(t->network_name);
    free(t->options);
    ibp_check_params_free(&t->params);
    free(t);
}

void ibp_check_plan_free(ibp_check_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->count; i++)
        ibp_check_target_free(plan->targets[i]);
    free(plan->targets);
    for (size_t i = 0; i < plan->skip_count; i++) {
        free(plan->skips[i].check);
        free(plan->skips[i].member);
        free(plan->skips[i].reason);
    }
    free(plan->skips);
    memset(plan, 0, sizeof *plan);
}

ibp_result_key ibp_check_target_key(const ibp_check_target *t)
{
    return (ibp_result_key){.type = t->type,
                            .check_name = t->check,
                            .member = t->member,
                            .domain = t->domain,
                            .endpoint = t->endpoint,
                            .ipv6 = t->ipv6};
}

bool ibp_check_target_same(const ibp_check_target *a, const ibp_check_target *b)
{
    ibp_result_key ka = ibp_check_target_key(a), kb = ibp_check_target_key(b);
    return ibp_result_key_cmp(&ka, &kb) == 0 && a->module == b->module && a->port == b->port &&
           a->tls == b->tls && a->timeout_ms == b->timeout_ms && a->interval_ms == b->interval_ms &&
           strcmp(a->addr, b->addr) == 0 && strcmp(a->host, b->host) == 0 &&
           strcmp(a->path, b->path) == 0 && strcmp(a->network_name, b->network_name) == 0 &&
           strcmp(a->options, b->options) == 0;
}

static ibp_status skip(plan_builder *b, const char *check, const char *member, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static ibp_status skip(plan_builder *b, const char *check, const char *member, const char *fmt, ...)
{
    ibp_check_plan *p = b->plan;
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < p->skip_count; i++)
        if (strcmp(p->skips[i].check, check) == 0 && strcmp(p->skips[i].member, member) == 0 &&
            strcmp(p->skips[i].reason, reason) == 0)
            return IBP_OK;
    ibp_check_skip *grown = ibp_grow(p->skips, &b->skip_cap, p->skip_count + 1, sizeof *grown);
    if (!grown)
        return IBP_E_NOMEM;
    p->skips = grown;
    ibp_check_skip *s = &p->skips[p->skip_count];
    s->check = dup_s(check);
    s->member = dup_s(member);
    s->reason = dup_s(reason);
    if (!s->check || !s->member || !s->reason) {
        free(s->check);
        free(s->member);
        free(s->reason);
        return IBP_E_NOMEM;
    }
    p->skip_count++;
    return IBP_OK;
}

/* Adds a copy of t unless its key is there already. */
static ibp_status add(plan_builder *b, const ibp_check_target *t)
{
    ibp_check_plan *p = b->plan;
    ibp_result_key k = ibp_check_target_key(t);
    for (size_t i = 0; i < p->count; i++) {
        ibp_result_key o = ibp_check_target_key(p->targets[i]);
        if (ibp_result_key_cmp(&k, &o) == 0)
            return IBP_OK;
    }
    ibp_check_target **ts = ibp_grow(p->targets, &b->cap, p->count + 1, sizeof *ts);
    if (!ts)
        return IBP_E_NOMEM;
    p->targets = ts;
    ibp_check_target *n = calloc(1, sizeof *n);
    if (!n)
        return IBP_E_NOMEM;
    *n = *t;
    n->params.ports = NULL;
    n->params.port_count = 0;
    n->check = dup_s(t->check);
    n->member = dup_s(t->member);
    n->domain = dup_s(t->domain);
    n->endpoint = dup_s(t->endpoint);
    n->host = dup_s(t->host);
    n->path = dup_s(t->path);
    n->addr = dup_s(t->addr);
    n->network_name = dup_s(t->network_name);
    n->options = dup_s(t->options);
    if (!n->check || !n->member || !n->domain || !n->endpoint || !n->host || !n->path || !n->addr ||
        !n->network_name || !n->options) {
        ibp_check_target_free(n);
        return IBP_E_NOMEM;
    }
    p->targets[p->count++] = n;
    return IBP_OK;
}

/* One target per family the member (or "connect") has an address in. */
static ibp_status add_families(plan_builder *b, ibp_check_target *t, const ibp_network_member *m)
{
    const ibp_check_params *o = &t->params;
    if (o->connect[0]) {
        t->addr = (char *)o->connect;
        t->ipv6 = o->connect_v6;
        return add(b, t);
    }
    if (!m->ipv4[0] && !m->ipv6[0])
        return skip(b, t->check, m->name, "member has no ServiceIPv4 or ServiceIPv6 to dial");
    ibp_status st = IBP_OK;
    if (m->ipv4[0]) {
        t->addr = m->ipv4;
        t->ipv6 = false;
        st = add(b, t);
    }
    if (st == IBP_OK && m->ipv6[0]) {
        t->addr = m->ipv6;
        t->ipv6 = true;
        st = add(b, t);
    }
    return st;
}

static unsigned scheme_port(const char *scheme)
{
    if (strcmp(scheme, "wss") == 0 || strcmp(scheme, "https") == 0)
        return 443;
    if (strcmp(scheme, "ws") == 0 || strcmp(scheme, "http") == 0)
        return 80;
    return 0;
}

static bool scheme_tls(const char *scheme)
{
    return strcmp(scheme, "wss") == 0 || strcmp(scheme, "https") == 0;
}

static ibp_status plan_domain(plan_builder *b, const ibp_network *net, ibp_check_target *t,
                              const ibp_network_member *m, const char *domain)
{
    const ibp_network_domain *d = ibp_network_domain_find(net, domain);
    unsigned mport = ibp_check_params_port(&t->params, m->name);
    unsigned port = mport;
    if (t->module == IBP_CHECK_MODULE_SSL && !port)
        port = 443;
    for (size_t ui = 0; d && !port && ui < d->url_count; ui++) {
        ibp_network_url u;
        if (ibp_network_url_parse(d->urls[ui], &u, NULL) == IBP_OK)
            port = u.port;
    }
    if (!port && d && d->url_count) {
        ibp_network_url u;
        if (ibp_network_url_parse(d->urls[0], &u, NULL) == IBP_OK)
            port = scheme_port(u.scheme);
    }
    if (!port && t->module == IBP_CHECK_MODULE_TCP)
        return skip(b, t->check, m->name, "no port for domain %s", domain);
    t->type = IBP_CHECK_DOMAIN;
    t->domain = (char *)domain;
    t->host = (char *)domain;
    t->endpoint = "";
    t->path = "/";
    t->port = port;
    t->tls = t->module == IBP_CHECK_MODULE_SSL;
    return add_families(b, t, m);
}

static ibp_status plan_endpoint(plan_builder *b, ibp_check_target *t, const ibp_network_member *m,
                                const ibp_network_service *svc, const char *url)
{
    ibp_network_url u;
    ibp_err perr = {0};
    if (ibp_network_url_parse(url, &u, &perr) != IBP_OK)
        return skip(b, t->check, m->name, "endpoint %.120s: %s", url, perr.msg);
    bool eth = strcasecmp(svc->type, "ETHRPC") == 0;
    if ((t->module == IBP_CHECK_MODULE_WSS && eth) ||
        (t->module == IBP_CHECK_MODULE_ETHRPC && !eth))
        return IBP_OK; /* not this module's kind of service: not a target at all */
    unsigned mport = ibp_check_params_port(&t->params, m->name);
    unsigned port = mport ? mport : u.port ? u.port : scheme_port(u.scheme);
    if (!port)
        return skip(b, t->check, m->name, "no port for endpoint %.120s", url);
    char path[IBP_URL_MAX + 2];
    const char *rest = url + u.path_offset;
    size_t plen = strcspn(rest, "#");
    if (plen == 0 || rest[0] == '?')
        snprintf(path, sizeof path, "/%.*s", (int)plen, rest);
    else
        snprintf(path, sizeof path, "%.*s", (int)plen, rest);
    t->type = IBP_CHECK_ENDPOINT;
    t->domain = u.host;
    t->host = u.host;
    t->endpoint = (char *)url;
    t->path = path;
    t->port = port;
    t->tls = scheme_tls(u.scheme) || t->module == IBP_CHECK_MODULE_SSL;
    t->network_name = svc->network_name;
    ibp_status st = add_families(b, t, m);
    t->network_name = "";
    return st;
}

static ibp_status plan_member(plan_builder *b, const ibp_network *net, ibp_check_target *t,
                              const ibp_network_check *chk, const ibp_network_member *m)
{
    ibp_check_module mod = t->module;
    t->member = m->name;
    if (chk->type == IBP_NETWORK_CHECK_SITE) {
        if (mod != IBP_CHECK_MODULE_PING && mod != IBP_CHECK_MODULE_TCP)
            return skip(b, chk->name, "", "module %s does not run site checks",
                        ibp_check_module_name(mod));
        t->port = ibp_check_params_port(&t->params, m->name);
        if (mod == IBP_CHECK_MODULE_TCP && !t->port)
            return skip(b, chk->name, m->name,
                        "tcp site check without a port (ExtraOptions port or ports)");
        t->type = IBP_CHECK_SITE;
        t->domain = t->endpoint = t->host = "";
        t->path = "/";
        return add_families(b, t, m);
    }
    if (chk->type == IBP_NETWORK_CHECK_DOMAIN &&
        (mod == IBP_CHECK_MODULE_WSS || mod == IBP_CHECK_MODULE_ETHRPC))
        return skip(b, chk->name, "", "module %s does not run domain checks",
                    ibp_check_module_name(mod));
    if (chk->type == IBP_NETWORK_CHECK_ENDPOINT && mod == IBP_CHECK_MODULE_PING)
        return skip(b, chk->name, "", "module ping does not run endpoint checks");
    ibp_status st = IBP_OK;
    for (size_t si = 0; si < m->service_count && st == IBP_OK; si++) {
        const ibp_network_service *svc = ibp_network_service_find(net, m->services[si]);
        if (!svc || !svc->active)
            continue;
        if (chk->type == IBP_NETWORK_CHECK_DOMAIN) {
            for (size_t di = 0; di < svc->domain_count && st == IBP_OK; di++)
                st = plan_domain(b, net, t, m, svc->domains[di]);
            continue;
        }
        for (size_t pi = 0; pi < svc->provider_count && st == IBP_OK; pi++) {
            const ibp_network_provider *pr = &svc->providers[pi];
            for (size_t ui = 0; ui < pr->rpc_url_count && st == IBP_OK; ui++)
                st = plan_endpoint(b, t, m, svc, pr->rpc_urls[ui]);
        }
    }
    return st;
}

static ibp_status plan_check(plan_builder *b, const ibp_network *net, const ibp_network_check *chk,
                             ibp_err *err)
{
    ibp_check_target t = {0};
    ibp_status st = ibp_check_params_parse(chk->name, chk->extra_options, &t.params, err);
    if (st != IBP_OK)
        return st;
    if (!t.params.module_known) {
        st = skip(b, chk->name, "", "unknown check module (%s; known: tcp, ping, ssl, wss, ethrpc)",
                  t.params.module_text);
        ibp_check_params_free(&t.params);
        return st;
    }
    t.module = t.params.module;
    t.check = chk->name;
    t.options = chk->extra_options;
    t.network_name = "";
    t.timeout_ms = chk->timeout_s * 1000;
    t.interval_ms = chk->min_interval_s * 1000;
    for (size_t mi = 0; mi < ibp_network_member_count(net) && st == IBP_OK; mi++) {
        const ibp_network_member *m = ibp_network_member_at(net, mi);
        if (m->active)
            st = plan_member(b, net, &t, chk, m);
    }
    ibp_check_params_free(&t.params);
    return st;
}

ibp_status ibp_check_plan_build(const ibp_network *net, ibp_check_plan *out, ibp_err *err)
{
    if (!net || !out)
        return ibp_err_set(err, IBP_E_INVAL, "checks: no network");
    ibp_check_plan plan = {0};
    plan_builder b = {.plan = &plan};
    ibp_status st = IBP_OK;
    for (size_t ci = 0; ci < ibp_network_check_count(net) && st == IBP_OK; ci++) {
        const ibp_network_check *chk = ibp_network_check_at(net, ci);
        if (chk->enabled)
            st = plan_check(&b, net, chk, err);
    }
    if (st != IBP_OK) {
        if (st == IBP_E_NOMEM)
            ibp_err_set(err, st, "checks: out of memory building the targets");
        ibp_check_plan_free(&plan);
        return st;
    }
    *out = plan;
    return IBP_OK;
}
