/*
 * Loading the IBP network config (ibp/network.h) from its JSON files or
 * buffers: schema checks with messages that name the file, the key path and
 * what was found. Builds the model of network.c.
 */
#include "ibp/network.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/atomic_file.h"
#include "ibp/result.h"
#include "network_internal.h"

/* The upstream files are tens of kilobytes; refuse anything absurd. */
#define NETWORK_FILE_MAX (16u * 1024u * 1024u)
/* Key paths and echoed values in messages are cut to this. */
#define ECHO_MAX 80
#define PATH_CAP 320

#define CHECK_TIMEOUT_DEFAULT_S 10
#define CHECK_INTERVAL_DEFAULT_S 60

/* Where a message comes from: the file name, and where it goes. */
typedef struct pctx {
    const char *source;
    ibp_err *err;
} pctx;

/* ---- messages ---------------------------------------------------------------------------- */

/* JSON-quoted, escaped and shortened text for messages (hostile keys cannot forge lines). */
static void echo_json(const json_t *j, char *buf, size_t cap)
{
    char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!text) {
        snprintf(buf, cap, "(value)");
        return;
    }
    size_t n = strlen(text);
    if (n > ECHO_MAX) {
        n = ECHO_MAX;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        snprintf(buf, cap, "%.*s...", (int)n, text);
    } else {
        snprintf(buf, cap, "%s", text);
    }
    free(text);
}

static void quote(const char *s, char *buf, size_t cap)
{
    json_t *j = json_string(s);
    if (!j) {
        snprintf(buf, cap, "(non-UTF-8 text)");
        return;
    }
    echo_json(j, buf, cap);
    json_decref(j);
}

