/* Helpers of the persist integration tests; see persist_testlib.h. */
#include "persist_testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ibp/bus.h"
#include "ibp/schema.h"
#include "ibp/subject.h"

#ifndef IBP_SOURCE_DIR
#error IBP_SOURCE_DIR must be defined (tests/integration/CMakeLists.txt)
#endif
#define SQL_DIR IBP_SOURCE_DIR "/deploy/sql"

long long pt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pt_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ibp_signer *make_signer(const pt_keys *k, const char *id, const ibp_key *key,
                               const char *file)
{
    char path[1200];
    ibp_err e;
    ibp_err_clear(&e);
    ibp_signer *s = NULL;
    snprintf(path, sizeof path, "%s/%s.seq", k->dir, file);
    if (ibp_signer_new(id, key, path, &s, &e) != IBP_OK)
        fail_msg("signer %s: %s", id, e.msg);
    return s;
}

void pt_keys_init(pt_keys *k)
{
    ibp_err e;
    ibp_err_clear(&e);
    memset(k, 0, sizeof *k);
    if (ibp_testenv_mkdtemp(k->dir, sizeof k->dir) != 0)
        fail_msg("mkdtemp");
    assert_int_equal(ibp_crypto_init(), IBP_OK);
    assert_int_equal(ibp_key_generate(&k->dns), IBP_OK);
    assert_int_equal(ibp_key_generate(&k->dns2), IBP_OK);
    assert_int_equal(ibp_key_generate(&k->cons), IBP_OK);
    assert_int_equal(ibp_key_generate(&k->mon), IBP_OK);
    assert_int_equal(ibp_key_generate(&k->evil), IBP_OK);
    assert_int_equal(ibp_roster_new(&k->roster), IBP_OK);
    if (ibp_roster_add(k->roster, PT_DNS, k->dns.pk, IBP_ROLE_DNS, &e) != IBP_OK ||
        ibp_roster_add(k->roster, PT_DNS2, k->dns2.pk, IBP_ROLE_DNS, &e) != IBP_OK ||
        ibp_roster_add(k->roster, PT_CONS, k->cons.pk, IBP_ROLE_CONSENSUS, &e) != IBP_OK ||
        ibp_roster_add(k->roster, PT_MON, k->mon.pk, IBP_ROLE_MONITOR, &e) != IBP_OK)
        fail_msg("roster: %s", e.msg);
    snprintf(k->roster_path, sizeof k->roster_path, "%s/roster.json", k->dir);
    if (ibp_roster_save(k->roster, k->roster_path, &e) != IBP_OK)
        fail_msg("roster save: %s", e.msg);
    k->s_dns = make_signer(k, PT_DNS, &k->dns, "dns1");
    k->s_dns2 = make_signer(k, PT_DNS2, &k->dns2, "dns2");
    k->s_cons = make_signer(k, PT_CONS, &k->cons, "cons1");
    k->s_mon = make_signer(k, PT_MON, &k->mon, "mon1");
    k->s_evil_cons = make_signer(k, PT_CONS, &k->evil, "evil-cons1");
    k->s_unknown = make_signer(k, "ghost", &k->evil, "ghost");
}

void pt_keys_free(pt_keys *k)
{
    ibp_signer_free(k->s_dns);
    ibp_signer_free(k->s_dns2);
    ibp_signer_free(k->s_cons);
    ibp_signer_free(k->s_mon);
    ibp_signer_free(k->s_evil_cons);
    ibp_signer_free(k->s_unknown);
    ibp_roster_free(k->roster);
    ibp_key_wipe(&k->dns);
    ibp_key_wipe(&k->dns2);
    ibp_key_wipe(&k->cons);
    ibp_key_wipe(&k->mon);
    ibp_key_wipe(&k->evil);
    if (k->dir[0])
        ibp_testenv_rmtree(k->dir);
    memset(k, 0, sizeof *k);
}

void pt_stream_create(jsCtx *js, const char *name, const char *subject)
{
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    const char *subjects[1] = {subject};
    jsStreamConfig_Init(&cfg);
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_LimitsPolicy;
    cfg.Duplicates = (int64_t)120 * 1000 * 1000 * 1000;
    cfg.MaxMsgSize = (int32_t)IBP_MESSAGE_MAX_DEFAULT;
    natsStatus s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK)
        fail_msg("js_AddStream %s on %s: %s (jerr %d)", name, subject, natsStatus_GetText(s),
                 (int)jerr);
    jsStreamInfo_Destroy(si);
}

