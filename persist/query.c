/* Queries over requests and member_events; see ibp/persist_query.h. */
#include "ibp/persist_query.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ibp/availability.h"
#include "ibp/clock.h"
#include "ibp/date.h"
#include "ibp/persist_db.h"
#include "ibp/vec.h"
#include "persist_util.h"

/* A growing SQL text with escaped literals; oom once any append failed. */
typedef struct sqlbuf {
    ibp_strbuf t;
    bool oom;
} sqlbuf;

static void sb_add(sqlbuf *b, const char *text, size_t n)
{
    if (!b->oom && !ibp_strbuf_append(&b->t, text, n))
        b->oom = true;
}

static void sb_str(sqlbuf *b, const char *text)
{
    sb_add(b, text, strlen(text));
}

/* Appends 'value' as an escaped string literal. */
static void sb_lit(sqlbuf *b, MYSQL *db, const char *value)
{
    size_t n = strlen(value);
    char *tmp = malloc(2 * n + 3);
    if (tmp == NULL) {
        b->oom = true;
        return;
    }
    tmp[0] = '\'';
    unsigned long m = mysql_real_escape_string(db, tmp + 1, value, (unsigned long)n);
    tmp[m + 1] = '\'';
    sb_add(b, tmp, m + 2);
    free(tmp);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool set(const char *s)
{
    return s && *s;
}

/* ---- member events ------------------------------------------------------------- */

static void format_datetime(int64_t ms, char *buf, size_t cap)
{
    MYSQL_TIME t;
    if (ms < IBP_PERSIST_TIME_MIN_MS)
        ms = IBP_PERSIST_TIME_MIN_MS;
    if (ms > IBP_PERSIST_TIME_MAX_MS)
        ms = IBP_PERSIST_TIME_MAX_MS;
    ibp_persist_ms_to_mysql_time(ms, &t);
    snprintf(buf, cap, "%04u-%02u-%02u %02u:%02u:%02u.%03lu", t.year, t.month, t.day, t.hour,
             t.minute, t.second, t.second_part / 1000);
}

void ibp_persist_event_list_free(ibp_persist_event_list *list)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < list->count; i++) {
        ibp_persist_event_row *r = &list->rows[i];
        free(r->member_name);
        free(r->check_type);
        free(r->check_name);
        free(r->domain_name);
        free(r->endpoint);
        free(r->error);
        free(r->vote_data);
        free(r->additional_data);
        free(r->event_id);
        free(r->end_event_id);
    }
    free(list->rows);
    list->rows = NULL;
    list->count = 0;
}