static const char *json_kind(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a real number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static void got_desc(const json_t *j, char *buf, size_t cap)
{
    if (json_is_object(j) || json_is_array(j) || json_is_null(j)) {
        snprintf(buf, cap, "%s", json_kind(j));
        return;
    }
    char echo[ECHO_MAX + 8];
    echo_json(j, echo, sizeof echo);
    snprintf(buf, cap, "%s %s", json_kind(j), echo);
}

/* "<source>: <path>: <what>", IBP_E_CONFIG. */
static ibp_status bad(pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ibp_status bad(pctx *c, const char *path, const char *fmt, ...)
{
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (path && *path)
        return ibp_err_set(c->err, IBP_E_CONFIG, "%s: %s: %s", c->source, path, what);
    return ibp_err_set(c->err, IBP_E_CONFIG, "%s: %s", c->source, what);
}

static ibp_status nomem(pctx *c)
{
    return ibp_err_set(c->err, IBP_E_NOMEM, "%s: out of memory", c->source);
}

static ibp_status wrong_type(pctx *c, const char *path, const char *expected, const json_t *got)
{
    char g[ECHO_MAX + 40];
    got_desc(got, g, sizeof g);
    return bad(c, path, "expected %s, got %s", expected, g);
}

/* path + "." + key (schema keys are plain words, so they are not quoted). */
static void join(char *out, const char *path, const char *key)
{
    /* Paths deeper than PATH_CAP are cut; they only label error messages. */
    if (snprintf(out, PATH_CAP, "%s%s%s", path, *path ? "." : "", key) >= PATH_CAP)
        out[PATH_CAP - 1] = '\0';
}

/* path + "." + quoted data-defined key ("Providers" + "Ibp" -> Providers."Ibp"). */
static void join_quoted(char *out, const char *path, const char *key)
{
    char q[ECHO_MAX + 8];
    quote(key, q, sizeof q);
    if (snprintf(out, PATH_CAP, "%s%s%s", path, *path ? "." : "", q) >= PATH_CAP)
        out[PATH_CAP - 1] = '\0';
}

static void join_index(char *out, const char *path, size_t i)
{
    if (snprintf(out, PATH_CAP, "%s[%zu]", path, i) >= PATH_CAP)
        out[PATH_CAP - 1] = '\0';
}

/* A member of obj; absent and null both count as absent (NULL). */
static const json_t *member_of(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

static ibp_status get_object(pctx *c, const json_t *obj, const char *key, const char *path,
                             bool required, const json_t **out)
{
    char p[PATH_CAP];
    join(p, path, key);
    const json_t *v = member_of(obj, key);
    *out = NULL;
    if (!v)
        return required ? bad(c, p, "missing (required)") : IBP_OK;
    if (!json_is_object(v))
        return wrong_type(c, p, "an object", v);
    *out = v;
    return IBP_OK;
}

/* Absent optional strings become "", so no string in the model is NULL. */
static ibp_status get_string(pctx *c, const json_t *obj, const char *key, const char *path,
                             bool required, char **out)
{
    char p[PATH_CAP];
    join(p, path, key);
    const json_t *v = member_of(obj, key);
    if (!v && required)
        return bad(c, p, "missing (required)");
    if (v && !json_is_string(v))
        return wrong_type(c, p, "a string", v);
    if (required && json_string_length(v) == 0)
        return bad(c, p, "is empty");
    free(*out);
    if (!(*out = ibp__network_strdup(v ? json_string_value(v) : "")))
        return nomem(c);
    return IBP_OK;
}

/* *out keeps its value (the default) when the key is absent. */
static ibp_status get_int(pctx *c, const json_t *obj, const char *key, const char *path,
                          bool required, int64_t lo, int64_t hi, int64_t *out)
{
    char p[PATH_CAP];
    join(p, path, key);
    const json_t *v = member_of(obj, key);
    if (!v)
        return required ? bad(c, p, "missing (required)") : IBP_OK;
    if (!json_is_integer(v))
        return wrong_type(c, p, "an integer", v);
    json_int_t n = json_integer_value(v);
    if (n < lo || n > hi)
        return bad(c, p, "%lld is out of range %lld..%lld", (long long)n, (long long)lo,
                   (long long)hi);
    *out = n;
    return IBP_OK;
}

/* The upstream files write flags as 0/1; booleans are accepted too. */
static ibp_status get_flag(pctx *c, const json_t *obj, const char *key, const char *path,
                           bool required, bool *out)
{
    char p[PATH_CAP];
    join(p, path, key);
    const json_t *v = member_of(obj, key);
    if (!v)
        return required ? bad(c, p, "missing (required)") : IBP_OK;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return IBP_OK;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = json_integer_value(v) == 1;
        return IBP_OK;
    }
    return wrong_type(c, p, "0, 1, true or false", v);
}

static ibp_status get_number(pctx *c, const json_t *obj, const char *key, const char *path,
                             double lo, double hi, double *out, bool *present)
{
    char p[PATH_CAP];
    join(p, path, key);
    const json_t *v = member_of(obj, key);
    *present = false;
    if (!v)
        return IBP_OK;
    if (!json_is_number(v))
        return wrong_type(c, p, "a number", v);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return bad(c, p, "%g is out of range %g..%g", d, lo, hi);
    *out = d;
    *present = true;
    return IBP_OK;
}

/* An optional address: "" or a valid address of the family. */
static ibp_status check_address(pctx *c, const char *path, const char *key, const char *addr,
                                int family)
{
    if (!*addr)
        return IBP_OK;
    unsigned char buf[16];
    if (inet_pton(family, addr, buf) == 1)
        return IBP_OK;
    char p[PATH_CAP], q[ECHO_MAX + 8];
    join(p, path, key);
    quote(addr, q, sizeof q);
    return bad(c, p, "%s is not an %s address", q, family == AF_INET ? "IPv4" : "IPv6");
}

static ibp_status check_url(pctx *c, const char *path, const char *url, ibp_network_url *out)
{
    ibp_err e;
    ibp_err_clear(&e);
    ibp_network_url tmp;
    if (strlen(url) <= IBP_URL_MAX && ibp_network_url_parse(url, out ? out : &tmp, &e) == IBP_OK)
        return IBP_OK;
    char q[ECHO_MAX + 8];
    quote(url, q, sizeof q);
    /* Endpoint URLs become part of result keys, which cap them. */
    size_t len = strlen(url);
    if (len > IBP_URL_MAX)
        return bad(c, path, "URL %s of %zu bytes is over the limit of %d (IBP_URL_MAX)", q, len,
                   IBP_URL_MAX);
    return bad(c, path, "%s is not a valid URL: %s", q, e.msg);
}

/* ---- members ----------------------------------------------------------------------------- */

static ibp_status parse_member(pctx *c, ibp_network_member *m, const char *key, const json_t *v)
{
    char mp[PATH_CAP], p[PATH_CAP];
    ibp_status st;
    join_quoted(mp, "", key);
    if (!*key)
        return bad(c, mp, "empty member name");
    /* Member names are part of result keys and usage rows, which cap them. */
    if (strlen(key) > IBP_NAME_MAX)
        return bad(c, mp, "member name of %zu bytes is over the limit of %d (IBP_NAME_MAX)",
                   strlen(key), IBP_NAME_MAX);
    if (!(m->name = ibp__network_strdup(key)))
        return nomem(c);
    if (!json_is_object(v))
        return wrong_type(c, mp, "an object", v);

    const json_t *details, *membership, *service, *assignments, *location;
    if ((st = get_object(c, v, "Details", mp, true, &details)))
        return st;
    join(p, mp, "Details");
    if ((st = get_string(c, details, "Name", p, true, &m->display_name)) ||
        (st = get_string(c, details, "Website", p, false, &m->website)))
        return st;

    if ((st = get_object(c, v, "Membership", mp, true, &membership)))
        return st;
    join(p, mp, "Membership");
    if ((st = get_int(c, membership, "MemberLevel", p, true, 0, 100, &m->level)) ||
        (st = get_int(c, membership, "Joined", p, false, 0, INT64_MAX, &m->joined)) ||
        (st = get_int(c, membership, "LastRankup", p, false, 0, INT64_MAX, &m->last_rankup)))
        return st;

    if ((st = get_object(c, v, "Service", mp, true, &service)))
        return st;
    join(p, mp, "Service");
    if ((st = get_flag(c, service, "Active", p, true, &m->active)) ||
        (st = get_string(c, service, "ServiceIPv4", p, false, &m->ipv4)) ||
        (st = check_address(c, p, "ServiceIPv4", m->ipv4, AF_INET)) ||
        (st = get_string(c, service, "ServiceIPv6", p, false, &m->ipv6)) ||
        (st = check_address(c, p, "ServiceIPv6", m->ipv6, AF_INET6)) ||
        (st = get_string(c, service, "MonitorUrl", p, false, &m->monitor_url)))
        return st;
    if (*m->monitor_url) {
        char up[PATH_CAP];
        join(up, p, "MonitorUrl");
        if ((st = check_url(c, up, m->monitor_url, NULL)))
            return st;
    }

    if ((st = get_object(c, v, "ServiceAssignments", mp, false, &assignments)))
        return st;
    if (assignments) {
        join(p, mp, "ServiceAssignments");
        const char *group;
        const json_t *list;
        json_object_foreach((json_t *)assignments, group, list)
        {
            char gp[PATH_CAP];
            join_quoted(gp, p, group);
            if (json_is_null(list))
                continue;
            if (!json_is_array(list))
                return wrong_type(c, gp, "an array of service names", list);
            size_t i;
            const json_t *name;
            json_array_foreach(list, i, name)
            {
                char ip[PATH_CAP];
                join_index(ip, gp, i);
                if (!json_is_string(name))
                    return wrong_type(c, ip, "a service name", name);
                if (json_string_length(name) == 0)
                    return bad(c, ip, "is empty");
                if (ibp__network_strv_push(&m->services, &m->service_count,
                                           json_string_value(name)))
                    return nomem(c);
            }
        }
        if (ibp__network_strv_distinct(m->services, &m->service_count))
            return nomem(c);
    }

    if ((st = get_object(c, v, "Location", mp, false, &location)))
        return st;
    if (location) {
        bool has_lat, has_lon;
        join(p, mp, "Location");
        if ((st = get_string(c, location, "Region", p, false, &m->region)) ||
            (st = get_number(c, location, "Latitude", p, -90, 90, &m->latitude, &has_lat)) ||
            (st = get_number(c, location, "Longitude", p, -180, 180, &m->longitude, &has_lon)))
            return st;
        m->has_location = has_lat && has_lon;
    }
    /* Sections that were absent still leave no NULL string behind. */
    if (!m->region && !(m->region = ibp__network_strdup("")))
        return nomem(c);
    return IBP_OK;
}

static ibp_status parse_members(ibp_network *net, pctx *c, const json_t *root)
{
    if (!json_is_object(root))
        return bad(c, NULL, "expected an object keyed by member name at the top level, got %s",
                   json_kind(root));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v)
    {
        if (ibp__network_grow((void **)&net->members, &net->member_cap, net->member_count,
                              sizeof *net->members))
            return nomem(c);
        ibp_status st = parse_member(c, &net->members[net->member_count++], key, v);
        if (st)
            return st;
    }
    return IBP_OK;
}

/* ---- services ---------------------------------------------------------------------------- */

static ibp_status parse_provider(pctx *c, ibp_network *net, ibp_network_service *s,
                                 ibp_network_provider *pv, const char *name, const json_t *v,
                                 const char *path)
{
    ibp_status st;
    if (!(pv->name = ibp__network_strdup(name)))
        return nomem(c);
    if (!json_is_object(v))
        return wrong_type(c, path, "an object", v);
    char p[PATH_CAP];
    join(p, path, "RpcUrls");
    const json_t *urls = member_of(v, "RpcUrls");
    if (!urls)
        return IBP_OK;
    if (!json_is_array(urls))
        return wrong_type(c, p, "an array of URLs", urls);
    size_t i;
    const json_t *u;
    json_array_foreach(urls, i, u)
    {
        char up[PATH_CAP];
        join_index(up, p, i);
        if (!json_is_string(u))
            return wrong_type(c, up, "a URL string", u);
        ibp_network_url parsed;
        if ((st = check_url(c, up, json_string_value(u), &parsed)))
            return st;
        if (ibp__network_strv_push(&pv->rpc_urls, &pv->rpc_url_count, json_string_value(u)) ||
            ibp__network_strv_push(&s->domains, &s->domain_count, parsed.host))
            return nomem(c);
        net->rpc_url_count++;
    }
    return IBP_OK;
}

static ibp_status parse_service(pctx *c, ibp_network *net, ibp_network_service *s, const char *key,
                                const json_t *v)
{
    char sp[PATH_CAP], p[PATH_CAP];
    ibp_status st;
    join_quoted(sp, "", key);
    if (!*key)
        return bad(c, sp, "empty service name");
    if (!(s->name = ibp__network_strdup(key)))
        return nomem(c);
    if (!json_is_object(v))
        return wrong_type(c, sp, "an object", v);

    const json_t *conf, *providers;
    char *config_name = NULL;
    if ((st = get_object(c, v, "Configuration", sp, true, &conf)))
        return st;
    join(p, sp, "Configuration");
    st = get_string(c, conf, "Name", p, true, &config_name);
    free(config_name); /* required, but the key is the name everyone uses */
    if (st || (st = get_string(c, conf, "ServiceType", p, true, &s->type)) ||
        (st = get_flag(c, conf, "Active", p, true, &s->active)) ||
        (st = get_int(c, conf, "LevelRequired", p, true, 0, 100, &s->level_required)) ||
        (st = get_string(c, conf, "NetworkName", p, false, &s->network_name)))
        return st;

    if ((st = get_object(c, v, "Providers", sp, false, &providers)))
        return st;
    if (providers) {
        size_t n = json_object_size(providers);
        if (n && !(s->providers = calloc(n, sizeof *s->providers)))
            return nomem(c);
        join(p, sp, "Providers");
        const char *name;
        const json_t *pv;
        json_object_foreach((json_t *)providers, name, pv)
        {
            char pp[PATH_CAP];
            join_quoted(pp, p, name);
            st = parse_provider(c, net, s, &s->providers[s->provider_count++], name, pv, pp);
            if (st)
                return st;
        }
    }
    if (s->domain_count > 1) {
        qsort(s->domains, s->domain_count, sizeof *s->domains, ibp__network_cmp_str_ptr);
        size_t w = 1;
        for (size_t i = 1; i < s->domain_count; i++) {
            if (strcmp(s->domains[i], s->domains[w - 1]) == 0)
                free(s->domains[i]);
            else
                s->domains[w++] = s->domains[i];
        }
        s->domain_count = w;
    }
    return IBP_OK;
}

static ibp_status parse_services(ibp_network *net, pctx *c, const json_t *root)
{
    if (!json_is_object(root))
        return bad(c, NULL, "expected an object keyed by service name at the top level, got %s",
                   json_kind(root));
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)root, key, v)
    {
        if (ibp__network_grow((void **)&net->services, &net->service_cap, net->service_count,
                              sizeof *net->services))
            return nomem(c);
        ibp_status st = parse_service(c, net, &net->services[net->service_count++], key, v);
        if (st)
            return st;
    }
    return IBP_OK;
}

