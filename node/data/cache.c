/* Cache files of the result stores; see ibp/cache.h for the format and the rules. */
#include "ibp/cache.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ibp/atomic_file.h"
#include "ibp/log.h"

#define COMPONENT "cache"

/* Internal status for "the file's content is not a valid cache": the file is discarded. */
#define BAD_CONTENT IBP_E_CONFIG

static const char *nz(const char *s)
{
    return s ? s : "";
}

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

static bool kind_valid(ibp_cache_kind kind)
{
    return kind == IBP_CACHE_OFFICIAL || kind == IBP_CACHE_LOCAL;
}

ibp_status ibp_cache_path(const char *work_dir, ibp_cache_kind kind, char *buf, size_t cap,
                          ibp_err *err)
{
    if (!work_dir || !*work_dir || !buf || cap == 0)
        return ibp_err_set(err, IBP_E_INVAL, "cache path: no work dir or buffer");
    if (!kind_valid(kind))
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

/*
 * Length of the valid UTF-8 sequence at s (at most avail bytes), or 0 when it
 * is not valid. The same rules as jansson (no overlong forms, no surrogates,
 * nothing above U+10FFFF), so whatever passes here json_string() accepts.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    size_t n;
    uint32_t v;
    if (c < 0x80)
        return 1;
    if (c < 0xC2)
        return 0; /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0) {
        n = 2;
        v = c & 0x1F;
    } else if (c < 0xF0) {
        n = 3;
        v = c & 0x0F;
    } else if (c < 0xF5) {
        n = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n > avail)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || (v >= 0xD800 && v <= 0xDFFF) ||
        v > 0x10FFFF)
        return 0;
    return n;
}

static bool utf8_valid(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

/* A copy of s with each byte that is not part of valid UTF-8 replaced by '?'. NULL: no memory. */
static char *utf8_fix(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq_len((const unsigned char *)s + i, len - i);
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
static size_t utf8_cut_len(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

/* ---- saving ----------------------------------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
} strbuf;

static int sb_append(strbuf *b, const char *data, size_t n)
{
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

static int sb_append_str(strbuf *b, const char *s)
{
    return sb_append(b, s, strlen(s));
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return sb_append(data, buffer, size);
}

static int sb_append_json(strbuf *b, const json_t *j)
{
    return json_dump_callback(j, dump_cb, b, JSON_COMPACT);
}

static int cmp_result_ptrs(const void *a, const void *b)
{
    const ibp_result *ra = *(const ibp_result *const *)a;
    const ibp_result *rb = *(const ibp_result *const *)b;
    ibp_result_key ka = ibp_result_key_of(ra), kb = ibp_result_key_of(rb);
    return ibp_result_key_cmp(&ka, &kb);
}

static int cmp_override_ptrs(const void *a, const void *b)
{
    const ibp_cache_override *oa = *(const ibp_cache_override *const *)a;
    const ibp_cache_override *ob = *(const ibp_cache_override *const *)b;
    return strcmp(nz(oa->member), nz(ob->member));
}

/* Adds a string member; the value must already be valid UTF-8. -1 when out of memory. */
static int set_str(json_t *obj, const char *key, const char *value)
{
    json_t *s = json_string(value);
    return s ? json_object_set_new(obj, key, s) : -1;
}

/*
 * Builds the JSON object of one result into *out. IBP_E_NOT_FOUND when its
 * key cannot be written faithfully (not UTF-8) and it is to be skipped.
 */
static ibp_status result_to_json(const char *path, const ibp_result *r, json_t **out, ibp_err *err)
{
    ibp_status st = IBP_OK;
    json_t *o = NULL, *data = NULL;
    char *error = NULL;
    if (!utf8_valid(nz(r->check_name)) || !utf8_valid(nz(r->member)) ||
        !utf8_valid(nz(r->domain)) || !utf8_valid(nz(r->endpoint)))
        return IBP_E_NOT_FOUND;
    if (*nz(r->data_json)) {
        /* Results made by ibp_result_new hold an object; anything else was made by hand. */
        json_error_t jerr;
        data = json_loads(r->data_json, 0, &jerr);
        if (!json_is_object(data)) {
            st = ibp_err_set(err, IBP_E_INVAL,
                             "%s: %s result '%s' of '%s': data is not a JSON "
                             "object",
                             path, ibp_check_type_name(r->type), nz(r->check_name), nz(r->member));
            goto done;
        }
    }
    if (!(error = utf8_fix(nz(r->error))) || !(o = json_object()) ||
        set_str(o, "type", ibp_check_type_name(r->type)) ||
        set_str(o, "check", nz(r->check_name)) || set_str(o, "member", nz(r->member)) ||
        set_str(o, "domain", nz(r->domain)) || set_str(o, "endpoint", nz(r->endpoint)) ||
        json_object_set_new(o, "ipv6", json_boolean(r->ipv6)) ||
        json_object_set_new(o, "up", json_boolean(r->up)) ||
        json_object_set_new(o, "check_time_ms", json_integer(r->check_time_ms)) ||
        set_str(o, "error", error)) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (data) {
        int rc = json_object_set_new(o, "data", data);
        data = NULL; /* set_new takes the reference even when it fails */
        if (rc) {
            st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
            goto done;
        }
    }
    *out = o;
    o = NULL;
done:
    json_decref(data);
    json_decref(o);
    free(error);
    return st;
}

static ibp_status override_to_json(const char *path, const ibp_cache_override *ov, json_t **out,
                                   ibp_err *err)
{
    ibp_status st = IBP_OK;
    json_t *o = NULL;
    char *reason = utf8_fix(nz(ov->reason));
    if (!reason || !(o = json_object())) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    reason[utf8_cut_len(reason, IBP_ERROR_MAX)] = '\0';
    if (set_str(o, "member", ov->member) ||
        json_object_set_new(o, "disabled", json_boolean(ov->disabled)) ||
        set_str(o, "reason", reason) ||
        json_object_set_new(o, "time_ms", json_integer(ov->time_ms))) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    *out = o;
    o = NULL;
done:
    json_decref(o);
    free(reason);
    return st;
}

/* Creates the directory that holds path (one level) with mode 0700 if it is missing. */
static ibp_status ensure_parent_dir(const char *path, ibp_err *err)
{
    char dir[IBP_CACHE_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path)
        return IBP_OK; /* the current directory or "/" */
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir)
        return ibp_err_set(err, IBP_E_RANGE, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    if (mkdir(dir, 0700) != 0) {
        if (errno == EEXIST)
            return IBP_OK; /* if it is not a directory, the write names the problem */
        return ibp_err_set(err, IBP_E_IO, "%s: create directory %s: %s", path, dir,
                           strerror(errno));
    }
    /* mkdir honours the umask; the cache directory is private whatever it is. */
    if (chmod(dir, 0700) != 0)
        return ibp_err_set(err, IBP_E_IO, "%s: chmod directory %s: %s", path, dir, strerror(errno));
    ibp_status st = ibp_file_sync_dir(dir, err);
    if (st != IBP_OK)
        ibp_err_wrap(err, "%s", path);
    return st;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Checks the contents and returns sorted copies of the pointer arrays (caller frees both). */
static ibp_status sorted_contents(const char *path, const ibp_cache_contents *c,
                                  const ibp_result ***res_out, const ibp_cache_override ***ov_out,
                                  ibp_err *err)
{
    ibp_status st = IBP_OK;
    const ibp_result **res = NULL;
    const ibp_cache_override **ovs = NULL;
    if ((c->result_count && !c->results) || (c->override_count && !c->overrides))
        return ibp_err_set(err, IBP_E_INVAL, "%s: results or overrides missing", path);
    res = calloc(c->result_count ? c->result_count : 1, sizeof *res);
    ovs = calloc(c->override_count ? c->override_count : 1, sizeof *ovs);
    if (!res || !ovs) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    for (size_t i = 0; i < c->result_count; i++) {
        res[i] = c->results[i];
        if (!res[i] || res[i]->type < IBP_CHECK_SITE || res[i]->type > IBP_CHECK_ENDPOINT) {
            st = ibp_err_set(err, IBP_E_INVAL, "%s: result %zu is NULL or of no known type", path,
                             i);
            goto fail;
        }
    }
    qsort(res, c->result_count, sizeof *res, cmp_result_ptrs);
    for (size_t i = 1; i < c->result_count; i++) {
        if (cmp_result_ptrs(&res[i - 1], &res[i]) == 0) {
            st = ibp_err_set(err, IBP_E_INVAL, "%s: %s result '%s' of '%s' given twice", path,
                             ibp_check_type_name(res[i]->type), nz(res[i]->check_name),
                             nz(res[i]->member));
            goto fail;
        }
    }
    for (size_t i = 0; i < c->override_count; i++) {
        const char *m = nz(c->overrides[i].member);
        if (!*m || strlen(m) > IBP_NAME_MAX || !utf8_valid(m)) {
            st = ibp_err_set(err, IBP_E_INVAL,
                             "%s: override %zu: member empty, over %d bytes or not UTF-8", path, i,
                             IBP_NAME_MAX);
            goto fail;
        }
        ovs[i] = &c->overrides[i];
    }
    qsort(ovs, c->override_count, sizeof *ovs, cmp_override_ptrs);
    for (size_t i = 1; i < c->override_count; i++) {
        if (cmp_override_ptrs(&ovs[i - 1], &ovs[i]) == 0) {
            st = ibp_err_set(err, IBP_E_INVAL, "%s: override of member '%s' given twice", path,
                             ovs[i]->member);
            goto fail;
        }
    }
    *res_out = res;
    *ov_out = ovs;
    return IBP_OK;
fail:
    free(ovs);
    free(res);
    return st;
}

ibp_status ibp_cache_save(const char *path, const ibp_cache_contents *c, ibp_err *err)
{
    ibp_status st = IBP_OK;
    const ibp_result **res = NULL;
    const ibp_cache_override **ovs = NULL;
    strbuf b = {0};
    json_t *j = NULL;
    size_t skipped = 0;
    char head[256];

    if (!path || !*path || !c)
        return ibp_err_set(err, IBP_E_INVAL, "save cache %s: no path or contents", nz(path));
    if (!kind_valid(c->kind))
        return ibp_err_set(err, IBP_E_INVAL, "%s: unknown cache kind %d", path, (int)c->kind);
    if (c->has_epoch && (c->kind != IBP_CACHE_OFFICIAL || c->epoch > (uint64_t)INT64_MAX)) {
        st = ibp_err_set(err, IBP_E_INVAL,
                         "%s: an epoch belongs only in an official cache and "
                         "must be <= INT64_MAX",
                         path);
        goto done;
    }
    if ((st = sorted_contents(path, c, &res, &ovs, err)) != IBP_OK)
        goto done;

    int64_t saved_at_ms = c->saved_at_ms ? c->saved_at_ms : now_ms();
    int n =
        snprintf(head, sizeof head,
                 "{\"format\":\"%s\",\"version\":%d,\"kind\":\"%s\",\"saved_at_ms\":%" PRId64,
                 IBP_CACHE_FORMAT, IBP_CACHE_VERSION, ibp_cache_kind_name(c->kind), saved_at_ms);
    if (n < 0 || (size_t)n >= sizeof head || sb_append(&b, head, (size_t)n))
        goto nomem;
    if (c->has_epoch) {
        n = snprintf(head, sizeof head, ",\"epoch\":%" PRIu64, c->epoch);
        if (n < 0 || (size_t)n >= sizeof head || sb_append(&b, head, (size_t)n))
            goto nomem;
    }
    if (sb_append_str(&b, ",\n\"results\":["))
        goto nomem;
    size_t written = 0;
    for (size_t i = 0; i < c->result_count; i++) {
        st = result_to_json(path, res[i], &j, err);
        if (st == IBP_E_NOT_FOUND) {
            skipped++;
            continue;
        }
        if (st != IBP_OK)
            goto done;
        if (sb_append_str(&b, written ? ",\n" : "\n") || sb_append_json(&b, j))
            goto nomem;
        json_decref(j);
        j = NULL;
        written++;
    }
    if (sb_append_str(&b, "\n],\n\"overrides\":["))
        goto nomem;
    for (size_t i = 0; i < c->override_count; i++) {
        if ((st = override_to_json(path, ovs[i], &j, err)) != IBP_OK)
            goto done;
        if (sb_append_str(&b, i ? ",\n" : "\n") || sb_append_json(&b, j))
            goto nomem;
        json_decref(j);
        j = NULL;
    }
    if (sb_append_str(&b, "\n]}\n"))
        goto nomem;
    if (skipped)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "skipped results whose keys are not UTF-8 path=%s skipped=%zu", path, skipped);

    if ((st = ensure_parent_dir(path, err)) != IBP_OK)
        goto done;
    st = ibp_file_write_atomic(path, b.p, b.len, IBP_CACHE_FILE_MODE, err);
    goto done;
nomem:
    st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
done:
    if (st != IBP_OK)
        (void)ibp_err_wrap(err, "save %s cache", ibp_cache_kind_name(c->kind));
    json_decref(j);
    free(b.p);
    free(ovs);
    free(res);
    return st;
}

/* ---- loading ---------------------------------------------------------------------------- */

/*
 * Field readers. Each returns IBP_OK, or BAD_CONTENT with the reason in err
 * ("results[3]: 'up' is not a boolean"). where names the object.
 */
static ibp_status get_field(const json_t *obj, const char *where, const char *key, bool required,
                            const json_t **out, ibp_err *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = v;
    if (!v && required)
        return ibp_err_set(err, BAD_CONTENT, "%s: '%s' is missing", where, key);
    return IBP_OK;
}

static ibp_status get_string(const json_t *obj, const char *where, const char *key, bool required,
                             const char **out, ibp_err *err)
{
    const json_t *v;
    ibp_status st = get_field(obj, where, key, required, &v, err);
    if (st != IBP_OK)
        return st;
    if (!v) {
        *out = "";
        return IBP_OK;
    }
    if (!json_is_string(v))
        return ibp_err_set(err, BAD_CONTENT, "%s: '%s' is not a string", where, key);
    *out = json_string_value(v);
    return IBP_OK;
}

static ibp_status get_bool(const json_t *obj, const char *where, const char *key, bool *out,
                           ibp_err *err)
{
    const json_t *v;
    ibp_status st = get_field(obj, where, key, true, &v, err);
    if (st != IBP_OK)
        return st;
    if (!json_is_boolean(v))
        return ibp_err_set(err, BAD_CONTENT, "%s: '%s' is not a boolean", where, key);
    *out = json_is_true(v);
    return IBP_OK;
}

static ibp_status get_int(const json_t *obj, const char *where, const char *key, int64_t *out,
                          ibp_err *err)
{
    const json_t *v;
    ibp_status st = get_field(obj, where, key, true, &v, err);
    if (st != IBP_OK)
        return st;
    if (!json_is_integer(v))
        return ibp_err_set(err, BAD_CONTENT, "%s: '%s' is not an integer", where, key);
    *out = (int64_t)json_integer_value(v);
    return IBP_OK;
}

static ibp_status get_array(const json_t *obj, const char *key, const json_t **out, ibp_err *err)
{
    ibp_status st = get_field(obj, "top level", key, true, out, err);
    if (st == IBP_OK && !json_is_array(*out))
        st = ibp_err_set(err, BAD_CONTENT, "top level: '%s' is not an array", key);
    return st;
}

static ibp_status parse_header(const json_t *root, ibp_cache_kind kind, ibp_cache_loaded *c,
                               ibp_err *err)
{
    ibp_status st;
    const char *s;
    int64_t v;
    const json_t *epoch;
    if (!json_is_object(root))
        return ibp_err_set(err, BAD_CONTENT, "top level: not a JSON object");
    if ((st = get_string(root, "top level", "format", true, &s, err)) != IBP_OK)
        return st;
    if (strcmp(s, IBP_CACHE_FORMAT) != 0)
        return ibp_err_set(err, BAD_CONTENT, "format is not '%s'", IBP_CACHE_FORMAT);
    if ((st = get_int(root, "top level", "version", &v, err)) != IBP_OK)
        return st;
    if (v != IBP_CACHE_VERSION)
        return ibp_err_set(err, BAD_CONTENT, "version %" PRId64 ", this build reads %d", v,
                           IBP_CACHE_VERSION);
    if ((st = get_string(root, "top level", "kind", true, &s, err)) != IBP_OK)
        return st;
    if (strcmp(s, ibp_cache_kind_name(kind)) != 0)
        return ibp_err_set(err, BAD_CONTENT, "kind is not '%s'", ibp_cache_kind_name(kind));
    if ((st = get_int(root, "top level", "saved_at_ms", &c->saved_at_ms, err)) != IBP_OK)
        return st;
    if ((epoch = json_object_get(root, "epoch")) != NULL) {
        if (kind != IBP_CACHE_OFFICIAL)
            return ibp_err_set(err, BAD_CONTENT, "top level: 'epoch' in a local cache");
        if ((st = get_int(root, "top level", "epoch", &v, err)) != IBP_OK)
            return st;
        if (v < 0)
            return ibp_err_set(err, BAD_CONTENT, "top level: 'epoch' is negative");
        c->has_epoch = true;
        c->epoch = (uint64_t)v;
    }
    return IBP_OK;
}

static ibp_status parse_result(const json_t *o, size_t idx, ibp_result **out, ibp_err *err)
{
    ibp_status st;
    char where[48];
    const char *type_name, *error;
    const json_t *data;
    ibp_result_key k = {0};
    bool up;
    int64_t t;
    char *data_text = NULL;
    snprintf(where, sizeof where, "results[%zu]", idx);
    if (!json_is_object(o))
        return ibp_err_set(err, BAD_CONTENT, "%s: not an object", where);
    if ((st = get_string(o, where, "type", true, &type_name, err)) != IBP_OK ||
        (st = get_string(o, where, "check", true, &k.check_name, err)) != IBP_OK ||
        (st = get_string(o, where, "member", true, &k.member, err)) != IBP_OK ||
        (st = get_string(o, where, "domain", false, &k.domain, err)) != IBP_OK ||
        (st = get_string(o, where, "endpoint", false, &k.endpoint, err)) != IBP_OK ||
        (st = get_bool(o, where, "ipv6", &k.ipv6, err)) != IBP_OK ||
        (st = get_bool(o, where, "up", &up, err)) != IBP_OK ||
        (st = get_int(o, where, "check_time_ms", &t, err)) != IBP_OK ||
        (st = get_string(o, where, "error", false, &error, err)) != IBP_OK ||
        (st = get_field(o, where, "data", false, &data, err)) != IBP_OK)
        return st;
    if (ibp_check_type_parse(type_name, &k.type) != IBP_OK)
        return ibp_err_set(err, BAD_CONTENT, "%s: unknown type", where);
    if (data) {
        if (!json_is_object(data))
            return ibp_err_set(err, BAD_CONTENT, "%s: 'data' is not an object", where);
        if (!(data_text = json_dumps(data, JSON_COMPACT)))
            return ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", where);
    }
    st = ibp_result_new(&k, up, t, error, data_text, out, err);
    free(data_text);
    if (st == IBP_E_INVAL) {
        /* The same rules as a result made anywhere else: the entry is bad, so is the file. */
        ibp_err_wrap(err, "%s", where);
        err->code = BAD_CONTENT;
        return BAD_CONTENT;
    }
    return st;
}

static int cmp_overrides(const void *a, const void *b)
{
    return strcmp(((const ibp_cache_override *)a)->member, ((const ibp_cache_override *)b)->member);
}

/* The two passes over the overrides array: check and measure, then copy into one block. */
static ibp_status parse_overrides(const json_t *arr, ibp_cache_loaded *c, ibp_err *err)
{
    size_t count = json_array_size(arr), text = 0;
    char where[48];
    for (size_t i = 0; i < count; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *member, *reason;
        bool disabled;
        int64_t t;
        ibp_status st;
        snprintf(where, sizeof where, "overrides[%zu]", i);
        if (!json_is_object(o))
            return ibp_err_set(err, BAD_CONTENT, "%s: not an object", where);
        if ((st = get_string(o, where, "member", true, &member, err)) != IBP_OK ||
            (st = get_bool(o, where, "disabled", &disabled, err)) != IBP_OK ||
            (st = get_string(o, where, "reason", false, &reason, err)) != IBP_OK ||
            (st = get_int(o, where, "time_ms", &t, err)) != IBP_OK)
            return st;
        if (!*member || strlen(member) > IBP_NAME_MAX)
            return ibp_err_set(err, BAD_CONTENT, "%s: member empty or over %d bytes", where,
                               IBP_NAME_MAX);
        text += strlen(member) + 1 + utf8_cut_len(reason, IBP_ERROR_MAX) + 1;
    }
    if (count == 0)
        return IBP_OK;
    c->overrides = calloc(count, sizeof *c->overrides);
    c->strings = malloc(text);
    if (!c->overrides || !c->strings)
        return ibp_err_set(err, IBP_E_NOMEM, "overrides: out of memory");
    char *p = c->strings;
    for (size_t i = 0; i < count; i++) {
        const json_t *o = json_array_get(arr, i);
        const char *member = json_string_value(json_object_get(o, "member"));
        const json_t *r = json_object_get(o, "reason");
        const char *reason = r ? json_string_value(r) : "";
        size_t ml = strlen(member), rl = utf8_cut_len(reason, IBP_ERROR_MAX);
        ibp_cache_override *ov = &c->overrides[i];
        memcpy(p, member, ml + 1);
        ov->member = p;
        p += ml + 1;
        memcpy(p, reason, rl);
        p[rl] = '\0';
        ov->reason = p;
        p += rl + 1;
        ov->disabled = json_is_true(json_object_get(o, "disabled"));
        ov->time_ms = (int64_t)json_integer_value(json_object_get(o, "time_ms"));
    }
    c->override_count = count;
    qsort(c->overrides, count, sizeof *c->overrides, cmp_overrides);
    for (size_t i = 1; i < count; i++) {
        if (cmp_overrides(&c->overrides[i - 1], &c->overrides[i]) == 0)
            return ibp_err_set(err, BAD_CONTENT, "overrides: member '%s' appears twice",
                               c->overrides[i].member);
    }
    return IBP_OK;
}

static ibp_status parse_results(const json_t *arr, ibp_cache_loaded *c, ibp_err *err)
{
    size_t count = json_array_size(arr);
    if (count == 0)
        return IBP_OK;
    c->results.items = calloc(count, sizeof *c->results.items);
    if (!c->results.items)
        return ibp_err_set(err, IBP_E_NOMEM, "results: out of memory");
    for (size_t i = 0; i < count; i++) {
        ibp_status st = parse_result(json_array_get(arr, i), i, &c->results.items[i], err);
        if (st != IBP_OK)
            return st;
        c->results.count++;
    }
    qsort(c->results.items, count, sizeof *c->results.items, cmp_result_ptrs);
    for (size_t i = 1; i < count; i++) {
        const ibp_result *r = c->results.items[i];
        if (cmp_result_ptrs(&c->results.items[i - 1], &c->results.items[i]) == 0)
            return ibp_err_set(err, BAD_CONTENT,
                               "results: %s result '%s' of '%s' (domain '%s', endpoint '%s', "
                               "%s) appears twice",
                               ibp_check_type_name(r->type), r->check_name, r->member, r->domain,
                               r->endpoint, r->ipv6 ? "ipv6" : "ipv4");
    }
    return IBP_OK;
}

/*
 * Parses and checks the whole file into c. BAD_CONTENT (reason in why) when
 * the file is not a valid cache of this kind; IBP_E_NOMEM. why is never NULL.
 */
static ibp_status parse_file(const char *text, size_t len, ibp_cache_kind kind, ibp_cache_loaded *c,
                             ibp_err *why)
{
    json_error_t jerr;
    const json_t *results, *overrides;
    ibp_status st;
    /* Duplicate object members are rejected, not "last wins": we never write them. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_out_of_memory)
            return ibp_err_set(why, IBP_E_NOMEM, "out of memory");
        return ibp_err_set(why, BAD_CONTENT, "does not parse: line %d column %d: %s", jerr.line,
                           jerr.column, jerr.text);
    }
    if ((st = parse_header(root, kind, c, why)) != IBP_OK ||
        (st = get_array(root, "results", &results, why)) != IBP_OK ||
        (st = get_array(root, "overrides", &overrides, why)) != IBP_OK ||
        (st = parse_results(results, c, why)) != IBP_OK ||
        (st = parse_overrides(overrides, c, why)) != IBP_OK) {
        json_decref(root);
        return st;
    }
    json_decref(root);
    return IBP_OK;
}

/*
 * Renames a rejected file to "<path>.corrupt-<UTC time>" (".N" added if taken)
 * and logs why. The name is written to moved_to, "" when the rename failed.
 */
static void move_aside(const char *path, const char *reason, char *moved_to, size_t cap)
{
    char stamp[32];
    struct tm tm;
    struct stat sb;
    time_t now = time(NULL);
    moved_to[0] = '\0';
    if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        snprintf(stamp, sizeof stamp, "%lld", (long long)now);
    /* Two rejects in one second must not overwrite the evidence of the first. */
    for (int attempt = 0; attempt < 1000; attempt++) {
        int n = attempt ? snprintf(moved_to, cap, "%s.corrupt-%s.%d", path, stamp, attempt)
                        : snprintf(moved_to, cap, "%s.corrupt-%s", path, stamp);
        if (n < 0 || (size_t)n >= cap) {
            moved_to[0] = '\0';
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "discarded cache file, left in place (name too long) path=%s reason=\"%s\"",
                    path, reason);
            return;
        }
        if (lstat(moved_to, &sb) != 0 && errno == ENOENT)
            break;
        moved_to[0] = '\0';
    }
    if (!moved_to[0] || rename(path, moved_to) != 0) {
        int e = moved_to[0] ? errno : EEXIST;
        moved_to[0] = '\0';
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "discarded cache file, could not move it aside path=%s reason=\"%s\" "
                "error=\"%s\"",
                path, reason, strerror(e));
        return;
    }
    ibp_err ignored;
    (void)ibp_file_sync_dir(path, &ignored); /* losing the rename in a crash is harmless */
    IBP_LOG(IBP_LOG_WARN, COMPONENT,
            "discarded cache file, starting empty path=%s reason=\"%s\" moved_to=%s", path, reason,
            moved_to);
}

ibp_status ibp_cache_load(const char *path, ibp_cache_kind kind, ibp_cache_loaded *out,
                          ibp_err *err)
{
    ibp_cache_loaded *c = NULL;
    char *text = NULL;
    size_t len = 0;
    ibp_err why;
    ibp_status st;
    if (!path || !*path || !out)
        return ibp_err_set(err, IBP_E_INVAL, "load cache %s: no path or output", nz(path));
    if (!kind_valid(kind))
        return ibp_err_set(err, IBP_E_INVAL, "%s: unknown cache kind %d", path, (int)kind);
    /* Built on the heap: the struct is large (it holds a path). */
    if (!(c = calloc(1, sizeof *c)))
        return ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
    ibp_err_clear(&why);
    c->kind = kind;

    st = ibp_file_read_all(path, IBP_CACHE_MAX_BYTES, &text, &len, &why);
    if (st == IBP_E_NOT_FOUND) {
        c->outcome = IBP_CACHE_MISSING;
        goto success;
    }
    if (st == IBP_E_TOO_LARGE) {
        st = ibp_err_set(&why, BAD_CONTENT, "larger than %zu bytes", IBP_CACHE_MAX_BYTES);
    } else if (st == IBP_OK) {
        st = parse_file(text, len, kind, c, &why);
    } else {
        /* Unreadable is not corrupt: leave the file for a human, report the error. */
        st = ibp_err_set(err, st, "load %s cache: %s", ibp_cache_kind_name(kind), why.msg);
        goto fail;
    }
    if (st == IBP_E_NOMEM) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: %s", path, why.msg);
        goto fail;
    }
    if (st != IBP_OK) {
        ibp_cache_loaded_free(c);
        c->kind = kind;
        c->outcome = IBP_CACHE_DISCARDED;
        snprintf(c->reason, sizeof c->reason, "%s", why.msg);
        move_aside(path, c->reason, c->moved_to, sizeof c->moved_to);
        goto success;
    }
    c->outcome = IBP_CACHE_LOADED;
success:
    free(text);
    *out = *c;
    free(c);
    return IBP_OK;
fail:
    free(text);
    ibp_cache_loaded_free(c);
    free(c);
    return st;
}

void ibp_cache_loaded_free(ibp_cache_loaded *c)
{
    if (!c)
        return;
    ibp_result_list_free(&c->results);
    free(c->overrides);
    free(c->strings);
    memset(c, 0, sizeof *c);
}
