/*
 * Parsing PowerDNS remote backend requests; see ibp/dns_request.h.
 */
#include "ibp/dns_request.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    ibp_dns_method method;
} methods[] = {
    {"lookup", IBP_DNS_M_LOOKUP},
    {"initialize", IBP_DNS_M_INITIALIZE},
    {"list", IBP_DNS_M_LIST},
    {"getAllDomains", IBP_DNS_M_GET_ALL_DOMAINS},
    {"getDomainInfo", IBP_DNS_M_GET_DOMAIN_INFO},
    {"getAllDomainMetadata", IBP_DNS_M_GET_ALL_DOMAIN_METADATA},
    {"getDomainMetadata", IBP_DNS_M_GET_DOMAIN_METADATA},
    {"getDomainKeys", IBP_DNS_M_GET_DOMAIN_KEYS},
};

const char *ibp_dns_reject_name(ibp_dns_reject r)
{
    switch (r) {
    case IBP_DNS_REJECT_MALFORMED:
        return "malformed";
    case IBP_DNS_REJECT_PARAMS:
        return "bad_params";
    case IBP_DNS_REJECT_TOO_LARGE:
        return "too_large";
    case IBP_DNS_REJECT_UNKNOWN:
        return "unknown_method";
    default:
        return "";
    }
}

/* Copies parameter key (a string) into buf. 0 ok or absent (when optional), -1 bad. */
static int get_str(const json_t *params, const char *key, char *buf, size_t cap, bool required)
{
    const json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return required ? -1 : 0;
    if (!json_is_string(v))
        return -1;
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n >= cap || strlen(s) != n) /* too long, or an embedded NUL */
        return -1;
    memcpy(buf, s, n + 1);
    return 0;
}

static int get_int(const json_t *params, const char *key, int64_t *out)
{
    const json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return -1;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static ibp_dns_reject parse_params(const json_t *p, ibp_dns_request *out)
{
    int bad = 0;
    switch (out->method) {
    case IBP_DNS_M_LOOKUP:
        bad |= get_str(p, "qname", out->qname, sizeof out->qname, true);
        bad |= get_str(p, "qtype", out->qtype, sizeof out->qtype, true);
        bad |= get_str(p, "remote", out->remote, sizeof out->remote, false);
        bad |= get_str(p, "local", out->local, sizeof out->local, false);
        bad |= get_str(p, "real-remote", out->real_remote, sizeof out->real_remote, false);
        bad |= get_int(p, "zone-id", &out->zone_id);
        break;
    case IBP_DNS_M_LIST:
        bad |= get_str(p, "zonename", out->zonename, sizeof out->zonename, false);
        bad |= get_int(p, "domain_id", &out->domain_id);
        if (!out->zonename[0] && out->domain_id < 0)
            bad = -1;
        break;
    case IBP_DNS_M_GET_DOMAIN_INFO:
    case IBP_DNS_M_GET_ALL_DOMAIN_METADATA:
    case IBP_DNS_M_GET_DOMAIN_KEYS:
        bad |= get_str(p, "name", out->name, sizeof out->name, true);
        break;
    case IBP_DNS_M_GET_DOMAIN_METADATA:
        bad |= get_str(p, "name", out->name, sizeof out->name, true);
        bad |= get_str(p, "kind", out->kind, sizeof out->kind, true);
        break;
    default:
        break;
    }
    return bad ? IBP_DNS_REJECT_PARAMS : IBP_DNS_REJECT_NONE;
}

ibp_dns_reject ibp_dns_request_parse(const char *req, size_t len, size_t max_bytes,
                                     ibp_dns_request *out)
{
    memset(out, 0, sizeof *out);
    out->zone_id = -1;
    out->domain_id = -1;
    if (!max_bytes)
        max_bytes = IBP_DNS_REQUEST_MAX_DEFAULT;
    if (len > max_bytes)
        return IBP_DNS_REJECT_TOO_LARGE;
    if (!req)
        return IBP_DNS_REJECT_MALFORMED;
    json_error_t je;
    json_t *root = json_loadb(req, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return IBP_DNS_REJECT_MALFORMED;
    ibp_dns_reject r = IBP_DNS_REJECT_NONE;
    const json_t *m = json_object_get(root, "method");
    const json_t *p = json_object_get(root, "parameters");
    if (!json_is_object(root) || !json_is_string(m)) {
        r = IBP_DNS_REJECT_MALFORMED;
        goto out;
    }
    snprintf(out->method_name, sizeof out->method_name, "%s", json_string_value(m));
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcasecmp(json_string_value(m), methods[i].name) == 0)
            out->method = methods[i].method;
    if (out->method == IBP_DNS_M_OTHER) {
        r = IBP_DNS_REJECT_UNKNOWN;
        goto out;
    }
    if (p && !json_is_object(p) && !json_is_null(p)) {
        r = IBP_DNS_REJECT_PARAMS;
        goto out;
    }
    r = parse_params(p, out);
out:
    json_decref(root);
    return r;
}

/* ---- output buffer --------------------------------------------------------- */

static bool reserve(ibp_dns_buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void ibp_dns_buf_reset(ibp_dns_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

void ibp_dns_buf_free(ibp_dns_buf *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

void ibp_dns_buf_add(ibp_dns_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void ibp_dns_buf_puts(ibp_dns_buf *b, const char *s)
{
    ibp_dns_buf_add(b, s, strlen(s));
}

void ibp_dns_buf_printf(ibp_dns_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        ibp_dns_buf_add(b, tmp, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ibp_dns_buf_json_str(ibp_dns_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    ibp_dns_buf_add(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        ibp_dns_buf_add(b, run, (size_t)(s - run));
        char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
        size_t n = 2;
        if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        ibp_dns_buf_add(b, esc, n);
        run = s + 1;
    }
    ibp_dns_buf_add(b, run, (size_t)(s - run));
    ibp_dns_buf_add(b, "\"", 1);
}
