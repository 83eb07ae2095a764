/*
 * Parsing PowerDNS remote backend requests; see ibp/dns_request.h.
 *
 * A strict JSON scanner of our own rather than a DOM parser: a request is
 * read once, its known parameters are decoded straight into the request's
 * fixed buffers and everything else is skipped, so parsing allocates nothing
 * (the lookup path stays allocation-free) and costs one pass over the bytes.
 * It accepts exactly RFC 8259 JSON (no comments, no trailing commas, no
 * leading zeros, no unescaped control characters, no bytes after the value)
 * and refuses a "\u0000" escape, a duplicated known key and nesting deeper
 * than MAX_DEPTH.
 */
#include "ibp/dns_request.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 32

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

/* The parameters this backend reads; each has a slot in the request. */
enum {
    P_QNAME,
    P_QTYPE,
    P_REMOTE,
    P_LOCAL,
    P_REAL_REMOTE,
    P_ZONE_ID,
    P_ZONENAME,
    P_DOMAIN_ID,
    P_NAME,
    P_KIND,
    P_COUNT
};

typedef struct scanner {
    const char *p, *end;
    bool bad;             /* malformed JSON */
    unsigned seen, wrong; /* bits of P_*: present, present but unusable */
} scanner;

static void ws(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(scanner *s, char c)
{
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Appends one decoded byte; *fits false once out would overflow (keeps scanning). */
static void put(char *out, size_t cap, size_t *n, bool *fits, char c)
{
    if (out && *n + 1 < cap)
        out[(*n)++] = c;
    else
        *fits = false;
}

/*
 * Scans a string at s->p (after ws, at '"'), decoding it into out[cap] when
 * out is not NULL. Returns false when it is malformed (then s->bad is set);
 * *fits is false when it did not fit.
 */
static bool string(scanner *s, char *out, size_t cap, bool *fits)
{
    size_t n = 0;
    *fits = true;
    ws(s);
    if (s->p >= s->end || *s->p != '"')
        return !(s->bad = true);
    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p++;
        if (c == '"') {
            if (out && cap)
                out[n < cap ? n : cap - 1] = '\0';
            return true;
        }
        if (c < 0x20)
            break;
        if (c != '\\') {
            put(out, cap, &n, fits, (char)c);
            continue;
        }
        if (s->p >= s->end)
            break;
        char e = *s->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) {
            static const char map[] = "\"\\/\b\f\n\r\t";
            put(out, cap, &n, fits, map[simple - "\"\\/bfnrt"]);
            continue;
        }
        if (e != 'u' || s->end - s->p < 4)
            break;
        long cp = hex4(s->p);
        s->p += 4;
        if (cp < 0)
            break;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
            if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
                break;
            long lo = hex4(s->p + 2);
            if (lo < 0xDC00 || lo > 0xDFFF)
                break;
            s->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            break; /* a lone low surrogate; NUL would cut the string */
        }
        if (cp < 0x80) {
            put(out, cap, &n, fits, (char)cp);
        } else if (cp < 0x800) {
            put(out, cap, &n, fits, (char)(0xC0 | (cp >> 6)));
            put(out, cap, &n, fits, (char)(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            put(out, cap, &n, fits, (char)(0xE0 | (cp >> 12)));
            put(out, cap, &n, fits, (char)(0x80 | ((cp >> 6) & 0x3F)));
            put(out, cap, &n, fits, (char)(0x80 | (cp & 0x3F)));
        } else {
            put(out, cap, &n, fits, (char)(0xF0 | (cp >> 18)));
            put(out, cap, &n, fits, (char)(0x80 | ((cp >> 12) & 0x3F)));
            put(out, cap, &n, fits, (char)(0x80 | ((cp >> 6) & 0x3F)));
            put(out, cap, &n, fits, (char)(0x80 | (cp & 0x3F)));
        }
    }
    s->bad = true;
    return false;
}

/* Scans a number; *integer and *value are set when it is an integer that fits. */
static bool number(scanner *s, bool *integer, int64_t *value)
{
    const char *p = s->p;
    bool neg = false, is_int = true, overflow = false;
    uint64_t v = 0;
    if (p < s->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= s->end || *p < '0' || *p > '9')
        return !(s->bad = true);
    if (*p == '0' && p + 1 < s->end && p[1] >= '0' && p[1] <= '9')
        return !(s->bad = true); /* a leading zero */
    for (; p < s->end && *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_C(1) << 62))
            overflow = true;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (p < s->end && *p == '.') {
        is_int = false;
        if (++p >= s->end || *p < '0' || *p > '9')
            return !(s->bad = true);
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        is_int = false;
        if (++p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return !(s->bad = true);
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    s->p = p;
    *integer = is_int && !overflow;
    *value = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

static bool literal(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return !(s->bad = true);
    s->p += n;
    return true;
}

static bool value(scanner *s, int depth);

/* Skips an object or array (at '{' or '['). */
static bool container(scanner *s, int depth)
{
    char close = *s->p == '{' ? '}' : ']';
    bool object = close == '}';
    s->p++;
    if (depth >= MAX_DEPTH)
        return !(s->bad = true);
    if (eat(s, close))
        return true;
    do {
        bool fits;
        if (object && (!string(s, NULL, 0, &fits) || !eat(s, ':')))
            return !(s->bad = true);
        if (!value(s, depth + 1))
            return false;
    } while (eat(s, ','));
    return eat(s, close) || !(s->bad = true);
}

/* Skips any value. */
static bool value(scanner *s, int depth)
{
    ws(s);
    if (s->p >= s->end)
        return !(s->bad = true);
    bool fits, integer;
    int64_t v;
    switch (*s->p) {
    case '"':
        return string(s, NULL, 0, &fits);
    case '{':
    case '[':
        return container(s, depth);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        return number(s, &integer, &v);
    }
}

static const char *const param_names[P_COUNT] = {"qname",       "qtype",   "remote",   "local",
                                                 "real-remote", "zone-id", "zonename", "domain_id",
                                                 "name",        "kind"};

/* The slot of parameter i: a string buffer, or NULL for the integers. */
static char *slot(ibp_dns_request *r, int i, size_t *cap)
{
    switch (i) {
#define S(id, field)                                                                               \
    case id:                                                                                       \
        *cap = sizeof r->field;                                                                    \
        return r->field;
        S(P_QNAME, qname)
        S(P_QTYPE, qtype)
        S(P_REMOTE, remote)
        S(P_LOCAL, local)
        S(P_REAL_REMOTE, real_remote)
        S(P_ZONENAME, zonename)
        S(P_NAME, name)
        S(P_KIND, kind)
#undef S
    default:
        *cap = 0;
        return NULL;
    }
}

/* The "parameters" object: known keys into r, the rest skipped. */
static bool parameters(scanner *s, ibp_dns_request *r)
{
    s->p++; /* '{' */
    if (eat(s, '}'))
        return true;
    do {
        char key[32];
        bool fits;
        if (!string(s, key, sizeof key, &fits) || !eat(s, ':'))
            return !(s->bad = true);
        int k = -1;
        for (int i = 0; fits && i < P_COUNT; i++)
            if (strcmp(key, param_names[i]) == 0)
                k = i;
        ws(s);
        if (k < 0) {
            if (!value(s, 2))
                return false;
            continue;
        }
        if (s->seen & (1u << k))
            return !(s->bad = true); /* a known key twice */
        s->seen |= 1u << k;
        size_t cap;
        char *buf = slot(r, k, &cap);
        bool ok;
        if (s->p < s->end && *s->p == 'n') { /* null: absent */
            s->seen &= ~(1u << k);
            ok = literal(s, "null");
        } else if (buf && s->p < s->end && *s->p == '"') {
            ok = string(s, buf, cap, &fits);
            if (ok && !fits) {
                buf[0] = '\0';
                s->wrong |= 1u << k;
            }
        } else if (!buf && s->p < s->end && (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))) {
            bool integer;
            int64_t v = 0;
            ok = number(s, &integer, &v);
            if (ok && integer)
                *(k == P_ZONE_ID ? &r->zone_id : &r->domain_id) = v;
            else if (ok)
                s->wrong |= 1u << k;
        } else {
            s->wrong |= 1u << k;
            ok = value(s, 2);
        }
        if (!ok)
            return false;
    } while (eat(s, ','));
    return eat(s, '}') || !(s->bad = true);
}

/* Whether the parameters of r's method are there and usable. */
static bool params_ok(const scanner *s, const ibp_dns_request *r)
{
    unsigned need = 0, use = 0;
#define B(x) (1u << (x))
    switch (r->method) {
    case IBP_DNS_M_LOOKUP:
        need = B(P_QNAME) | B(P_QTYPE);
        use = need | B(P_REMOTE) | B(P_LOCAL) | B(P_REAL_REMOTE) | B(P_ZONE_ID);
        break;
    case IBP_DNS_M_LIST:
        use = B(P_ZONENAME) | B(P_DOMAIN_ID);
        if (!r->zonename[0] && r->domain_id < 0)
            return false;
        break;
    case IBP_DNS_M_GET_DOMAIN_INFO:
    case IBP_DNS_M_GET_ALL_DOMAIN_METADATA:
    case IBP_DNS_M_GET_DOMAIN_KEYS:
        need = use = B(P_NAME);
        break;
    case IBP_DNS_M_GET_DOMAIN_METADATA:
        need = use = B(P_NAME) | B(P_KIND);
        break;
    default:
        break;
    }
#undef B
    return (s->seen & need) == need && (s->wrong & use) == 0;
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
    scanner s = {.p = req, .end = req + len};
    bool have_method = false, have_params = false, params_type_ok = true, fits;
    if (!eat(&s, '{'))
        return IBP_DNS_REJECT_MALFORMED;
    if (!eat(&s, '}')) {
        do {
            char key[16];
            if (!string(&s, key, sizeof key, &fits) || !eat(&s, ':'))
                return IBP_DNS_REJECT_MALFORMED;
            ws(&s);
            bool is_method = fits && strcmp(key, "method") == 0;
            bool is_params = fits && strcmp(key, "parameters") == 0;
            if ((is_method && have_method) || (is_params && have_params))
                return IBP_DNS_REJECT_MALFORMED; /* twice */
            if (is_method && s.p < s.end && *s.p == '"') {
                have_method = true;
                if (!string(&s, out->method_name, sizeof out->method_name, &fits))
                    return IBP_DNS_REJECT_MALFORMED;
                if (!fits)
                    out->method_name[0] = '\0'; /* no method is that long */
            } else if (is_params && s.p < s.end && *s.p == '{') {
                have_params = true;
                if (!parameters(&s, out))
                    return IBP_DNS_REJECT_MALFORMED;
            } else {
                if (is_method)
                    return IBP_DNS_REJECT_MALFORMED; /* not a string */
                if (is_params) {
                    have_params = true;
                    params_type_ok = s.p < s.end && *s.p == 'n'; /* null is no parameters */
                }
                if (!value(&s, 1))
                    return IBP_DNS_REJECT_MALFORMED;
            }
        } while (eat(&s, ','));
        if (!eat(&s, '}'))
            return IBP_DNS_REJECT_MALFORMED;
    }
    ws(&s);
    if (s.p != s.end || !have_method)
        return IBP_DNS_REJECT_MALFORMED;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcasecmp(out->method_name, methods[i].name) == 0)
            out->method = methods[i].method;
    if (out->method == IBP_DNS_M_OTHER)
        return IBP_DNS_REJECT_UNKNOWN;
    if (!params_type_ok || !params_ok(&s, out))
        return IBP_DNS_REJECT_PARAMS;
    return IBP_DNS_REJECT_NONE;
}
