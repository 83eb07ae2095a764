/* Rebuilding the tables from the streams; see ibp/persist_replay.h. */
#include "ibp/persist_replay.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ibp/clock.h"
#include "ibp/envelope.h"
#include "ibp/log.h"
#include "ibp/persist.h"
#include "ibp/persist_apply.h"
#include "ibp/schema.h"
#include "persist_util.h"

#define COMPONENT "persist-replay"
#define NS_PER_MS INT64_C(1000000)

void ibp_persist_replay_opts_init(ibp_persist_replay_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->hits_stream = "HITS";
    opts->hits_consumer = IBP_PERSIST_HITS_DURABLE_DEFAULT;
    opts->events_stream = "EVENTS";
    opts->events_consumer = IBP_PERSIST_EVENTS_DURABLE_DEFAULT;
    opts->batch_size = 1000;
    opts->min_offline_ms = 30000;
    opts->progress_interval_ms = 1000;
}

/* Every table a replay writes: all must be empty before it starts. */
static const char *const replay_tables[] = {
    "requests",     "member_events",       "persist_offsets",
    "dead_letters", "persist_hit_flushes", "persist_event_ids"};

static ibp_status check_empty(MYSQL *db, const char *database, ibp_err *err)
{
    for (size_t i = 0; i < sizeof replay_tables / sizeof replay_tables[0]; i++) {
        char sql[160];
        uint64_t v = 0;
        snprintf(sql, sizeof sql, "SELECT EXISTS (SELECT 1 FROM `%s` LIMIT 1)", replay_tables[i]);
        ibp_status st = ibp_persist_db_query_u64(db, sql, &v, NULL, "replay: check empty", err);
        if (st != IBP_OK)
            return st;
        if (v != 0) {
            mysql_rollback(db);
            return ibp_err_set(err, IBP_E_EXISTS,
                               "replay: database %s is not empty (table %s has rows): replay "
                               "rebuilds into an empty schema; drop it or name another",
                               database, replay_tables[i]);
        }
    }
    mysql_rollback(db);
    return IBP_OK;
}

/* A MariaDB account name part as a quoted literal ('ibp', '127.0.0.1'). */
static void quote_account(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 3)
        return;
    out[o++] = '\'';
    for (size_t i = 0; i < n && o + 3 < cap; i++) {
        if (in[i] == '\'' || in[i] == '\\')
            out[o++] = '\\';
        out[o++] = in[i];
    }
    out[o++] = '\'';
    out[o] = '\0';
}

/*
 * Creates the target database when it is missing, through a connection to
 * the configured one. When the user may not (1044 and the like), the error
 * says which GRANT an administrator has to run, for the account MariaDB
 * matched (CURRENT_USER()). When the configured database cannot be reached
 * either, the creation is left to the connect that follows (its error).
 */
static ibp_status ensure_database(const ibp_persist_replay_opts *o, bool *exists, ibp_err *err)
{
    MYSQL *db = NULL;
    ibp_err ce;
    ibp_err_clear(&ce);
    *exists = false;
    if (ibp_persist_db_connect(o->db, NULL, false, &db, &ce) != IBP_OK)
        return IBP_OK;
    char sql[256];
    snprintf(sql, sizeof sql,
             "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
             o->database);
    ibp_status st = IBP_OK;
    if (mysql_real_query(db, sql, (unsigned long)strlen(sql)) != 0) {
        unsigned code = mysql_errno(db);
        char why[512];
        snprintf(why, sizeof why, "%s", mysql_error(db));
        char user[300] = "'?'", host[300] = "'%'";
        MYSQL_RES *res = NULL;
        MYSQL_ROW row;
        if (mysql_real_query(db, "SELECT CURRENT_USER()", 21) == 0 &&
            (res = mysql_store_result(db)) != NULL && (row = mysql_fetch_row(res)) != NULL &&
            row[0] != NULL) {
            const char *at = strrchr(row[0], '@');
            size_t ulen = at ? (size_t)(at - row[0]) : strlen(row[0]);
            quote_account(row[0], ulen, user, sizeof user);
            if (at)
                quote_account(at + 1, strlen(at + 1), host, sizeof host);
        }
        mysql_free_result(res);
        if (code == 1044 || code == 1045 || code == 1142 || code == 1227)
            st = ibp_err_set(err, IBP_E_DB,
                             "replay: the MariaDB user %s@%s may not create database %s (%u: "
                             "%s). Create it as an administrator, or let the user do it, "
                             "with: GRANT ALL PRIVILEGES ON `%s`.* TO %s@%s;",
                             user, host, o->database, code, why, o->database, user, host);
        else
            st = ibp_err_set(err, IBP_E_DB, "replay: create database %s: MariaDB %u: %s",
                             o->database, code, why);
    }
    *exists = st == IBP_OK;
    mysql_close(db);
    return st;
}

