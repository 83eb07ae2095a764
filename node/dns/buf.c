/*
 * The growable output buffer of the remote backend's answers; see
 * ibp/dns_request.h.
 */
#include "ibp/dns_request.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/vec.h"

static bool reserve(ibp_dns_buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t need = b->len + more + 1;
    if (more > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    /* From 4 KiB at first: most answers fit without a second realloc. */
    char *d = ibp_grow(b->data, &b->cap, need < 4096 ? 4096 : need, 1);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
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
