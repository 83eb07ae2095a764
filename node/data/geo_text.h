/*
 * Private to geo.c and usage_aggregate.c: making untrusted bytes (MaxMind strings, DNS
 * names, member names) safe for protobuf `string` fields, which must be UTF-8.
 */
#ifndef IBP_GEO_TEXT_H
#define IBP_GEO_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at s[0..len), 0 when it is not one. */
static inline size_t geo_text_utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    /* Overlong forms, UTF-16 surrogates and values above U+10FFFF are invalid. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

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
        size_t n = geo_text_utf8_seq(s + in, len - in);
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
        size_t n = geo_text_utf8_seq((const unsigned char *)s + i, len - i);
        if (n == 0) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

#endif
