/*
 * Applying HITS and EVENTS messages to MariaDB exactly once; see
 * ibp/persist_apply.h for the contract. The order of work in one call:
 *
 *   parse    verify every envelope and check every value against the column
 *            limits (ibp/persist_parse.h), outside any transaction (CPU only);
 *   attempt  one transaction: offsets FOR UPDATE, choose what is new, write
 *            (hits.c or events.c), dead letters, offsets, COMMIT;
 *   isolate  only after a data error: the same messages one per transaction,
 *            dead-lettering the one that MariaDB refuses.
 * This file is the exactly-once bookkeeping: the applier, persist_offsets,
 * dead_letters, the transaction and its isolation, the named lock.
 */
#include "ibp/persist_apply.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_internal.h"
#include "column_text.h"
#include "ibp/event_lifecycle.h"
#include "ibp/persist_db.h"

#define COMPONENT IBP__APPLY_COMPONENT
#define NAME_MAX_CHARS IBP__APPLY_NAME_MAX_CHARS
#define DETAIL_MAX_CHARS IBP__APPLY_DETAIL_MAX_CHARS
#define SUBJECT_MAX_CHARS 512

typedef ibp__apply_item item;

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

/* ---- statements ----------------------------------------------------------- */

ibp_status ibp__apply_prepare(ibp_persist_applier *a, MYSQL_STMT **st, const char *sql,
                              ibp_err *err)
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

ibp_status ibp__apply_exec(ibp_persist_applier *a, MYSQL_STMT *s, MYSQL_BIND *params,
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

/* ---- parsing ------------------------------------------------------------- */

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
    if (a->o.kind == IBP_PERSIST_HITS) {
        ibp_codec_hit_batch w;
        st = ibp_codec_hit_batch_decode_verified(&it->vm, &w, &e);
        if (st == IBP_OK)
            st = ibp_persist_parse_hits(&w, it->vm.envelope->signer, &it->hb, &e);
        ibp_codec_hit_batch_clear(&w); /* the rows borrow from it->vm */
    } else {
        ibp_codec_event w;
        st = ibp_codec_event_decode_verified(&it->vm, &w, &e);
        if (st == IBP_OK)
            st = ibp_persist_parse_event_wire(&w, &it->ev, &e);
        ibp_codec_event_clear(&w); /* the columns borrow from it->vm */
    }
    if (st != IBP_OK) {
        it->reason = st;
        snprintf(it->detail, sizeof it->detail, "%s", e.msg[0] ? e.msg : ibp_strerror(st));
    }
}

static void item_clear(item *it)
{
    ibp_persist_hit_batch_clear(&it->hb);
    ibp_persist_event_clear(&it->ev);
    ibp_verified_clear(&it->vm);
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
    if (a->o.kind == IBP_PERSIST_HITS && (a->hits = ibp__hits_new(a->o.bulk_rows)) == NULL) {
        ibp_persist_applier_free(a);
        return ibp_err_set(err, IBP_E_NOMEM, "persist: applier: out of memory");
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
    ibp__hits_free(a->hits);
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
    if ((st = ibp__apply_prepare(a, sp, sql, err)) != IBP_OK)
        return st;
    MYSQL_STMT *s = *sp;
    MYSQL_BIND p[2];
    memset(p, 0, sizeof p);
    ibp__bind_cstr(&p[0], a->stream);
    ibp__bind_cstr(&p[1], a->consumer);
    uint64_t v = 0;
    MYSQL_BIND r[1];
    memset(r, 0, sizeof r);
    ibp__bind_u64(&r[0], &v);
    if ((st = ibp__apply_exec(a, s, p, "read persist_offsets", err)) != IBP_OK)
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
    ibp_status st =
        ibp__apply_prepare(a, &a->st_off_set,
                           "INSERT INTO persist_offsets (stream, consumer, last_seq) VALUES "
                           "(?, ?, ?) ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq)",
                           err);
    if (st != IBP_OK)
        return st;
    MYSQL_BIND p[3];
    memset(p, 0, sizeof p);
    ibp__bind_cstr(&p[0], a->stream);
    ibp__bind_cstr(&p[1], a->consumer);
    ibp__bind_u64(&p[2], &seq);
    return ibp__apply_exec(a, a->st_off_set, p, "write persist_offsets", err);
}

static ibp_status dead_letter(ibp_persist_applier *a, const item *it, ibp_status reason,
                              const char *detail, ibp_err *err)
{
    ibp_status st =
        ibp__apply_prepare(a, &a->st_dead,
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
    ibp__bind_cstr(&p[0], a->stream);
    ibp__bind_u64(&p[1], &seq);
    ibp__bind_cstr(&p[2], ibp_status_name(reason));
    ibp__bind_cstr(&p[3], det);
    ibp__bind_cstr(&p[4], subj);
    p[5].buffer_type = MYSQL_TYPE_BLOB;
    p[5].buffer = (void *)it->m->data;
    p[5].buffer_length = (unsigned long)it->m->len;
    p[5].length = &p[5].buffer_length;
    IBP_LOG_LIMITED(&a->dead_log, IBP_LOG_WARN, COMPONENT,
                    "dead letter stream=%s seq=%" PRIu64 " reason=%s detail=\"%s\"", a->stream, seq,
                    ibp_status_name(reason), det);
    return ibp__apply_exec(a, a->st_dead, p, "write dead_letters", err);
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
        st = ibp__hits_apply(a, work, count, &tr, err);
    else
        st = ibp__events_apply(a, work, count, &tr, err);
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
