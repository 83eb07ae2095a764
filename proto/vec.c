/* Growable arrays and a string builder; see ibp/vec.h. */
#include "ibp/vec.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GROW_MIN 8

void *ibp_grow(void *items, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return items;
    /* No object may be larger than PTRDIFF_MAX bytes (pointer differences
     * within it must fit), and malloc refuses such sizes anyway. */
    if (elem_size == 0 || elem_size > PTRDIFF_MAX)
        return NULL;
    size_t max = (size_t)PTRDIFF_MAX / elem_size;
    if (need > max)
        return NULL;
    size_t c = *cap ? *cap : GROW_MIN;
    while (c < need)
        /* Past half of the largest count, doubling would pass it: take need itself. */
        c = c > max / 2 ? need : c * 2;
    void *p = realloc(items, c * elem_size);
    if (!p)
        return NULL;
    *cap = c;
    return p;
}

/* Room for `extra` more bytes of text and the NUL. */
static bool reserve(ibp_strbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return false;
    char *s = ibp_grow(b->s, &b->cap, b->len + extra + 1, 1);
    if (!s)
        return false;
    b->s = s;
    return true;
}

bool ibp_strbuf_append(ibp_strbuf *b, const char *data, size_t n)
{
    if (!reserve(b, n))
        return false;
    if (n)
        memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

bool ibp_strbuf_append_str(ibp_strbuf *b, const char *s)
{
    return ibp_strbuf_append(b, s, strlen(s));
}

bool ibp_strbuf_appendf(ibp_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    int m = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (m != n) {
        b->s[b->len] = '\0';
        return false;
    }
    b->len += (size_t)n;
    return true;
}

void ibp_strbuf_free(ibp_strbuf *b)
{
    if (!b)
        return;
    free(b->s);
    b->s = NULL;
    b->len = 0;
    b->cap = 0;
}
