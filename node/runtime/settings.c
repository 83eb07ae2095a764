/* The settings-table engine; see ibp/settings.h. */
#include "ibp/settings.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "ibp/atomic_file.h"
#include "ibp/roster.h"

/* Config files are small; anything bigger is a mistake (a log file, a dump). */
#define CONFIG_FILE_MAX (4u * 1024u * 1024u)
/* Longest dotted name we build while walking nested objects. */
#define NAME_MAX_LEN 256
/* Values echoed in messages are cut to this many bytes. */
#define ECHO_MAX 80

/* A parsed value before it is stored, so that a failed parse leaves the field alone. */
typedef struct value {
    char *str;
    int64_t i64;
    bool b;
    ibp_strlist list;
    unsigned roles;
} value;

#define FOR_EACH_SETTING(t, g, s)                                                                  \
    for (const ibp_settings_group *g = (t)->groups; g < (t)->groups + (t)->group_count; g++)       \
        for (const ibp_setting *s = g->settings; s < g->settings + g->count; s++)

/* ---- small helpers ----------------------------------------------------------------------- */

void ibp_strlist_free(ibp_strlist *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

static void *field_at(void *base, const ibp_settings_group *g, const ibp_setting *s)
{
    return (char *)base + g->base + s->offset;
}

static const void *cfield_at(const void *base, const ibp_settings_group *g, const ibp_setting *s)
{
    return (const char *)base + g->base + s->offset;
}

static bool is_bounded(const ibp_setting *s)
{
    return !(s->min == 0 && s->max == 0);
}

static const char *type_name(ibp_setting_type type)
{
    switch (type) {
    case IBP_SETTING_STRING:
        return "string";
    case IBP_SETTING_PATH:
        return "path";
    case IBP_SETTING_INT64:
        return "integer";
    case IBP_SETTING_BOOL:
        return "boolean";
    case IBP_SETTING_DURATION_MS:
        return "duration";
    case IBP_SETTING_STRING_LIST:
        return "list of strings";
    case IBP_SETTING_ROLES:
        return "role set";
    }
    return "?";
}

/* What a JSON value is, for "expected X, got Y". */
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

/*
 * Renders a JSON value for a message, escaped as JSON (so control bytes in
 * hostile input cannot forge log lines) and cut to ECHO_MAX bytes on a UTF-8
 * character boundary.
 */
static void echo_json(const json_t *j, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    buf[0] = '\0';
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

static void echo_string(const char *s, char *buf, size_t cap)
{
    json_t *j = json_string(s ? s : "");
    if (!j) {
        /* Not UTF-8 (only possible from text given by the caller). */
        snprintf(buf, cap, "(non-UTF-8 text)");
        return;
    }
    echo_json(j, buf, cap);
    json_decref(j);
}

static void got_desc(const json_t *j, bool secret, char *buf, size_t cap)
{
    if (secret || json_is_object(j) || json_is_array(j) || json_is_null(j)) {
        snprintf(buf, cap, "%s", json_kind(j));
        return;
    }
    char echo[ECHO_MAX + 8];
    echo_json(j, echo, sizeof echo);
    snprintf(buf, cap, "%s %s", json_kind(j), echo);
}

static void errtext(int errnum, char *buf, size_t cap)
{
    /* XSI strerror_r: thread-safe, unlike strerror(). */
    if (strerror_r(errnum, buf, cap) != 0)
        snprintf(buf, cap, "error %d", errnum);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void value_free(value *v)
{
    free(v->str);
    v->str = NULL;
    ibp_strlist_free(&v->list);
}

/* The value member that has the field's C type, for check callbacks. */
static const void *value_field(const ibp_setting *s, const value *v)
{
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        return &v->str;
    case IBP_SETTING_INT64:
    case IBP_SETTING_DURATION_MS:
        return &v->i64;
    case IBP_SETTING_BOOL:
        return &v->b;
    case IBP_SETTING_STRING_LIST:
        return &v->list;
    case IBP_SETTING_ROLES:
        return &v->roles;
    }
    return NULL;
}

/* Moves v into the field, freeing what the field held. */
static void store_value(const ibp_setting *s, void *field, value *v)
{
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        free(*(char **)field);
        *(char **)field = v->str;
        v->str = NULL;
        break;
    case IBP_SETTING_INT64:
    case IBP_SETTING_DURATION_MS:
        *(int64_t *)field = v->i64;
        break;
    case IBP_SETTING_BOOL:
        *(bool *)field = v->b;
        break;
    case IBP_SETTING_STRING_LIST:
        ibp_strlist_free(field);
        *(ibp_strlist *)field = v->list;
        v->list.items = NULL;
        v->list.count = 0;
        break;
    case IBP_SETTING_ROLES:
        *(unsigned *)field = v->roles;
        break;
    }
}

/* Copies a field into a fresh value (for checks that run on stored fields). */
static void field_view(const ibp_setting *s, const void *field, value *v)
{
    memset(v, 0, sizeof *v);
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        v->str = *(char *const *)field; /* borrowed: never value_free() a view */
        break;
    case IBP_SETTING_INT64:
    case IBP_SETTING_DURATION_MS:
        v->i64 = *(const int64_t *)field;
        break;
    case IBP_SETTING_BOOL:
        v->b = *(const bool *)field;
        break;
    case IBP_SETTING_STRING_LIST:
        v->list = *(const ibp_strlist *)field;
        break;
    case IBP_SETTING_ROLES:
        v->roles = *(const unsigned *)field;
        break;
    }
}