ibp_status ibp_persist_query_member_events(MYSQL *db, const char *member, const char *domain,
                                           int64_t start_ms, int64_t end_ms,
                                           ibp_persist_event_list *out, ibp_err *err)
{
    if (db == NULL || out == NULL || !set(member))
        return ibp_err_set(err, IBP_E_INVAL, "query events: a member is required");
    if (start_ms > end_ms)
        return ibp_err_set(err, IBP_E_INVAL, "query events: start is after end");
    char ts[40], te[40];
    format_datetime(start_ms, ts, sizeof ts);
    format_datetime(end_ms, te, sizeof te);
    sqlbuf b = {0};
    /* Millisecond times computed by the server from DATETIME columns: no zone involved. */
    sb_str(&b, "SELECT id, member_name, check_type, check_name, domain_name, endpoint, status, "
               "is_ipv6, TIMESTAMPDIFF(MICROSECOND, '1970-01-01', start_time) DIV 1000, "
               "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', end_time) DIV 1000, error, vote_data, "
               "additional_data, event_id, end_event_id FROM member_events WHERE member_name = ");
    sb_lit(&b, db, member);
    sb_str(&b, " AND start_time <= ");
    sb_lit(&b, db, te);
    sb_str(&b, " AND (end_time IS NULL OR end_time >= ");
    sb_lit(&b, db, ts);
    sb_str(&b, ")");
    if (set(domain)) {
        sb_str(&b, " AND domain_name IN (");
        sb_lit(&b, db, domain);
        sb_str(&b, ", '')");
    }
    sb_str(&b, " ORDER BY start_time, id LIMIT ");
    char lim[32];
    snprintf(lim, sizeof lim, "%d", IBP_PERSIST_QUERY_MAX_ROWS + 1);
    sb_str(&b, lim);
    if (b.oom) {
        ibp_strbuf_free(&b.t);
        return ibp_err_set(err, IBP_E_NOMEM, "query events: out of memory");
    }
    ibp_status st = IBP_OK;
    ibp_persist_event_list l = {0};
    MYSQL_RES *res = NULL;
    if (mysql_real_query(db, b.t.s, (unsigned long)b.t.len) != 0 ||
        (res = mysql_store_result(db)) == NULL) {
        st = ibp_persist_db_error(err, db, "query events of %.64s", member);
        goto out;
    }
    size_t n = (size_t)mysql_num_rows(res);
    if (n > IBP_PERSIST_QUERY_MAX_ROWS) {
        st = ibp_err_set(err, IBP_E_RANGE,
                         "query events: more than %d events in the range: narrow it",
                         IBP_PERSIST_QUERY_MAX_ROWS);
        goto out;
    }
    l.rows = calloc(n ? n : 1, sizeof *l.rows);
    if (l.rows == NULL) {
        st = ibp_err_set(err, IBP_E_NOMEM, "query events: out of memory");
        goto out;
    }
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        ibp_persist_event_row *r = &l.rows[l.count++];
        r->id = strtoull(row[0], NULL, 10);
        r->member_name = dup_or_null(row[1] ? row[1] : "");
        r->check_type = dup_or_null(row[2] ? row[2] : "");
        r->check_name = dup_or_null(row[3] ? row[3] : "");
        r->domain_name = dup_or_null(row[4] ? row[4] : "");
        r->endpoint = dup_or_null(row[5] ? row[5] : "");
        r->status = row[6] && atoi(row[6]) != 0;
        r->is_ipv6 = row[7] && atoi(row[7]) != 0;
        r->start_ms = row[8] ? strtoll(row[8], NULL, 10) : 0;
        r->open = row[9] == NULL;
        r->end_ms = row[9] ? strtoll(row[9], NULL, 10) : 0;
        r->error = dup_or_null(row[10]);
        r->vote_data = dup_or_null(row[11]);
        r->additional_data = dup_or_null(row[12]);
        r->event_id = dup_or_null(row[13]);
        r->end_event_id = dup_or_null(row[14]);
        if (!r->member_name || !r->check_type || !r->check_name || !r->domain_name ||
            !r->endpoint || (row[10] && !r->error) || (row[11] && !r->vote_data) ||
            (row[12] && !r->additional_data) || (row[13] && !r->event_id) ||
            (row[14] && !r->end_event_id)) {
            st = ibp_err_set(err, IBP_E_NOMEM, "query events: out of memory");
            goto out;
        }
    }
out:
    mysql_free_result(res);
    mysql_rollback(db);
    ibp_strbuf_free(&b.t);
    if (st == IBP_OK)
        *out = l;
    else
        ibp_persist_event_list_free(&l);
    return st;
}

/* ---- usage ------------------------------------------------------------------------ */

const char *ibp_persist_usage_by_name(ibp_persist_usage_by by)
{
    switch (by) {
    case IBP_PERSIST_USAGE_BY_DOMAIN:
        return "domain";
    case IBP_PERSIST_USAGE_BY_MEMBER:
        return "member";
    case IBP_PERSIST_USAGE_BY_COUNTRY:
        return "country";
    }
    return "?";
}

