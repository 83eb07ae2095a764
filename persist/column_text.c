/*
 * UTF-8 as MariaDB's utf8mb4 columns take it; see column_text.h. Pure. The
 * rules of a valid sequence are proto's (ibp/utf8.h).
 */
#include "column_text.h"

#include <string.h>

#include "ibp/utf8.h"

/* Length of the valid UTF-8 sequence at s[i] (of len), or 0 when invalid there. */
static size_t utf8_seq(const unsigned char *s, size_t i, size_t len)
{
    return ibp_utf8_seq_len((const char *)s + i, len - i);
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