static ibp_status list_push(ibp_strlist *list, const char *s, size_t n)
{
    char **items = realloc(list->items, (list->count + 1) * sizeof *items);
    if (!items)
        return IBP_E_NOMEM;
    list->items = items;
    char *copy = malloc(n + 1);
    if (!copy)
        return IBP_E_NOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    list->items[list->count++] = copy;
    return IBP_OK;
}

/* ---- durations ---------------------------------------------------------------------------- */

ibp_status ibp_settings_parse_duration_ms(const char *text, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        /* "ms" before "m", so "100ms" is not read as 100 minutes and a stray 's'. */
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    if (!text || !*text)
        return IBP_E_INVAL;
    if (strcmp(text, "0") == 0) {
        *out_ms = 0;
        return IBP_OK;
    }
    int64_t total = 0;
    const char *p = text;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return IBP_E_INVAL;
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            int d = *p++ - '0';
            if (n > (INT64_MAX - d) / 10)
                return IBP_E_RANGE;
            n = n * 10 + d;
        }
        int64_t mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t len = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, len) == 0) {
                mult = units[i].ms;
                p += len;
                break;
            }
        }
        if (mult == 0)
            return IBP_E_INVAL;
        if (n > INT64_MAX / mult)
            return IBP_E_RANGE;
        n *= mult;
        if (total > INT64_MAX - n)
            return IBP_E_RANGE;
        total += n;
    }
    *out_ms = total;
    return IBP_OK;
}

void ibp_settings_format_duration_ms(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (cap == 0)
        return;
    if (ms == 0) {
        snprintf(buf, cap, "0");
        return;
    }
    if (ms > 0) {
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (ms % units[i].ms == 0) {
                snprintf(buf, cap, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
                return;
            }
        }
    }
    snprintf(buf, cap, "%" PRId64 "ms", ms);
}

/* ---- parsing values ---------------------------------------------------------------------- */

/*
 * Each parser fills v (zeroed by the caller) or writes what is wrong into why
 * and returns IBP_E_CONFIG (IBP_E_NOMEM when allocation fails).
 */

static ibp_status parse_bool_text(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return IBP_OK;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return IBP_OK;
        }
    }
    return IBP_E_INVAL;
}

static ibp_status parse_duration_text(const char *text, bool secret, int64_t *out, char *why,
                                      size_t cap)
{
    ibp_status st = ibp_settings_parse_duration_ms(text, out);
    if (st == IBP_OK)
        return IBP_OK;
    char echo[ECHO_MAX + 8];
    echo_string(text, echo, sizeof echo);
    if (st == IBP_E_RANGE)
        snprintf(why, cap, "duration %s is too large", secret ? "(value)" : echo);
    else
        snprintf(why, cap,
                 "bad duration %s: expected milliseconds as an integer or a string like "
                 "\"100ms\", \"5s\", \"10m\", \"1h\", \"1d\"",
                 secret ? "(value)" : echo);
    return IBP_E_CONFIG;
}

static ibp_status parse_text(const ibp_setting *s, const char *text, value *v, char *why,
                             size_t cap)
{
    bool secret = s->flags & IBP_SETTING_SECRET;
    char echo[ECHO_MAX + 8];
    echo_string(text, echo, sizeof echo);
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        if (*text && !(v->str = dup_str(text)))
            return IBP_E_NOMEM;
        return IBP_OK;
    case IBP_SETTING_INT64: {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(text, &end, 10);
        if (!(isdigit((unsigned char)text[0]) || text[0] == '-') || *end || end == text ||
            errno == ERANGE) {
            snprintf(why, cap, "expected an integer, got %s", secret ? "(value)" : echo);
            return IBP_E_CONFIG;
        }
        v->i64 = n;
        return IBP_OK;
    }
    case IBP_SETTING_BOOL:
        if (parse_bool_text(text, &v->b) != IBP_OK) {
            snprintf(why, cap, "expected true or false, got %s", secret ? "(value)" : echo);
            return IBP_E_CONFIG;
        }
        return IBP_OK;
    case IBP_SETTING_DURATION_MS: {
        /* As text, bare digits are milliseconds, like a JSON integer. */
        size_t digits = strspn(text, "0123456789");
        if (digits > 0 && text[digits] == '\0') {
            errno = 0;
            long long n = strtoll(text, NULL, 10);
            if (errno == ERANGE) {
                snprintf(why, cap, "duration %s is too large", secret ? "(value)" : echo);
                return IBP_E_CONFIG;
            }
            v->i64 = n;
            return IBP_OK;
        }
        return parse_duration_text(text, secret, &v->i64, why, cap);
    }
    case IBP_SETTING_STRING_LIST: {
        const char *p = text;
        while (*text && p) {
            const char *comma = strchr(p, ',');
            const char *end = comma ? comma : p + strlen(p);
            while (p < end && isspace((unsigned char)*p))
                p++;
            const char *e = end;
            while (e > p && isspace((unsigned char)e[-1]))
                e--;
            if (e == p) {
                snprintf(why, cap, "empty item in list %s", secret ? "(value)" : echo);
                return IBP_E_CONFIG;
            }
            if (list_push(&v->list, p, (size_t)(e - p)) != IBP_OK)
                return IBP_E_NOMEM;
            p = comma ? comma + 1 : NULL;
        }
        return IBP_OK;
    }
    case IBP_SETTING_ROLES: {
        if (!*text)
            return IBP_OK;
        ibp_err e;
        ibp_err_clear(&e);
        if (ibp_roles_parse_list(text, &v->roles, &e) != IBP_OK) {
            if (snprintf(why, cap, "%s", e.msg[0] ? e.msg : "bad role list") >= (int)cap)
                why[cap - 1] = '\0';
            return IBP_E_CONFIG;
        }
        return IBP_OK;
    }
    }
    snprintf(why, cap, "unknown setting type");
    return IBP_E_CONFIG;
}