ibp_persist_usage_by ibp_persist_usage_by_parse(const char *name)
{
    if (name == NULL)
        return 0;
    if (strcmp(name, "domain") == 0)
        return IBP_PERSIST_USAGE_BY_DOMAIN;
    if (strcmp(name, "member") == 0)
        return IBP_PERSIST_USAGE_BY_MEMBER;
    if (strcmp(name, "country") == 0)
        return IBP_PERSIST_USAGE_BY_COUNTRY;
    return 0;
}

void ibp_persist_usage_result_free(ibp_persist_usage_result *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->rows[i].key);
        free(r->rows[i].country_name);
    }
    free(r->rows);
    memset(r, 0, sizeof *r);
}

ibp_status ibp_persist_query_usage(MYSQL *db, const ibp_persist_usage_query *q,
                                   ibp_persist_usage_result *out, ibp_err *err)
{
    int64_t d0, d1;
    if (db == NULL || q == NULL || out == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "query usage: NULL argument");
    if (!ibp_date_parse(q->start_date, &d0) || !ibp_date_parse(q->end_date, &d1))
        return ibp_err_set(err, IBP_E_INVAL, "query usage: start and end must be dates YYYY-MM-DD");
    if (d0 > d1)
        return ibp_err_set(err, IBP_E_INVAL, "query usage: start %s is after end %s", q->start_date,
                           q->end_date);
    const char *col;
    switch (q->by) {
    case IBP_PERSIST_USAGE_BY_DOMAIN:
        col = "domain_name";
        break;
    case IBP_PERSIST_USAGE_BY_MEMBER:
        col = "member_name";
        break;
    case IBP_PERSIST_USAGE_BY_COUNTRY:
        col = "country_code";
        break;
    default:
        return ibp_err_set(err, IBP_E_INVAL, "query usage: unknown grouping %d", (int)q->by);
    }
    bool country = q->by == IBP_PERSIST_USAGE_BY_COUNTRY;
    sqlbuf b = {0};
    sb_str(&b, "SELECT ");
    sb_str(&b, q->per_day ? "DATE_FORMAT(date, '%Y-%m-%d')" : "''");
    sb_str(&b, ", ");
    sb_str(&b, col);
    sb_str(&b, country ? ", MAX(country_name)" : ", NULL");
    sb_str(&b, ", CAST(SUM(IF(is_ipv6 = 0, hits, 0)) AS UNSIGNED), "
               "CAST(SUM(IF(is_ipv6 <> 0, hits, 0)) AS UNSIGNED), CAST(SUM(hits) AS UNSIGNED) "
               "FROM requests WHERE date BETWEEN ");
    sb_lit(&b, db, q->start_date);
    sb_str(&b, " AND ");
    sb_lit(&b, db, q->end_date);
    if (set(q->domain)) {
        sb_str(&b, " AND domain_name = ");
        sb_lit(&b, db, q->domain);
    }
    if (set(q->member)) {
        sb_str(&b, " AND member_name = ");
        sb_lit(&b, db, q->member);
    }
    if (set(q->country_code)) {
        sb_str(&b, " AND country_code = ");
        sb_lit(&b, db, q->country_code);
    }
    sb_str(&b, " GROUP BY ");
    if (q->per_day)
        sb_str(&b, "date, ");
    sb_str(&b, col);
    sb_str(&b, " ORDER BY ");
    if (q->per_day)
        sb_str(&b, "date, ");
    sb_str(&b, "SUM(hits) DESC, ");
    sb_str(&b, col);
    char lim[32];
    snprintf(lim, sizeof lim, " LIMIT %d", IBP_PERSIST_QUERY_MAX_ROWS + 1);
    sb_str(&b, lim);
    if (b.oom) {
        ibp_strbuf_free(&b.t);
        return ibp_err_set(err, IBP_E_NOMEM, "query usage: out of memory");
    }
    ibp_status st = IBP_OK;
    ibp_persist_usage_result r = {0};
    MYSQL_RES *res = NULL;
    if (mysql_real_query(db, b.t.s, (unsigned long)b.t.len) != 0 ||
        (res = mysql_store_result(db)) == NULL) {
        st = ibp_persist_db_error(err, db, "query usage by %s", ibp_persist_usage_by_name(q->by));
        goto out;
    }
    size_t n = (size_t)mysql_num_rows(res);
    if (n > IBP_PERSIST_QUERY_MAX_ROWS) {
        st = ibp_err_set(err, IBP_E_RANGE, "query usage: more than %d rows: narrow the query",
                         IBP_PERSIST_QUERY_MAX_ROWS);
        goto out;
    }
    r.rows = calloc(n ? n : 1, sizeof *r.rows);
    if (r.rows == NULL) {
        st = ibp_err_set(err, IBP_E_NOMEM, "query usage: out of memory");
        goto out;
    }
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        ibp_persist_usage_row *u = &r.rows[r.count++];
        snprintf(u->date, sizeof u->date, "%s", row[0] ? row[0] : "");
        u->key = strdup(row[1] ? row[1] : "");
        u->country_name = country ? strdup(row[2] ? row[2] : "") : NULL;
        u->hits_ipv4 = row[3] ? strtoull(row[3], NULL, 10) : 0;
        u->hits_ipv6 = row[4] ? strtoull(row[4], NULL, 10) : 0;
        u->hits = row[5] ? strtoull(row[5], NULL, 10) : 0;
        if (u->key == NULL || (country && u->country_name == NULL)) {
            st = ibp_err_set(err, IBP_E_NOMEM, "query usage: out of memory");
            goto out;
        }
        r.total_ipv4 += u->hits_ipv4;
        r.total_ipv6 += u->hits_ipv6;
        r.total += u->hits;
    }
