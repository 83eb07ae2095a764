/*
 * Applying HITS and EVENTS messages to MariaDB exactly once; see
 * ibp/persist_apply.h for the contract. The order of work in one call:
 *
 *   parse    verify every envelope and check every value against the column
 *            limits, outside any transaction (CPU only);
 *   attempt  one transaction: offsets FOR UPDATE, choose what is new, write,
 *            offsets, COMMIT;
 *   isolate  only after a data error: the same messages one per transaction,
 *            dead-lettering the one that MariaDB refuses.
 */
#include "ibp/persist_apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ibp/envelope.h"
#include "ibp/event.h"
#include "ibp/event_lifecycle.h"
#include "ibp/log.h"
#include "ibp/persist_db.h"
#include "ibp/usage.h"
#include "persist_util.h"

#define COMPONENT "persist"
#define NAME_MAX_CHARS 128
#define DETAIL_MAX_CHARS 512
#define SUBJECT_MAX_CHARS 512
/* MariaDB refuses JSON nested deeper than this (JSON_VALID fails). */
#define JSON_DEPTH_MAX 32

/* Column limits (characters) of deploy/sql/001_initial.sql. */
enum {
    LIM_NODE = 64,
    LIM_DOMAIN = 253,
    LIM_MEMBER = 64,
    LIM_ASN = 32,
    LIM_NETWORK = 255,
    LIM_CC = 2,
    LIM_COUNTRY = 64,
    LIM_CHECK_TYPE = 12,
    LIM_CHECK_NAME = 64,
    LIM_ENDPOINT = 512,
    LIM_EVENT_ID = 128,
};

/* Hit row columns in the order of the INSERT (and of the primary key). */
enum { C_DATE, C_NODE, C_DOMAIN, C_MEMBER, C_ASN, C_NETWORK, C_CC, C_COUNTRY, C_STRS };

/* An Event's columns, computed while parsing. */
typedef struct event_fields {
    const char *id;
    const char *check_type; /* static string */
    const char *check_name;
    const char *endpoint;
    const char *member;
    const char *domain;
    bool ipv6;
    bool up;
    int64_t time_ms;
    const char *error;
    size_t error_len; /* possibly cut to IBP_PERSIST_ERROR_TEXT_MAX */
    char *vote_json;  /* malloc'd or NULL (no voters) */
    char *data_json;  /* malloc'd or NULL (no data) */
    uint64_t epoch;
} event_fields;

/* One message of the batch being applied. */
typedef struct item {
    const ibp_persist_msg *m;
    ibp_verified vm;
    ibp_status reason; /* IBP_OK, or why it can never apply (from parsing) */
    char detail[DETAIL_MAX_CHARS * 2];
    ibp_status tx_reason; /* set inside an attempt (stale HitBatch, MariaDB data error) */
    char tx_detail[DETAIL_MAX_CHARS * 2];
    bool forced; /* isolation found MariaDB refuses it: dead-letter with forced_detail */
    char forced_detail[DETAIL_MAX_CHARS * 2];
    event_fields ev;
} item;

/* A summed hit row; strings borrow from the decoded messages. */
typedef struct agg_row {
    const char *s[C_STRS];
    unsigned long len[C_STRS];
    signed char ipv6;
    uint64_t hits;
    uint64_t hash;
} agg_row;

typedef struct flush_state {
    char node[LIM_NODE * 4 + 1];
    uint64_t flush_seq; /* last applied, as of now in the transaction */
    uint64_t stream_seq;
    bool dirty;
} flush_state;

struct ibp_persist_applier {
    MYSQL *db;
    ibp_persist_applier_opts o;
    char stream[NAME_MAX_CHARS + 1];
    char consumer[NAME_MAX_CHARS + 1];
    ibp_verifier *verifier;
    ibp_log_limit dead_log; /* dead letters are logged at a rate limit */
    bool is_mariadb;
    unsigned last_errno;

    MYSQL_STMT *st_off_get, *st_off_set, *st_dead;
    MYSQL_STMT *st_hits, *st_flush_set;
    MYSQL_STMT *st_evid, *st_open, *st_ev_insert, *st_ev_close, *st_ev_delete;

    /* hits aggregation, reused between calls */
    agg_row *rows;
    size_t nrows, caprows;
    uint32_t *slots; /* index + 1 into rows, 0 = empty */
    size_t nslots;
    flush_state *flush;
    size_t nflush, capflush;
    /* bulk binding arrays, bulk_rows long */
    char **col_ptr[C_STRS];
    unsigned long *col_len[C_STRS];
    char *indicator;
    signed char *col_v6;
    unsigned long long *col_hits;
};

const char *ibp_persist_kind_name(ibp_persist_kind kind)
{
    switch (kind) {
    case IBP_PERSIST_HITS:
        return "HITS";
    case IBP_PERSIST_EVENTS:
        return "EVENTS";
    }
    return "?";
}

void ibp_persist_applier_opts_init(ibp_persist_applier_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->min_offline_ms = IBP_EVENT_MIN_OFFLINE_MS_DEFAULT;
    opts->strict_order = true;
    opts->bulk_rows = 1000;
}

/* ---- small helpers ------------------------------------------------------- */

static void bind_str(MYSQL_BIND *b, const char *s, size_t len)
{
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *)s;
    b->buffer_length = (unsigned long)len;
    b->length = &b->buffer_length;
}

static void bind_cstr(MYSQL_BIND *b, const char *s)
{
    bind_str(b, s ? s : "", s ? strlen(s) : 0);
}

static void bind_u64(MYSQL_BIND *b, const uint64_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = (void *)v;
    b->is_unsigned = 1;
}

static void bind_tiny(MYSQL_BIND *b, const signed char *v)
{
    b->buffer_type = MYSQL_TYPE_TINY;
    b->buffer = (void *)v;
}

static void bind_null(MYSQL_BIND *b)
{
    static my_bool yes = 1;
    b->buffer_type = MYSQL_TYPE_NULL;
    b->is_null = &yes;
}

static void bind_time(MYSQL_BIND *b, MYSQL_TIME *t)
{
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = t;
    b->buffer_length = sizeof *t;
}

static ibp_status prepare(ibp_persist_applier *a, MYSQL_STMT **st, const char *sql, ibp_err *err)
{
    if (*st != NULL)
        return IBP_OK;
    MYSQL_STMT *s = mysql_stmt_init(a->db);
    if (s == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "persist: mysql_stmt_init: out of memory");
    if (mysql_stmt_prepare(s, sql, (unsigned long)strlen(sql)) != 0) {
        a->last_errno = mysql_stmt_errno(s);
        ibp_status st2 = ibp_persist_db_stmt_error(err, s, "prepare [%.60s...]", sql);
        mysql_stmt_close(s);
        return st2;
    }
    *st = s;
    return IBP_OK;
}

