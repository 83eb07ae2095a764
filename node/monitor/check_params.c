/* Check modules and their ExtraOptions (see ibp/check.h). Pure. */
#include "ibp/check.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

static const char *const MODULE_NAMES[IBP_CHECK_MODULE_COUNT] = {"tcp", "ping", "ssl", "wss",
                                                                 "ethrpc"};

const char *ibp_check_module_name(ibp_check_module m)
{
    return (unsigned)m < IBP_CHECK_MODULE_COUNT ? MODULE_NAMES[m] : "?";
}

bool ibp_check_module_parse(const char *name, ibp_check_module *out)
{
    for (int i = 0; name && i < IBP_CHECK_MODULE_COUNT; i++) {
        if (strcasecmp(name, MODULE_NAMES[i]) == 0) {
            *out = (ibp_check_module)i;
            return true;
        }
    }
    return false;
}

bool ibp_check_ip_literal(const char *s, bool *v6)
{
    unsigned char buf[sizeof(struct in6_addr)];
    if (!s)
        return false;
    if (inet_pton(AF_INET, s, buf) == 1) {
        *v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, s, buf) == 1) {
        *v6 = true;
        return true;
    }
    return false;
}

/* The module from the "module" option or the check's name (whole, or before the first '-'). */
static void pick_module(const char *check_name, const char *module_opt, ibp_check_params *p)
{
    if (module_opt) {
        snprintf(p->module_text, sizeof p->module_text, "module \"%s\"", module_opt);
        p->module_known = ibp_check_module_parse(module_opt, &p->module);
        return;
    }
    snprintf(p->module_text, sizeof p->module_text, "name \"%s\"", check_name);
    if (ibp_check_module_parse(check_name, &p->module)) {
        p->module_known = true;
        return;
    }
    char head[64];
    snprintf(head, sizeof head, "%s", check_name);
    char *dash = strchr(head, '-');
    if (dash) {
        *dash = '\0';
        p->module_known = ibp_check_module_parse(head, &p->module);
    }
}

static ibp_status bad(ibp_err *err, const char *check, const char *key, const char *what)
{
    return ibp_err_set(err, IBP_E_CONFIG, "check %s: ExtraOptions.%s: %s", check, key, what);
}

static ibp_status int_opt(json_t *root, const char *check, const char *key, int64_t min,
                          int64_t max, int64_t *out, ibp_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return IBP_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer %lld..%lld", (long long)min,
                 (long long)max);
        return bad(err, check, key, what);
    }
    *out = json_integer_value(v);
    return IBP_OK;
}

static ibp_status text_opt(json_t *root, const char *check, const char *key, char *out, size_t cap,
                           ibp_err *err)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return IBP_OK;
    if (!json_is_string(v) || json_string_length(v) >= cap)
        return bad(err, check, key, "expected a string (at most 255 bytes)");
    snprintf(out, cap, "%s", json_string_value(v));
    return IBP_OK;
}

static ibp_status port_of(json_t *v, const char *check, const char *key, unsigned *out,
                          ibp_err *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return bad(err, check, key, "expected a port 1..65535");
    *out = (unsigned)json_integer_value(v);
    return IBP_OK;
}

static ibp_status parse_ports(json_t *v, const char *check, ibp_check_params *p, ibp_err *err)
{
    if (!json_is_object(v))
        return bad(err, check, "ports", "expected an object of ports");
    size_t n = json_object_size(v);
    p->ports = calloc(n ? n : 1, sizeof *p->ports);
    if (!p->ports)
        return ibp_err_set(err, IBP_E_NOMEM, "check %s: out of memory", check);
    const char *k;
    json_t *pv;
    json_object_foreach(v, k, pv)
    {
        unsigned port = 0;
        if (port_of(pv, check, "ports", &port, err) != IBP_OK)
            return IBP_E_CONFIG;
        if (!(p->ports[p->port_count].member = strdup(k)))
            return ibp_err_set(err, IBP_E_NOMEM, "check %s: out of memory", check);
        p->ports[p->port_count++].port = port;
    }
    return IBP_OK;
}