out:
    mysql_free_result(res);
    mysql_rollback(db);
    ibp_strbuf_free(&b.t);
    if (st == IBP_OK)
        *out = r;
    else
        ibp_persist_usage_result_free(&r);
    return st;
}

/* ---- JSON ---------------------------------------------------------------------------- */

char *ibp_persist_query_error_json(ibp_status st, const char *message)
{
    json_t *o = json_pack("{s:{s:s,s:s}}", "error", "code", ibp_status_name(st), "message",
                          message ? message : ibp_strerror(st));
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return s;
}

static ibp_status fail_json(char **response, ibp_err *err, ibp_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ibp_status fail_json(char **response, ibp_err *err, ibp_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *response = ibp_persist_query_error_json(st, msg);
    return ibp_err_set(err, st, "%s", msg);
}

int ibp_persist_time_parse_ms(const char *text, int64_t *ms)
{
    if (text == NULL || *text == '\0')
        return -1;
    if (strspn(text, "0123456789") == strlen(text)) {
        if (strlen(text) > 15)
            return -1;
        *ms = strtoll(text, NULL, 10);
        return 0;
    }
    return ibp_rfc3339_parse_ms(text, ms) ? 0 : -1;
}

void ibp_persist_time_format_ms(int64_t ms, char *buf, size_t cap)
{
    ibp_rfc3339_format_ms(ms, buf, cap);
}

/* A time in a request: RFC 3339 / date string, or Unix ms. */
static int json_time(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        *ms = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v))
        return ibp_persist_time_parse_ms(json_string_value(v), ms);
    return -1;
}

static json_t *json_text_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* A JSON column as JSON (parsed), or as a string when it does not parse. */
static json_t *json_column(const char *s)
{
    if (s == NULL)
        return json_null();
    json_t *j = json_loads(s, JSON_DECODE_ANY, NULL);
    return j ? j : json_string(s);
}

static json_t *time_json(int64_t ms)
{
    char buf[IBP_RFC3339_MS_BUF];
    ibp_rfc3339_format_ms(ms, buf, sizeof buf);
    return json_string(buf);
}