/* Executes a prepared statement with params; what names it in the error. */
static ibp_status exec_stmt(ibp_persist_applier *a, MYSQL_STMT *s, MYSQL_BIND *params,
                            const char *what, ibp_err *err)
{
    if ((params && mysql_stmt_bind_param(s, params) != 0) || mysql_stmt_execute(s) != 0) {
        a->last_errno = mysql_stmt_errno(s);
        return ibp_persist_db_stmt_error(err, s, "%s", what);
    }
    return IBP_OK;
}

static void rollback(ibp_persist_applier *a)
{
    /* Best effort: the connection may be gone; the server rolls back then. */
    if (mysql_rollback(a->db) != 0)
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT, "rollback failed stream=%s errno=%u", a->stream,
                mysql_errno(a->db));
}

/* Checks a string for a column: valid UTF-8 and at most max characters. */
static bool field_ok(item *it, const char *what, const char *s, size_t max)
{
    size_t chars = 0;
    size_t len = s ? strlen(s) : 0;
    if (!ibp_persist_utf8_valid(s ? s : "", len, &chars)) {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "%s is not valid UTF-8", what);
        return false;
    }
    if (chars > max) {
        it->reason = IBP_E_RANGE;
        snprintf(it->detail, sizeof it->detail, "%s has %zu characters, the column holds %zu", what,
                 chars, max);
        return false;
    }
    return true;
}

/* ---- parsing ------------------------------------------------------------- */

static void parse_hits(ibp_persist_applier *a, item *it)
{
    const Ibp__V1__HitBatch *hb = (const Ibp__V1__HitBatch *)it->vm.payload;
    const char *signer = it->vm.envelope->signer;
    (void)a;
    if (!hb->node || strcmp(hb->node, signer) != 0) {
        it->reason = IBP_E_ROLE_DENIED;
        snprintf(it->detail, sizeof it->detail,
                 "HitBatch of node '%.64s' signed by '%.64s': a dns node reports its own hits",
                 hb->node ? hb->node : "", signer);
        return;
    }
    if (hb->flush_seq == 0) {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "HitBatch of %s has flush_seq 0", hb->node);
        return;
    }
    if (!field_ok(it, "node", hb->node, LIM_NODE))
        return;
    for (size_t i = 0; i < hb->n_rows; i++) {
        const Ibp__V1__HitRow *r = hb->rows[i];
        int64_t day;
        char what[64];
        if (r->date == NULL || ibp_usage_parse_date(r->date, &day) != 0 ||
            strncmp(r->date, "1000", 4) < 0) {
            it->reason = IBP_E_INVAL;
            snprintf(it->detail, sizeof it->detail, "row %zu: date '%.16s' is not YYYY-MM-DD", i,
                     r->date ? r->date : "");
            return;
        }
        if (r->hits > IBP_PERSIST_MAX_ROW_HITS) {
            it->reason = IBP_E_RANGE;
            snprintf(it->detail, sizeof it->detail,
                     "row %zu: %" PRIu64 " hits is above the plausible maximum %" PRIu64, i,
                     r->hits, IBP_PERSIST_MAX_ROW_HITS);
            return;
        }
#define CHECK_FIELD(name, field, lim)                                                              \
    do {                                                                                           \
        snprintf(what, sizeof what, "row %zu: " name, i);                                          \
        if (!field_ok(it, what, r->field, lim))                                                    \
            return;                                                                                \
    } while (0)
        CHECK_FIELD("domain", domain, LIM_DOMAIN);
        CHECK_FIELD("member", member, LIM_MEMBER);
        CHECK_FIELD("asn", asn, LIM_ASN);
        CHECK_FIELD("network_name", network_name, LIM_NETWORK);
        CHECK_FIELD("country_code", country_code, LIM_CC);
        CHECK_FIELD("country_name", country_name, LIM_COUNTRY);
#undef CHECK_FIELD
    }
}

static const char *status_name(Ibp__V1__Status s)
{
    switch (s) {
    case IBP__V1__STATUS__STATUS_UP:
        return "up";
    case IBP__V1__STATUS__STATUS_DOWN:
        return "down";
    default:
        return "unspecified";
    }
}

static int json_depth(const json_t *j)
{
    int max = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            int d = json_depth(v);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            int d = json_depth(v);
            if (d > max)
                max = d;
        }
        return max + 1;
    }
    return 0;
}

/*
 * additional_data: the observation's data_json as it is when it is JSON
 * MariaDB accepts; otherwise the text as a JSON string, so an outage is
 * never lost over its extra data (deterministic, so a replay agrees).
 */
static char *data_json_column(const char *text)
{
    if (text == NULL || *text == '\0')
        return NULL;
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (j != NULL && json_depth(j) <= JSON_DEPTH_MAX) {
        json_decref(j);
        return strdup(text);
    }
    json_decref(j);
    json_t *s = json_string(text);
    char *out = s ? json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(s);
    return out;
}

/* vote_data: {"epoch": E, "voters": [...]}, or with prefix "end_" for closing. */
static char *voters_json(const Ibp__V1__Event *ev, const char *epoch_key, const char *voters_key)
{
    if (ev->n_voters == 0)
        return NULL;
    json_t *o = json_object();
    json_t *arr = json_array();
    for (size_t i = 0; i < ev->n_voters; i++) {
        const Ibp__V1__Voter *v = ev->voters[i];
        json_t *jv = json_object();
        json_object_set_new(jv, "node", json_string(v->node ? v->node : ""));
        json_object_set_new(jv, "local_seq", json_integer((json_int_t)v->local_seq));
        json_object_set_new(jv, "batch_seq", json_integer((json_int_t)v->batch_seq));
        json_object_set_new(jv, "status", json_string(status_name(v->status)));
        json_array_append_new(arr, jv);
    }
    json_object_set_new(o, epoch_key, json_integer((json_int_t)ev->epoch));
    json_object_set_new(o, voters_key, arr);
    char *out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return out;
}