static ibp_status parse_json(const ibp_setting *s, const json_t *j, value *v, char *why, size_t cap)
{
    bool secret = s->flags & IBP_SETTING_SECRET;
    char got[ECHO_MAX + 40];
    got_desc(j, secret, got, sizeof got);
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        if (!json_is_string(j)) {
            snprintf(why, cap, "expected a string, got %s", got);
            return IBP_E_CONFIG;
        }
        return parse_text(s, json_string_value(j), v, why, cap);
    case IBP_SETTING_INT64:
        if (!json_is_integer(j)) {
            snprintf(why, cap, "expected an integer, got %s", got);
            return IBP_E_CONFIG;
        }
        v->i64 = json_integer_value(j);
        return IBP_OK;
    case IBP_SETTING_BOOL:
        if (!json_is_boolean(j)) {
            snprintf(why, cap, "expected true or false, got %s", got);
            return IBP_E_CONFIG;
        }
        v->b = json_is_true(j);
        return IBP_OK;
    case IBP_SETTING_DURATION_MS:
        if (json_is_integer(j)) {
            v->i64 = json_integer_value(j);
            return IBP_OK;
        }
        if (json_is_string(j))
            return parse_duration_text(json_string_value(j), secret, &v->i64, why, cap);
        snprintf(why, cap,
                 "expected a duration (integer milliseconds or a string like \"5s\"), got %s", got);
        return IBP_E_CONFIG;
    case IBP_SETTING_STRING_LIST: {
        if (!json_is_array(j)) {
            snprintf(why, cap, "expected an array of strings, got %s", got);
            return IBP_E_CONFIG;
        }
        size_t i;
        const json_t *item;
        json_array_foreach(j, i, item)
        {
            if (!json_is_string(item)) {
                got_desc(item, secret, got, sizeof got);
                snprintf(why, cap, "element [%zu]: expected a string, got %s", i, got);
                return IBP_E_CONFIG;
            }
            if (json_string_length(item) == 0) {
                snprintf(why, cap, "element [%zu] is empty", i);
                return IBP_E_CONFIG;
            }
            if (list_push(&v->list, json_string_value(item), json_string_length(item)) != IBP_OK)
                return IBP_E_NOMEM;
        }
        return IBP_OK;
    }
    case IBP_SETTING_ROLES: {
        if (json_is_string(j))
            return parse_text(s, json_string_value(j), v, why, cap);
        if (!json_is_array(j)) {
            snprintf(why, cap, "expected an array of role names, got %s", got);
            return IBP_E_CONFIG;
        }
        size_t i;
        const json_t *item;
        json_array_foreach(j, i, item)
        {
            if (!json_is_string(item)) {
                got_desc(item, false, got, sizeof got);
                snprintf(why, cap, "element [%zu]: expected a role name, got %s", i, got);
                return IBP_E_CONFIG;
            }
            unsigned bit = ibp_role_parse(json_string_value(item));
            if (!bit) {
                char echo[ECHO_MAX + 8];
                echo_json(item, echo, sizeof echo);
                snprintf(why, cap,
                         "element [%zu]: unknown role %s (expected monitor, consensus, dns, "
                         "persist or admin)",
                         i, echo);
                return IBP_E_CONFIG;
            }
            v->roles |= bit;
        }
        return IBP_OK;
    }
    }
    snprintf(why, cap, "unknown setting type");
    return IBP_E_CONFIG;
}

