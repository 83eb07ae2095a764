/*
 * The fault suite's witness (fault_witness.h).
 */
#include "fault_witness.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "ibp/clock.h"
#include "ibp/envelope.h"
#include "ibp/official_snapshot.h"
#include "ibp/subject.h"

typedef struct conn {
    natsOptions *o;
    natsConnection *nc;
    jsCtx *js;
    ibp_verifier *v;
} conn;

static void conn_close(conn *c)
{
    ibp_verifier_free(c->v);
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->nc);
    natsOptions_Destroy(c->o);
    memset(c, 0, sizeof *c);
}

static int conn_open(const fault_cluster *fc, conn *c)
{
    /* The witness counts; it is not what a scenario tests. A login that
     * fails on a loaded machine is tried again a few times. */
    natsStatus s = NATS_OK;
    for (int attempt = 1; attempt <= 5; attempt++) {
        memset(c, 0, sizeof *c);
        s = natsOptions_Create(&c->o);
        if (s == NATS_OK)
            s = fc_nats_options(fc, c->o);
        if (s == NATS_OK)
            s = natsOptions_SetTimeout(c->o, 3000);
        if (s == NATS_OK)
            s = natsConnection_Connect(&c->nc, c->o);
        if (s == NATS_OK)
            s = natsConnection_JetStream(&c->js, c->nc, NULL);
        if (s == NATS_OK)
            break;
        fprintf(stderr, "fault: witness cannot reach NATS at %s (attempt %d of 5): %s: %s\n",
                fc->nats_urls, attempt, natsStatus_GetText(s), nats_GetLastError(NULL));
        conn_close(c);
        struct timespec ts = {1, 0};
        nanosleep(&ts, NULL);
    }
    if (s != NATS_OK)
        return -1;
    ibp_verifier_opts vo;
    ibp_verifier_opts_init(&vo);
    vo.log_component = "witness";
    if (ibp_verifier_new(fc->roster, &vo, &c->v) != IBP_OK) {
        conn_close(c);
        return -1;
    }
    return 0;
}

static int last_seq(conn *c, const char *stream, uint64_t *out)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, c->js, stream, NULL, &jerr);
    if (s != NATS_OK) {
        fprintf(stderr, "fault: stream %s: %s (%d)\n", stream, natsStatus_GetText(s), (int)jerr);
        return -1;
    }
    *out = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return 0;
}

/* Checks a message's envelope and signature against the roster (sequence numbers not enforced). */
static ibp_status verify(conn *c, natsMsg *m, ibp_verified *vm, ibp_err *err)
{
    return ibp_verifier_check_stateless(c->v, (const uint8_t *)natsMsg_GetData(m),
                                        (size_t)natsMsg_GetDataLength(m), vm, err);
}

/*
 * Calls fn for every verified message of stream in order. Messages that fail
 * verification are counted in *bad (the suite expects none).
 */
typedef int (*msg_fn)(const ibp_verified *vm, void *ctx);

static int each_msg(conn *c, const char *stream, msg_fn fn, void *ctx, uint64_t *bad)
{
    uint64_t last = 0;
    if (last_seq(c, stream, &last) != 0)
        return -1;
    for (uint64_t seq = 1; seq <= last; seq++) {
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetMsg(&m, c->js, stream, seq, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
            continue; /* deleted (limits): nothing the suite deletes */
        if (s != NATS_OK) {
            fprintf(stderr, "fault: %s seq %" PRIu64 ": %s\n", stream, seq, natsStatus_GetText(s));
            return -1;
        }
        ibp_verified vm = {0};
        ibp_err err = {0};
        if (verify(c, m, &vm, &err) != IBP_OK) {
            fprintf(stderr, "fault: %s seq %" PRIu64 " does not verify: %s\n", stream, seq,
                    err.msg);
            (*bad)++;
        } else if (fn(&vm, ctx) != 0) {
            ibp_verified_clear(&vm);
            natsMsg_Destroy(m);
            return -1;
        }
        ibp_verified_clear(&vm);
        natsMsg_Destroy(m);
    }
    return 0;
}

/* ---- a small set of strings ------------------------------------------------ */

typedef struct strset {
    char **items;
    size_t count, cap;
} strset;

/* Adds s unless present; returns 1 when added, 0 when present, -1 on error. */
static int strset_add(strset *set, const char *s)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->items[i], s) == 0)
            return 0;
    if (set->count == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 256;
        char **n = realloc(set->items, cap * sizeof *n);
        if (!n)
            return -1;
        set->items = n;
        set->cap = cap;
    }
    if (!(set->items[set->count] = strdup(s)))
        return -1;
    set->count++;
    return 1;
}