/* ---- checks ------------------------------------------------------------------------------ */

static ibp_status parse_check(pctx *c, ibp_network_check *chk, const char *key, size_t index,
                              const json_t *v)
{
    static const char *const known[] = {"Name",        "Enabled",         "CheckType",
                                        "Timeout",     "MinimumInterval", "minimumInterval",
                                        "ExtraOptions"};
    char cp[PATH_CAP], p[PATH_CAP];
    ibp_status st;
    if (key)
        join_quoted(cp, "", key);
    else
        join_index(cp, "", index);
    if (!json_is_object(v))
        return wrong_type(c, cp, "an object", v);

    const char *k;
    const json_t *item;
    json_object_foreach((json_t *)v, k, item)
    {
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok = ok || strcmp(k, known[i]) == 0;
        if (!ok) {
            char q[ECHO_MAX + 8];
            quote(k, q, sizeof q);
            return bad(c, cp,
                       "unknown key %s (expected Name, Enabled, CheckType, Timeout, "
                       "MinimumInterval, ExtraOptions)",
                       q);
        }
    }

    if ((st = get_string(c, v, "Name", cp, key == NULL, &chk->name)))
        return st;
    if (key) {
        if (*chk->name && strcmp(chk->name, key) != 0) {
            char q[ECHO_MAX + 8];
            quote(chk->name, q, sizeof q);
            join(p, cp, "Name");
            return bad(c, p, "%s differs from the check's key", q);
        }
        free(chk->name);
        if (!(chk->name = ibp__network_strdup(key)))
            return nomem(c);
        if (!*key)
            return bad(c, cp, "empty check name");
    }
    /* Check names are part of result keys, which cap them. */
    if (strlen(chk->name) > IBP_NAME_MAX)
        return bad(c, cp, "check name of %zu bytes is over the limit of %d (IBP_NAME_MAX)",
                   strlen(chk->name), IBP_NAME_MAX);

    chk->enabled = true;
    if ((st = get_flag(c, v, "Enabled", cp, false, &chk->enabled)))
        return st;

    const json_t *type = member_of(v, "CheckType");
    join(p, cp, "CheckType");
    if (!type)
        return bad(c, p, "missing (required)");
    if (!json_is_string(type))
        return wrong_type(c, p, "\"site\", \"domain\" or \"endpoint\"", type);
    const char *t = json_string_value(type);
    if (strcasecmp(t, "site") == 0) {
        chk->type = IBP_NETWORK_CHECK_SITE;
    } else if (strcasecmp(t, "domain") == 0) {
        chk->type = IBP_NETWORK_CHECK_DOMAIN;
    } else if (strcasecmp(t, "endpoint") == 0) {
        chk->type = IBP_NETWORK_CHECK_ENDPOINT;
    } else {
        char q[ECHO_MAX + 8];
        quote(t, q, sizeof q);
        return bad(c, p, "%s is not \"site\", \"domain\" or \"endpoint\"", q);
    }

    chk->timeout_s = CHECK_TIMEOUT_DEFAULT_S;
    chk->min_interval_s = CHECK_INTERVAL_DEFAULT_S;
    if ((st = get_int(c, v, "Timeout", cp, false, 1, 3600, &chk->timeout_s)))
        return st;
    if (member_of(v, "MinimumInterval") && member_of(v, "minimumInterval"))
        return bad(c, cp, "both MinimumInterval and minimumInterval are set");
    if ((st = get_int(c, v, "MinimumInterval", cp, false, 1, 86400, &chk->min_interval_s)) ||
        (st = get_int(c, v, "minimumInterval", cp, false, 1, 86400, &chk->min_interval_s)))
        return st;

    const json_t *extra = member_of(v, "ExtraOptions");
    join(p, cp, "ExtraOptions");
    if (extra && !json_is_object(extra))
        return wrong_type(c, p, "an object", extra);
    chk->extra_options = extra ? json_dumps(extra, JSON_COMPACT) : ibp__network_strdup("{}");
    if (!chk->extra_options)
        return nomem(c);
    return IBP_OK;
}

