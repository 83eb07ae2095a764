/*
 * Reading a cache file (ibp_cache_load; see ibp/cache.h for the format and
 * the rules): every field checked, duplicates refused, and a file that is not
 * a valid cache of its kind moved aside so the store starts empty.
 */
#include "ibp/cache.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache_internal.h"
#include "ibp/atomic_file.h"
#include "ibp/log.h"

#define COMPONENT IBP_CACHE_COMPONENT

/* Internal status for "the file's content is not a valid cache": the file is discarded. */
#define BAD_CONTENT IBP_E_CONFIG

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

/* A 32-byte digest as 64 hex digits. */
static ibp_status get_digest(const json_t *o, const char *key, uint8_t out[IBP_CERT_DIGEST_BYTES],
                             ibp_err *err)
{
    const char *s = NULL;
    uint8_t *b = NULL;
    size_t n = 0;
    ibp_status st = get_string(o, "certificate", key, true, &s, err);
    if (st != IBP_OK)
        return st;
    if (!ibp__cache_unhex(s, &b, &n) || n != IBP_CERT_DIGEST_BYTES) {
        free(b);
        return ibp_err_set(err, BAD_CONTENT, "certificate: '%s' is not 64 hex digits", key);
    }
    memcpy(out, b, n);
    free(b);
    return IBP_OK;
}

/* The optional "certificate" object (shape only; ibp_cache_certificate_check judges it). */
static ibp_status parse_certificate(const json_t *root, ibp_cache_kind kind, ibp_cache_loaded *c,
                                    ibp_err *err)
{
    const json_t *o = json_object_get(root, "certificate");
    const char *s = NULL;
    int64_t v = 0;
    uint8_t *bytes = NULL;
    size_t n = 0;
    ibp_status st;
    if (kind != IBP_CACHE_OFFICIAL || !c->has_epoch)
        return ibp_err_set(err, BAD_CONTENT,
                           "top level: 'certificate' without an epoch or in a local cache");
    if (!json_is_object(o))
        return ibp_err_set(err, BAD_CONTENT, "top level: 'certificate' is not an object");
    if ((st = get_int(o, "certificate", "local_seq", &v, err)) != IBP_OK)
        return st;
    if (v < 0)
        return ibp_err_set(err, BAD_CONTENT, "certificate: 'local_seq' is negative");
    if ((st = get_digest(o, "state_digest", c->certificate.state_digest, err)) != IBP_OK ||
        (st = get_digest(o, "snapshot_hash", c->certificate.snapshot_hash, err)) != IBP_OK ||
        (st = get_string(o, "certificate", "bytes", true, &s, err)) != IBP_OK)
        return st;
    if (!ibp__cache_unhex(s, &bytes, &n) || n == 0) {
        free(bytes);
        return ibp_err_set(err, BAD_CONTENT, "certificate: 'bytes' is not hex");
    }
    c->certificate.local_seq = (uint64_t)v;
    c->certificate.bytes = bytes;
    c->certificate.len = n;
    c->has_certificate = true;
    /* Optional: without it the certificate vouches for nothing in the file. */
    if (json_object_get(o, "snapshot") != NULL) {
        uint8_t *snap = NULL;
        if ((st = get_string(o, "certificate", "snapshot", true, &s, err)) != IBP_OK)
            return st;
        if (!ibp__cache_unhex(s, &snap, &n) || n == 0) {
            free(snap);
            return ibp_err_set(err, BAD_CONTENT, "certificate: 'snapshot' is not hex");
        }
        c->certificate.snapshot = snap;
        c->certificate.snapshot_len = n;
    }
    return IBP_OK;
}

static ibp_status parse_header(const json_t *root, ibp_cache_kind kind, ibp_cache_loaded *c,
                               ibp_err *err)
{
    ibp_status st;
    const char *s = NULL;
    int64_t v = 0;
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
    if (json_object_get(root, "certificate") != NULL)
        return parse_certificate(root, kind, c, err);
    return IBP_OK;
}

static ibp_status parse_result(const json_t *o, size_t idx, ibp_result **out, ibp_err *err)
{
    ibp_status st;
    char where[48];
    const char *type_name = NULL, *error = NULL;
    const json_t *data = NULL;
    ibp_result_key k = {0};
    bool up = false;
    int64_t t = 0;
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
        const char *member = NULL, *reason = NULL;
        bool disabled = false;
        int64_t t = 0;
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
        text += strlen(member) + 1 + ibp__cache_utf8_cut_len(reason, IBP_ERROR_MAX) + 1;
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
        size_t ml = strlen(member), rl = ibp__cache_utf8_cut_len(reason, IBP_ERROR_MAX);
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
    qsort(c->results.items, count, sizeof *c->results.items, ibp__cache_cmp_result_ptrs);
    for (size_t i = 1; i < count; i++) {
        const ibp_result *r = c->results.items[i];
        if (ibp__cache_cmp_result_ptrs(&c->results.items[i - 1], &c->results.items[i]) == 0)
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
 * Renames a rejected file to "<path>.corrupt-<UTC time>" and logs why. The
 * name is written to moved_to, "" when the rename failed.
 */
static void move_aside(const char *path, const char *reason, char *moved_to, size_t cap)
{
    int e = 0;
    if (ibp_cache_move_aside(path, "corrupt", moved_to, cap, &e)) {
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "discarded cache file, starting empty path=%s reason=\"%s\" moved_to=%s", path,
                reason, moved_to);
        return;
    }
    if (e == ENAMETOOLONG)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "discarded cache file, left in place (name too long) path=%s reason=\"%s\"",
                path, reason);
    else
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "discarded cache file, could not move it aside path=%s reason=\"%s\" "
                "error=\"%s\"",
                path, reason, strerror(e));
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
        return ibp_err_set(err, IBP_E_INVAL, "load cache %s: no path or output",
                           ibp__cache_nz(path));
    if (!ibp__cache_kind_valid(kind))
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
    free((void *)c->certificate.bytes);
    free((void *)c->certificate.snapshot);
    memset(c, 0, sizeof *c);
}