static void parse_event(ibp_persist_applier *a, item *it)
{
    const Ibp__V1__Event *ev = (const Ibp__V1__Event *)it->vm.payload;
    event_fields *f = &it->ev;
    const Ibp__V1__ResultKey *k = ev->key;
    (void)a;
    if (ev->id == NULL || *ev->id == '\0') {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "Event without an id");
        return;
    }
    if (!field_ok(it, "event id", ev->id, LIM_EVENT_ID))
        return;
    if (k == NULL || k->member == NULL || *k->member == '\0') {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "Event %.128s has no key or no member", ev->id);
        return;
    }
    if (ev->status != IBP__V1__STATUS__STATUS_UP && ev->status != IBP__V1__STATUS__STATUS_DOWN) {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "Event %.128s has status %d (neither up nor down)",
                 ev->id, (int)ev->status);
        return;
    }
    if (ev->time_ms < IBP_PERSIST_TIME_MIN_MS || ev->time_ms > IBP_PERSIST_TIME_MAX_MS) {
        it->reason = IBP_E_RANGE;
        snprintf(it->detail, sizeof it->detail,
                 "Event %.128s time_ms %" PRId64 " is outside what DATETIME holds", ev->id,
                 ev->time_ms);
        return;
    }
    f->id = ev->id;
    f->member = k->member;
    f->up = ev->status == IBP__V1__STATUS__STATUS_UP;
    f->time_ms = ev->time_ms;
    f->epoch = ev->epoch;
    const char *domain = k->domain ? k->domain : "";
    const char *endpoint = k->endpoint ? k->endpoint : "";
    if (ev->kind == IBP__V1__EVENT_KIND__EVENT_KIND_OVERRIDE) {
        f->check_type = IBP_OVERRIDE_CHECK_NAME;
        f->check_name = k->check_name && *k->check_name ? k->check_name : IBP_OVERRIDE_CHECK_NAME;
        f->domain = "";
        f->endpoint = "";
        f->ipv6 = false;
    } else if (ev->kind == IBP__V1__EVENT_KIND__EVENT_KIND_STATUS) {
        switch (k->check_type) {
        case IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE:
            f->check_type = "site";
            break;
        case IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN:
            f->check_type = "domain";
            break;
        case IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT:
            f->check_type = "endpoint";
            break;
        default:
            it->reason = IBP_E_INVAL;
            snprintf(it->detail, sizeof it->detail, "Event %.128s has check type %d", ev->id,
                     (int)k->check_type);
            return;
        }
        bool want_domain = k->check_type != IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE;
        bool want_endpoint = k->check_type == IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
        if ((*domain != '\0') != want_domain || (*endpoint != '\0') != want_endpoint) {
            it->reason = IBP_E_INVAL;
            snprintf(it->detail, sizeof it->detail,
                     "Event %.128s: a %s key %s a domain and %s an endpoint", ev->id, f->check_type,
                     want_domain ? "needs" : "has no", want_endpoint ? "needs" : "has no");
            return;
        }
        f->check_name = k->check_name ? k->check_name : "";
        f->domain = domain;
        f->endpoint = endpoint;
        f->ipv6 = k->ipv6;
    } else {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "Event %.128s has kind %d", ev->id, (int)ev->kind);
        return;
    }
    if (!field_ok(it, "check_name", f->check_name, LIM_CHECK_NAME) ||
        !field_ok(it, "member", f->member, LIM_MEMBER) ||
        !field_ok(it, "domain", f->domain, LIM_DOMAIN) ||
        !field_ok(it, "endpoint", f->endpoint, LIM_ENDPOINT))
        return;
    const char *error = ev->error ? ev->error : "";
    size_t elen = strlen(error);
    if (!ibp_persist_utf8_valid(error, elen, NULL)) {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "Event %.128s: error text is not valid UTF-8",
                 ev->id);
        return;
    }
    f->error = error;
    f->error_len = ibp_persist_utf8_prefix(error, elen, IBP_PERSIST_ERROR_TEXT_MAX, SIZE_MAX);
    const char *data = ev->data_json ? ev->data_json : "";
    if (!ibp_persist_utf8_valid(data, strlen(data), NULL)) {
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "Event %.128s: data_json is not valid UTF-8",
                 ev->id);
        return;
    }
    for (size_t i = 0; i < ev->n_voters; i++) {
        const char *node = ev->voters[i]->node ? ev->voters[i]->node : "";
        if (!ibp_persist_utf8_valid(node, strlen(node), NULL)) {
            it->reason = IBP_E_INVAL;
            snprintf(it->detail, sizeof it->detail, "Event %.128s: voter %zu is not valid UTF-8",
                     ev->id, i);
            return;
        }
    }
    f->data_json = data_json_column(data);
    f->vote_json =
        f->up ? voters_json(ev, "end_epoch", "end_voters") : voters_json(ev, "epoch", "voters");
    if ((*data && f->data_json == NULL) || (ev->n_voters > 0 && f->vote_json == NULL)) {
        it->reason = IBP_E_NOMEM;
        snprintf(it->detail, sizeof it->detail, "Event %.128s: out of memory encoding JSON",
                 ev->id);
    }
}

static void parse_item(ibp_persist_applier *a, item *it)
{
    ibp_err e;
    ibp_err_clear(&e);
    ibp_payload_type want = a->o.kind == IBP_PERSIST_HITS
                                ? IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH
                                : IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT;
    ibp_status st = ibp_verifier_check_stateless(a->verifier, it->m->data, it->m->len, &it->vm, &e);
    if (st != IBP_OK) {
        it->reason = st;
        snprintf(it->detail, sizeof it->detail, "%s", e.msg[0] ? e.msg : ibp_strerror(st));
        return;
    }
    if (it->vm.envelope->type != want) {
        const char *tn = ibp_payload_type_name(it->vm.envelope->type);
        it->reason = IBP_E_INVAL;
        snprintf(it->detail, sizeof it->detail, "payload type %s does not belong on stream %s",
                 tn ? tn : "?", a->stream);
        return;
    }
    if (a->o.kind == IBP_PERSIST_HITS)
        parse_hits(a, it);
    else
        parse_event(a, it);
}

static void item_clear(item *it)
{
    ibp_verified_clear(&it->vm);
    free(it->ev.vote_json);
    free(it->ev.data_json);
    memset(&it->ev, 0, sizeof it->ev);
}

/* ---- lifecycle of the applier --------------------------------------------- */

ibp_status ibp_persist_applier_new(MYSQL *db, const ibp_persist_applier_opts *opts,
                                   ibp_persist_applier **out, ibp_err *err)
{
    if (db == NULL || opts == NULL || out == NULL || opts->roster == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "persist: applier: NULL argument");
    if (opts->kind != IBP_PERSIST_HITS && opts->kind != IBP_PERSIST_EVENTS)
        return ibp_err_set(err, IBP_E_INVAL, "persist: applier: unknown kind %d", (int)opts->kind);
    if (!opts->stream || !*opts->stream || strlen(opts->stream) > NAME_MAX_CHARS ||
        !opts->consumer || !*opts->consumer || strlen(opts->consumer) > NAME_MAX_CHARS)
        return ibp_err_set(err, IBP_E_INVAL,
                           "persist: applier: stream and consumer names must be 1-%d bytes",
                           NAME_MAX_CHARS);
    ibp_persist_applier *a = calloc(1, sizeof *a);
    if (a == NULL)
        return ibp_err_set(err, IBP_E_NOMEM, "persist: applier: out of memory");
    a->db = db;
    a->o = *opts;
    if (a->o.bulk_rows == 0)
        a->o.bulk_rows = 1000;
    snprintf(a->stream, sizeof a->stream, "%s", opts->stream);
    snprintf(a->consumer, sizeof a->consumer, "%s", opts->consumer);
    a->o.stream = a->stream;
    a->o.consumer = a->consumer;
    a->is_mariadb = mariadb_connection(db);
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    vo.log_component = COMPONENT;
    if (ibp_verifier_new(opts->roster, &vo, &a->verifier) != IBP_OK) {
        free(a);
        return ibp_err_set(err, IBP_E_NOMEM, "persist: applier: verifier: out of memory");
    }
    if (a->o.kind == IBP_PERSIST_HITS) {
        size_t n = a->o.bulk_rows;
        bool ok = true;
        for (int c = 0; c < C_STRS; c++) {
            a->col_ptr[c] = calloc(n, sizeof *a->col_ptr[c]);
            a->col_len[c] = calloc(n, sizeof *a->col_len[c]);
            ok = ok && a->col_ptr[c] && a->col_len[c];
        }
        a->indicator = calloc(n, 1); /* all STMT_INDICATOR_NONE: every value is given */
        a->col_v6 = calloc(n, sizeof *a->col_v6);
        a->col_hits = calloc(n, sizeof *a->col_hits);
        if (!ok || !a->indicator || !a->col_v6 || !a->col_hits) {
            ibp_persist_applier_free(a);
            return ibp_err_set(err, IBP_E_NOMEM, "persist: applier: out of memory");
        }
    }
    *out = a;
    return IBP_OK;
}