void pt_stream_delete(jsCtx *js, const char *name)
{
    jsErrCode jerr = 0;
    js_DeleteStream(js, name, NULL, &jerr);
}

uint64_t pt_stream_last_seq(jsCtx *js, const char *name)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
    if (s != NATS_OK)
        fail_msg("stream info %s: %s (jerr %d)", name, natsStatus_GetText(s), (int)jerr);
    uint64_t v = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return v;
}

uint64_t pt_publish(jsCtx *js, const char *subject, ibp_payload_type type, const char *signer,
                    uint64_t seq, const uint8_t *data, size_t len, const char *msg_id)
{
    uint64_t sseq = 0;
    bool dup = false;
    ibp_err e;
    ibp_err_clear(&e);
    ibp_status st = ibp_bus_publish_envelope(js, subject, type, signer, seq, data, len, msg_id, 0,
                                             &sseq, &dup, &e);
    if (st != IBP_OK)
        fail_msg("publish to %s: %s", subject, e.msg);
    return sseq;
}

uint64_t pt_publish_raw(jsCtx *js, const char *subject, const void *data, size_t len)
{
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    assert_int_equal(natsMsg_Create(&m, subject, NULL, data, (int)len), NATS_OK);
    natsMsgHeader_Set(m, "Ibp-Type", "HitBatch");
    natsStatus s = js_PublishMsg(&pa, js, m, NULL, &jerr);
    natsMsg_Destroy(m);
    if (s != NATS_OK)
        fail_msg("publish raw to %s: %s", subject, natsStatus_GetText(s));
    uint64_t seq = pa->Sequence;
    jsPubAck_Destroy(pa);
    return seq;
}

void pt_seal_hits(ibp_signer *signer, const char *node, uint64_t flush_seq, const pt_row *rows,
                  size_t n, uint8_t **env, size_t *len, uint64_t *seq)
{
    Ibp__V1__HitBatch hb;
    ibp__v1__hit_batch__init(&hb);
    Ibp__V1__HitRow *rs = calloc(n ? n : 1, sizeof *rs);
    Ibp__V1__HitRow **rp = calloc(n ? n : 1, sizeof *rp);
    assert_non_null(rs);
    assert_non_null(rp);
    for (size_t i = 0; i < n; i++) {
        ibp__v1__hit_row__init(&rs[i]);
        rs[i].date = (char *)rows[i].date;
        rs[i].domain = (char *)rows[i].domain;
        rs[i].member = (char *)rows[i].member;
        rs[i].country_code = (char *)rows[i].cc;
        rs[i].asn = (char *)(rows[i].asn ? rows[i].asn : "");
        rs[i].network_name = (char *)(rows[i].net ? rows[i].net : "");
        rs[i].country_name = (char *)(rows[i].country ? rows[i].country : "");
        rs[i].ipv6 = rows[i].ipv6;
        rs[i].hits = rows[i].hits;
        rp[i] = &rs[i];
    }
    hb.node = (char *)node;
    hb.flush_seq = flush_seq;
    hb.n_rows = n;
    hb.rows = rp;
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_signer_seal(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, &hb.base,
                        1700000000000LL, env, len, seq, &e) != IBP_OK)
        fail_msg("seal HitBatch: %s", e.msg);
    free(rs);
    free(rp);
}

uint64_t pt_publish_hits(jsCtx *js, ibp_signer *signer, const char *subject, const char *node,
                         uint64_t flush_seq, const pt_row *rows, size_t n, const char *msg_id)
{
    uint8_t *env = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    pt_seal_hits(signer, node, flush_seq, rows, n, &env, &len, &seq);
    char id[128];
    if (msg_id == NULL) {
        snprintf(id, sizeof id, "%s-%" PRIu64, node, flush_seq);
        msg_id = id;
    }
    uint64_t sseq = pt_publish(js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH,
                               ibp_signer_id(signer), seq, env, len, msg_id);
    free(env);
    return sseq;
}