ibp_status ibp_persist_query_events_json(MYSQL *db, const char *request, size_t len,
                                         char **response, ibp_err *err)
{
    json_error_t jerr;
    *response = NULL;
    json_t *req = json_loadb(request ? request : "", len, 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return fail_json(response, err, IBP_E_INVAL, "events request: not a JSON object: %s",
                         jerr.text);
    }
    const char *member = json_string_value(json_object_get(req, "member"));
    const char *domain = json_string_value(json_object_get(req, "domain"));
    int64_t start_ms = 0, end_ms = 0;
    ibp_status st;
    if (!set(member)) {
        st = fail_json(response, err, IBP_E_INVAL, "events request: \"member\" is required");
        goto out;
    }
    if (json_time(json_object_get(req, "start"), &start_ms) != 0 ||
        json_time(json_object_get(req, "end"), &end_ms) != 0) {
        st = fail_json(response, err, IBP_E_INVAL,
                       "events request: \"start\" and \"end\" must be RFC 3339 times, dates or "
                       "Unix ms");
        goto out;
    }
    ibp_persist_event_list l = {0};
    ibp_err qe;
    ibp_err_clear(&qe);
    int64_t now_ms = ibp_clock_wall_ms();
    st = ibp_persist_query_member_events(db, member, domain, start_ms, end_ms, &l, &qe);
    if (st != IBP_OK) {
        *response = ibp_persist_query_error_json(st, qe.msg);
        if (err)
            *err = qe;
        goto out;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < l.count; i++) {
        const ibp_persist_event_row *r = &l.rows[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer((json_int_t)r->id));
        json_object_set_new(o, "member_name", json_string(r->member_name));
        json_object_set_new(o, "check_type", json_string(r->check_type));
        json_object_set_new(o, "check_name", json_string(r->check_name));
        json_object_set_new(o, "domain_name", json_string(r->domain_name));
        json_object_set_new(o, "endpoint", json_string(r->endpoint));
        json_object_set_new(o, "status", json_boolean(r->status));
        json_object_set_new(o, "is_ipv6", json_boolean(r->is_ipv6));
        json_object_set_new(o, "start_time", time_json(r->start_ms));
        json_object_set_new(o, "end_time", r->open ? json_null() : time_json(r->end_ms));
        ibp_outage out = {r->start_ms, r->end_ms, r->open};
        json_object_set_new(o, "open", json_boolean(r->open));
        json_object_set_new(o, "duration_ms",
                            json_integer((json_int_t)ibp_outage_duration_ms(&out, now_ms)));
        json_object_set_new(o, "error", json_text_or_null(r->error));
        json_object_set_new(o, "vote_data", json_column(r->vote_data));
        json_object_set_new(o, "additional_data", json_column(r->additional_data));
        json_object_set_new(o, "event_id", json_text_or_null(r->event_id));
        json_object_set_new(o, "end_event_id", json_text_or_null(r->end_event_id));
        json_array_append_new(arr, o);
    }
    ibp_persist_event_list_free(&l);
    json_t *resp = json_object();
    json_object_set_new(resp, "member", json_string(member));
    json_object_set_new(resp, "domain", set(domain) ? json_string(domain) : json_null());
    json_object_set_new(resp, "start", time_json(start_ms));
    json_object_set_new(resp, "end", time_json(end_ms));
    json_object_set_new(resp, "events", arr);
    *response = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(resp);
    if (*response == NULL)
        st = fail_json(response, err, IBP_E_NOMEM, "events response: out of memory");
out:
    json_decref(req);
    return st;
}