static uint32_t random32(void)
{
    uint32_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof v) != (ssize_t)sizeof v)
            v = 0;
        close(fd);
    }
    return v ^ (uint32_t)ibp_clock_mono_ms();
}

typedef struct replay_stream {
    const ibp_persist_replay_opts *o;
    ibp_persist_kind kind;
    const char *stream;
    const char *consumer_name; /* in persist_offsets */
    char tmp_consumer[64];
    jsCtx *js;
    natsSubscription *sub;
    MYSQL *db;
    ibp_persist_applier *applier;
    ibp_persist_replay_stream_result *res;
} replay_stream;

static ibp_status nats_fail(ibp_err *err, natsStatus s, jsErrCode jerr, const char *what,
                            const char *stream)
{
    const char *last = nats_GetLastError(NULL);
    return ibp_err_set(err, IBP_E_NATS, "replay: %s %s: %s (jetstream error %d)%s%s", what, stream,
                       natsStatus_GetText(s), (int)jerr, last && *last ? ": " : "",
                       last ? last : "");
}

static void rs_db_close(replay_stream *rs)
{
    ibp_persist_applier_free(rs->applier);
    rs->applier = NULL;
    if (rs->db)
        mysql_close(rs->db);
    rs->db = NULL;
}

static ibp_status rs_db_open(replay_stream *rs, ibp_err *err)
{
    const ibp_persist_replay_opts *o = rs->o;
    ibp_status st = ibp_persist_db_connect(o->db, o->database, false, &rs->db, err);
    if (st != IBP_OK)
        return st;
    ibp_persist_applier_opts ao;
    ibp_persist_applier_opts_init(&ao);
    ao.kind = rs->kind;
    ao.stream = rs->stream;
    ao.consumer = rs->consumer_name;
    ao.roster = o->roster;
    ao.min_offline_ms = o->min_offline_ms;
    ao.strict_order = false; /* a fresh consumer: whatever exists, in order */
    st = ibp_persist_applier_new(rs->db, &ao, &rs->applier, err);
    if (st != IBP_OK)
        rs_db_close(rs);
    return st;
}

static void report(replay_stream *rs, uint64_t first, uint64_t last, uint64_t pos, int64_t t0,
                   bool done)
{
    const ibp_persist_replay_opts *o = rs->o;
    if (o->progress == NULL)
        return;
    double el = (double)(ibp_clock_mono_ms() - t0) / 1000.0;
    ibp_persist_replay_progress p = {
        .stream = rs->stream,
        .position = pos,
        .first = first,
        .last = last,
        .messages = rs->res->messages,
        .msgs_per_s = el > 0 ? (double)rs->res->messages / el : 0,
        .eta_s = -1,
        .done = done,
    };
    if (done)
        p.eta_s = 0;
    else if (p.msgs_per_s > 0 && last >= pos)
        p.eta_s = (double)(last - pos) / p.msgs_per_s;
    o->progress(o->progress_user, &p);
}

static bool stopping(const ibp_persist_replay_opts *o)
{
    return o->stop && atomic_load(o->stop);
}

