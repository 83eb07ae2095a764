/*
 * Writing a cache file (ibp_cache_save; see ibp/cache.h for the format and
 * the rules): checked and sorted contents, one JSON object per line, written
 * atomically into a private directory.
 */
#include "ibp/cache.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache_internal.h"
#include "ibp/atomic_file.h"
#include "ibp/clock.h"
#include "ibp/log.h"
#include "ibp/vec.h"

#define COMPONENT IBP_CACHE_COMPONENT

static int dump_cb(const char *buffer, size_t size, void *data)
{
    return ibp_strbuf_append(data, buffer, size) ? 0 : -1;
}

static int append_json(ibp_strbuf *b, const json_t *j)
{
    return json_dump_callback(j, dump_cb, b, JSON_COMPACT);
}

static int cmp_override_ptrs(const void *a, const void *b)
{
    const ibp_cache_override *oa = *(const ibp_cache_override *const *)a;
    const ibp_cache_override *ob = *(const ibp_cache_override *const *)b;
    return strcmp(ibp__cache_nz(oa->member), ibp__cache_nz(ob->member));
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
    if (!ibp__cache_utf8_valid(ibp__cache_nz(r->check_name)) ||
        !ibp__cache_utf8_valid(ibp__cache_nz(r->member)) ||
        !ibp__cache_utf8_valid(ibp__cache_nz(r->domain)) ||
        !ibp__cache_utf8_valid(ibp__cache_nz(r->endpoint)))
        return IBP_E_NOT_FOUND;
    if (*ibp__cache_nz(r->data_json)) {
        /* Results made by ibp_result_new hold an object; anything else was made by hand. */
        json_error_t jerr;
        data = json_loads(r->data_json, 0, &jerr);
        if (!json_is_object(data)) {
            st = ibp_err_set(err, IBP_E_INVAL,
                             "%s: %s result '%s' of '%s': data is not a JSON "
                             "object",
                             path, ibp_check_type_name(r->type), ibp__cache_nz(r->check_name),
                             ibp__cache_nz(r->member));
            goto done;
        }
    }
    if (!(error = ibp__cache_utf8_fix(ibp__cache_nz(r->error))) || !(o = json_object()) ||
        set_str(o, "type", ibp_check_type_name(r->type)) ||
        set_str(o, "check", ibp__cache_nz(r->check_name)) ||
        set_str(o, "member", ibp__cache_nz(r->member)) ||
        set_str(o, "domain", ibp__cache_nz(r->domain)) ||
        set_str(o, "endpoint", ibp__cache_nz(r->endpoint)) ||
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
    char *reason = ibp__cache_utf8_fix(ibp__cache_nz(ov->reason));
    if (!reason || !(o = json_object())) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
        goto done;
    }
    reason[ibp__cache_utf8_cut_len(reason, IBP_ERROR_MAX)] = '\0';
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
    qsort(res, c->result_count, sizeof *res, ibp__cache_cmp_result_ptrs);
    for (size_t i = 1; i < c->result_count; i++) {
        if (ibp__cache_cmp_result_ptrs(&res[i - 1], &res[i]) == 0) {
            st = ibp_err_set(err, IBP_E_INVAL, "%s: %s result '%s' of '%s' given twice", path,
                             ibp_check_type_name(res[i]->type), ibp__cache_nz(res[i]->check_name),
                             ibp__cache_nz(res[i]->member));
            goto fail;
        }
    }
    for (size_t i = 0; i < c->override_count; i++) {
        const char *m = ibp__cache_nz(c->overrides[i].member);
        if (!*m || strlen(m) > IBP_NAME_MAX || !ibp__cache_utf8_valid(m)) {
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

/* ,\n"certificate":{...} (ibp/cache.h). false: no memory. */
static bool append_certificate(ibp_strbuf *b, const ibp_cache_certificate *cert)
{
    char head[64];
    char *digest = ibp__cache_hex(cert->state_digest, sizeof cert->state_digest);
    char *hash = ibp__cache_hex(cert->snapshot_hash, sizeof cert->snapshot_hash);
    char *bytes = ibp__cache_hex(cert->bytes, cert->len);
    char *snapshot = ibp__cache_hex(cert->snapshot, cert->snapshot_len);
    int n = snprintf(head, sizeof head, ",\n\"certificate\":{\"local_seq\":%" PRIu64,
                     cert->local_seq);
    bool ok = digest && hash && bytes && snapshot && n > 0 && (size_t)n < sizeof head &&
              ibp_strbuf_append(b, head, (size_t)n) &&
              ibp_strbuf_append_str(b, ",\"state_digest\":\"") &&
              ibp_strbuf_append_str(b, digest) &&
              ibp_strbuf_append_str(b, "\",\"snapshot_hash\":\"") &&
              ibp_strbuf_append_str(b, hash) && ibp_strbuf_append_str(b, "\",\"bytes\":\"") &&
              ibp_strbuf_append_str(b, bytes) && ibp_strbuf_append_str(b, "\",\"snapshot\":\"") &&
              ibp_strbuf_append_str(b, snapshot) && ibp_strbuf_append_str(b, "\"}");
    free(snapshot);
    free(digest);
    free(hash);
    free(bytes);
    return ok;
}

ibp_status ibp_cache_save(const char *path, const ibp_cache_contents *c, ibp_err *err)
{
    ibp_status st = IBP_OK;
    const ibp_result **res = NULL;
    const ibp_cache_override **ovs = NULL;
    ibp_strbuf b = {0};
    json_t *j = NULL;
    size_t skipped = 0;
    char head[256];

    if (!path || !*path || !c)
        return ibp_err_set(err, IBP_E_INVAL, "save cache %s: no path or contents",
                           ibp__cache_nz(path));
    if (!ibp__cache_kind_valid(c->kind))
        return ibp_err_set(err, IBP_E_INVAL, "%s: unknown cache kind %d", path, (int)c->kind);
    if (c->has_epoch && (c->kind != IBP_CACHE_OFFICIAL || c->epoch > (uint64_t)INT64_MAX)) {
        st = ibp_err_set(err, IBP_E_INVAL,
                         "%s: an epoch belongs only in an official cache and "
                         "must be <= INT64_MAX",
                         path);
        goto done;
    }
    if (c->certificate && (!c->has_epoch || c->certificate->local_seq > (uint64_t)INT64_MAX ||
                           !c->certificate->bytes || !c->certificate->len ||
                           !c->certificate->snapshot || !c->certificate->snapshot_len)) {
        st = ibp_err_set(err, IBP_E_INVAL,
                         "%s: a certificate needs an epoch, its bytes, its snapshot and a "
                         "local_seq <= INT64_MAX",
                         path);
        goto done;
    }
    if ((st = sorted_contents(path, c, &res, &ovs, err)) != IBP_OK)
        goto done;

    int64_t saved_at_ms = c->saved_at_ms ? c->saved_at_ms : ibp_clock_wall_ms();
    int n =
        snprintf(head, sizeof head,
                 "{\"format\":\"%s\",\"version\":%d,\"kind\":\"%s\",\"saved_at_ms\":%" PRId64,
                 IBP_CACHE_FORMAT, IBP_CACHE_VERSION, ibp_cache_kind_name(c->kind), saved_at_ms);
    if (n < 0 || (size_t)n >= sizeof head || !ibp_strbuf_append(&b, head, (size_t)n))
        goto nomem;
    if (c->has_epoch) {
        n = snprintf(head, sizeof head, ",\"epoch\":%" PRIu64, c->epoch);
        if (n < 0 || (size_t)n >= sizeof head || !ibp_strbuf_append(&b, head, (size_t)n))
            goto nomem;
    }
    if (!ibp_strbuf_append_str(&b, ",\n\"results\":["))
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
        if (!ibp_strbuf_append_str(&b, written ? ",\n" : "\n") || append_json(&b, j))
            goto nomem;
        json_decref(j);
        j = NULL;
        written++;
    }
    if (!ibp_strbuf_append_str(&b, "\n],\n\"overrides\":["))
        goto nomem;
    for (size_t i = 0; i < c->override_count; i++) {
        if ((st = override_to_json(path, ovs[i], &j, err)) != IBP_OK)
            goto done;
        if (!ibp_strbuf_append_str(&b, i ? ",\n" : "\n") || append_json(&b, j))
            goto nomem;
        json_decref(j);
        j = NULL;
    }
    if (!ibp_strbuf_append_str(&b, "\n]"))
        goto nomem;
    if (c->certificate && !append_certificate(&b, c->certificate))
        goto nomem;
    if (!ibp_strbuf_append_str(&b, "}\n"))
        goto nomem;
    if (skipped)
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "skipped results whose keys are not UTF-8 path=%s skipped=%zu", path, skipped);

    if ((st = ensure_parent_dir(path, err)) != IBP_OK)
        goto done;
    st = ibp_file_write_atomic(path, b.s, b.len, IBP_CACHE_FILE_MODE, err);
    goto done;
nomem:
    st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", path);
done:
    if (st != IBP_OK)
        (void)ibp_err_wrap(err, "save %s cache", ibp_cache_kind_name(c->kind));
    json_decref(j);
    ibp_strbuf_free(&b);
    free(ovs);
    free(res);
    return st;
}