uint64_t pt_publish_event(jsCtx *js, ibp_signer *signer, const char *subject, const pt_event *ev,
                          const char *msg_id)
{
    Ibp__V1__Event e;
    Ibp__V1__ResultKey key;
    Ibp__V1__Voter voters[16], *vp[16];
    char names[16][16];
    ibp__v1__event__init(&e);
    ibp__v1__result_key__init(&key);
    key.check_type = ev->check_type;
    key.check_name = (char *)(ev->check_name ? ev->check_name : "");
    key.member = (char *)(ev->member ? ev->member : "");
    key.domain = (char *)(ev->domain ? ev->domain : "");
    key.endpoint = (char *)(ev->endpoint ? ev->endpoint : "");
    key.ipv6 = ev->ipv6;
    e.id = (char *)ev->id;
    e.kind = ev->kind ? ev->kind : IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
    e.key = &key;
    e.status = ev->up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
    e.error = (char *)(ev->error ? ev->error : "");
    e.data_json = (char *)(ev->data_json ? ev->data_json : "");
    e.time_ms = ev->time_ms;
    e.epoch = ev->epoch;
    size_t nv = ev->nvoters < 16 ? ev->nvoters : 16;
    for (size_t i = 0; i < nv; i++) {
        ibp__v1__voter__init(&voters[i]);
        snprintf(names[i], sizeof names[i], "mon%zu", i + 1);
        voters[i].node = names[i];
        voters[i].local_seq = 100 + i;
        voters[i].batch_seq = 10 + i;
        voters[i].status = e.status;
        vp[i] = &voters[i];
    }
    e.n_voters = nv;
    e.voters = vp;
    uint8_t *env = NULL;
    size_t len = 0;
    uint64_t seq = 0;
    ibp_err err;
    ibp_err_clear(&err);
    if (ibp_signer_seal(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, &e.base, ev->time_ms,
                        &env, &len, &seq, &err) != IBP_OK)
        fail_msg("seal Event: %s", err.msg);
    uint64_t sseq = pt_publish(js, subject, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT,
                               ibp_signer_id(signer), seq, env, len, msg_id ? msg_id : ev->id);
    free(env);
    return sseq;
}

MYSQL *pt_db_create(const ibp_testenv *env, const char *name)
{
    MYSQL *root = ibp_testenv_mysql_connect(env, NULL);
    if (root == NULL)
        fail_msg("connect MariaDB");
    if (ibp_testenv_mysql_exec(root,
                               "CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE "
                               "utf8mb4_bin",
                               name) != 0)
        fail_msg("create database %s", name);
    mysql_close(root);
    MYSQL *db = ibp_testenv_mysql_connect(env, name);
    if (db == NULL)
        fail_msg("connect %s", name);
    ibp_err e;
    ibp_err_clear(&e);
    int v = 0;
    if (ibp_schema_migrate(db, SQL_DIR, &v, &e) != IBP_OK)
        fail_msg("migrate %s: %s", name, e.msg);
    /* Autocommit so every test query sees the latest commits. */
    mysql_autocommit(db, 1);
    ibp_testenv_mysql_exec(db, "SET time_zone = '+00:00'");
    return db;
}

void pt_db_drop(const ibp_testenv *env, const char *name)
{
    MYSQL *root = ibp_testenv_mysql_connect(env, NULL);
    if (root) {
        ibp_testenv_mysql_exec(root, "DROP DATABASE IF EXISTS `%s`", name);
        mysql_close(root);
    }
}

long long pt_db_int(MYSQL *db, const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    if (mysql_query(db, sql) != 0)
        fail_msg("SQL %s: %s", sql, mysql_error(db));
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL)
        fail_msg("SQL %s: no result", sql);
    MYSQL_ROW row = mysql_fetch_row(res);
    long long v = row && row[0] ? strtoll(row[0], NULL, 10) : 0;
    mysql_free_result(res);
    return v;
}

char *pt_db_dump(MYSQL *db, const char *sql)
{
    if (mysql_query(db, sql) != 0)
        fail_msg("SQL %s: %s", sql, mysql_error(db));
    MYSQL_RES *res = mysql_store_result(db);
    if (res == NULL)
        fail_msg("SQL %s: no result", sql);
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = '\0';
    unsigned nf = mysql_num_fields(res);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(res)) != NULL) {
        unsigned long *lens = mysql_fetch_lengths(res);
        for (unsigned i = 0; i < nf; i++) {
            size_t need = len + (row[i] ? lens[i] : 4) + 4;
            if (need > cap) {
                while (cap < need)
                    cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            if (row[i]) {
                memcpy(out + len, row[i], lens[i]);
                len += lens[i];
            } else {
                memcpy(out + len, "NULL", 4);
                len += 4;
            }
            out[len++] = i + 1 < nf ? '\t' : '\n';
            out[len] = '\0';
        }
    }
    mysql_free_result(res);
    return out;
}

void pt_db_opts(const ibp_testenv *env, const char *database, ibp_persist_db_opts *o)
{
    ibp_persist_db_opts_init(o);
    o->host = env->mysql_host;
    o->port = env->mysql_port;
    o->user = env->mysql_user;
    o->password = env->mysql_password;
    o->database = database;
}

