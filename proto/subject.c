/* Subject names and token encoding; see ibp/subject.h. */
#include "ibp/subject.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ibp/roster.h"

static const char hex[] = "0123456789ABCDEF";

static int token_safe(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

ibp_status ibp_token_encode(const char *in, size_t len, char *buf, size_t cap, size_t *out_len)
{
    size_t o = 0;
    if (!buf || cap == 0 || (!in && len))
        return IBP_E_INVAL;
    if (len == 0) {
        if (cap < 2)
            return IBP_E_RANGE;
        buf[0] = '~';
        buf[1] = '\0';
        if (out_len)
            *out_len = 1;
        return IBP_OK;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (token_safe(c)) {
            if (o + 1 >= cap)
                return IBP_E_RANGE;
            buf[o++] = (char)c;
        } else {
            if (o + 3 >= cap)
                return IBP_E_RANGE;
            buf[o++] = '~';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = '\0';
    if (out_len)
        *out_len = o;
    return IBP_OK;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower case is not canonical */
}

ibp_status ibp_token_decode(const char *token, char *buf, size_t cap, size_t *out_len)
{
    size_t o = 0;
    if (!token || !buf || cap == 0 || !*token)
        return IBP_E_INVAL;
    if (strcmp(token, "~") == 0) {
        buf[0] = '\0';
        if (out_len)
            *out_len = 0;
        return IBP_OK;
    }
    for (const char *p = token; *p;) {
        unsigned char c = (unsigned char)*p;
        if (o + 1 >= cap)
            return IBP_E_RANGE;
        if (token_safe(c)) {
            buf[o++] = (char)c;
            p++;
            continue;
        }
        if (c != '~')
            return IBP_E_INVAL;
        int hi = hex_value(p[1]);
        int lo = hi < 0 ? -1 : hex_value(p[2]);
        if (lo < 0)
            return IBP_E_INVAL;
        unsigned char v = (unsigned char)(hi * 16 + lo);
        if (token_safe(v))
            return IBP_E_INVAL; /* would have been written as itself */
        buf[o++] = (char)v;
        p += 3;
    }
    buf[o] = '\0';
    if (out_len)
        *out_len = o;
    return IBP_OK;
}

/*
 * Small appender for subjects: literal parts, encoded tokens and node ids.
 * The first failure sticks, so builders check once at the end.
 */
struct sbuf {
    char *buf;
    size_t cap, len;
    ibp_status st;
};

static void put_lit(struct sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->st != IBP_OK)
        return;
    if (b->len + n + 1 > b->cap) {
        b->st = IBP_E_RANGE;
        return;
    }
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

static void put_token(struct sbuf *b, const char *s)
{
    size_t n = 0;
    if (b->st != IBP_OK)
        return;
    if (!s) {
        b->st = IBP_E_INVAL;
        return;
    }
    if (b->len > 0)
        put_lit(b, ".");
    if (b->st == IBP_OK)
        b->st = ibp_token_encode(s, strlen(s), b->buf + b->len, b->cap - b->len, &n);
    if (b->st == IBP_OK)
        b->len += n;
}

static void put_node(struct sbuf *b, const char *node)
{
    if (b->st == IBP_OK && !ibp_node_id_valid(node))
        b->st = IBP_E_INVAL;
    put_lit(b, ".");
    put_lit(b, node ? node : "");
}

static ibp_status start(struct sbuf *b, char *buf, size_t cap, const char *prefix)
{
    b->buf = buf;
    b->cap = cap;
    b->len = 0;
    b->st = (buf && cap) ? IBP_OK : IBP_E_INVAL;
    put_lit(b, prefix);
    return b->st;
}

static ibp_status finish(struct sbuf *b)
{
    if (b->st != IBP_OK && b->buf && b->cap)
        b->buf[0] = '\0';
    return b->st;
}

ibp_status ibp_subject_local(const char *node, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.local");
    put_node(&b, node);
    return finish(&b);
}

ibp_status ibp_subject_official_heartbeat(const char *node, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.official.heartbeat");
    put_node(&b, node);
    return finish(&b);
}

ibp_status ibp_subject_checkpoint(const char *node, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.consensus.checkpoint");
    put_node(&b, node);
    return finish(&b);
}

ibp_status ibp_subject_cosign(const char *node, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.official.cosign");
    put_node(&b, node);
    return finish(&b);
}

ibp_status ibp_subject_hits(const char *node, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.hits");
    put_node(&b, node);
    return finish(&b);
}

ibp_status ibp_subject_events(const char *member, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.events");
    put_token(&b, member);
    return finish(&b);
}

ibp_status ibp_subject_status_override(const char *member, char *buf, size_t cap)
{
    struct sbuf b;
    start(&b, buf, cap, "ibp.status");
    put_token(&b, member);
    put_lit(&b, ".override");
    return finish(&b);
}

ibp_status ibp_subject_status(const Ibp__V1__ResultKey *key, char *buf, size_t cap)
{
    struct sbuf b;
    if (!key)
        return IBP_E_INVAL;
    start(&b, buf, cap, "ibp.status");
    put_token(&b, key->member);
    switch (key->check_type) {
    case IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE:
        put_lit(&b, ".site");
        put_token(&b, key->check_name);
        break;
    case IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN:
        put_lit(&b, ".domain");
        put_token(&b, key->check_name);
        put_token(&b, key->domain);
        break;
    case IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT:
        put_lit(&b, ".endpoint");
        put_token(&b, key->check_name);
        put_token(&b, key->domain);
        put_token(&b, key->endpoint);
        break;
    default:
        b.st = IBP_E_INVAL;
        break;
    }
    put_lit(&b, key->ipv6 ? ".v6" : ".v4");
    return finish(&b);
}