ibp_status ibp_persist_query_usage_json(MYSQL *db, const char *request, size_t len, char **response,
                                        ibp_err *err)
{
    json_error_t jerr;
    *response = NULL;
    json_t *req = json_loadb(request ? request : "", len, 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return fail_json(response, err, IBP_E_INVAL, "usage request: not a JSON object: %s",
                         jerr.text);
    }
    ibp_status st;
    ibp_persist_usage_query q;
    memset(&q, 0, sizeof q);
    const char *by = json_string_value(json_object_get(req, "by"));
    q.by = ibp_persist_usage_by_parse(by);
    q.start_date = json_string_value(json_object_get(req, "start"));
    q.end_date = json_string_value(json_object_get(req, "end"));
    q.domain = json_string_value(json_object_get(req, "domain"));
    q.member = json_string_value(json_object_get(req, "member"));
    q.country_code = json_string_value(json_object_get(req, "country"));
    q.per_day = json_is_true(json_object_get(req, "per_day"));
    if (q.by == 0) {
        st = fail_json(response, err, IBP_E_INVAL,
                       "usage request: \"by\" must be \"domain\", \"member\" or \"country\"");
        goto out;
    }
    ibp_persist_usage_result r = {0};
    ibp_err qe;
    ibp_err_clear(&qe);
    st = ibp_persist_query_usage(db, &q, &r, &qe);
    if (st != IBP_OK) {
        *response = ibp_persist_query_error_json(st, qe.msg);
        if (err)
            *err = qe;
        goto out;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < r.count; i++) {
        const ibp_persist_usage_row *u = &r.rows[i];
        json_t *o = json_object();
        if (q.per_day)
            json_object_set_new(o, "date", json_string(u->date));
        json_object_set_new(o, ibp_persist_usage_by_name(q.by), json_string(u->key));
        if (u->country_name)
            json_object_set_new(o, "country_name", json_string(u->country_name));
        json_object_set_new(o, "ipv4", json_integer((json_int_t)u->hits_ipv4));
        json_object_set_new(o, "ipv6", json_integer((json_int_t)u->hits_ipv6));
        json_object_set_new(o, "total", json_integer((json_int_t)u->hits));
        json_array_append_new(arr, o);
    }
    json_t *resp = json_object();
    json_object_set_new(resp, "by", json_string(ibp_persist_usage_by_name(q.by)));
    json_object_set_new(resp, "start", json_string(q.start_date));
    json_object_set_new(resp, "end", json_string(q.end_date));
    json_object_set_new(resp, "rows", arr);
    json_object_set_new(resp, "total",
                        json_pack("{s:I,s:I,s:I}", "ipv4", (json_int_t)r.total_ipv4, "ipv6",
                                  (json_int_t)r.total_ipv6, "total", (json_int_t)r.total));
    ibp_persist_usage_result_free(&r);
    *response = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(resp);
    if (*response == NULL)
        st = fail_json(response, err, IBP_E_NOMEM, "usage response: out of memory");
out:
    json_decref(req);
    return st;
}

/* ---- availability ------------------------------------------------------------------ */

typedef bool (*outage_pick)(const ibp_persist_event_row *r, const void *arg);

/* The figures of the events that pick chooses (overrides never), into o's
 * JSON; buf has room for every event. */
static void set_availability(json_t *o, const ibp_persist_event_list *l, outage_pick pick,
                             const void *arg, ibp_outage *buf, int64_t from_ms, int64_t to_ms)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++) {
        const ibp_persist_event_row *r = &l->rows[i];
        if (strcmp(r->check_type, "override") == 0 || (pick && !pick(r, arg)))
            continue;
        buf[n].start_ms = r->start_ms;
        buf[n].end_ms = r->end_ms;
        buf[n].open = r->open;
        n++;
    }
    ibp_availability a;
    ibp_availability_compute(buf, n, from_ms, to_ms, &a);
    json_object_set_new(o, "availability", json_real(a.ratio));
    json_object_set_new(o, "availability_percent", json_real(a.ratio * 100.0));
    json_object_set_new(o, "downtime_ms", json_integer((json_int_t)a.downtime_ms));
    json_object_set_new(o, "outages", json_integer((json_int_t)a.outages));
    json_object_set_new(o, "open", json_integer((json_int_t)a.open));
}

static bool pick_family(const ibp_persist_event_row *r, const void *arg)
{
    return r->is_ipv6 == *(const bool *)arg;
}