/* Renders a value as JSON (durations as integer milliseconds). NULL when out of memory. */
static json_t *value_to_json(const ibp_setting *s, const value *v)
{
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        return json_string(v->str ? v->str : "");
    case IBP_SETTING_INT64:
    case IBP_SETTING_DURATION_MS:
        return json_integer(v->i64);
    case IBP_SETTING_BOOL:
        return json_boolean(v->b);
    case IBP_SETTING_STRING_LIST: {
        json_t *a = json_array();
        for (size_t i = 0; a && i < v->list.count; i++) {
            if (json_array_append_new(a, json_string(v->list.items[i])) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case IBP_SETTING_ROLES: {
        json_t *a = json_array();
        for (unsigned bit = 1; a && bit <= IBP_ROLE_ALL; bit <<= 1) {
            if (!(v->roles & bit))
                continue;
            if (json_array_append_new(a, json_string(ibp_role_name(bit))) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    }
    return NULL;
}

/*
 * Bounds and the setting's own check. why receives what is wrong; the value is
 * echoed unless the setting is secret.
 */
static int check_value(const ibp_setting *s, const value *v, char *why, size_t cap)
{
    if (s->type == IBP_SETTING_INT64 || s->type == IBP_SETTING_DURATION_MS) {
        if (is_bounded(s) && v->i64 < s->min) {
            snprintf(why, cap, "%" PRId64 " is below the minimum %" PRId64, v->i64, s->min);
            return -1;
        }
        if (is_bounded(s) && v->i64 > s->max) {
            snprintf(why, cap, "%" PRId64 " is above the maximum %" PRId64, v->i64, s->max);
            return -1;
        }
        if (s->type == IBP_SETTING_DURATION_MS && v->i64 < 0) {
            snprintf(why, cap, "%" PRId64 " is negative; a duration cannot be", v->i64);
            return -1;
        }
    }
    if (s->check) {
        char reason[320] = "";
        if (s->check(value_field(s, v), reason, sizeof reason) != 0) {
            if (s->flags & IBP_SETTING_SECRET) {
                snprintf(why, cap, "the value %s", reason[0] ? reason : "is not valid");
            } else {
                char echo[ECHO_MAX + 8] = "";
                json_t *j = value_to_json(s, v);
                if (j)
                    echo_json(j, echo, sizeof echo);
                json_decref(j);
                snprintf(why, cap, "%s %s", echo, reason[0] ? reason : "is not valid");
            }
            return -1;
        }
    }
    return 0;
}

static bool value_empty(const ibp_setting *s, const value *v)
{
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        return !v->str || !*v->str;
    case IBP_SETTING_STRING_LIST:
        return v->list.count == 0;
    case IBP_SETTING_ROLES:
        return v->roles == 0;
    default:
        return false;
    }
}

/* ---- table ------------------------------------------------------------------------------- */

static const ibp_setting *find(const ibp_settings_table *t, const char *name,
                               const ibp_settings_group **group_out, size_t *index_out)
{
    size_t index = 0;
    FOR_EACH_SETTING(t, g, s)
    {
        if (strcmp(s->name, name) == 0) {
            if (group_out)
                *group_out = g;
            if (index_out)
                *index_out = index;
            return s;
        }
        index++;
    }
    return NULL;
}

const ibp_setting *ibp_settings_find(const ibp_settings_table *t, const char *name)
{
    if (!t || !name)
        return NULL;
    return find(t, name, NULL, NULL);
}

static size_t setting_count(const ibp_settings_table *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->group_count; i++)
        n += t->groups[i].count;
    return n;
}

/* True when some setting lives under "prefix." (so a JSON object there is a section). */
static bool is_section(const ibp_settings_table *t, const char *prefix)
{
    size_t n = strlen(prefix);
    FOR_EACH_SETTING(t, g, s)
    {
        if (strncmp(s->name, prefix, n) == 0 && s->name[n] == '.')
            return true;
    }
    return false;
}

static bool name_well_formed(const char *name)
{
    if (!name || !*name || *name == '.')
        return false;
    char prev = '.';
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
        if (!ok || (c == '.' && prev == '.'))
            return false;
        prev = c;
    }
    return prev != '.';
}

/* Parses a table's text (a default or example) and checks it, for the table check. */
static ibp_status check_table_text(const ibp_setting *s, const char *what, const char *text,
                                   ibp_err *err)
{
    value v;
    memset(&v, 0, sizeof v);
    char why[384] = "";
    ibp_status st = parse_text(s, text, &v, why, sizeof why);
    if (st == IBP_E_NOMEM) {
        value_free(&v);
        return ibp_err_set(err, st, "settings table: out of memory");
    }
    if (st == IBP_OK && check_value(s, &v, why, sizeof why) != 0)
        st = IBP_E_INVAL;
    value_free(&v);
    if (st != IBP_OK)
        return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s': %s: %s", s->name, what,
                           why);
    return IBP_OK;
}

ibp_status ibp_settings_table_check(const ibp_settings_table *t, ibp_err *err)
{
    if (!t || (!t->groups && t->group_count) || t->struct_size == 0)
        return ibp_err_set(err, IBP_E_INVAL, "settings table: missing groups or size");
    FOR_EACH_SETTING(t, g, s)
    {
        if (!name_well_formed(s->name))
            return ibp_err_set(err, IBP_E_INVAL, "settings table: bad name '%s'",
                               s->name ? s->name : "(null)");
        if (g->base + s->offset >= t->struct_size)
            return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s': offset outside",
                               s->name);
        if (find(t, s->name, NULL, NULL) != s)
            return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s' appears twice", s->name);
        if (is_section(t, s->name))
            return ibp_err_set(err, IBP_E_INVAL,
                               "settings table: key '%s' is also a section of other keys", s->name);
        bool may_require = s->type == IBP_SETTING_STRING || s->type == IBP_SETTING_PATH ||
                           s->type == IBP_SETTING_STRING_LIST || s->type == IBP_SETTING_ROLES;
        if ((s->flags & IBP_SETTING_REQUIRED) && !may_require)
            return ibp_err_set(err, IBP_E_INVAL,
                               "settings table: key '%s': a %s cannot be required", s->name,
                               type_name(s->type));
        if ((s->flags & IBP_SETTING_REQUIRED) && s->default_text)
            return ibp_err_set(err, IBP_E_INVAL,
                               "settings table: key '%s': required keys have no default", s->name);
        if ((s->flags & IBP_SETTING_SECRET) && s->type != IBP_SETTING_PATH)
            return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s': secrets are paths",
                               s->name);
        if (is_bounded(s) && s->min > s->max)
            return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s': min above max",
                               s->name);
        if (!s->help || !*s->help)
            return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s': no help text", s->name);
        ibp_status st;
        if (s->default_text && (st = check_table_text(s, "default", s->default_text, err)))
            return st;
        if (s->example_text && (st = check_table_text(s, "example", s->example_text, err)))
            return st;
    }
    return IBP_OK;
}

