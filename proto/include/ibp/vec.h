/*
 * Growable arrays and a string builder: the one place that doubles a
 * capacity, checks the multiplication for overflow and calls realloc.
 * Pure (memory only); not thread-safe on one array, fine on separate ones.
 */
#ifndef IBP_VEC_H
#define IBP_VEC_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Makes room for at least `need` elements of elem_size bytes in `items`
 * (whose capacity in elements is *cap; items may be NULL with *cap 0).
 * When *cap >= need, returns items unchanged (so NULL when items is NULL:
 * callers that may ask for 0 elements test need > *cap first). Otherwise the capacity doubles
 * (from 8 when it was 0) until it reaches need, the array is reallocated and
 * the new array is returned with *cap updated; the old pointer must no longer
 * be used. Returns NULL when need * elem_size passes PTRDIFF_MAX (the largest
 * object C allows) or memory runs out:
 * items and *cap are then untouched and still owned by the caller.
 * elem_size must not be 0.
 *
 *     ibp_thing *t = ibp_grow(v->items, &v->cap, v->len + 1, sizeof *t);
 *     if (!t) return IBP_ERR_NOMEM;
 *     v->items = t;
 */
void *ibp_grow(void *items, size_t *cap, size_t need, size_t elem_size);

/*
 * A NUL-terminated string that grows. Zero-initialise it ({0}); s is NULL
 * until the first append, and then always NUL-terminated with len bytes of
 * text before the NUL. Owned by its user, freed with ibp_strbuf_free.
 */
typedef struct ibp_strbuf {
    char *s;
    size_t len; /* bytes of text, without the NUL */
    size_t cap; /* bytes allocated at s */
} ibp_strbuf;

/* Appends data[0..n) (may hold NULs). False when out of memory; b unchanged then. */
bool ibp_strbuf_append(ibp_strbuf *b, const char *data, size_t n);

/* Appends the C string s. False when out of memory; b unchanged then. */
bool ibp_strbuf_append_str(ibp_strbuf *b, const char *s);

/*
 * Appends printf-formatted text. False when out of memory or the format
 * fails; b's text is unchanged then.
 */
bool ibp_strbuf_appendf(ibp_strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Frees the text and zeroes b. b may be NULL. */
void ibp_strbuf_free(ibp_strbuf *b);

#endif