static ibp_status parse_checks(ibp_network *net, pctx *c, const json_t *root)
{
    ibp_status st;
    if (json_is_object(root)) {
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)root, key, v)
        {
            if (ibp__network_grow((void **)&net->checks, &net->check_cap, net->check_count,
                                  sizeof *net->checks))
                return nomem(c);
            if ((st = parse_check(c, &net->checks[net->check_count++], key, 0, v)))
                return st;
        }
        return IBP_OK;
    }
    if (json_is_array(root)) {
        size_t i;
        const json_t *v;
        json_array_foreach(root, i, v)
        {
            if (ibp__network_grow((void **)&net->checks, &net->check_cap, net->check_count,
                                  sizeof *net->checks))
                return nomem(c);
            if ((st = parse_check(c, &net->checks[net->check_count++], NULL, i, v)))
                return st;
        }
        return IBP_OK;
    }
    return bad(c, NULL, "expected an object keyed by check name or an array of checks, got %s",
               json_kind(root));
}

/* ---- loading ----------------------------------------------------------------------------- */

static ibp_status parse_json(pctx *c, const char *text, size_t len, json_t **out)
{
    json_error_t jerr;
    json_t *root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ibp_err_set(c->err, IBP_E_CONFIG, "%s:%d:%d: %s", c->source, jerr.line, jerr.column,
                           jerr.text);
    *out = root;
    return IBP_OK;
}