/* ---- defaults, free, validate ------------------------------------------------------------ */

void ibp_settings_free(const ibp_settings_table *t, void *base)
{
    if (!t || !base)
        return;
    FOR_EACH_SETTING(t, g, s)
    {
        void *f = field_at(base, g, s);
        if (s->type == IBP_SETTING_STRING || s->type == IBP_SETTING_PATH) {
            free(*(char **)f);
            *(char **)f = NULL;
        } else if (s->type == IBP_SETTING_STRING_LIST) {
            ibp_strlist_free(f);
        }
    }
}

/* Sets one field to its default (or to empty when it has none). */
static ibp_status apply_default(const ibp_setting *s, void *field, ibp_err *err)
{
    value v;
    memset(&v, 0, sizeof v);
    char why[384] = "";
    if (s->default_text) {
        ibp_status st = parse_text(s, s->default_text, &v, why, sizeof why);
        if (st != IBP_OK) {
            value_free(&v);
            if (st == IBP_E_NOMEM)
                return ibp_err_set(err, st, "settings: out of memory");
            return ibp_err_set(err, IBP_E_INVAL, "settings table: key '%s': default: %s", s->name,
                               why);
        }
    }
    store_value(s, field, &v);
    value_free(&v);
    return IBP_OK;
}

ibp_status ibp_settings_defaults(const ibp_settings_table *t, void *out, ibp_err *err)
{
    if (!t || !out)
        return ibp_err_set(err, IBP_E_INVAL, "settings: no table or struct");
    memset(out, 0, t->struct_size);
    FOR_EACH_SETTING(t, g, s)
    {
        ibp_status st = apply_default(s, field_at(out, g, s), err);
        if (st != IBP_OK) {
            ibp_settings_free(t, out);
            return st;
        }
    }
    return IBP_OK;
}

ibp_status ibp_settings_validate(const ibp_settings_table *t, const void *base, const char *source,
                                 ibp_err *err)
{
    if (!t || !base)
        return ibp_err_set(err, IBP_E_INVAL, "settings: no table or struct");
    if (!source)
        source = "config";
    FOR_EACH_SETTING(t, g, s)
    {
        value v;
        field_view(s, cfield_at(base, g, s), &v);
        if ((s->flags & IBP_SETTING_REQUIRED) && value_empty(s, &v))
            return ibp_err_set(err, IBP_E_CONFIG, "%s: missing required key '%s' (%s)", source,
                               s->name, type_name(s->type));
        char why[384] = "";
        if (check_value(s, &v, why, sizeof why) != 0)
            return ibp_err_set(err, IBP_E_CONFIG, "%s: key '%s': %s", source, s->name, why);
    }
    if (t->validate)
        return t->validate(base, source, err);
    return IBP_OK;
}

/* ---- loading ----------------------------------------------------------------------------- */

typedef struct load_ctx {
    const ibp_settings_table *t;
    void *base;
    const char *source;
    bool *seen; /* one per setting, in table order */
    ibp_err *err;
} load_ctx;

