/*
 * Private to the cache modules of ibp/cache.h: cache.c (names, paths and the
 * text helpers), cache_save.c (writing a cache file) and cache_load.c
 * (reading, checking and discarding one).
 */
#ifndef IBP_CACHE_INTERNAL_H
#define IBP_CACHE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ibp/cache.h"
#include "ibp/utf8.h"

#define IBP_CACHE_COMPONENT "cache" /* of log lines */

static inline const char *ibp__cache_nz(const char *s)
{
    return s ? s : "";
}

/* True for the kinds ibp/cache.h defines. */
bool ibp__cache_kind_valid(ibp_cache_kind kind);

/* True when the C string s is valid UTF-8 (ibp/utf8.h: jansson's rules too, so json_string() takes
 * it). */
static inline bool ibp__cache_utf8_valid(const char *s)
{
    return ibp_utf8_valid(s, strlen(s));
}

/* A copy of s with each byte that is not part of valid UTF-8 replaced by '?'. NULL: no memory. */
char *ibp__cache_utf8_fix(const char *s);

/* Length of valid UTF-8 text s cut to at most max bytes without splitting a character. */
size_t ibp__cache_utf8_cut_len(const char *s, size_t max);

/* qsort comparator of const ibp_result * by result key. */
int ibp__cache_cmp_result_ptrs(const void *a, const void *b);

/* Lower-case hex of data (2 * len + 1 bytes, malloc'd). NULL: no memory. */
char *ibp__cache_hex(const uint8_t *data, size_t len);

/* Decodes lower-case hex text into *out (malloc'd, *out_len bytes; at least one byte is
 * allocated). false: not even-length lower-case hex, or no memory (*out NULL then). */
bool ibp__cache_unhex(const char *text, uint8_t **out, size_t *out_len);

#endif
