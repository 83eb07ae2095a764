/* WebSocket framing and handshake checks (see ibp/ws_frame.h). Pure. */
#include "ibp/ws_frame.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static int fail(char *why, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap)
        vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return -1;
}

size_t ibp_ws_header_write(uint8_t opcode, uint64_t len, const uint8_t *mask, uint8_t *out)
{
    size_t n = 0;
    out[n++] = (uint8_t)(0x80 | (opcode & 0x0F));
    uint8_t mbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xFFFF) {
        out[n++] = (uint8_t)(mbit | 126);
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = (uint8_t)(mbit | 127);
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)(len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

int ibp_ws_header_read(const uint8_t *buf, size_t n, ibp_ws_header *h, char *why, size_t cap)
{
    if (n < 2)
        return 0;
    if (buf[0] & 0x70)
        return fail(why, cap, "websocket: reserved bits set");
    uint8_t op = buf[0] & 0x0F;
    if (op != IBP_WS_CONT && op != IBP_WS_TEXT && op != IBP_WS_BINARY && op != IBP_WS_CLOSE &&
        op != IBP_WS_PING && op != IBP_WS_PONG)
        return fail(why, cap, "websocket: unknown opcode 0x%x", op);
    bool fin = (buf[0] & 0x80) != 0;
    bool masked = (buf[1] & 0x80) != 0;
    uint64_t len = buf[1] & 0x7F;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = ((uint64_t)buf[2] << 8) | buf[3];
        if (len < 126)
            return fail(why, cap, "websocket: length not minimally encoded");
        hl = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | buf[2 + i];
        if (len >> 63)
            return fail(why, cap, "websocket: length with the top bit set");
        if (len <= 0xFFFF)
            return fail(why, cap, "websocket: length not minimally encoded");
        hl = 10;
    }
    if (op >= 0x8 && (!fin || len > 125))
        return fail(why, cap, "websocket: control frame fragmented or over 125 bytes");
    if (masked) {
        if (n < hl + 4)
            return 0;
        memcpy(h->mask, buf + hl, 4);
        hl += 4;
    }
    h->fin = fin;
    h->opcode = op;
    h->masked = masked;
    h->length = len;
    h->header_len = hl;
    return (int)hl;
}

void ibp_ws_mask(uint8_t *data, size_t n, const uint8_t mask[4], size_t offset)
{
    for (size_t i = 0; i < n; i++)
        data[i] ^= mask[(i + offset) & 3];
}

void ibp_ws_accept_key(const char *key, char out[29])
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)buf,
         (size_t)(n < 0 ? 0 : n) < sizeof buf ? (size_t)n : sizeof buf - 1, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
    out[28] = '\0';
}

size_t ibp_ws_head_end(const char *buf, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* The value of header name in head (trimmed) into out; false when absent. */
static bool header_value(const char *head, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *end = head + len;
    const char *line = memchr(head, '\n', len); /* skip the status line */
    while (line && line + 1 < end) {
        line++;
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            eol = end;
        if ((size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && isspace((unsigned char)ve[-1]))
                ve--;
            size_t vl = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return true;
        }
        line = eol < end ? eol : NULL;
    }
    return false;
}

static bool has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t l = strcspn(p, ", ");
        if (l == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p += l;
    }
    return false;
}

bool ibp_ws_upgrade_ok(const char *head, size_t len, const char *key, char *why, size_t cap)
{
    char v[256];
    if (len < 12 || strncmp(head, "HTTP/1.1 ", 9) != 0) {
        fail(why, cap, "websocket upgrade: not an HTTP/1.1 response");
        return false;
    }
    if (strncmp(head + 9, "101", 3) != 0) {
        size_t l = strcspn(head + 9, "\r\n");
        fail(why, cap, "websocket upgrade: HTTP %.*s", (int)(l > 60 ? 60 : l), head + 9);
        return false;
    }
    if (!header_value(head, len, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket") != 0) {
        fail(why, cap, "websocket upgrade: no \"Upgrade: websocket\"");
        return false;
    }
    if (!header_value(head, len, "Connection", v, sizeof v) || !has_token(v, "upgrade")) {
        fail(why, cap, "websocket upgrade: no \"Connection: upgrade\"");
        return false;
    }
    char want[29];
    ibp_ws_accept_key(key, want);
    if (!header_value(head, len, "Sec-WebSocket-Accept", v, sizeof v) || strcmp(v, want) != 0) {
        fail(why, cap, "websocket upgrade: wrong Sec-WebSocket-Accept");
        return false;
    }
    if (cap)
        why[0] = '\0';
    return true;
}