void ibp_persist_applier_free(ibp_persist_applier *a)
{
    if (a == NULL)
        return;
    MYSQL_STMT *all[] = {a->st_off_get,   a->st_off_set,  a->st_dead, a->st_hits,
                         a->st_flush_set, a->st_evid,     a->st_open, a->st_ev_insert,
                         a->st_ev_close,  a->st_ev_delete};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i])
            mysql_stmt_close(all[i]);
    ibp_verifier_free(a->verifier);
    free(a->rows);
    free(a->slots);
    free(a->flush);
    for (int c = 0; c < C_STRS; c++) {
        free(a->col_ptr[c]);
        free(a->col_len[c]);
    }
    free(a->indicator);
    free(a->col_v6);
    free(a->col_hits);
    free(a);
}

unsigned ibp_persist_applier_last_errno(const ibp_persist_applier *a)
{
    return a ? a->last_errno : 0;
}

/* ---- offsets and dead letters --------------------------------------------- */

static ibp_status offset_get(ibp_persist_applier *a, bool for_update, uint64_t *out, ibp_err *err)
{
    ibp_status st;
    MYSQL_STMT **sp = &a->st_off_get;
    MYSQL_STMT *plain = NULL;
    const char *sql = "SELECT last_seq FROM persist_offsets WHERE stream = ? AND consumer = ?"
                      " FOR UPDATE";
    if (!for_update) {
        /* Rarely used: a one-off statement instead of a second cached one. */
        sp = &plain;
        sql = "SELECT last_seq FROM persist_offsets WHERE stream = ? AND consumer = ?";
    }
    if ((st = prepare(a, sp, sql, err)) != IBP_OK)
        return st;
    MYSQL_STMT *s = *sp;
    MYSQL_BIND p[2];
    memset(p, 0, sizeof p);
    bind_cstr(&p[0], a->stream);
    bind_cstr(&p[1], a->consumer);
    uint64_t v = 0;
    MYSQL_BIND r[1];
    memset(r, 0, sizeof r);
    bind_u64(&r[0], &v);
    if ((st = exec_stmt(a, s, p, "read persist_offsets", err)) != IBP_OK)
        goto out;
    if (mysql_stmt_bind_result(s, r) != 0 || mysql_stmt_store_result(s) != 0) {
        a->last_errno = mysql_stmt_errno(s);
        st = ibp_persist_db_stmt_error(err, s, "read persist_offsets");
        goto out;
    }
    int rc = mysql_stmt_fetch(s);
    if (rc == 1) {
        a->last_errno = mysql_stmt_errno(s);
        st = ibp_persist_db_stmt_error(err, s, "fetch persist_offsets");
    } else {
        *out = rc == MYSQL_NO_DATA ? 0 : v;
    }
    mysql_stmt_free_result(s);
out:
    if (plain)
        mysql_stmt_close(plain);
    return st;
}

static ibp_status offset_set(ibp_persist_applier *a, uint64_t seq, ibp_err *err)
{
    ibp_status st = prepare(a, &a->st_off_set,
                            "INSERT INTO persist_offsets (stream, consumer, last_seq) VALUES "
                            "(?, ?, ?) ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq)",
                            err);
    if (st != IBP_OK)
        return st;
    MYSQL_BIND p[3];
    memset(p, 0, sizeof p);
    bind_cstr(&p[0], a->stream);
    bind_cstr(&p[1], a->consumer);
    bind_u64(&p[2], &seq);
    return exec_stmt(a, a->st_off_set, p, "write persist_offsets", err);
}

static ibp_status dead_letter(ibp_persist_applier *a, const item *it, ibp_status reason,
                              const char *detail, ibp_err *err)
{
    ibp_status st = prepare(a, &a->st_dead,
                            "INSERT IGNORE INTO dead_letters (stream, seq, reason, detail, "
                            "subject, payload) VALUES (?, ?, ?, ?, ?, ?)",
                            err);
    if (st != IBP_OK)
        return st;
    char det[DETAIL_MAX_CHARS * 4 + 1], subj[SUBJECT_MAX_CHARS * 4 + 1];
    ibp_persist_utf8_sanitize(detail, det, sizeof det, DETAIL_MAX_CHARS);
    ibp_persist_utf8_sanitize(it->m->subject, subj, sizeof subj, SUBJECT_MAX_CHARS);
    uint64_t seq = it->m->seq;
    MYSQL_BIND p[6];
    memset(p, 0, sizeof p);
    bind_cstr(&p[0], a->stream);
    bind_u64(&p[1], &seq);
    bind_cstr(&p[2], ibp_status_name(reason));
    bind_cstr(&p[3], det);
    bind_cstr(&p[4], subj);
    p[5].buffer_type = MYSQL_TYPE_BLOB;
    p[5].buffer = (void *)it->m->data;
    p[5].buffer_length = (unsigned long)it->m->len;
    p[5].length = &p[5].buffer_length;
    IBP_LOG_LIMITED(&a->dead_log, IBP_LOG_WARN, COMPONENT,
                    "dead letter stream=%s seq=%" PRIu64 " reason=%s detail=\"%s\"", a->stream,
                    seq, ibp_status_name(reason), det);
    return exec_stmt(a, a->st_dead, p, "write dead_letters", err);
}

/* ---- hits ------------------------------------------------------------------ */

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= UINT64_C(1099511628211);
    }
    h ^= 0xff; /* field separator: ("ab","c") and ("a","bc") differ */
    h *= UINT64_C(1099511628211);
    return h;
}

static bool row_key_equal(const agg_row *x, const agg_row *y)
{
    if (x->hash != y->hash || x->ipv6 != y->ipv6)
        return false;
    for (int c = 0; c < C_STRS; c++)
        if (x->len[c] != y->len[c] || memcmp(x->s[c], y->s[c], x->len[c]) != 0)
            return false;
    return true;
}

