/*
 * Applying stream messages to MariaDB exactly once (DESIGN.md §7, §8).
 *
 * An applier writes the messages of one stream (HITS or EVENTS) for one
 * consumer name. ibp_persist_applier_apply() takes a batch of raw messages
 * (the envelope bytes and their stream sequences), and in ONE transaction:
 *
 *   1. reads persist_offsets.last_seq of (stream, consumer) FOR UPDATE;
 *   2. skips every message at or below it (a redelivery: already applied);
 *   3. applies the others in stream order (the checks of the payloads are
 *      those of ibp/persist_parse.h):
 *        HITS    each envelope verified (signature, signer in the roster with
 *                role dns, payload decodes, HitBatch.node == signer); every
 *                row checked against the column limits; a batch whose
 *                (node, flush_seq) is at or below the last applied flush_seq
 *                of that node (persist_hit_flushes) is not counted again (it
 *                goes to dead_letters as IBP_E_REPLAY, so an operator sees
 *                it); the rows of all applied batches are summed per key and
 *                upserted with the bulk API (array binding,
 *                STMT_ATTR_ARRAY_SIZE) as INSERT ... ON DUPLICATE KEY UPDATE
 *                hits = hits + VALUES(hits);
 *        EVENTS  each envelope verified (role consensus); an Event whose id
 *                was applied before (persist_event_ids) is skipped; the others
 *                step the outage lifecycle (ibp/event_lifecycle.h) against
 *                member_events: open on down unless open, close (or delete
 *                as a flap) on up;
 *      a message that can never apply (fails verification, does not decode,
 *      wrong payload type for the stream, values the columns cannot hold) is
 *      written to dead_letters with the reason instead;
 *   4. writes persist_offsets.last_seq = the highest sequence applied;
 *   5. COMMITs.
 * So the effect of a message is in the database exactly when its sequence is
 * at or below last_seq, and the caller may acknowledge exactly the messages
 * at or below result.last_seq once the call returned IBP_OK.
 *
 * Ordering: with opts.strict_order (live consumers), the messages applied
 * must be contiguous from last_seq + 1: a batch whose first new sequence is
 * higher (messages still pending on another delivery, e.g. of a killed
 * process) or that has a hole applies only the contiguous part and reports
 * result.gap; the caller then re-creates its consumer at last_seq + 1.
 * allow_gap (first batch of a freshly created consumer, which delivers from
 * last_seq + 1 whatever still exists) accepts a gap before the first new
 * message. Without strict_order (replay) every message above last_seq is
 * applied in sequence order.
 *
 * Errors of MariaDB: a statement failing with a data error
 * (ibp_persist_db_error_is_data) rolls the batch back and applies its
 * messages one transaction each, so that only the message that cannot be
 * written goes to dead_letters (with the MariaDB error as detail). Any other
 * error rolls back and returns IBP_E_DB (nothing was applied, nothing may be
 * acknowledged); the caller retries the same batch later, normally on a new
 * connection (ibp_persist_applier_free + new). The database state is the
 * only truth: every attempt re-reads the offsets, so a COMMIT whose outcome
 * was unknown (connection lost during it) is neither lost nor doubled.
 *
 * Thread safety: an applier and its MYSQL handle belong to one thread.
 */
#ifndef IBP_PERSIST_APPLY_H
#define IBP_PERSIST_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "ibp/persist_parse.h" /* IBP_PERSIST_MAX_ROW_HITS, IBP_PERSIST_ERROR_TEXT_MAX */
#include "ibp/roster.h"
#include "ibp/status.h"

typedef enum ibp_persist_kind {
    IBP_PERSIST_HITS = 1,
    IBP_PERSIST_EVENTS = 2,
} ibp_persist_kind;

/* "HITS" / "EVENTS" (the default stream names); "?" otherwise. */
const char *ibp_persist_kind_name(ibp_persist_kind kind);