static void strset_free(strset *set)
{
    for (size_t i = 0; i < set->count; i++)
        free(set->items[i]);
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* ---- HITS ------------------------------------------------------------------ */

typedef struct hits_ctx {
    strset batches;
    fw_counts *out;
} hits_ctx;

static int on_hits(const ibp_verified *vm, void *ctx)
{
    hits_ctx *h = ctx;
    if (vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH)
        return 0;
    const Ibp__V1__HitBatch *b = (const Ibp__V1__HitBatch *)vm->payload;
    char id[128];
    snprintf(id, sizeof id, "%s/%" PRIu64, b->node, b->flush_seq);
    h->out->hit_msgs++;
    int added = strset_add(&h->batches, id);
    if (added < 0)
        return -1;
    if (added == 0)
        return 0;
    h->out->hit_batches++;
    for (size_t i = 0; i < b->n_rows; i++)
        h->out->hits_published += b->rows[i]->hits;
    return 0;
}

/* ---- EVENTS ---------------------------------------------------------------- */

static int on_event(const ibp_verified *vm, void *ctx)
{
    strset *ids = ctx;
    if (vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT)
        return 0;
    const Ibp__V1__Event *e = (const Ibp__V1__Event *)vm->payload;
    if (e->kind != IBP__V1__EVENT_KIND__EVENT_KIND_STATUS)
        return 0;
    return strset_add(ids, e->id) < 0 ? -1 : 0;
}

/* ---- OFFICIAL -------------------------------------------------------------- */

typedef struct keystate {
    char *key;
    bool up;
} keystate;

typedef struct official_ctx {
    keystate *prev;
    size_t nprev;
    uint64_t last_epoch;
    fw_counts *out;
} official_ctx;

static char *key_of(const ibp_result *r)
{
    size_t n =
        strlen(r->check_name) + strlen(r->member) + strlen(r->domain) + strlen(r->endpoint) + 16;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%d|%s|%s|%s|%s|%d", (int)r->type, r->check_name, r->member, r->domain,
                 r->endpoint, r->ipv6);
    return k;
}

static int keystate_cmp(const void *a, const void *b)
{
    return strcmp(((const keystate *)a)->key, ((const keystate *)b)->key);
}

static void keystates_free(keystate *k, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(k[i].key);
    free(k);
}

static int on_snapshot(const ibp_verified *vm, void *ctx)
{
    official_ctx *o = ctx;
    if (vm->envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT)
        return 0;
    ibp_official_snapshot snap = {0};
    ibp_err err = {0};
    if (ibp_official_snapshot_from_proto((const Ibp__V1__OfficialSnapshot *)vm->payload, &snap,
                                         &err) != IBP_OK) {
        fprintf(stderr, "fault: a snapshot does not decode: %s\n", err.msg);
        return -1;
    }
    o->out->epochs++;
    if (snap.epoch != o->last_epoch + 1)
        o->out->epochs_contiguous = false;
    o->last_epoch = snap.epoch;
    size_t n = snap.results.count;
    keystate *cur = calloc(n ? n : 1, sizeof *cur);
    if (!cur) {
        ibp_official_snapshot_clear(&snap);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        cur[i].up = snap.results.items[i]->up;
        if (!(cur[i].key = key_of(snap.results.items[i]))) {
            keystates_free(cur, n);
            ibp_official_snapshot_clear(&snap);
            return -1;
        }
    }
    ibp_official_snapshot_clear(&snap);
    qsort(cur, n, sizeof *cur, keystate_cmp);
    for (size_t i = 0; i < n; i++) {
        keystate *p =
            o->nprev ? bsearch(&cur[i], o->prev, o->nprev, sizeof *o->prev, keystate_cmp) : NULL;
        if (p ? p->up != cur[i].up : !cur[i].up)
            o->out->events_expected++;
        if (!p || p->up != cur[i].up)
            o->out->events_announced++;
    }
    keystates_free(o->prev, o->nprev);
    o->prev = cur;
    o->nprev = n;
    return 0;
}

/* ---- database --------------------------------------------------------------- */

