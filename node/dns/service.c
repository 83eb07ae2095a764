/*
 * The dns role's answering service; see ibp/dns_service.h. The only file of
 * node/dns that reads files and a clock: everything it builds is handed to
 * the pure parts as plain inputs.
 */
#include "ibp/dns_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ibp/atomic_file.h"
#include "ibp/dns_answer.h"
#include "ibp/dns_locator.h"
#include "ibp/dns_zones.h"
#include "ibp/log.h"

#define COMPONENT "dns"
#define STATIC_FILE_MAX (64u << 20)

struct ibp_dns_service {
    ibp_dns_zones *zones;
    ibp_dns_selector *selector;
    ibp_dns_locator *locator;
    ibp_dns_backend *backend;
    ibp_dns_unix *unix_conn;
    ibp_dns_http *http;
};

void ibp_dns_service_opts_init(ibp_dns_service_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->ttl_s = IBP_DNS_TTL_DEFAULT;
    opts->last_resort_ttl_s = IBP_DNS_LAST_RESORT_TTL_DEFAULT;
    opts->negative_ttl_s = IBP_DNS_NEGATIVE_TTL_DEFAULT;
    opts->http_address = "127.0.0.1";
    opts->http_threads = 4;
    opts->max_request_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
}

void ibp_dns_service_opts_from_config(ibp_dns_service_opts *o, const ibp_node_config *cfg,
                                      char *path, size_t cap)
{
    ibp_dns_service_opts_init(o);
    o->city_db = cfg->maxmind.city_db;
    o->static_records_file = cfg->dns.static_records_file;
    o->zones = (const char *const *)cfg->dns.zones.items;
    o->zone_count = cfg->dns.zones.count;
    o->country_overrides = (const char *const *)cfg->dns.country_overrides.items;
    o->country_override_count = cfg->dns.country_overrides.count;
    o->ttl_s = (uint32_t)cfg->dns.ttl_s;
    o->last_resort_ttl_s = (uint32_t)cfg->dns.last_resort_ttl_s;
    o->negative_ttl_s = (uint32_t)cfg->dns.negative_ttl_s;
    if (cfg->dns.unix_socket && *cfg->dns.unix_socket)
        snprintf(path, cap, "%s", cfg->dns.unix_socket);
    else
        snprintf(path, cap, "%s/%s", cfg->node.work_dir, IBP_DNS_SOCKET_NAME);
    o->unix_socket = path;
    if (cfg->dns.http_address)
        o->http_address = cfg->dns.http_address;
    o->http_port = (unsigned)cfg->dns.http_port;
    o->http_threads = (unsigned)cfg->dns.http_threads;
    o->max_request_bytes = (size_t)cfg->dns.max_request_bytes;
}

static ibp_status read_file(const char *path, char **out, size_t *len, ibp_err *err)
{
    ibp_err e;
    ibp_status st = ibp_file_read_all(path, STATIC_FILE_MAX, out, len, &e);
    if (st == IBP_OK)
        return IBP_OK;
    if (st == IBP_E_NOT_FOUND)
        st = IBP_E_IO; /* a configured file that is missing is an I/O error here */
    return ibp_err_set(err, st, "dns.static_records_file %s", e.msg);
}

static ibp_status build(ibp_dns_service *s, const ibp_dns_service_opts *o, ibp_err *err)
{
    char *text = NULL;
    size_t len = 0;
    ibp_status st;
    if (o->static_records_file && *o->static_records_file &&
        (st = read_file(o->static_records_file, &text, &len, err)) != IBP_OK)
        return st;
    ibp_dns_zones_opts zo;
    ibp_dns_zones_opts_init(&zo);
    zo.static_json = text;
    zo.static_len = len;
    zo.static_source = o->static_records_file;
    zo.network = o->network;
    zo.zones = o->zones;
    zo.zone_count = o->zone_count;
    zo.serial = (uint32_t)time(NULL);
    zo.negative_ttl_s = o->negative_ttl_s;
    st = ibp_dns_zones_build(&zo, &s->zones, err);
    free(text);
    if (st != IBP_OK)
        return st;

    ibp_dns_country_override *ovr =
        calloc(o->country_override_count ? o->country_override_count : 1, sizeof *ovr);
    if (!ovr)
        return ibp_err_set(err, IBP_E_NOMEM, "dns: out of memory");
    for (size_t i = 0; i < o->country_override_count; i++)
        if ((st = ibp_dns_country_override_parse(o->country_overrides[i], &ovr[i], err)) !=
            IBP_OK) {
            free(ovr);
            return st;
        }
    ibp_dns_answer_opts ao;
    ibp_dns_answer_opts_init(&ao);
    ao.ttl_s = o->ttl_s;
    ao.last_resort_ttl_s = o->last_resort_ttl_s;
    ao.overrides = ovr;
    ao.override_count = o->country_override_count;
    st = ibp_dns_selector_new(o->network, &ao, &s->selector, err);
    free(ovr);
    if (st != IBP_OK)
        return st;
    if ((st = ibp_dns_locator_open(o->city_db, &s->locator, err)) != IBP_OK)
        return st;
    ibp_dns_backend_opts bo;
    ibp_dns_backend_opts_init(&bo);
    bo.zones = s->zones;
    bo.selector = s->selector;
    bo.store = o->store;
    bo.locator = s->locator;
    bo.usage = o->usage;
    bo.max_request_bytes = o->max_request_bytes;
    return ibp_dns_backend_new(&bo, &s->backend, err);
}

