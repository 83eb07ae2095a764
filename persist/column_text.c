/*
 * UTF-8 as MariaDB's utf8mb4 columns take it; see column_text.h. Pure.
 */
#include "column_text.h"

#include <string.h>

/* Length of the UTF-8 sequence starting at s[i] (of len), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len)
{
    unsigned char c = s[i];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (i + n > len)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

bool ibp_persist_utf8_valid(const char *s, size_t len, size_t *chars)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t count = 0;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(u, i, len);
        if (n == 0)
            return false;
        i += n;
        count++;
    }
    if (chars)
        *chars = count;
    return true;
}

size_t ibp_persist_utf8_prefix(const char *s, size_t len, size_t max_bytes, size_t max_chars)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, count = 0;
    while (i < len && count < max_chars) {
        size_t n = utf8_seq(u, i, len);
        if (n == 0)
            n = 1; /* not expected for valid input; never loop */
        if (i + n > max_bytes)
            break;
        i += n;
        count++;
    }
    return i;
}

void ibp_persist_utf8_sanitize(const char *s, char *buf, size_t cap, size_t max_chars)
{
    const unsigned char *u = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)u), i = 0, o = 0, count = 0;
    if (cap == 0)
        return;
    while (i < len && count < max_chars) {
        size_t n = utf8_seq(u, i, len);
        if (n == 0 || (n == 1 && u[i] < 0x20 && u[i] != '\t')) {
            if (o + 1 >= cap)
                break;
            buf[o++] = '?';
            i += n == 0 ? 1 : n;
        } else {
            if (o + n >= cap)
                break;
            memcpy(buf + o, u + i, n);
            o += n;
            i += n;
        }
        count++;
    }
    buf[o] = '\0';
}
