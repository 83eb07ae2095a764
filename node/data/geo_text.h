/*
 * Private to geo.c and usage_aggregate.c: making untrusted bytes (MaxMind strings, DNS
 * names, member names) safe for protobuf `string` fields, which must be UTF-8.
 */
#ifndef IBP_GEO_TEXT_H
#define IBP_GEO_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "ibp/utf8.h"

/*
 * Copies at most max bytes of src[0..len) into dst (which has room for max + 1),
 * stopping at a NUL, replacing each byte that is not part of valid UTF-8 by
 * '?' and never cutting a character in two. Returns the bytes written (dst is
 * NUL-terminated).
 */
static inline size_t geo_text_copy(char *dst, size_t max, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t in = 0, out = 0;
    while (in < len && s[in] != 0) {
        /* ASCII (nearly all of it) without the call. */
        size_t n = s[in] < 0x80 ? 1 : ibp_utf8_seq_len((const char *)s + in, len - in);
        if (n == 0) {
            if (out + 1 > max)
                break;
            dst[out++] = '?';
            in++;
            continue;
        }
        if (out + n > max)
            break; /* continuation bytes are never NUL, so only the first byte is checked */
        for (size_t i = 0; i < n; i++)
            dst[out++] = (char)s[in + i];
        in += n;
    }
    dst[out] = '\0';
    return out;
}

/* Replaces, in place, each byte of s[0..len) that is not valid UTF-8 by '?'. */
static inline void geo_text_clean(char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = (unsigned char)s[i] < 0x80 ? 1 : ibp_utf8_seq_len(s + i, len - i);
        if (n == 0) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

#endif