/* Levenshtein distance, capped: names are short, so two rows on the stack do. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
        return SIZE_MAX;
    size_t prev[NAME_MAX_LEN + 1], cur[NAME_MAX_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t m = del < ins ? del : ins;
            cur[j] = m < sub ? m : sub;
        }
        memcpy(prev, cur, (lb + 1) * sizeof prev[0]);
    }
    return prev[lb];
}

static ibp_status unknown_key(load_ctx *c, const char *name)
{
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    FOR_EACH_SETTING(c->t, g, s)
    {
        size_t d = edit_distance(name, s->name);
        if (d < best_d) {
            best_d = d;
            best = s->name;
        }
    }
    char echo[ECHO_MAX + 8];
    echo_string(name, echo, sizeof echo);
    /* echo is JSON-quoted; the messages use single quotes around key names. */
    size_t n = strlen(echo);
    if (n >= 2 && echo[0] == '"' && echo[n - 1] == '"') {
        memmove(echo, echo + 1, n - 2);
        echo[n - 2] = '\0';
    }
    if (best && best_d <= 3 && best_d < strlen(name))
        return ibp_err_set(c->err, IBP_E_CONFIG, "%s: unknown key '%s' (did you mean '%s'?)",
                           c->source, echo, best);
    return ibp_err_set(c->err, IBP_E_CONFIG, "%s: unknown key '%s'", c->source, echo);
}

static ibp_status apply_json(load_ctx *c, const ibp_setting *s, const ibp_settings_group *g,
                             size_t index, const json_t *j)
{
    if (c->seen[index])
        return ibp_err_set(c->err, IBP_E_CONFIG, "%s: key '%s' is set twice", c->source, s->name);
    c->seen[index] = true;
    void *field = field_at(c->base, g, s);
    if (json_is_null(j))
        return apply_default(s, field, c->err);
    value v;
    memset(&v, 0, sizeof v);
    char why[384] = "";
    ibp_status st = parse_json(s, j, &v, why, sizeof why);
    if (st == IBP_OK && check_value(s, &v, why, sizeof why) != 0)
        st = IBP_E_CONFIG;
    if (st == IBP_OK)
        store_value(s, field, &v);
    value_free(&v);
    if (st == IBP_E_NOMEM)
        return ibp_err_set(c->err, st, "%s: out of memory", c->source);
    if (st != IBP_OK)
        return ibp_err_set(c->err, st, "%s: key '%s': %s", c->source, s->name, why);
    return IBP_OK;
}

static ibp_status walk(load_ctx *c, const json_t *obj, const char *prefix)
{
    const char *key;
    const json_t *val;
    json_object_foreach((json_t *)obj, key, val)
    {
        char name[NAME_MAX_LEN + 1];
        int n = prefix ? snprintf(name, sizeof name, "%s.%s", prefix, key)
                       : snprintf(name, sizeof name, "%s", key);
        if (n < 0 || (size_t)n >= sizeof name)
            return unknown_key(c, prefix ? prefix : key);
        const ibp_settings_group *g;
        size_t index;
        const ibp_setting *s = find(c->t, name, &g, &index);
        ibp_status st;
        if (s) {
            st = apply_json(c, s, g, index, val);
        } else if (*key && is_section(c->t, name)) {
            if (!json_is_object(val)) {
                char got[ECHO_MAX + 40];
                got_desc(val, false, got, sizeof got);
                return ibp_err_set(c->err, IBP_E_CONFIG,
                                   "%s: key '%s': expected an object (a section of keys), "
                                   "got %s",
                                   c->source, name, got);
            }
            st = walk(c, val, name);
        } else {
            st = unknown_key(c, name);
        }
        if (st != IBP_OK)
            return st;
    }
    return IBP_OK;
}

ibp_status ibp_settings_load_buffer(const ibp_settings_table *t, const char *text, size_t len,
                                    const char *source, void *out, ibp_err *err)
{
    if (!t || !out || (!text && len))
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    if (!source)
        source = "config";
    ibp_status st = IBP_OK;
    json_t *root = NULL;
    bool *seen = NULL;
    void *tmp = calloc(1, t->struct_size);
    if (!tmp) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", source);
        goto out;
    }
    if ((st = ibp_settings_defaults(t, tmp, err)) != IBP_OK)
        goto out_free_tmp;

    json_error_t jerr;
    root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s:%d:%d: %s", source, jerr.line, jerr.column,
                         jerr.text);
        goto out_free_cfg;
    }
    if (!json_is_object(root)) {
        st = ibp_err_set(err, IBP_E_CONFIG, "%s: expected a JSON object at the top level, got %s",
                         source, json_kind(root));
        goto out_free_cfg;
    }
    seen = calloc(setting_count(t) + 1, sizeof *seen);
    if (!seen) {
        st = ibp_err_set(err, IBP_E_NOMEM, "%s: out of memory", source);
        goto out_free_cfg;
    }
    load_ctx c = {.t = t, .base = tmp, .source = source, .seen = seen, .err = err};
    if ((st = walk(&c, root, NULL)) != IBP_OK)
        goto out_free_cfg;
    if ((st = ibp_settings_validate(t, tmp, source, err)) != IBP_OK)
        goto out_free_cfg;

    memcpy(out, tmp, t->struct_size); /* ownership of strings moves to *out */
    goto out_free_tmp;

out_free_cfg:
    ibp_settings_free(t, tmp);
out_free_tmp:
    free(tmp);
out:
    free(seen);
    json_decref(root);
    return st;
}