void pt_wait_applied(ibp_persist *p, ibp_persist_kind kind, uint64_t last_seq, int timeout_ms)
{
    long long end = pt_now_ms() + timeout_ms;
    ibp_persist_stats s;
    for (;;) {
        ibp_persist_stats_get(p, &s);
        const ibp_persist_stream_stats *ss = kind == IBP_PERSIST_HITS ? &s.hits : &s.events;
        if (ss->last_seq >= last_seq)
            return;
        if (pt_now_ms() > end)
            fail_msg("persist %s did not reach seq %" PRIu64 " in %d ms: last_seq %" PRIu64
                     " applied %" PRIu64 " skipped %" PRIu64 " db_errors %" PRIu64
                     " nats_errors %" PRIu64,
                     ibp_persist_kind_name(kind), last_seq, timeout_ms, ss->last_seq, ss->applied,
                     ss->skipped, ss->db_errors, ss->nats_errors);
        pt_sleep_ms(20);
    }
}

void pt_wait_offset(MYSQL *db, const char *stream, uint64_t seq, int timeout_ms)
{
    long long end = pt_now_ms() + timeout_ms;
    for (;;) {
        long long v =
            pt_db_int(db, "SELECT MAX(last_seq) FROM persist_offsets WHERE stream = '%s'", stream);
        if ((uint64_t)v >= seq)
            return;
        if (pt_now_ms() > end)
            fail_msg("persist_offsets of %s at %lld, not %" PRIu64 " after %d ms", stream, v, seq,
                     timeout_ms);
        pt_sleep_ms(50);
    }
}

const char *pt_write_config(const pt_keys *k, const ibp_testenv *env, ibp_testenv_nats_role role,
                            const char *database, const char *extra_json)
{
    static char path[1200];
    char pw[1200], nats[2048];
    assert_int_equal(ibp_testenv_nats_json(env, role, nats, sizeof nats), 0);
    snprintf(pw, sizeof pw, "%s/mysql.password", k->dir);
    int fd = open(pw, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, env->mysql_password, strlen(env->mysql_password)),
                     (ssize_t)strlen(env->mysql_password));
    close(fd);
    snprintf(path, sizeof path, "%s/persist-%s.json", k->dir, database);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"persist1\", \"roster_file\": \"%s\", \"work_dir\": \"%s\"},\n"
            " %s,\n"
            " \"mysql\": {\"host\": \"%s\", \"port\": %u, \"user\": \"%s\",\n"
            "           \"password_file\": \"%s\", \"database\": \"%s\"}%s%s}\n",
            k->roster_path, k->dir, nats, env->mysql_host, env->mysql_port, env->mysql_user, pw,
            database, extra_json ? ",\n " : "", extra_json ? extra_json : "");
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Fills buf with cap bytes: head, then filler, then tail ending at the cap; NUL-terminated. */
static void fill_to_cap(char *buf, size_t cap, const char *head, char filler, const char *tail)
{
    size_t h = strlen(head), t = strlen(tail);
    assert_true(h + t <= cap);
    memcpy(buf, head, h);
    memset(buf + h, filler, cap - h - t);
    memcpy(buf + cap - t, tail, t);
    buf[cap] = '\0';
}

void pt_caps_fill(pt_caps *c, char tag)
{
    char head[16];
    /* "é" (2 bytes), "€" (3), "😀" (4), "名" (3): every UTF-8 length. */
    snprintf(head, sizeof head, "%c-\xc3\xa9\xe2\x82\xac-", tag);
    fill_to_cap(c->check_name, IBP_NAME_MAX, head, 'c', "\xe2\x82\xac");
    fill_to_cap(c->member, IBP_NAME_MAX, head, 'm', "\xf0\x9f\x98\x80");
    /* Four labels: 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 bytes. */
    memset(c->domain, 'd', IBP_DOMAIN_MAX);
    c->domain[0] = (char)(tag | 0x20); /* lower case */
    for (size_t i = 63; i < IBP_DOMAIN_MAX; i += 64)
        c->domain[i] = '.';
    c->domain[IBP_DOMAIN_MAX] = '\0';
    char ep_head[IBP_DOMAIN_MAX + 16];
    snprintf(ep_head, sizeof ep_head, "wss://%s/", c->domain);
    fill_to_cap(c->endpoint, IBP_URL_MAX, ep_head, 'p', "/end");
    fill_to_cap(c->error, IBP_ERROR_MAX, "timeout \xe5\x90\x8d ", 'e', " \xc3\xa9");
}
