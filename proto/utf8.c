/* Strict UTF-8 checks; see ibp/utf8.h. */
#include "ibp/utf8.h"

#include <stdint.h>

size_t ibp_utf8_seq_len(const char *s, size_t avail)
{
    if (avail == 0)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    /* 0x80..0xBF are continuation bytes, 0xC0/0xC1 could only start overlong
     * 2-byte forms, 0xF5.. could only start values above U+10FFFF. */
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
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (u[i] & 0x3Fu);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool ibp_utf8_count(const char *s, size_t len, size_t *chars)
{
    size_t count = 0;
    for (size_t i = 0; i < len; count++) {
        size_t n = ibp_utf8_seq_len(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    if (chars)
        *chars = count;
    return true;
}

bool ibp_utf8_valid(const char *s, size_t len)
{
    /* ASCII runs are the common case (names, URLs): skip them a byte at a time
     * without the sequence decoder. */
    for (size_t i = 0; i < len;) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = ibp_utf8_seq_len(s + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}
