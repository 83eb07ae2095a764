/*
 * The applier's parts (private header of persist): apply.c owns the applier
 * and the transaction (offsets, dead letters, COMMIT, isolation of a data
 * error), hits.c writes the `requests` rows of HitBatches, events.c steps the
 * outage lifecycle on member_events. The decoding of the payloads is
 * ibp/persist_parse.h. Everything here runs on the applier's one thread,
 * inside the transaction apply.c opened; a function returning an error
 * leaves the rollback to apply.c.
 */
#ifndef IBP_PERSIST_APPLY_INTERNAL_H
#define IBP_PERSIST_APPLY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mysql.h>

#include "ibp/envelope.h"
#include "ibp/log.h"
#include "ibp/persist_apply.h"
#include "ibp/persist_parse.h"

#define IBP__APPLY_COMPONENT "persist"
#define IBP__APPLY_NAME_MAX_CHARS 128
#define IBP__APPLY_DETAIL_MAX_CHARS 512

/* One message of the batch being applied. */
typedef struct ibp__apply_item {
    const ibp_persist_msg *m;
    ibp_verified vm;
    ibp_status reason; /* IBP_OK, or why it can never apply (from parsing) */
    char detail[IBP__APPLY_DETAIL_MAX_CHARS * 2];
    ibp_status tx_reason; /* set inside an attempt (stale HitBatch, MariaDB data error) */
    char tx_detail[IBP__APPLY_DETAIL_MAX_CHARS * 2];
    bool forced; /* isolation found MariaDB refuses it: dead-letter with forced_detail */
    char forced_detail[IBP__APPLY_DETAIL_MAX_CHARS * 2];
    ibp_persist_hit_batch hb; /* HITS, parsed */
    ibp_persist_event ev;     /* EVENTS, parsed */
} ibp__apply_item;

/* The hit writer's state, reused between calls (hits.c). */
typedef struct ibp__hits ibp__hits;

struct ibp_persist_applier {
    MYSQL *db;
    ibp_persist_applier_opts o;
    char stream[IBP__APPLY_NAME_MAX_CHARS + 1];
    char consumer[IBP__APPLY_NAME_MAX_CHARS + 1];
    ibp_verifier *verifier;
    ibp_log_limit dead_log; /* dead letters are logged at a rate limit */
    bool is_mariadb;
    unsigned last_errno;

    MYSQL_STMT *st_off_get, *st_off_set, *st_dead;
    MYSQL_STMT *st_hits, *st_flush_set;
    MYSQL_STMT *st_evid, *st_open, *st_ev_insert, *st_ev_close, *st_ev_delete;

    ibp__hits *hits; /* HITS only */
};

/* ---- statements (apply.c) ------------------------------------------------- */

/* Prepares sql into *st unless it is prepared already. Errors: IBP_E_DB, IBP_E_NOMEM. */
ibp_status ibp__apply_prepare(ibp_persist_applier *a, MYSQL_STMT **st, const char *sql,
                              ibp_err *err);

/* Executes a prepared statement with params (may be NULL); what names it in the error. */
ibp_status ibp__apply_exec(ibp_persist_applier *a, MYSQL_STMT *s, MYSQL_BIND *params,
                           const char *what, ibp_err *err);

/* Parameter binding of borrowed values (b zeroed by the caller). */
static inline void ibp__bind_str(MYSQL_BIND *b, const char *s, size_t len)
{
    b->buffer_type = MYSQL_TYPE_STRING;
    b->buffer = (void *)s;
    b->buffer_length = (unsigned long)len;
    b->length = &b->buffer_length;
}

static inline void ibp__bind_cstr(MYSQL_BIND *b, const char *s)
{
    ibp__bind_str(b, s ? s : "", s ? strlen(s) : 0);
}

static inline void ibp__bind_u64(MYSQL_BIND *b, const uint64_t *v)
{
    b->buffer_type = MYSQL_TYPE_LONGLONG;
    b->buffer = (void *)v;
    b->is_unsigned = 1;
}

static inline void ibp__bind_tiny(MYSQL_BIND *b, const signed char *v)
{
    b->buffer_type = MYSQL_TYPE_TINY;
    b->buffer = (void *)v;
}

static inline void ibp__bind_null(MYSQL_BIND *b)
{
    static my_bool yes = 1;
    b->buffer_type = MYSQL_TYPE_NULL;
    b->is_null = &yes;
}

static inline void ibp__bind_time(MYSQL_BIND *b, MYSQL_TIME *t)
{
    b->buffer_type = MYSQL_TYPE_DATETIME;
    b->buffer = t;
    b->buffer_length = sizeof *t;
}

/* ---- hits (hits.c) -------------------------------------------------------- */

/* The writer's state with bind arrays of bulk_rows rows; NULL when out of memory. */
ibp__hits *ibp__hits_new(size_t bulk_rows);

/* Frees it; accepts NULL. */
void ibp__hits_free(ibp__hits *h);

/*
 * Applies the parsed HitBatches of list[0..n) (those with reason IBP_OK and
 * not forced): a batch at or below its node's last flush_seq gets tx_reason
 * IBP_E_REPLAY (r->stale); the rows of the others are summed per key and
 * upserted, and the nodes' flush_seq written. Errors: IBP_E_DB, IBP_E_NOMEM.
 */
ibp_status ibp__hits_apply(ibp_persist_applier *a, ibp__apply_item **list, size_t n,
                           ibp_persist_apply_result *r, ibp_err *err);

/* ---- events (events.c) ---------------------------------------------------- */

/*
 * Applies the parsed Events of list[0..n) (reason IBP_OK, not forced) in
 * order: an id seen before is skipped (r->stale); the others step the
 * outage lifecycle against member_events. Errors: IBP_E_DB.
 */
ibp_status ibp__events_apply(ibp_persist_applier *a, ibp__apply_item **list, size_t n,
                             ibp_persist_apply_result *r, ibp_err *err);

#endif
