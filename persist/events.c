/*
 * Writing Events to member_events (DESIGN.md §7); see apply_internal.h.
 * The decision (open, close, delete a flap, nothing) is the pure lifecycle
 * of ibp/event_lifecycle.h; this file only reads the open event of the key
 * and carries the decision out. The open event is found through open_key,
 * a generated column hashing the key's fields with their lengths (so that
 * no two keys share it), which a UNIQUE index keeps to one open event per
 * key. Event ids are recorded in persist_event_ids, so an Event published
 * twice under two stream sequences steps the lifecycle once.
 */
#include <inttypes.h>
#include <string.h>

#include "apply_internal.h"
#include "ibp/event_lifecycle.h"
#include "ibp/persist_db.h"
#include "persist_util.h"

/* Finds the open event of the key: *found, *id, *start_ms. */
static ibp_status event_find_open(ibp_persist_applier *a, const ibp_persist_event *f, bool *found,
                                  uint64_t *id, int64_t *start_ms, ibp_err *err)
{
    ibp_status st = ibp__apply_prepare(
        a, &a->st_open,
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
        ibp__bind_cstr(&p[2 * i], parts[i]);
        ibp__bind_cstr(&p[2 * i + 1], parts[i]);
    }
    ibp__bind_tiny(&p[10], &v6);
    if ((st = ibp__apply_exec(a, a->st_open, p, "find open event", err)) != IBP_OK)
        return st;
    uint64_t rid = 0;
    MYSQL_TIME t;
    memset(&t, 0, sizeof t);
    MYSQL_BIND r[2];
    memset(r, 0, sizeof r);
    ibp__bind_u64(&r[0], &rid);
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

static ibp_status event_insert(ibp_persist_applier *a, const ibp_persist_event *f, ibp_err *err)
{
    ibp_status st =
        ibp__apply_prepare(a, &a->st_ev_insert,
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
    ibp__bind_cstr(&p[0], f->check_type);
    ibp__bind_cstr(&p[1], f->check_name);
    ibp__bind_cstr(&p[2], f->endpoint);
    ibp__bind_cstr(&p[3], f->member);
    ibp__bind_cstr(&p[4], f->domain);
    ibp__bind_tiny(&p[5], &v6);
    ibp__bind_time(&p[6], &t);
    ibp__bind_str(&p[7], f->error, f->error_len);
    if (f->vote_json)
        ibp__bind_cstr(&p[8], f->vote_json);
    else
        ibp__bind_null(&p[8]);
    if (f->data_json)
        ibp__bind_cstr(&p[9], f->data_json);
    else
        ibp__bind_null(&p[9]);
    ibp__bind_cstr(&p[10], f->id);
    return ibp__apply_exec(a, a->st_ev_insert, p, "insert member_events", err);
}

static ibp_status event_close(ibp_persist_applier *a, uint64_t id, const ibp_persist_event *f,
                              int64_t end_ms, ibp_err *err)
{
    /* JSON_MERGE_PATCH(x, NULL) is NULL: COALESCE keeps vote_data when the
     * closing event has no voters. */
    ibp_status st =
        ibp__apply_prepare(a, &a->st_ev_close,
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
    ibp__bind_time(&p[0], &t);
    ibp__bind_cstr(&p[1], f->id);
    if (f->vote_json)
        ibp__bind_cstr(&p[2], f->vote_json);
    else
        ibp__bind_null(&p[2]);
    ibp__bind_u64(&p[3], &id);
    return ibp__apply_exec(a, a->st_ev_close, p, "close member_events", err);
}

static ibp_status event_delete(ibp_persist_applier *a, uint64_t id, ibp_err *err)
{
    ibp_status st =
        ibp__apply_prepare(a, &a->st_ev_delete, "DELETE FROM member_events WHERE id = ?", err);
    if (st != IBP_OK)
        return st;
    MYSQL_BIND p[1];
    memset(p, 0, sizeof p);
    ibp__bind_u64(&p[0], &id);
    return ibp__apply_exec(a, a->st_ev_delete, p, "delete flap from member_events", err);
}

/* Records the event id; *fresh is false when it was applied before. */
static ibp_status event_id_claim(ibp_persist_applier *a, const ibp__apply_item *it, bool *fresh,
                                 ibp_err *err)
{
    ibp_status st =
        ibp__apply_prepare(a, &a->st_evid,
                           "INSERT IGNORE INTO persist_event_ids (event_id, stream_seq) "
                           "VALUES (?, ?)",
                           err);
    if (st != IBP_OK)
        return st;
    uint64_t seq = it->m->seq;
    MYSQL_BIND p[2];
    memset(p, 0, sizeof p);
    ibp__bind_cstr(&p[0], it->ev.id);
    ibp__bind_u64(&p[1], &seq);
    if ((st = ibp__apply_exec(a, a->st_evid, p, "record event id", err)) != IBP_OK)
        return st;
    *fresh = mysql_stmt_affected_rows(a->st_evid) > 0;
    return IBP_OK;
}

ibp_status ibp__events_apply(ibp_persist_applier *a, ibp__apply_item **list, size_t n,
                             ibp_persist_apply_result *r, ibp_err *err)
{
    ibp_status st;
    for (size_t i = 0; i < n; i++) {
        ibp__apply_item *it = list[i];
        if (it->reason != IBP_OK || it->forced)
            continue;
        const ibp_persist_event *f = &it->ev;
        bool fresh = false;
        if ((st = event_id_claim(a, it, &fresh, err)) != IBP_OK)
            return st;
        if (!fresh) {
            IBP_LOG(IBP_LOG_INFO, IBP__APPLY_COMPONENT,
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
        IBP_LOG(IBP_LOG_DEBUG, IBP__APPLY_COMPONENT,
                "event stream=%s seq=%" PRIu64 " id=%s member=%s check=%s/%s up=%d action=%s",
                a->stream, it->m->seq, f->id, f->member, f->check_type, f->check_name, f->up,
                ibp_event_lifecycle_action_name(d.action));
        if (d.action != IBP_EVENT_ACTION_NONE)
            r->rows++;
        r->applied++;
    }
    return IBP_OK;
}