/* A domain's outages, and the member-wide ones (site checks: domain ''). */
static bool pick_domain(const ibp_persist_event_row *r, const void *arg)
{
    return r->domain_name[0] == '\0' || strcmp(r->domain_name, arg) == 0;
}

static bool pick_check(const ibp_persist_event_row *r, const void *arg)
{
    const ibp_persist_event_row *c = arg;
    return strcmp(r->check_type, c->check_type) == 0 && strcmp(r->check_name, c->check_name) == 0;
}

/* True the first time key is offered to the set (a JSON object used as a hash set). */
static bool first_time(json_t *set_obj, const char *key)
{
    if (json_object_get(set_obj, key))
        return false;
    json_object_set_new(set_obj, key, json_true());
    return true;
}

ibp_status ibp_persist_query_sla_json(MYSQL *db, const char *request, size_t len, int64_t now_ms,
                                      char **response, ibp_err *err)
{
    json_error_t jerr;
    *response = NULL;
    json_t *req = json_loadb(request ? request : "", len, 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return fail_json(response, err, IBP_E_INVAL, "sla request: not a JSON object: %s",
                         jerr.text);
    }
    const char *member = json_string_value(json_object_get(req, "member"));
    const char *domain = json_string_value(json_object_get(req, "domain"));
    int64_t from_ms = 0, to_ms = 0;
    ibp_status st;
    ibp_persist_event_list l = {0};
    ibp_outage *buf = NULL;
    json_t *resp = NULL;
    if (!set(member)) {
        st = fail_json(response, err, IBP_E_INVAL, "sla request: \"member\" is required");
        goto out;
    }
    if (json_time(json_object_get(req, "from"), &from_ms) != 0 ||
        json_time(json_object_get(req, "to"), &to_ms) != 0) {
        st = fail_json(response, err, IBP_E_INVAL,
                       "sla request: \"from\" and \"to\" must be RFC 3339 times, dates or "
                       "Unix ms");
        goto out;
    }
    if (to_ms > now_ms)
        to_ms = now_ms; /* the future is not judged */
    if (from_ms >= to_ms) {
        st = fail_json(response, err, IBP_E_INVAL,
                       "sla request: the window is empty (\"from\" is not before \"to\", or "
                       "lies in the future)");
        goto out;
    }
    ibp_err qe;
    ibp_err_clear(&qe);
    st = ibp_persist_query_member_events(db, member, domain, from_ms, to_ms, &l, &qe);
    if (st != IBP_OK) {
        *response = ibp_persist_query_error_json(st, qe.msg);
        if (err)
            *err = qe;
        goto out;
    }
    buf = calloc(l.count ? l.count : 1, sizeof *buf);
    resp = json_object();
    json_t *domains = json_array(), *checks = json_array();
    if (!buf || !resp || !domains || !checks) {
        json_decref(domains);
        json_decref(checks);
        st = fail_json(response, err, IBP_E_NOMEM, "sla: out of memory");
        goto out;
    }
    json_object_set_new(resp, "member", json_string(member));
    json_object_set_new(resp, "domain", set(domain) ? json_string(domain) : json_null());
    json_object_set_new(resp, "from", time_json(from_ms));
    json_object_set_new(resp, "to", time_json(to_ms));
    json_object_set_new(resp, "window_ms", json_integer((json_int_t)(to_ms - from_ms)));
    set_availability(resp, &l, NULL, NULL, buf, from_ms, to_ms);
    for (int fam = 0; fam < 2; fam++) {
        bool v6 = fam == 1;
        json_t *f = json_object();
        set_availability(f, &l, pick_family, &v6, buf, from_ms, to_ms);
        json_object_set_new(resp, v6 ? "ipv6" : "ipv4", f);
    }
    if (set(domain)) {
        json_t *d = json_pack("{s:s}", "domain", domain);
        set_availability(d, &l, pick_domain, domain, buf, from_ms, to_ms);
        json_array_append_new(domains, d);
    } else {
        json_t *seen = json_object();
        for (size_t i = 0; seen && i < l.count; i++) {
            const ibp_persist_event_row *r = &l.rows[i];
            if (!r->domain_name[0] || strcmp(r->check_type, "override") == 0 ||
                !first_time(seen, r->domain_name))
                continue;
            json_t *d = json_pack("{s:s}", "domain", r->domain_name);
            set_availability(d, &l, pick_domain, r->domain_name, buf, from_ms, to_ms);
            json_array_append_new(domains, d);
        }
        json_decref(seen);
    }
    json_t *seen = json_object();
    for (size_t i = 0; seen && i < l.count; i++) {
        const ibp_persist_event_row *r = &l.rows[i];
        char key[512];
        snprintf(key, sizeof key, "%s\x1f%s", r->check_type, r->check_name);
        if (strcmp(r->check_type, "override") == 0 || !first_time(seen, key))
            continue;
        json_t *c =
            json_pack("{s:s,s:s}", "check_type", r->check_type, "check_name", r->check_name);
        set_availability(c, &l, pick_check, r, buf, from_ms, to_ms);
        json_array_append_new(checks, c);
    }
    json_decref(seen);
    json_object_set_new(resp, "domains", domains);
    json_object_set_new(resp, "checks", checks);
    *response = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (*response == NULL)
        st = fail_json(response, err, IBP_E_NOMEM, "sla response: out of memory");
out:
    json_decref(resp);
    free(buf);
    ibp_persist_event_list_free(&l);
    json_decref(req);
    return st;
}