static ibp_status read_file(const char *path, char **buf_out, size_t *len_out, ibp_err *err)
{
    return ibp_file_read_config(path, NETWORK_FILE_MAX, buf_out, len_out, err);
}

typedef struct source {
    const char *name;
    const char *text;
    size_t len;
} source;

/* Parses one file into net with parse(); a missing text (checks) is skipped. */
static ibp_status load_one(ibp_network *net, const source *src,
                           ibp_status (*parse)(ibp_network *, pctx *, const json_t *), ibp_err *err)
{
    if (!src->text)
        return IBP_OK;
    pctx c = {.source = src->name, .err = err};
    json_t *root = NULL;
    ibp_status st = parse_json(&c, src->text, src->len, &root);
    if (st == IBP_OK)
        st = parse(net, &c, root);
    json_decref(root);
    return st;
}

/* The derived data and indexes, with messages naming the file they come from. */
static ibp_status build(ibp_network *net, pctx *services_ctx, pctx *checks_ctx)
{
    const char *dup = NULL;
    if (ibp__network_build_domains(net) != IBP_OK)
        return nomem(services_ctx);
    ibp_status st = ibp__network_build_indexes(net, &dup);
    if (st == IBP_E_CONFIG && dup) {
        char q[ECHO_MAX + 8];
        quote(dup, q, sizeof q);
        return bad(checks_ctx, NULL, "check %s is defined twice", q);
    }
    return st == IBP_OK ? IBP_OK : nomem(checks_ctx);
}