static int row_cmp(const void *pa, const void *pb)
{
    const agg_row *x = pa, *y = pb;
    for (int c = 0; c < C_STRS; c++) {
        size_t n = x->len[c] < y->len[c] ? x->len[c] : y->len[c];
        int r = memcmp(x->s[c], y->s[c], n);
        if (r != 0)
            return r;
        if (x->len[c] != y->len[c])
            return x->len[c] < y->len[c] ? -1 : 1;
    }
    return (int)x->ipv6 - (int)y->ipv6;
}

static bool agg_grow(ibp_persist_applier *a)
{
    size_t ncap = a->caprows ? a->caprows * 2 : 1024;
    agg_row *nr = realloc(a->rows, ncap * sizeof *nr);
    if (nr == NULL)
        return false;
    a->rows = nr;
    a->caprows = ncap;
    size_t nslots = ncap * 2;
    uint32_t *ns = calloc(nslots, sizeof *ns);
    if (ns == NULL)
        return false;
    for (size_t i = 0; i < a->nrows; i++) {
        size_t j = a->rows[i].hash & (nslots - 1);
        while (ns[j] != 0)
            j = (j + 1) & (nslots - 1);
        ns[j] = (uint32_t)(i + 1);
    }
    free(a->slots);
    a->slots = ns;
    a->nslots = nslots;
    return true;
}

static void agg_reset(ibp_persist_applier *a)
{
    a->nrows = 0;
    if (a->slots)
        memset(a->slots, 0, a->nslots * sizeof *a->slots);
}

static bool agg_add(ibp_persist_applier *a, const char *node, const Ibp__V1__HitRow *r)
{
    agg_row k;
    const char *vals[C_STRS] = {r->date,         node,           r->domain,
                                r->member,       r->asn,         r->network_name,
                                r->country_code, r->country_name};
    uint64_t h = UINT64_C(1469598103934665603);
    for (int c = 0; c < C_STRS; c++) {
        k.s[c] = vals[c] ? vals[c] : "";
        k.len[c] = (unsigned long)strlen(k.s[c]);
        h = fnv1a(h, k.s[c], k.len[c]);
    }
    k.ipv6 = r->ipv6 ? 1 : 0;
    h = fnv1a(h, r->ipv6 ? "1" : "0", 1);
    k.hash = h;
    k.hits = r->hits;
    /* The slot table has 2 x caprows entries: its load stays at most 1/2. */
    if (a->nrows == a->caprows && !agg_grow(a))
        return false;
    size_t j = h & (a->nslots - 1);
    while (a->slots[j] != 0) {
        agg_row *e = &a->rows[a->slots[j] - 1];
        if (row_key_equal(e, &k)) {
            e->hits += k.hits;
            return true;
        }
        j = (j + 1) & (a->nslots - 1);
    }
    a->rows[a->nrows] = k;
    a->slots[j] = (uint32_t)(++a->nrows);
    return true;
}

static ibp_status upsert_rows(ibp_persist_applier *a, ibp_err *err)
{
    static const char sql[] =
        "INSERT INTO requests (date, node_id, domain_name, member_name, network_asn, "
        "network_name, country_code, country_name, is_ipv6, hits) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)";
    ibp_status st = prepare(a, &a->st_hits, sql, err);
    if (st != IBP_OK)
        return st;
    /* Key order keeps the B-tree inserts local and lock order stable. */
    qsort(a->rows, a->nrows, sizeof *a->rows, row_cmp);
    size_t chunk = a->is_mariadb ? a->o.bulk_rows : 1;
    for (size_t off = 0; off < a->nrows; off += chunk) {
        size_t n = a->nrows - off < chunk ? a->nrows - off : chunk;
        MYSQL_BIND b[10];
        memset(b, 0, sizeof b);
        if (a->is_mariadb) {
            /* Column-wise array binding: strings are arrays of pointers. */
            for (size_t i = 0; i < n; i++) {
                const agg_row *r = &a->rows[off + i];
                for (int c = 0; c < C_STRS; c++) {
                    a->col_ptr[c][i] = (char *)r->s[c];
                    a->col_len[c][i] = r->len[c];
                }
                a->col_v6[i] = r->ipv6;
                a->col_hits[i] = r->hits;
            }
            for (int c = 0; c < C_STRS; c++) {
                b[c].buffer_type = MYSQL_TYPE_STRING;
                b[c].buffer = a->col_ptr[c];
                b[c].length = a->col_len[c];
                b[c].u.indicator = a->indicator;
            }
            b[8].buffer_type = MYSQL_TYPE_TINY;
            b[8].buffer = a->col_v6;
            b[8].u.indicator = a->indicator;
            b[9].buffer_type = MYSQL_TYPE_LONGLONG;
            b[9].is_unsigned = 1;
            b[9].buffer = a->col_hits;
            b[9].u.indicator = a->indicator;
            unsigned int array_size = (unsigned int)n;
            if (mysql_stmt_attr_set(a->st_hits, STMT_ATTR_ARRAY_SIZE, &array_size) != 0) {
                a->last_errno = mysql_stmt_errno(a->st_hits);
                return ibp_persist_db_stmt_error(err, a->st_hits, "set array size");
            }
        } else {
            /* Not MariaDB (no bulk protocol): one row per execute. */
            const agg_row *r = &a->rows[off];
            for (int c = 0; c < C_STRS; c++)
                bind_str(&b[c], r->s[c], r->len[c]);
            bind_tiny(&b[8], &r->ipv6);
            bind_u64(&b[9], &r->hits);
        }
        char what[96];
        snprintf(what, sizeof what, "upsert %zu rows into requests", n);
        if ((st = exec_stmt(a, a->st_hits, b, what, err)) != IBP_OK)
            return st;
    }
    return IBP_OK;
}

static ibp_status flush_load(ibp_persist_applier *a, ibp_err *err)
{
    a->nflush = 0;
    if (mysql_query(a->db, "SELECT node_id, last_flush_seq FROM persist_hit_flushes FOR UPDATE") !=
        0) {
        a->last_errno = mysql_errno(a->db);
        return ibp_persist_db_error(err, a->db, "read persist_hit_flushes");
    }
    MYSQL_RES *res = mysql_store_result(a->db);
    if (res == NULL) {
        a->last_errno = mysql_errno(a->db);
        return ibp_persist_db_error(err, a->db, "read persist_hit_flushes");
    }
    MYSQL_ROW row;
    ibp_status st = IBP_OK;
    while ((row = mysql_fetch_row(res)) != NULL) {
        if (a->nflush == a->capflush) {
            size_t ncap = a->capflush ? a->capflush * 2 : 16;
            flush_state *nf = realloc(a->flush, ncap * sizeof *nf);
            if (nf == NULL) {
                st = ibp_err_set(err, IBP_E_NOMEM, "persist: out of memory");
                break;
            }
            a->flush = nf;
            a->capflush = ncap;
        }
        flush_state *f = &a->flush[a->nflush++];
        snprintf(f->node, sizeof f->node, "%s", row[0] ? row[0] : "");
        f->flush_seq = row[1] ? strtoull(row[1], NULL, 10) : 0;
        f->stream_seq = 0;
        f->dirty = false;
    }
    mysql_free_result(res);
    return st;
}