static int db_counts(const fault_cluster *fc, fw_counts *out)
{
    MYSQL *db = ibp_testenv_mysql_connect(&fc->servers.env, fc->database);
    if (!db)
        return -1;
    long long hits = 0, rows = 0, closed = 0, dup = 0, dead = 0;
    int rc = ibp_testenv_mysql_query_int(db, &hits, "SELECT COALESCE(SUM(hits), 0) FROM requests");
    if (rc == 0)
        rc = ibp_testenv_mysql_query_int(
            db, &rows, "SELECT COUNT(*) FROM member_events WHERE check_type <> 'override'");
    if (rc == 0)
        rc = ibp_testenv_mysql_query_int(db, &closed,
                                         "SELECT COUNT(*) FROM member_events WHERE check_type "
                                         "<> 'override' AND end_time IS NOT NULL");
    if (rc == 0)
        rc = ibp_testenv_mysql_query_int(
            db, &dup,
            "SELECT COUNT(*) FROM (SELECT id FROM (SELECT event_id AS id FROM member_events "
            "WHERE event_id IS NOT NULL UNION ALL SELECT end_event_id FROM member_events "
            "WHERE end_event_id IS NOT NULL) ids GROUP BY id HAVING COUNT(*) > 1) d");
    if (rc == 0)
        rc = ibp_testenv_mysql_query_int(db, &dead, "SELECT COUNT(*) FROM dead_letters");
    mysql_close(db);
    out->hits_stored = (uint64_t)hits;
    out->events_stored = (uint64_t)(rows + closed);
    out->event_ids_doubled = (uint64_t)dup;
    out->dead_letters = (uint64_t)dead;
    return rc;
}

int fw_count(const fault_cluster *fc, fw_counts *out)
{
    memset(out, 0, sizeof *out);
    out->epochs_contiguous = true;
    conn c;
    if (conn_open(fc, &c) != 0)
        return -1;
    uint64_t bad = 0;
    hits_ctx h = {.out = out};
    strset ids = {0};
    official_ctx o = {.out = out};
    int rc = each_msg(&c, "HITS", on_hits, &h, &bad);
    if (rc == 0)
        rc = each_msg(&c, "EVENTS", on_event, &ids, &bad);
    if (rc == 0)
        rc = each_msg(&c, "OFFICIAL", on_snapshot, &o, &bad);
    out->events_published = ids.count;
    strset_free(&h.batches);
    strset_free(&ids);
    keystates_free(o.prev, o.nprev);
    conn_close(&c);
    if (rc == 0 && bad) {
        fprintf(stderr, "fault: %" PRIu64 " messages on the bus did not verify\n", bad);
        rc = -1;
    }
    if (rc == 0)
        rc = db_counts(fc, out);
    return rc;
}

int fw_stream_leader(const fault_cluster *fc, const char *stream, int *replicas)
{
    conn c;
    if (conn_open(fc, &c) != 0)
        return -1;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    int k = -1;
    natsStatus s = js_GetStreamInfo(&si, c.js, stream, NULL, &jerr);
    if (s != NATS_OK)
        fprintf(stderr, "fault: stream %s: %s (%d)\n", stream, natsStatus_GetText(s), (int)jerr);
    else if (!si->Cluster || !si->Cluster->Leader ||
             sscanf(si->Cluster->Leader, "fault%d", &k) != 1 || k < 1 || k > fc->nats_n)
        fprintf(stderr, "fault: stream %s has no leader among the suite's servers\n", stream);
    else
        k--;
    if (si)
        *replicas = (int)si->Config->Replicas;
    jsStreamInfo_Destroy(si);
    conn_close(&c);
    return k;
}

int fw_clock_offset(const fault_cluster *fc, const char *node, int timeout_ms, int64_t *offset_ms)
{
    char subject[256];
    if (ibp_subject_local(node, subject, sizeof subject) != IBP_OK)
        return -1;
    conn c;
    if (conn_open(fc, &c) != 0)
        return -1;
    int64_t end = fc_mono_ms() + timeout_ms;
    uint64_t first_seq = 0;
    int rc = -1;
    while (rc != 0 && fc_mono_ms() < end) {
        natsMsg *m = NULL;
        jsErrCode jerr = 0;
        ibp_verified vm = {0};
        ibp_err err = {0};
        /* A message published after the call, so a restarted node's clock shows. */
        if (js_GetLastMsg(&m, c.js, "LOCAL", subject, NULL, &jerr) == NATS_OK &&
            verify(&c, m, &vm, &err) == IBP_OK) {
            uint64_t seq = natsMsg_GetSequence(m);
            if (first_seq == 0)
                first_seq = seq;
            else if (seq > first_seq) {
                *offset_ms = vm.envelope->created_ms - ibp_clock_wall_ms();
                rc = 0;
            }
        }
        ibp_verified_clear(&vm);
        natsMsg_Destroy(m);
        if (rc != 0)
            fc_sleep_ms(100);
    }
    conn_close(&c);
    if (rc != 0)
        fprintf(stderr, "fault: no new message from %s on LOCAL within %d ms\n", node, timeout_ms);
    return rc;
}