static ibp_status load_sources(const source *members, const source *services, const source *checks,
                               ibp_network **out, ibp_err *err)
{
    ibp_network *net = calloc(1, sizeof *net);
    if (!net)
        return ibp_err_set(err, IBP_E_NOMEM, "network: out of memory");
    pctx checks_ctx = {.source = checks->name ? checks->name : "checks", .err = err};
    pctx services_ctx = {.source = services->name, .err = err};
    ibp_status st;
    if ((st = load_one(net, members, parse_members, err)) ||
        (st = load_one(net, services, parse_services, err)) ||
        (st = load_one(net, checks, parse_checks, err)) ||
        (st = build(net, &services_ctx, &checks_ctx))) {
        ibp_network_free(net);
        return st;
    }
    *out = net;
    return IBP_OK;
}

ibp_status ibp_network_load_buffers(const char *members_json, size_t members_len,
                                    const char *services_json, size_t services_len,
                                    const char *checks_json, size_t checks_len, ibp_network **out,
                                    ibp_err *err)
{
    if (!members_json || !services_json || !out)
        return ibp_err_set(err, IBP_E_INVAL, "network: members and services are required");
    source m = {"members", members_json, members_len};
    source s = {"services", services_json, services_len};
    source c = {"checks", checks_json, checks_len};
    return load_sources(&m, &s, &c, out, err);
}

ibp_status ibp_network_load(const char *members_path, const char *services_path,
                            const char *checks_path, ibp_network **out, ibp_err *err)
{
    if (!members_path || !services_path || !out)
        return ibp_err_set(err, IBP_E_INVAL, "network: members and services files are required");
    source m = {members_path, NULL, 0}, s = {services_path, NULL, 0}, c = {checks_path, NULL, 0};
    char *mb = NULL, *sb = NULL, *cb = NULL;
    ibp_status st;
    if ((st = read_file(members_path, &mb, &m.len, err)) ||
        (st = read_file(services_path, &sb, &s.len, err)) ||
        (checks_path && (st = read_file(checks_path, &cb, &c.len, err))))
        goto out;
    m.text = mb;
    s.text = sb;
    c.text = cb;
    st = load_sources(&m, &s, &c, out, err);
out:
    free(mb);
    free(sb);
    free(cb);
    return st;
}