static flush_state *flush_find(ibp_persist_applier *a, const char *node)
{
    for (size_t i = 0; i < a->nflush; i++)
        if (strcmp(a->flush[i].node, node) == 0)
            return &a->flush[i];
    if (a->nflush == a->capflush) {
        size_t ncap = a->capflush ? a->capflush * 2 : 16;
        flush_state *nf = realloc(a->flush, ncap * sizeof *nf);
        if (nf == NULL)
            return NULL;
        a->flush = nf;
        a->capflush = ncap;
    }
    flush_state *f = &a->flush[a->nflush++];
    memset(f, 0, sizeof *f);
    snprintf(f->node, sizeof f->node, "%s", node);
    return f;
}

static ibp_status flush_save(ibp_persist_applier *a, ibp_err *err)
{
    ibp_status st = prepare(a, &a->st_flush_set,
                            "INSERT INTO persist_hit_flushes (node_id, last_flush_seq, "
                            "last_stream_seq) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE "
                            "last_flush_seq = VALUES(last_flush_seq), "
                            "last_stream_seq = VALUES(last_stream_seq)",
                            err);
    if (st != IBP_OK)
        return st;
    for (size_t i = 0; i < a->nflush; i++) {
        flush_state *f = &a->flush[i];
        if (!f->dirty)
            continue;
        MYSQL_BIND p[3];
        memset(p, 0, sizeof p);
        bind_cstr(&p[0], f->node);
        bind_u64(&p[1], &f->flush_seq);
        bind_u64(&p[2], &f->stream_seq);
        if ((st = exec_stmt(a, a->st_flush_set, p, "write persist_hit_flushes", err)) != IBP_OK)
            return st;
    }
    return IBP_OK;
}

static ibp_status apply_hits(ibp_persist_applier *a, item **list, size_t n,
                             ibp_persist_apply_result *r, ibp_err *err)
{
    ibp_status st = flush_load(a, err);
    if (st != IBP_OK)
        return st;
    agg_reset(a);
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        item *it = list[i];
        if (it->reason != IBP_OK || it->forced)
            continue;
        const Ibp__V1__HitBatch *hb = (const Ibp__V1__HitBatch *)it->vm.payload;
        flush_state *f = flush_find(a, hb->node);
        if (f == NULL)
            return ibp_err_set(err, IBP_E_NOMEM, "persist: out of memory");
        if (hb->flush_seq <= f->flush_seq) {
            it->tx_reason = IBP_E_REPLAY;
            snprintf(it->tx_detail, sizeof it->tx_detail,
                     "HitBatch %s flush_seq %" PRIu64 " is at or below the last applied %" PRIu64
                     ": already counted, not counted again",
                     hb->node, hb->flush_seq, f->flush_seq);
            r->stale++;
            continue;
        }
        f->flush_seq = hb->flush_seq;
        f->stream_seq = it->m->seq;
        f->dirty = true;
        for (size_t k = 0; k < hb->n_rows; k++) {
            if (hb->rows[k]->hits == 0)
                continue;
            if (!agg_add(a, hb->node, hb->rows[k]))
                return ibp_err_set(err, IBP_E_NOMEM, "out of memory aggregating rows");
            hits += hb->rows[k]->hits;
        }
        r->applied++;
    }
    if (a->nrows > 0 && (st = upsert_rows(a, err)) != IBP_OK)
        return st;
    if ((st = flush_save(a, err)) != IBP_OK)
        return st;
    r->rows += a->nrows;
    r->hits += hits;
    return IBP_OK;
}

/* ---- events ----------------------------------------------------------------- */

/* Finds the open event of the key: *found, *id, *start_ms. */
static ibp_status event_find_open(ibp_persist_applier *a, const event_fields *f, bool *found,
                                  uint64_t *id, int64_t *start_ms, ibp_err *err)
{
    ibp_status st =
        prepare(a, &a->st_open,
                "SELECT id, start_time FROM member_events WHERE open_key = "
                "UNHEX(SHA2(CONCAT(LENGTH(?), ':', ?, LENGTH(?), ':', ?, LENGTH(?), ':', ?, "
                "LENGTH(?), ':', ?, LENGTH(?), ':', ?, ':', ?), 256)) FOR UPDATE",
                err);
    if (st != IBP_OK)
        return st;
    const char *parts[5] = {f->check_type, f->check_name, f->member, f->domain, f->endpoint};
    signed char v6 = f->ipv6 ? 1 : 0;
    MYSQL_BIND p[11];
    memset(p, 0, sizeof p);
    for (int i = 0; i < 5; i++) {
        bind_cstr(&p[2 * i], parts[i]);
        bind_cstr(&p[2 * i + 1], parts[i]);
    }
    bind_tiny(&p[10], &v6);
    if ((st = exec_stmt(a, a->st_open, p, "find open event", err)) != IBP_OK)
        return st;
    uint64_t rid = 0;
    MYSQL_TIME t;
    memset(&t, 0, sizeof t);
    MYSQL_BIND r[2];
    memset(r, 0, sizeof r);
    bind_u64(&r[0], &rid);
    r[1].buffer_type = MYSQL_TYPE_DATETIME;
    r[1].buffer = &t;
    r[1].buffer_length = sizeof t;
    if (mysql_stmt_bind_result(a->st_open, r) != 0 || mysql_stmt_store_result(a->st_open) != 0) {
        a->last_errno = mysql_stmt_errno(a->st_open);
        return ibp_persist_db_stmt_error(err, a->st_open, "find open event");
    }
    int rc = mysql_stmt_fetch(a->st_open);
    if (rc == 1) {
        a->last_errno = mysql_stmt_errno(a->st_open);
        st = ibp_persist_db_stmt_error(err, a->st_open, "fetch open event");
    } else if (rc == MYSQL_NO_DATA) {
        *found = false;
    } else {
        *found = true;
        *id = rid;
        *start_ms = ibp_persist_mysql_time_to_ms(&t);
    }
    mysql_stmt_free_result(a->st_open);
    return st;
}