ibp_status ibp_settings_load_file(const ibp_settings_table *t, const char *path, void *out,
                                  ibp_err *err)
{
    if (!t || !path || !out)
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    char *buf = NULL;
    size_t len = 0;
    ibp_status st = ibp_file_read_config(path, CONFIG_FILE_MAX, &buf, &len, err);
    if (st == IBP_OK)
        st = ibp_settings_load_buffer(t, buf, len, path, out, err);
    free(buf);
    return st;
}

ibp_status ibp_settings_set_text(const ibp_settings_table *t, void *base, const char *name,
                                 const char *text, const char *source, ibp_err *err)
{
    if (!t || !base || !name || !text)
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    if (!source)
        source = "command line";
    const ibp_settings_group *g;
    const ibp_setting *s = find(t, name, &g, NULL);
    if (!s) {
        load_ctx c = {.t = t, .base = base, .source = source, .seen = NULL, .err = err};
        return unknown_key(&c, name);
    }
    value v;
    memset(&v, 0, sizeof v);
    char why[384] = "";
    ibp_status st = parse_text(s, text, &v, why, sizeof why);
    if (st == IBP_OK && check_value(s, &v, why, sizeof why) != 0)
        st = IBP_E_CONFIG;
    if (st == IBP_OK)
        store_value(s, field_at(base, g, s), &v);
    value_free(&v);
    if (st == IBP_E_NOMEM)
        return ibp_err_set(err, st, "%s: out of memory", source);
    if (st != IBP_OK)
        return ibp_err_set(err, st, "%s: key '%s': %s", source, s->name, why);
    return IBP_OK;
}

/* ---- comparing and secrets --------------------------------------------------------------- */

/* NULL and "" both mean unset. */
static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool field_equal(const ibp_setting *s, const void *a, const void *b)
{
    switch (s->type) {
    case IBP_SETTING_STRING:
    case IBP_SETTING_PATH:
        return str_eq(*(char *const *)a, *(char *const *)b);
    case IBP_SETTING_INT64:
    case IBP_SETTING_DURATION_MS:
        return *(const int64_t *)a == *(const int64_t *)b;
    case IBP_SETTING_BOOL:
        return *(const bool *)a == *(const bool *)b;
    case IBP_SETTING_STRING_LIST: {
        const ibp_strlist *la = a, *lb = b;
        if (la->count != lb->count)
            return false;
        for (size_t i = 0; i < la->count; i++)
            if (!str_eq(la->items[i], lb->items[i]))
                return false;
        return true;
    }
    case IBP_SETTING_ROLES:
        return *(const unsigned *)a == *(const unsigned *)b;
    }
    return false;
}

ibp_status ibp_settings_check_reload(const ibp_settings_table *t, const void *old_base,
                                     const void *new_base, ibp_err *err)
{
    if (!t || !old_base || !new_base)
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    FOR_EACH_SETTING(t, g, s)
    {
        if (s->flags & IBP_SETTING_RELOADABLE)
            continue;
        if (!field_equal(s, cfield_at(old_base, g, s), cfield_at(new_base, g, s)))
            return ibp_err_set(err, IBP_E_CONFIG, "key '%s' cannot change without a restart",
                               s->name);
    }
    return IBP_OK;
}

ibp_status ibp_settings_check_secrets(const ibp_settings_table *t, const void *base, ibp_err *err)
{
    if (!t || !base)
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    FOR_EACH_SETTING(t, g, s)
    {
        if (!(s->flags & IBP_SETTING_SECRET))
            continue;
        const char *path = *(char *const *)cfield_at(base, g, s);
        if (!path || !*path)
            continue;
        struct stat sb;
        if (stat(path, &sb) != 0) {
            char etext[128];
            errtext(errno, etext, sizeof etext);
            return ibp_err_set(err, IBP_E_IO, "key '%s': cannot stat the secret file: %s", s->name,
                               etext);
        }
        if (!S_ISREG(sb.st_mode))
            return ibp_err_set(err, IBP_E_IO, "key '%s': the secret file is not a regular file",
                               s->name);
        if (sb.st_mode & 077)
            return ibp_err_set(err, IBP_E_KEY_PERMS,
                               "key '%s': the secret file has mode %04o; it must not be "
                               "accessible to group or others (chmod 600)",
                               s->name, (unsigned)(sb.st_mode & 07777));
    }
    return IBP_OK;
}

/* ---- help, example, dump ----------------------------------------------------------------- */

static ibp_status render_text(const ibp_setting *s, const char *text, char *buf, size_t cap)
{
    value v;
    memset(&v, 0, sizeof v);
    char why[384];
    ibp_status st = parse_text(s, text, &v, why, sizeof why);
    if (st == IBP_OK) {
        json_t *j = value_to_json(s, &v);
        char *dump = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        if (dump)
            snprintf(buf, cap, "%s", dump);
        else
            st = IBP_E_NOMEM;
        free(dump);
        json_decref(j);
        if (st == IBP_OK && s->type == IBP_SETTING_DURATION_MS && v.i64 != 0) {
            char d[32];
            size_t used = strlen(buf);
            ibp_settings_format_duration_ms(v.i64, d, sizeof d);
            snprintf(buf + used, cap - used, " (%s)", d);
        }
    }
    value_free(&v);
    return st;
}

