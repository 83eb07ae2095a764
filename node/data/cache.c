/*
 * Cache files of the result stores (ibp/cache.h): kind and outcome names,
 * paths, and the text helpers the writer (cache_save.c) and the reader
 * (cache_load.c) share.
 */
#include "ibp/cache.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache_internal.h"
#include "ibp/atomic_file.h"
#include "ibp/utf8.h"

const char *ibp_cache_kind_name(ibp_cache_kind kind)
{
    switch (kind) {
    case IBP_CACHE_OFFICIAL:
        return "official";
    case IBP_CACHE_LOCAL:
        return "local";
    }
    return "?";
}

const char *ibp_cache_outcome_name(ibp_cache_outcome outcome)
{
    switch (outcome) {
    case IBP_CACHE_LOADED:
        return "loaded";
    case IBP_CACHE_MISSING:
        return "missing";
    case IBP_CACHE_DISCARDED:
        return "discarded";
    }
    return "?";
}

bool ibp__cache_kind_valid(ibp_cache_kind kind)
{
    return kind == IBP_CACHE_OFFICIAL || kind == IBP_CACHE_LOCAL;
}

ibp_status ibp_cache_path(const char *work_dir, ibp_cache_kind kind, char *buf, size_t cap,
                          ibp_err *err)
{
    if (!work_dir || !*work_dir || !buf || cap == 0)
        return ibp_err_set(err, IBP_E_INVAL, "cache path: no work dir or buffer");
    if (!ibp__cache_kind_valid(kind))
        return ibp_err_set(err, IBP_E_INVAL, "cache path: unknown kind %d", (int)kind);
    int n = snprintf(buf, cap, "%s/%s/%s.cache.json", work_dir, IBP_CACHE_DIR,
                     ibp_cache_kind_name(kind));
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return ibp_err_set(err, IBP_E_RANGE, "%s: cache path longer than %zu bytes", work_dir,
                           cap - 1);
    }
    return IBP_OK;
}

/* ---- UTF-8 ------------------------------------------------------------------------------ */

/* A copy of s with each byte that is not part of valid UTF-8 replaced by '?'. NULL: no memory. */
char *ibp__cache_utf8_fix(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = ibp_utf8_seq_len(s + i, len - i);
        if (n) {
            memcpy(out + i, s + i, n);
            i += n;
        } else {
            out[i++] = '?';
        }
    }
    out[len] = '\0';
    return out;
}

/* Length of valid UTF-8 text s cut to at most max bytes without splitting a character. */
size_t ibp__cache_utf8_cut_len(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* ---- ordering --------------------------------------------------------------------------- */

int ibp__cache_cmp_result_ptrs(const void *a, const void *b)
{
    const ibp_result *ra = *(const ibp_result *const *)a;
    const ibp_result *rb = *(const ibp_result *const *)b;
    ibp_result_key ka = ibp_result_key_of(ra), kb = ibp_result_key_of(rb);
    return ibp_result_key_cmp(&ka, &kb);
}

/* ---- hex (certificate fields) ----------------------------------------------------------- */

char *ibp__cache_hex(const uint8_t *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *out = malloc(2 * len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0xF];
    }
    out[2 * len] = '\0';
    return out;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

bool ibp__cache_unhex(const char *text, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(text);
    *out = NULL;
    if (n % 2)
        return false;
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *out_len = n / 2;
    return true;
}

/* ---- moving a file aside ---------------------------------------------------------------- */

bool ibp_cache_move_aside(const char *path, const char *tag, char *moved_to, size_t cap,
                          int *errnum)
{
    char stamp[32];
    struct tm tm;
    struct stat sb;
    time_t now = time(NULL);
    moved_to[0] = '\0';
    *errnum = 0;
    if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        snprintf(stamp, sizeof stamp, "%lld", (long long)now);
    /* Two in one second must not overwrite the evidence of the first. */
    for (int attempt = 0; attempt < 1000; attempt++) {
        int n = attempt ? snprintf(moved_to, cap, "%s.%s-%s.%d", path, tag, stamp, attempt)
                        : snprintf(moved_to, cap, "%s.%s-%s", path, tag, stamp);
        if (n < 0 || (size_t)n >= cap) {
            moved_to[0] = '\0';
            *errnum = ENAMETOOLONG;
            return false;
        }
        if (lstat(moved_to, &sb) != 0 && errno == ENOENT)
            break;
        moved_to[0] = '\0';
    }
    if (!moved_to[0] || rename(path, moved_to) != 0) {
        *errnum = moved_to[0] ? errno : EEXIST;
        moved_to[0] = '\0';
        return false;
    }
    ibp_err ignored;
    (void)ibp_file_sync_dir(path, &ignored); /* losing the rename in a crash is harmless */
    return true;
}