/* ---- usage flushes ----------------------------------------------------------------- */

ibp_status ibp_persist_query_hit_flushes_json(MYSQL *db, const char *request, size_t len,
                                              char **response, ibp_err *err)
{
    json_error_t jerr;
    *response = NULL;
    json_t *req = json_loadb(request ? request : "", len, 0, &jerr);
    const char *node = json_string_value(json_object_get(req, "node"));
    ibp_status st = IBP_OK;
    if (!set(node) || strlen(node) > 64) {
        st = fail_json(response, err, IBP_E_INVAL,
                       "hit_flushes request: {\"node\": \"<dns node id>\"} is required");
        json_decref(req);
        return st;
    }
    sqlbuf b = {0};
    sb_str(&b, "SELECT last_flush_seq, last_stream_seq FROM persist_hit_flushes WHERE node_id = ");
    sb_lit(&b, db, node);
    MYSQL_RES *res = NULL;
    uint64_t flush_seq = 0, stream_seq = 0;
    if (b.oom) {
        st = fail_json(response, err, IBP_E_NOMEM, "hit_flushes: out of memory");
        goto out;
    }
    if (mysql_real_query(db, b.t.s, (unsigned long)b.t.len) != 0 ||
        (res = mysql_store_result(db)) == NULL) {
        ibp_err qe;
        ibp_err_clear(&qe);
        st = ibp_persist_db_error(&qe, db, "query hit flushes of %.64s", node);
        *response = ibp_persist_query_error_json(st, qe.msg);
        if (err)
            *err = qe;
        goto out;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    if (row) {
        flush_seq = row[0] ? strtoull(row[0], NULL, 10) : 0;
        stream_seq = row[1] ? strtoull(row[1], NULL, 10) : 0;
    }
    json_t *resp = json_pack("{s:s,s:I,s:I}", "node", node, "last_flush_seq", (json_int_t)flush_seq,
                             "last_stream_seq", (json_int_t)stream_seq);
    *response = resp ? json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(resp);
    if (*response == NULL)
        st = fail_json(response, err, IBP_E_NOMEM, "hit_flushes response: out of memory");
out:
    mysql_free_result(res);
    mysql_rollback(db);
    ibp_strbuf_free(&b.t);
    json_decref(req);
    return st;
}