/* Decodes the newest snapshot of OFFICIAL into *snap: 1, 0 when none, -1 on error. */
static int newest_snapshot(conn *c, ibp_official_snapshot *snap)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (js_GetLastMsg(&m, c->js, "OFFICIAL", "ibp.official.snapshot", NULL, &jerr) != NATS_OK)
        return 0; /* none yet, or the server is away */
    ibp_verified vm = {0};
    ibp_err err = {0};
    int rc = 1;
    if (verify(c, m, &vm, &err) != IBP_OK) {
        fprintf(stderr, "fault: the newest snapshot does not verify: %s\n", err.msg);
        rc = -1;
    } else if (ibp_official_snapshot_from_proto((const Ibp__V1__OfficialSnapshot *)vm.payload, snap,
                                                &err) != IBP_OK) {
        fprintf(stderr, "fault: the newest snapshot does not decode: %s\n", err.msg);
        rc = -1;
    }
    ibp_verified_clear(&vm);
    natsMsg_Destroy(m);
    return rc;
}

static bool is_flap_key(const ibp_result *r)
{
    return strcmp(r->member, FC_FLAP_MEMBER) == 0 && strcmp(r->check_name, FC_FLAP_CHECK) == 0;
}

int fw_official_flap_up(const fault_cluster *fc)
{
    conn c;
    if (conn_open(fc, &c) != 0)
        return -1;
    ibp_official_snapshot snap = {0};
    int rc = -1;
    bool have = newest_snapshot(&c, &snap) == 1;
    for (size_t i = 0; have && i < snap.results.count && rc < 0; i++)
        if (is_flap_key(snap.results.items[i]))
            rc = snap.results.items[i]->up ? 1 : 0;
    ibp_official_snapshot_clear(&snap);
    conn_close(&c);
    return rc;
}

int fw_converged(const fault_cluster *fc, bool flap_up, uint64_t *epoch)
{
    *epoch = 0;
    conn c;
    if (conn_open(fc, &c) != 0)
        return -1;
    ibp_official_snapshot snap = {0};
    int rc = newest_snapshot(&c, &snap);
    if (rc == 1) {
        *epoch = snap.epoch;
        size_t flap_keys = 0, wrong = 0;
        for (size_t i = 0; i < snap.results.count; i++) {
            const ibp_result *r = snap.results.items[i];
            bool flaps = is_flap_key(r);
            flap_keys += flaps;
            wrong += r->up != (flaps ? flap_up : true);
        }
        long long dns_epoch = fc_status_num(fc, FC_DNS1, "official", "epoch");
        rc = flap_keys > 0 && wrong == 0 && dns_epoch == (long long)snap.epoch;
    }
    ibp_official_snapshot_clear(&snap);
    conn_close(&c);
    return rc;
}

int fw_wait_persisted(const fault_cluster *fc, int timeout_ms)
{
    int64_t end = fc_mono_ms() + timeout_ms;
    uint64_t hits_last = 0, events_last = 0;
    long long hits_done = -1, events_done = -1;
    for (;;) {
        conn c;
        if (conn_open(fc, &c) == 0) {
            if (last_seq(&c, "HITS", &hits_last) == 0 &&
                last_seq(&c, "EVENTS", &events_last) == 0) {
                MYSQL *db = ibp_testenv_mysql_connect(&fc->servers.env, fc->database);
                if (db) {
                    if (ibp_testenv_mysql_query_int(
                            db, &hits_done,
                            "SELECT COALESCE(MAX(last_seq), 0) FROM persist_offsets "
                            "WHERE stream = 'HITS'") != 0 ||
                        ibp_testenv_mysql_query_int(
                            db, &events_done,
                            "SELECT COALESCE(MAX(last_seq), 0) FROM persist_offsets "
                            "WHERE stream = 'EVENTS'") != 0)
                        hits_done = events_done = -1;
                    mysql_close(db);
                }
            }
            conn_close(&c);
        }
        if (hits_done >= (long long)hits_last && events_done >= (long long)events_last)
            return 0;
        if (fc_mono_ms() > end) {
            fprintf(stderr,
                    "fault: persist did not catch up within %d ms: HITS %lld of %" PRIu64
                    ", EVENTS %lld of %" PRIu64 "\n",
                    timeout_ms, hits_done, hits_last, events_done, events_last);
            return -1;
        }
        fc_sleep_ms(250);
    }
}