static ibp_status event_insert(ibp_persist_applier *a, const event_fields *f, ibp_err *err)
{
    ibp_status st = prepare(a, &a->st_ev_insert,
                            "INSERT INTO member_events (check_type, check_name, endpoint, "
                            "member_name, domain_name, status, is_ipv6, start_time, error, "
                            "vote_data, additional_data, event_id) VALUES "
                            "(?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                            err);
    if (st != IBP_OK)
        return st;
    signed char v6 = f->ipv6 ? 1 : 0;
    MYSQL_TIME t;
    ibp_persist_ms_to_mysql_time(f->time_ms, &t);
    MYSQL_BIND p[11];
    memset(p, 0, sizeof p);
    bind_cstr(&p[0], f->check_type);
    bind_cstr(&p[1], f->check_name);
    bind_cstr(&p[2], f->endpoint);
    bind_cstr(&p[3], f->member);
    bind_cstr(&p[4], f->domain);
    bind_tiny(&p[5], &v6);
    bind_time(&p[6], &t);
    bind_str(&p[7], f->error, f->error_len);
    if (f->vote_json)
        bind_cstr(&p[8], f->vote_json);
    else
        bind_null(&p[8]);
    if (f->data_json)
        bind_cstr(&p[9], f->data_json);
    else
        bind_null(&p[9]);
    bind_cstr(&p[10], f->id);
    return exec_stmt(a, a->st_ev_insert, p, "insert member_events", err);
}

static ibp_status event_close(ibp_persist_applier *a, uint64_t id, const event_fields *f,
                              int64_t end_ms, ibp_err *err)
{
    /* JSON_MERGE_PATCH(x, NULL) is NULL: COALESCE keeps vote_data when the
     * closing event has no voters. */
    ibp_status st = prepare(a, &a->st_ev_close,
                            "UPDATE member_events SET end_time = ?, end_event_id = ?, "
                            "vote_data = COALESCE(JSON_MERGE_PATCH(COALESCE(vote_data, '{}'), ?), "
                            "vote_data) WHERE id = ?",
                            err);
    if (st != IBP_OK)
        return st;
    MYSQL_TIME t;
    ibp_persist_ms_to_mysql_time(end_ms, &t);
    MYSQL_BIND p[4];
    memset(p, 0, sizeof p);
    bind_time(&p[0], &t);
    bind_cstr(&p[1], f->id);
    if (f->vote_json)
        bind_cstr(&p[2], f->vote_json);
    else
        bind_null(&p[2]);
    bind_u64(&p[3], &id);
    return exec_stmt(a, a->st_ev_close, p, "close member_events", err);
}

static ibp_status event_delete(ibp_persist_applier *a, uint64_t id, ibp_err *err)
{
    ibp_status st = prepare(a, &a->st_ev_delete, "DELETE FROM member_events WHERE id = ?", err);
    if (st != IBP_OK)
        return st;
    MYSQL_BIND p[1];
    memset(p, 0, sizeof p);
    bind_u64(&p[0], &id);
    return exec_stmt(a, a->st_ev_delete, p, "delete flap from member_events", err);
}

/* Records the event id; *fresh is false when it was applied before. */
static ibp_status event_id_claim(ibp_persist_applier *a, const item *it, bool *fresh, ibp_err *err)
{
    ibp_status st = prepare(a, &a->st_evid,
                            "INSERT IGNORE INTO persist_event_ids (event_id, stream_seq) "
                            "VALUES (?, ?)",
                            err);
    if (st != IBP_OK)
        return st;
    uint64_t seq = it->m->seq;
    MYSQL_BIND p[2];
    memset(p, 0, sizeof p);
    bind_cstr(&p[0], it->ev.id);
    bind_u64(&p[1], &seq);
    if ((st = exec_stmt(a, a->st_evid, p, "record event id", err)) != IBP_OK)
        return st;
    *fresh = mysql_stmt_affected_rows(a->st_evid) > 0;
    return IBP_OK;
}

static ibp_status apply_events(ibp_persist_applier *a, item **list, size_t n,
                               ibp_persist_apply_result *r, ibp_err *err)
{
    ibp_status st;
    for (size_t i = 0; i < n; i++) {
        item *it = list[i];
        if (it->reason != IBP_OK || it->forced)
            continue;
        const event_fields *f = &it->ev;
        bool fresh = false;
        if ((st = event_id_claim(a, it, &fresh, err)) != IBP_OK)
            return st;
        if (!fresh) {
            IBP_LOG(IBP_LOG_INFO, COMPONENT,
                    "event applied before, skipped stream=%s seq=%" PRIu64 " event_id=%s",
                    a->stream, it->m->seq, f->id);
            r->stale++;
            continue;
        }
        bool open = false;
        uint64_t id = 0;
        int64_t start_ms = 0;
        if ((st = event_find_open(a, f, &open, &id, &start_ms, err)) != IBP_OK)
            return st;
        ibp_event_open cur = {.open = open, .start_ms = start_ms};
        ibp_event_status_record rec = {.up = f->up, .time_ms = f->time_ms};
        ibp_event_decision d = ibp_event_lifecycle_step(cur, rec, a->o.min_offline_ms);
        switch (d.action) {
        case IBP_EVENT_ACTION_INSERT:
            st = event_insert(a, f, err);
            break;
        case IBP_EVENT_ACTION_CLOSE:
            st = event_close(a, id, f, d.end_ms, err);
            break;
        case IBP_EVENT_ACTION_DELETE_FLAP:
            st = event_delete(a, id, err);
            break;
        case IBP_EVENT_ACTION_NONE:
            st = IBP_OK;
            break;
        }
        if (st != IBP_OK)
            return st;
        IBP_LOG(IBP_LOG_DEBUG, COMPONENT,
                "event stream=%s seq=%" PRIu64 " id=%s member=%s check=%s/%s up=%d action=%s",
                a->stream, it->m->seq, f->id, f->member, f->check_type, f->check_name, f->up,
                ibp_event_lifecycle_action_name(d.action));
        if (d.action != IBP_EVENT_ACTION_NONE)
            r->rows++;
        r->applied++;
    }
    return IBP_OK;
}

/* ---- one transaction -------------------------------------------------------- */

/*
 * One transaction over list[0..n) (sorted by seq); work is scratch space for n
 * pointers. On a MariaDB error rolls back and returns it, with *data_error
 * telling whether it is a data error.
 */
static ibp_status attempt(ibp_persist_applier *a, item **list, size_t n, bool allow_gap,
                          item **work, ibp_persist_apply_result *r, bool *data_error, ibp_err *err)
{
    ibp_persist_apply_result tr;
    memset(&tr, 0, sizeof tr);
    uint64_t last = 0;
    ibp_status st;
    *data_error = false;
    a->last_errno = 0;

    for (size_t i = 0; i < n; i++) {
        list[i]->tx_reason = IBP_OK;
        list[i]->tx_detail[0] = '\0';
    }
    if ((st = offset_get(a, true, &last, err)) != IBP_OK)
        goto fail;

    /* What is new: above last, in order, contiguous when strict. */
    size_t count = 0;
    uint64_t prev = last;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = list[i]->m->seq;
        if (seq <= prev) {
            tr.skipped++;
            continue;
        }
        if (a->o.strict_order && seq != prev + 1 && !(count == 0 && allow_gap)) {
            tr.gap = true;
            tr.unapplied = n - i;
            break;
        }
        if (count == 0 && seq > prev + 1 && a->o.strict_order)
            IBP_LOG(IBP_LOG_WARN, COMPONENT,
                    "sequences missing from the stream (deleted or expired): continuing after "
                    "them stream=%s from_seq=%" PRIu64 " to_seq=%" PRIu64,
                    a->stream, prev + 1, seq - 1);
        work[count++] = list[i];
        prev = seq;
    }
    if (count == 0) {
        rollback(a); /* nothing to write: end the read transaction */
        tr.last_seq = last;
        goto done;
    }
    if (a->o.kind == IBP_PERSIST_HITS)
        st = apply_hits(a, work, count, &tr, err);
    else
        st = apply_events(a, work, count, &tr, err);
    if (st != IBP_OK)
        goto fail;
    for (size_t i = 0; i < count; i++) {
        item *it = work[i];
        if (it->reason != IBP_OK)
            st = dead_letter(a, it, it->reason, it->detail, err);
        else if (it->forced)
            st = dead_letter(a, it, IBP_E_DB, it->forced_detail, err);
        else if (it->tx_reason != IBP_OK)
            st = dead_letter(a, it, it->tx_reason, it->tx_detail, err);
        else
            continue;
        if (st != IBP_OK)
            goto fail;
        tr.dead_lettered++;
    }
    if ((st = offset_set(a, prev, err)) != IBP_OK)
        goto fail;
    if (mysql_commit(a->db) != 0) {
        a->last_errno = mysql_errno(a->db);
        st = ibp_persist_db_error(err, a->db, "COMMIT");
        goto fail;
    }
    tr.last_seq = prev;
    tr.transactions = 1;
done:
    r->last_seq = tr.last_seq;
    r->applied += tr.applied;
    r->skipped += tr.skipped;
    r->dead_lettered += tr.dead_lettered;
    r->stale += tr.stale;
    r->unapplied = tr.unapplied;
    r->gap = tr.gap;
    r->rows += tr.rows;
    r->hits += tr.hits;
    r->transactions += tr.transactions;
    return IBP_OK;
fail:
    *data_error = st == IBP_E_DB && ibp_persist_db_error_is_data(a->last_errno);
    rollback(a);
    return st;
}