static ibp_status replay_one(replay_stream *rs, ibp_err *err)
{
    const ibp_persist_replay_opts *o = rs->o;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    ibp_status st = IBP_OK;
    natsStatus s = js_GetStreamInfo(&si, rs->js, rs->stream, NULL, &jerr);
    if (s != NATS_OK)
        return nats_fail(err, s, jerr, "stream info", rs->stream);
    uint64_t first = si->State.FirstSeq, last = si->State.LastSeq, stored = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    if (o->from_seq > first)
        first = o->from_seq;
    if (stored == 0 || first > last) {
        IBP_LOG(IBP_LOG_INFO, COMPONENT, "nothing to replay stream=%s", rs->stream);
        return IBP_OK;
    }
    snprintf(rs->tmp_consumer, sizeof rs->tmp_consumer, "ibp-replay-%ld-%08x", (long)getpid(),
             (unsigned)random32());
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = rs->tmp_consumer;
    cc.AckPolicy = js_AckAll;
    cc.AckWait = (int64_t)120000 * NS_PER_MS;
    cc.MaxAckPending = -1;
    cc.InactiveThreshold = (int64_t)300000 * NS_PER_MS;
    cc.Description = "ibp-persist replay (temporary)";
    if (o->from_time_ms != 0) {
        cc.DeliverPolicy = js_DeliverByStartTime;
        cc.OptStartTime = o->from_time_ms * NS_PER_MS;
    } else if (o->from_seq > 0) {
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = o->from_seq;
    } else {
        cc.DeliverPolicy = js_DeliverAll;
    }
    jsConsumerInfo *ci = NULL;
    s = js_AddConsumer(&ci, rs->js, rs->stream, &cc, NULL, &jerr);
    if (s != NATS_OK)
        return nats_fail(err, s, jerr, "create replay consumer", rs->stream);
    uint64_t pending_at_start = ci->NumPending;
    jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = rs->stream;
    so.Consumer = rs->tmp_consumer;
    s = js_PullSubscribe(&rs->sub, rs->js, NULL, rs->tmp_consumer, NULL, &so, &jerr);
    if (s != NATS_OK) {
        st = nats_fail(err, s, jerr, "subscribe", rs->stream);
        goto out;
    }
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "replaying stream=%s from_seq=%" PRIu64 " to_seq=%" PRIu64 " messages=%" PRIu64
            " into=%s",
            rs->stream, first, last, pending_at_start, o->database);

    int64_t t0 = ibp_clock_mono_ms(), next_report = t0 + o->progress_interval_ms;
    int64_t backoff_ms = 250;
    uint64_t pos = 0;
    int idle = 0;
    while (pos < last) {
        if (stopping(o)) {
            st = ibp_err_set(err, IBP_E_DB, "replay: stopped at %s seq %" PRIu64, rs->stream, pos);
            goto out;
        }
        jsFetchRequest fr;
        jsFetchRequest_Init(&fr);
        fr.Batch = (int)o->batch_size;
        fr.MaxBytes = 2 * (int64_t)IBP_MESSAGE_MAX_DEFAULT;
        fr.Expires = 500 * NS_PER_MS;
        natsMsgList list = {0};
        s = natsSubscription_FetchRequest(&list, rs->sub, &fr);
        if (list.Count == 0) {
            natsMsgList_Destroy(&list);
            if (s != NATS_OK && s != NATS_TIMEOUT) {
                IBP_LOG(IBP_LOG_WARN, COMPONENT, "fetch failed, retrying stream=%s error=%s",
                        rs->stream, natsStatus_GetText(s));
                ibp_persist_sleep_ms(250, o->stop);
            }
            /* Nothing more comes when the rest of the range was deleted
             * (retention) meanwhile: the consumer says so. */
            if (++idle >= 4) {
                ci = NULL;
                if (js_GetConsumerInfo(&ci, rs->js, rs->stream, rs->tmp_consumer, NULL, &jerr) ==
                        NATS_OK &&
                    ci->NumPending == 0 && ci->NumAckPending == 0) {
                    jsConsumerInfo_Destroy(ci);
                    break;
                }
                jsConsumerInfo_Destroy(ci);
                idle = 0;
            }
            continue;
        }
        idle = 0;
        size_t n = (size_t)list.Count;
        ibp_persist_msg *msgs = calloc(n, sizeof *msgs);
        if (msgs == NULL) {
            natsMsgList_Destroy(&list);
            st = ibp_err_set(err, IBP_E_NOMEM, "replay: out of memory");
            goto out;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            jsMsgMetaData *meta = NULL;
            if (natsMsg_GetMetaData(&meta, list.Msgs[i]) != NATS_OK)
                continue;
            uint64_t seq = meta->Sequence.Stream;
            jsMsgMetaData_Destroy(meta);
            if (seq > last)
                continue; /* published after the replay started: the live persist's */
            msgs[m].seq = seq;
            msgs[m].subject = natsMsg_GetSubject(list.Msgs[i]);
            msgs[m].data = (const uint8_t *)natsMsg_GetData(list.Msgs[i]);
            msgs[m].len = (size_t)natsMsg_GetDataLength(list.Msgs[i]);
            m++;
        }
        ibp_persist_apply_result r;
        for (;;) {
            ibp_err e;
            ibp_err_clear(&e);
            st = rs->applier ? IBP_OK : rs_db_open(rs, &e);
            if (st == IBP_OK)
                st = ibp_persist_applier_apply(rs->applier, msgs, m, false, &r, &e);
            if (st == IBP_OK)
                break;
            IBP_LOG(IBP_LOG_WARN, COMPONENT, "database error, retrying in %" PRId64 " ms: %s",
                    backoff_ms, e.msg);
            rs_db_close(rs);
            if (ibp_persist_sleep_ms(backoff_ms, o->stop)) {
                free(msgs);
                natsMsgList_Destroy(&list);
                st = ibp_err_set(err, IBP_E_DB, "replay: stopped while the database failed: %s",
                                 e.msg);
                goto out;
            }
            backoff_ms = backoff_ms * 2 > 30000 ? 30000 : backoff_ms * 2;
        }
        backoff_ms = 250;
        natsMsg_Ack(list.Msgs[n - 1], NULL); /* AckAll: everything up to it */
        free(msgs);
        natsMsgList_Destroy(&list);
        rs->res->messages += m;
        rs->res->applied += r.applied;
        rs->res->dead_lettered += r.dead_lettered;
        rs->res->stale += r.stale;
        if (r.last_seq > pos)
            pos = r.last_seq;
        rs->res->last_seq = pos;
        int64_t now = ibp_clock_mono_ms();
        if (now >= next_report) {
            report(rs, first, last, pos, t0, false);
            next_report = now + o->progress_interval_ms;
        }
    }
    report(rs, first, last, pos, t0, true);
    IBP_LOG(IBP_LOG_INFO, COMPONENT,
            "replayed stream=%s messages=%" PRIu64 " applied=%" PRIu64 " dead_lettered=%" PRIu64
            " last_seq=%" PRIu64,
            rs->stream, rs->res->messages, rs->res->applied, rs->res->dead_lettered, pos);