static void on_reject(void *user, ibp_dns_reject why, const char *detail)
{
    ibp_dns_backend_count_reject(user, why, detail);
}

ibp_status ibp_dns_service_start(const ibp_dns_service_opts *o, ibp_dns_service **out, ibp_err *err)
{
    if (!o || !o->network || !o->store || !o->unix_socket || !out)
        return ibp_err_set(err, IBP_E_INVAL, "dns service needs a network, a store and a socket");
    ibp_dns_service *s = calloc(1, sizeof *s);
    if (!s)
        return ibp_err_set(err, IBP_E_NOMEM, "dns: out of memory");
    ibp_status st = build(s, o, err);
    ibp_dns_connector_opts co;
    ibp_dns_connector_opts_init(&co);
    co.handler = ibp_dns_backend_handler;
    co.on_reject = on_reject;
    co.user = s->backend;
    co.max_request_bytes = o->max_request_bytes;
    co.unix_path = o->unix_socket;
    co.http_address = o->http_address;
    co.http_port = o->http_port;
    co.http_threads = o->http_threads ? o->http_threads : 4;
    if (st == IBP_OK)
        st = ibp_dns_unix_start(&co, &s->unix_conn, err);
    if (st == IBP_OK && o->http_port)
        st = ibp_dns_http_start(&co, &s->http, err);
    if (st != IBP_OK) {
        ibp_dns_service_stop(s);
        return st;
    }
    ibp_dns_zones_stats zs;
    ibp_dns_zones_stats_get(s->zones, &zs);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "answering zones=%zu names=%zu static_records=%zu hosts=%zu shadowed=%zu "
            "unix=%s http_port=%u",
            zs.zones, zs.names, zs.static_records, zs.dynamic_hosts, zs.shadowed, o->unix_socket,
            ibp_dns_http_port(s->http));
    *out = s;
    return IBP_OK;
}

void ibp_dns_service_stop(ibp_dns_service *s)
{
    if (!s)
        return;
    ibp_dns_http_stop(s->http);
    ibp_dns_unix_stop(s->unix_conn);
    ibp_dns_backend_free(s->backend);
    ibp_dns_locator_close(s->locator);
    ibp_dns_selector_free(s->selector);
    ibp_dns_zones_free(s->zones);
    free(s);
}

ibp_dns_backend *ibp_dns_service_backend(ibp_dns_service *s)
{
    return s ? s->backend : NULL;
}

unsigned ibp_dns_service_http_port(const ibp_dns_service *s)
{
    return s ? ibp_dns_http_port(s->http) : 0;
}

void ibp_dns_service_stats_json(ibp_dns_service *s, json_t *obj)
{
    if (!s || !obj)
        return;
    ibp_dns_backend_stats b;
    ibp_dns_backend_stats_get(s->backend, &b);
    ibp_dns_connector_stats u, h;
    ibp_dns_unix_stats_get(s->unix_conn, &u);
    ibp_dns_http_stats_get(s->http, &h);
    json_t *rej = json_object();
    for (int i = 1; rej && i < IBP_DNS_REJECT_COUNT; i++)
        json_object_set_new(rej, ibp_dns_reject_name((ibp_dns_reject)i),
                            json_integer((json_int_t)b.rejected[i]));
    json_t *d = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:{s:I,s:I,s:I},s:{s:I,s:I,s:I,s:I}}", "requests",
        (json_int_t)b.requests, "lookups", (json_int_t)b.lookups, "dynamic_answers",
        (json_int_t)b.dynamic_answers, "last_resort_answers", (json_int_t)b.last_resort_answers,
        "country_answers", (json_int_t)b.country_answers, "no_member_answers",
        (json_int_t)b.no_member_answers, "hits", (json_int_t)b.hits, "hit_errors",
        (json_int_t)b.hit_errors, "rejected", rej ? rej : json_null(), "unix", "connections",
        (json_int_t)u.connections, "requests", (json_int_t)u.requests, "too_large",
        (json_int_t)u.too_large, "http", "connections", (json_int_t)h.connections, "requests",
        (json_int_t)h.requests, "too_large", (json_int_t)h.too_large, "http_errors",
        (json_int_t)h.http_errors);
    if (d)
        json_object_set_new(obj, "dns", d);
}