static int item_cmp(const void *pa, const void *pb)
{
    const item *x = *(item *const *)pa, *y = *(item *const *)pb;
    return x->m->seq < y->m->seq ? -1 : x->m->seq > y->m->seq;
}

ibp_status ibp_persist_applier_apply(ibp_persist_applier *a, const ibp_persist_msg *msgs, size_t n,
                                     bool allow_gap, ibp_persist_apply_result *result, ibp_err *err)
{
    ibp_persist_apply_result r;
    memset(&r, 0, sizeof r);
    if (a == NULL || (n > 0 && msgs == NULL) || result == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "persist: apply: NULL argument");
    if (n == 0) {
        ibp_status st = ibp_persist_applier_last_seq(a, &r.last_seq, err);
        if (st == IBP_OK)
            *result = r;
        return st;
    }
    item *items = calloc(n, sizeof *items);
    item **list = calloc(n, sizeof *list);
    item **work = calloc(n, sizeof *work);
    item **one = NULL;
    ibp_status st = IBP_OK;
    if (items == NULL || list == NULL || work == NULL) {
        st = ibp_err_set(err, IBP_E_NOMEM, "persist: apply: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].m = &msgs[i];
        list[i] = &items[i];
    }
    qsort(list, n, sizeof *list, item_cmp);
    /* Verify and check everything before the transaction (CPU only); what is
     * at or below the stored offset is decided inside it. */
    for (size_t i = 0; i < n; i++)
        parse_item(a, list[i]);

    bool data_error = false;
    uint64_t lo = list[0]->m->seq, hi = list[n - 1]->m->seq;
    st = attempt(a, list, n, allow_gap, work, &r, &data_error, err);
    if (st != IBP_OK && data_error) {
        /* Find the message MariaDB refuses: one transaction each, in order. */
        IBP_LOG(IBP_LOG_WARN, COMPONENT,
                "data error, applying one message per transaction stream=%s seqs=%" PRIu64
                "-%" PRIu64 " error=\"%s\"",
                a->stream, lo, hi, err ? err->msg : "");
        memset(&r, 0, sizeof r);
        bool gap_ok = allow_gap;
        for (size_t i = 0; i < n; i++) {
            one = &list[i];
            size_t before = r.transactions;
            st = attempt(a, one, 1, gap_ok, work, &r, &data_error, err);
            if (st != IBP_OK && data_error) {
                list[i]->forced = true;
                snprintf(list[i]->forced_detail, sizeof list[i]->forced_detail, "%s",
                         err ? err->msg : "MariaDB refused the data");
                st = attempt(a, one, 1, gap_ok, work, &r, &data_error, err);
            }
            if (st != IBP_OK)
                break;
            if (r.transactions > before)
                gap_ok = false;
            if (r.gap) {
                r.unapplied = n - i;
                break;
            }
        }
    }
    if (st != IBP_OK) {
        ibp_err_wrap(err, "persist: apply %s seq %" PRIu64 "-%" PRIu64, a->stream, lo, hi);
        goto out;
    }
    *result = r;
out:
    for (size_t i = 0; items && i < n; i++)
        item_clear(&items[i]);
    free(items);
    free(list);
    free(work);
    return st;
}

ibp_status ibp_persist_applier_last_seq(ibp_persist_applier *a, uint64_t *out, ibp_err *err)
{
    uint64_t v = 0;
    ibp_status st = offset_get(a, false, &v, err);
    rollback(a);
    if (st == IBP_OK)
        *out = v;
    return st;
}

ibp_status ibp_persist_applier_lock(ibp_persist_applier *a, unsigned timeout_s, bool *got,
                                    ibp_err *err)
{
    char es[2 * NAME_MAX_CHARS + 1], ec[2 * NAME_MAX_CHARS + 1], sql[768];
    mysql_real_escape_string(a->db, es, a->stream, (unsigned long)strlen(a->stream));
    mysql_real_escape_string(a->db, ec, a->consumer, (unsigned long)strlen(a->consumer));
    /* Named locks are server-wide and at most 64 bytes: hash the triple. */
    int len = snprintf(sql, sizeof sql,
                       "SELECT GET_LOCK(CONCAT('ibp_persist_', LEFT(SHA2(CONCAT(DATABASE(), "
                       "'/', '%s', '/', '%s'), 256), 40)), %u)",
                       es, ec, timeout_s);
    if (len < 0 || (size_t)len >= sizeof sql)
        return ibp_err_set(err, IBP_E_INVAL, "persist: lock statement too long");
    uint64_t v = 0;
    bool found = false;
    ibp_status st = ibp_persist_db_query_u64(a->db, sql, &v, &found, "persist: GET_LOCK", err);
    if (st != IBP_OK)
        a->last_errno = mysql_errno(a->db);
    rollback(a);
    if (st == IBP_OK)
        *got = found && v == 1;
    return st;
}