/* One message of a stream, borrowed for the call. */
typedef struct ibp_persist_msg {
    uint64_t seq;        /* stream sequence, > 0 */
    const char *subject; /* may be NULL */
    const uint8_t *data; /* the envelope as stored */
    size_t len;
} ibp_persist_msg;

typedef struct ibp_persist_applier_opts {
    ibp_persist_kind kind;
    const char *stream;       /* name stored in persist_offsets and dead_letters (<= 128) */
    const char *consumer;     /* consumer name in persist_offsets (<= 128) */
    const ibp_roster *roster; /* borrowed; must outlive the applier */
    int64_t min_offline_ms;   /* events: flap threshold; default 30000 */
    bool strict_order;        /* see above; default true */
    size_t bulk_rows;         /* rows per array-bound execute; default 1000 */
} ibp_persist_applier_opts;

/* Defaults as above; kind, stream, consumer and roster must be set after. */
void ibp_persist_applier_opts_init(ibp_persist_applier_opts *opts);

typedef struct ibp_persist_apply_result {
    uint64_t last_seq;    /* persist_offsets.last_seq after the call */
    size_t applied;       /* messages applied (rows or events written) */
    size_t skipped;       /* at or below the stored sequence (redelivered) */
    size_t dead_lettered; /* written to dead_letters (stale HitBatches included) */
    size_t stale;         /* HitBatch at or below its node's flush_seq; Event id seen */
    size_t unapplied;     /* left after a gap (strict order): not to be acknowledged */
    bool gap;             /* a gap was found (see above) */
    uint64_t rows;        /* HITS: aggregated rows upserted; EVENTS: table changes */
    uint64_t hits;        /* HITS: sum of hits applied */
    size_t transactions;  /* transactions committed by the call */
} ibp_persist_apply_result;

typedef struct ibp_persist_applier ibp_persist_applier;

/*
 * Creates an applier writing through db (borrowed: the caller keeps it open
 * while the applier lives and closes it after ibp_persist_applier_free).
 * Statements are prepared on first use. Errors: IBP_E_INVAL (missing or
 * over-long names, unknown kind), IBP_E_NOMEM.
 */
ibp_status ibp_persist_applier_new(MYSQL *db, const ibp_persist_applier_opts *opts,
                                   ibp_persist_applier **out, ibp_err *err);

/* Frees the applier and its prepared statements (not the connection); accepts NULL. */
void ibp_persist_applier_free(ibp_persist_applier *a);

/*
 * Applies msgs[0..n) as described at the top (n may be 0). *result is filled
 * on IBP_OK. Errors: IBP_E_DB (rolled back; err says which step and the
 * MariaDB error, e.g. "persist: apply HITS seq 812-830: upsert rows: MariaDB
 * 1205 (HY000): Lock wait timeout exceeded"), IBP_E_NOMEM, IBP_E_INVAL.
 */
ibp_status ibp_persist_applier_apply(ibp_persist_applier *a, const ibp_persist_msg *msgs, size_t n,
                                     bool allow_gap, ibp_persist_apply_result *result,
                                     ibp_err *err);

/*
 * Reads the stored last_seq of the applier's (stream, consumer) into *out
 * (0 when there is none). Ends the read transaction. Errors: IBP_E_DB.
 */
ibp_status ibp_persist_applier_last_seq(ibp_persist_applier *a, uint64_t *out, ibp_err *err);

/*
 * Takes the MariaDB named lock of (database, stream, consumer) so that two
 * persist processes never apply the same stream into one database at once.
 * Waits up to timeout_s; *got says whether it was taken. The lock lives as
 * long as the connection. Errors: IBP_E_DB.
 */
ibp_status ibp_persist_applier_lock(ibp_persist_applier *a, unsigned timeout_s, bool *got,
                                    ibp_err *err);

/* MariaDB error number of the last failure (0 if none): for logs and tests. */
unsigned ibp_persist_applier_last_errno(const ibp_persist_applier *a);

#endif