out:
    natsSubscription_Destroy(rs->sub);
    rs->sub = NULL;
    js_DeleteConsumer(rs->js, rs->stream, rs->tmp_consumer, NULL, &jerr);
    return st;
}

ibp_status ibp_persist_replay(const ibp_persist_replay_opts *opts, ibp_persist_replay_result *out,
                              ibp_err *err)
{
    ibp_persist_replay_result res;
    memset(&res, 0, sizeof res);
    if (opts == NULL || opts->nc == NULL || opts->roster == NULL || opts->db == NULL ||
        opts->database == NULL)
        return ibp_err_set(err, IBP_E_INVAL, "replay: nc, roster, db and database are required");
    if (opts->from_seq != 0 && opts->from_time_ms != 0)
        return ibp_err_set(err, IBP_E_INVAL,
                           "replay: give a start sequence or a start time, "
                           "not both");
    ibp_persist_replay_opts o = *opts;
    if (o.batch_size == 0)
        o.batch_size = 1000;
    if (o.progress_interval_ms <= 0)
        o.progress_interval_ms = 1000;
    if (o.hits_stream == NULL)
        o.hits_stream = "HITS";
    if (o.events_stream == NULL)
        o.events_stream = "EVENTS";
    if (o.hits_consumer == NULL)
        o.hits_consumer = IBP_PERSIST_HITS_DURABLE_DEFAULT;
    if (o.events_consumer == NULL)
        o.events_consumer = IBP_PERSIST_EVENTS_DURABLE_DEFAULT;

    MYSQL *db = NULL;
    jsCtx *js = NULL;
    int version = 0;
    bool exists = false;
    ibp_status st = ensure_database(&o, &exists, err);
    if (st == IBP_OK)
        st = ibp_persist_db_connect(o.db, o.database, !exists, &db, err);
    if (st != IBP_OK)
        return st;
    if ((st = ibp_schema_migrate(db, o.sql_dir, &version, err)) != IBP_OK)
        goto out;
    if ((st = check_empty(db, o.database, err)) != IBP_OK)
        goto out;
    mysql_close(db);
    db = NULL;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    natsStatus s = natsConnection_JetStream(&js, o.nc, &jo);
    if (s != NATS_OK) {
        st = ibp_err_set(err, IBP_E_NATS, "replay: JetStream context: %s", natsStatus_GetText(s));
        goto out;
    }
    struct {
        ibp_persist_kind kind;
        const char *stream, *consumer;
        ibp_persist_replay_stream_result *res;
    } todo[2] = {{IBP_PERSIST_HITS, o.hits_stream, o.hits_consumer, &res.hits},
                 {IBP_PERSIST_EVENTS, o.events_stream, o.events_consumer, &res.events}};
    for (int i = 0; i < 2; i++) {
        if (*todo[i].stream == '\0')
            continue;
        replay_stream rs = {.o = &o,
                            .kind = todo[i].kind,
                            .stream = todo[i].stream,
                            .consumer_name = todo[i].consumer,
                            .js = js,
                            .res = todo[i].res};
        st = rs_db_open(&rs, err);
        if (st == IBP_OK)
            st = replay_one(&rs, err);
        rs_db_close(&rs);
        if (st != IBP_OK)
            goto out;
    }
    if (out)
        *out = res;
out:
    jsCtx_Destroy(js);
    if (db)
        mysql_close(db);
    return st;
}