ibp_status ibp_settings_help(const ibp_settings_table *t, FILE *out)
{
    if (!t || !out)
        return IBP_E_INVAL;
    fprintf(out,
            "Configuration keys of %s.\n"
            "The config file is one JSON object; nested objects map to dotted names\n"
            "({\"nats\": {\"servers\": [...]}} sets nats.servers). Unknown keys are errors.\n"
            "Durations are integer milliseconds or strings like \"100ms\", \"5s\", \"10m\", "
            "\"1h\".\n"
            "Secret keys name a file holding the secret, readable by its owner only.\n\n",
            t->program ? t->program : "this program");
    FOR_EACH_SETTING(t, g, s)
    {
        char line[1024];
        size_t used = 0;
#define APPEND(...)                                                                                \
    do {                                                                                           \
        int n_ = snprintf(line + used, sizeof line - used, __VA_ARGS__);                           \
        if (n_ > 0)                                                                                \
            used += (size_t)n_ < sizeof line - used ? (size_t)n_ : sizeof line - used - 1;         \
    } while (0)
        APPEND("%s", type_name(s->type));
        if (s->type == IBP_SETTING_DURATION_MS)
            APPEND(" (ms)");
        if (s->flags & IBP_SETTING_REQUIRED)
            APPEND(", required");
        if (s->default_text) {
            char d[512];
            if (render_text(s, s->default_text, d, sizeof d) == IBP_OK)
                APPEND(", default %s", d);
        }
        if (is_bounded(s)) {
            char d[32];
            APPEND(", min %" PRId64, s->min);
            if (s->type == IBP_SETTING_DURATION_MS && s->min) {
                ibp_settings_format_duration_ms(s->min, d, sizeof d);
                APPEND(" (%s)", d);
            }
            APPEND(", max %" PRId64, s->max);
            if (s->type == IBP_SETTING_DURATION_MS) {
                ibp_settings_format_duration_ms(s->max, d, sizeof d);
                APPEND(" (%s)", d);
            }
        }
        if (s->flags & IBP_SETTING_RELOADABLE)
            APPEND(", reloadable");
        if (s->flags & IBP_SETTING_SECRET)
            APPEND(", secret (path of a file)");
#undef APPEND
        fprintf(out, "  %s\n      %s\n      %s\n", s->name, line, s->help);
    }
    fflush(out);
    return ferror(out) ? IBP_E_IO : IBP_OK;
}

/* Puts value at the dotted name inside root, creating the section objects. Steals value. */
static int json_set_dotted(json_t *root, const char *name, json_t *value_j)
{
    char part[NAME_MAX_LEN + 1];
    json_t *obj = root;
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        if (!dot)
            return json_object_set_new(obj, p, value_j);
        size_t n = (size_t)(dot - p);
        if (n >= sizeof part) {
            json_decref(value_j);
            return -1;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        json_t *next = json_object_get(obj, part);
        if (!next) {
            next = json_object();
            if (!next || json_object_set_new(obj, part, next) != 0) {
                json_decref(value_j);
                return -1;
            }
        }
        obj = next;
        p = dot + 1;
    }
}

ibp_status ibp_settings_write_json(const ibp_settings_table *t, const void *base, FILE *out,
                                   ibp_err *err)
{
    if (!t || !base || !out)
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    json_t *root = json_object();
    if (!root)
        return ibp_err_set(err, IBP_E_NOMEM, "settings: out of memory");
    FOR_EACH_SETTING(t, g, s)
    {
        value v;
        field_view(s, cfield_at(base, g, s), &v);
        json_t *j = value_to_json(s, &v);
        if (!j || json_set_dotted(root, s->name, j) != 0) {
            json_decref(root);
            return ibp_err_set(err, IBP_E_NOMEM, "settings: out of memory");
        }
    }
    int rc = json_dumpf(root, out, JSON_INDENT(2));
    json_decref(root);
    if (rc != 0 || fputc('\n', out) == EOF || fflush(out) != 0 || ferror(out))
        return ibp_err_set(err, IBP_E_IO, "settings: cannot write the config");
    return IBP_OK;
}

ibp_status ibp_settings_example(const ibp_settings_table *t, FILE *out, ibp_err *err)
{
    if (!t || !out)
        return ibp_err_set(err, IBP_E_INVAL, "settings: bad arguments");
    void *tmp = calloc(1, t->struct_size);
    if (!tmp)
        return ibp_err_set(err, IBP_E_NOMEM, "settings: out of memory");
    ibp_status st = ibp_settings_defaults(t, tmp, err);
    if (st != IBP_OK)
        goto out;
    FOR_EACH_SETTING(t, g, s)
    {
        if (s->default_text || !s->example_text)
            continue;
        if ((st = ibp_settings_set_text(t, tmp, s->name, s->example_text, "settings table", err)) !=
            IBP_OK)
            goto out_free;
    }
    st = ibp_settings_write_json(t, tmp, out, err);
out_free:
    ibp_settings_free(t, tmp);
out:
    free(tmp);
    return st;
}