static ibp_status parse_root(const char *check, json_t *root, ibp_check_params *p, ibp_err *err)
{
    json_t *v = json_object_get(root, "module");
    if (v && !json_is_string(v))
        return bad(err, check, "module", "expected a module name (tcp, ping, ssl, wss, ethrpc)");
    pick_module(check, v ? json_string_value(v) : NULL, p);
    if ((v = json_object_get(root, "port")) && port_of(v, check, "port", &p->port, err) != IBP_OK)
        return IBP_E_CONFIG;
    ibp_status st = IBP_OK;
    if ((v = json_object_get(root, "ports")) && (st = parse_ports(v, check, p, err)) != IBP_OK)
        return st;
    if ((v = json_object_get(root, "connect"))) {
        if (!json_is_string(v) || !ibp_check_ip_literal(json_string_value(v), &p->connect_v6))
            return bad(err, check, "connect", "expected an IP address");
        snprintf(p->connect, sizeof p->connect, "%s", json_string_value(v));
    }
    if ((st = int_opt(root, check, "PingCount", 1, 100, &p->ping_count, err)) ||
        (st = int_opt(root, check, "PingInterval", 0, 10000, &p->ping_interval_ms, err)) ||
        (st = int_opt(root, check, "PingTimeout", 1, 60000, &p->ping_timeout_ms, err)) ||
        (st = int_opt(root, check, "PingSize", 0, 1400, &p->ping_size, err)) ||
        (st = int_opt(root, check, "PingTTL", 1, 255, &p->ping_ttl, err)) ||
        (st = int_opt(root, check, "MaxLatency", 1, 600000, &p->max_latency_ms, err)) ||
        (st =
             int_opt(root, check, "MinDaysUntilExpiry", 0, 3650, &p->min_days_until_expiry, err)) ||
        (st = int_opt(root, check, "MinimumPeers", 0, 100000, &p->minimum_peers, err)))
        return st;
    if ((v = json_object_get(root, "MaxPacketLoss"))) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100)
            return bad(err, check, "MaxPacketLoss", "expected a percentage 0..100");
        p->max_packet_loss_pct = json_number_value(v);
    }
    if ((v = json_object_get(root, "CheckArchive"))) {
        if (!json_is_boolean(v))
            return bad(err, check, "CheckArchive", "expected true or false");
        p->check_archive = json_is_true(v);
    }
    if ((st = text_opt(root, check, "GenesisStateRoot", p->genesis_state_root,
                       sizeof p->genesis_state_root, err)) ||
        (st = text_opt(root, check, "NetworkName", p->network_name, sizeof p->network_name, err)))
        return st;
    return IBP_OK;
}

ibp_status ibp_check_params_parse(const char *check_name, const char *extra_options,
                                  ibp_check_params *out, ibp_err *err)
{
    ibp_check_params p;
    memset(&p, 0, sizeof p);
    p.ping_count = 3;
    p.ping_interval_ms = 100;
    p.ping_timeout_ms = 1000;
    p.ping_size = 32;
    p.ping_ttl = 64;
    p.max_packet_loss_pct = 5.0;
    p.max_latency_ms = 800;
    p.min_days_until_expiry = 5;
    p.minimum_peers = 5;
    p.check_archive = true;
    const char *check = check_name ? check_name : "";
    json_error_t jerr;
    json_t *root = json_loads(extra_options && *extra_options ? extra_options : "{}", 0, &jerr);
    ibp_status st;
    if (!json_is_object(root))
        st = ibp_err_set(err, IBP_E_CONFIG, "check %s: ExtraOptions is not a JSON object", check);
    else
        st = parse_root(check, root, &p, err);
    json_decref(root);
    if (st != IBP_OK) {
        ibp_check_params_free(&p);
        return st;
    }
    *out = p;
    return IBP_OK;
}

void ibp_check_params_free(ibp_check_params *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->port_count; i++)
        free(p->ports[i].member);
    free(p->ports);
    p->ports = NULL;
    p->port_count = 0;
}

unsigned ibp_check_params_port(const ibp_check_params *p, const char *member)
{
    for (size_t i = 0; i < p->port_count; i++)
        if (strcmp(p->ports[i].member, member) == 0)
            return p->ports[i].port;
    return p->port;
}
