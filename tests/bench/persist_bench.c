/*
 * persist throughput (DESIGN.md §8), on private servers (servers.sh):
 *
 *   BENCH raw_bulk_rows_per_s      the rows written straight into MariaDB with
 *                                  array binding (STMT_ATTR_ARRAY_SIZE, 1000
 *                                  rows per execute) as INSERT ... ON
 *                                  DUPLICATE KEY UPDATE, committed every
 *                                  ROWS_PER_TX rows: the baseline
 *   BENCH persist_rows_per_s       the same rows as signed HitBatches already
 *                                  in HITS, through persist (fetch, verify,
 *                                  decode, sum per key, bulk upsert, offsets,
 *                                  commit, ack) into another database of the
 *                                  same server
 *   RATIO persist_vs_raw_bulk      target >= 0.6
 * each for new keys (inserts) and again for the same keys (updates), best of
 * IBP_BENCH_ROUNDS rounds (default 2; the machine is shared, the figures
 * vary), raw and persist alternating which goes first, and
 *   BENCH events_per_s             Events through EVENTS (open and close of
 *                                  outages), one transaction per fetch.
 *
 * MariaDB keeps innodb_flush_log_at_trx_commit=1 (its default): every commit
 * is flushed. Environment: IBP_BENCH_ROWS (default 200000), IBP_BENCH_EVENTS
 * (default 10000); the harness variables of tests/harness/testenv.h.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ibp/bus.h"
#include "ibp/envelope.h"
#include "ibp/key.h"
#include "ibp/log.h"
#include "ibp/persist.h"
#include "ibp/persist_db.h"
#include "ibp/roster.h"
#include "ibp/schema.h"
#include "testenv.h"

#ifndef IBP_SOURCE_DIR
#define IBP_SOURCE_DIR "."
#endif

#define ROWS_PER_MSG 500
#define MSGS_PER_TX 10
#define ROWS_PER_TX (ROWS_PER_MSG * MSGS_PER_TX)
#define ARRAY_ROWS 1000

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "persist_bench: " __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Row i of the data set: every i a key of its own. */
typedef struct row {
    char date[24], domain[48], member[32], asn[32], net[40], cc[8], country[24];
    bool ipv6;
    uint64_t hits;
} row;

static const char *const CC[][2] = {{"DE", "Germany"}, {"FR", "France"}, {"US", "United States"},
                                    {"JP", "Japan"},   {"BR", "Brazil"}, {"??", "Unknown"}};

static row *make_rows(size_t n)
{
    row *r = calloc(n, sizeof *r);
    if (r == NULL)
        DIE("out of memory");
    for (size_t i = 0; i < n; i++) {
        snprintf(r[i].date, sizeof r[i].date, "2026-08-%02zu", 1 + i % 28);
        snprintf(r[i].domain, sizeof r[i].domain, "d%zu.example.net", i % 1500);
        snprintf(r[i].member, sizeof r[i].member, "member%zu", i % 37);
        snprintf(r[i].asn, sizeof r[i].asn, "AS%zu", 1000 + i);
        snprintf(r[i].net, sizeof r[i].net, "Network %zu", i % 911);
        snprintf(r[i].cc, sizeof r[i].cc, "%s", CC[i % 6][0]);
        snprintf(r[i].country, sizeof r[i].country, "%s", CC[i % 6][1]);
        r[i].ipv6 = i % 3 == 0;
        r[i].hits = 1 + i % 97;
    }
    return r;
}

static MYSQL *db_create(const ibp_testenv *env, const ibp_persist_db_opts *o, const char *name)
{
    MYSQL *db = NULL;
    ibp_err e;
    ibp_err_clear(&e);
    int v = 0;
    (void)env;
    if (ibp_persist_db_connect(o, name, true, &db, &e) != IBP_OK ||
        ibp_schema_migrate(db, IBP_SOURCE_DIR "/deploy/sql", &v, &e) != IBP_OK)
        DIE("database %s: %s", name, e.msg);
    return db;
}

static int row_cmp(const void *pa, const void *pb)
{
    const row *a = *(const row *const *)pa, *b = *(const row *const *)pb;
    int r;
    if ((r = strcmp(a->date, b->date)) || (r = strcmp(a->domain, b->domain)) ||
        (r = strcmp(a->member, b->member)) || (r = strcmp(a->asn, b->asn)) ||
        (r = strcmp(a->net, b->net)) || (r = strcmp(a->cc, b->cc)) ||
        (r = strcmp(a->country, b->country)))
        return r;
    return (int)a->ipv6 - (int)b->ipv6;
}

/*
 * The baseline: array binding straight into requests, in the same
 * transactions as persist's (ROWS_PER_TX rows) and, like persist, each
 * transaction's rows in key order (so the comparison is of the work around
 * the database, not of the order rows reach the B-tree).
 */
/* requests.row_key as deploy/sql/003_caps.sql defines it (persist/hits.c computes the same). */
static void row_key(char *const vals[8], const unsigned long len[8], bool ipv6,
                    unsigned char out[crypto_hash_sha256_BYTES])
{
    crypto_hash_sha256_state sh;
    crypto_hash_sha256_init(&sh);
    for (int c = 1; c < 8; c++) { /* every key column but the date */
        size_t k = len[c];
        while (k > 0 && vals[c][k - 1] == ' ')
            k--;
        char prefix[24];
        int plen = snprintf(prefix, sizeof prefix, "%zu:", k);
        crypto_hash_sha256_update(&sh, (const unsigned char *)prefix, (unsigned long long)plen);
        crypto_hash_sha256_update(&sh, (const unsigned char *)vals[c], k);
    }
    crypto_hash_sha256_update(&sh, (const unsigned char *)(ipv6 ? ":1" : ":0"), 2);
    crypto_hash_sha256_final(&sh, out);
}

static double raw_bulk(MYSQL *db, const row *all, size_t n)
{
    static const char sql[] =
        "INSERT INTO requests (date, node_id, domain_name, member_name, network_asn, "
        "network_name, country_code, country_name, is_ipv6, row_key, hits) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE hits = hits + VALUES(hits)";
    MYSQL_STMT *st = mysql_stmt_init(db);
    if (st == NULL || mysql_stmt_prepare(st, sql, (unsigned long)strlen(sql)) != 0)
        DIE("prepare: %s", mysql_error(db));
    char **ptr[8];
    unsigned long *len[8];
    for (int c = 0; c < 8; c++) {
        ptr[c] = calloc(ARRAY_ROWS, sizeof *ptr[c]);
        len[c] = calloc(ARRAY_ROWS, sizeof *len[c]);
    }
    char *ind = calloc(ARRAY_ROWS, 1);
    signed char *v6 = calloc(ARRAY_ROWS, 1);
    unsigned long long *hits = calloc(ARRAY_ROWS, sizeof *hits);
    unsigned char(*keys)[crypto_hash_sha256_BYTES] = calloc(ARRAY_ROWS, sizeof *keys);
    char **key_ptr = calloc(ARRAY_ROWS, sizeof *key_ptr);
    unsigned long *key_len = calloc(ARRAY_ROWS, sizeof *key_len);
    static char node[] = "dns1";
    const row **rows = calloc(n, sizeof *rows);
    for (size_t i = 0; i < n; i++)
        rows[i] = &all[i];
    double t0 = now_s();
    for (size_t off = 0; off < n; off += ROWS_PER_TX) /* part of the measured work */
        qsort(rows + off, n - off < ROWS_PER_TX ? n - off : ROWS_PER_TX, sizeof *rows, row_cmp);
    size_t in_tx = 0;
    for (size_t off = 0; off < n; off += ARRAY_ROWS) {
        size_t k = n - off < ARRAY_ROWS ? n - off : ARRAY_ROWS;
        for (size_t i = 0; i < k; i++) {
            const row *r = rows[off + i];
            char *vals[8] = {
                (char *)r->date, node,           (char *)r->domain, (char *)r->member,
                (char *)r->asn,  (char *)r->net, (char *)r->cc,     (char *)r->country};
            for (int c = 0; c < 8; c++) {
                ptr[c][i] = vals[c];
                len[c][i] = (unsigned long)strlen(vals[c]);
            }
            v6[i] = r->ipv6;
            unsigned long l[8];
            for (int c = 0; c < 8; c++)
                l[c] = len[c][i];
            row_key(vals, l, r->ipv6, keys[i]); /* part of the measured work, as in persist */
            key_ptr[i] = (char *)keys[i];
            key_len[i] = crypto_hash_sha256_BYTES;
            hits[i] = r->hits;
        }
        MYSQL_BIND b[11];
        memset(b, 0, sizeof b);
        for (int c = 0; c < 8; c++) {
            b[c].buffer_type = MYSQL_TYPE_STRING;
            b[c].buffer = ptr[c];
            b[c].length = len[c];
            b[c].u.indicator = ind;
        }
        b[8].buffer_type = MYSQL_TYPE_TINY;
        b[8].buffer = v6;
        b[9].buffer_type = MYSQL_TYPE_BLOB;
        b[9].buffer = key_ptr;
        b[9].length = key_len;
        b[9].u.indicator = ind;
        b[10].buffer_type = MYSQL_TYPE_LONGLONG;
        b[10].is_unsigned = 1;
        b[10].buffer = hits;
        unsigned int as = (unsigned int)k;
        if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &as) != 0 ||
            mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0)
            DIE("raw bulk: %s", mysql_stmt_error(st));
        in_tx += k;
        if (in_tx >= ROWS_PER_TX || off + k == n) {
            if (mysql_commit(db) != 0)
                DIE("commit: %s", mysql_error(db));
            in_tx = 0;
        }
    }
    double dt = now_s() - t0;
    free(rows);
    mysql_stmt_close(st);
    for (int c = 0; c < 8; c++) {
        free(ptr[c]);
        free(len[c]);
    }
    free(ind);
    free(v6);
    free(hits);
    free(keys);
    free(key_ptr);
    free(key_len);
    return dt;
}

typedef struct ctx {
    ibp_testenv_private srv;
    ibp_key dns, cons;
    ibp_roster *roster;
    ibp_signer *s_dns, *s_cons;
    char dir[1024];
    natsConnection *nc;
    jsCtx *js;
    ibp_persist_db_opts dbo;
    uint64_t flush_seq;
} ctx;

static uint64_t publish_rows(ctx *c, const row *rows, size_t n)
{
    Ibp__V1__HitRow *rs = calloc(ROWS_PER_MSG, sizeof *rs);
    Ibp__V1__HitRow **rp = calloc(ROWS_PER_MSG, sizeof *rp);
    uint64_t last = 0;
    ibp_err e;
    ibp_err_clear(&e);
    for (size_t off = 0; off < n; off += ROWS_PER_MSG) {
        size_t k = n - off < ROWS_PER_MSG ? n - off : ROWS_PER_MSG;
        for (size_t i = 0; i < k; i++) {
            const row *r = &rows[off + i];
            ibp__v1__hit_row__init(&rs[i]);
            rs[i].date = (char *)r->date;
            rs[i].domain = (char *)r->domain;
            rs[i].member = (char *)r->member;
            rs[i].asn = (char *)r->asn;
            rs[i].network_name = (char *)r->net;
            rs[i].country_code = (char *)r->cc;
            rs[i].country_name = (char *)r->country;
            rs[i].ipv6 = r->ipv6;
            rs[i].hits = r->hits;
            rp[i] = &rs[i];
        }
        Ibp__V1__HitBatch hb;
        ibp__v1__hit_batch__init(&hb);
        hb.node = "dns1";
        hb.flush_seq = ++c->flush_seq;
        hb.n_rows = k;
        hb.rows = rp;
        uint8_t *env = NULL;
        size_t len = 0;
        uint64_t seq = 0;
        char id[64];
        snprintf(id, sizeof id, "dns1-%" PRIu64, hb.flush_seq);
        if (ibp_signer_seal(c->s_dns, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, &hb.base, 0,
                            &env, &len, &seq, &e) != IBP_OK ||
            ibp_bus_publish_envelope(c->js, "ibp.hits.dns1",
                                     IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HIT_BATCH, "dns1", seq,
                                     env, len, id, 0, &last, NULL, &e) != IBP_OK)
            DIE("publish: %s", e.msg);
        free(env);
    }
    free(rs);
    free(rp);
    return last;
}

/* Runs persist on one stream until it committed up to last; returns seconds. */
static double run_persist(ctx *c, const char *db, const char *durable, ibp_persist_kind kind,
                          uint64_t last)
{
    ibp_persist_db_opts o = c->dbo;
    o.database = db;
    ibp_persist_opts po;
    ibp_persist_opts_init(&po);
    po.nc = c->nc;
    po.db = &o;
    po.roster = c->roster;
    po.hits_durable = durable;
    po.events_durable = durable;
    if (kind == IBP_PERSIST_HITS) {
        po.events_stream = "";
        po.batch_size = MSGS_PER_TX;
    } else {
        po.hits_stream = "";
        po.batch_size = 1000;
    }
    po.fetch_wait_ms = 20;
    ibp_persist *p = NULL;
    ibp_err e;
    ibp_err_clear(&e);
    double t0 = now_s();
    if (ibp_persist_start(&po, &p, &e) != IBP_OK)
        DIE("persist: %s", e.msg);
    ibp_persist_stats s;
    for (;;) {
        ibp_persist_stats_get(p, &s);
        const ibp_persist_stream_stats *ss = kind == IBP_PERSIST_HITS ? &s.hits : &s.events;
        if (ss->last_seq >= last)
            break;
        if (now_s() - t0 > 600)
            DIE("persist did not catch up: at %" PRIu64 " of %" PRIu64, ss->last_seq, last);
        sleep_ms(2);
    }
    double dt = now_s() - t0;
    ibp_persist_stop(p);
    return dt;
}

static uint64_t publish_events(ctx *c, size_t n)
{
    uint64_t last = 0;
    ibp_err e;
    ibp_err_clear(&e);
    const int64_t t0 = INT64_C(1767225600000);
    for (size_t i = 0; i < n; i++) {
        size_t key = i / 2;
        bool up = i % 2 == 1;
        char id[48], member[32], domain[48];
        snprintf(id, sizeof id, "%zu-%s", key, up ? "up" : "down");
        snprintf(member, sizeof member, "member%zu", key % 97);
        snprintf(domain, sizeof domain, "d%zu.example.net", key);
        Ibp__V1__ResultKey k;
        ibp__v1__result_key__init(&k);
        k.check_type = IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN;
        k.check_name = "dns";
        k.member = member;
        k.domain = domain;
        Ibp__V1__Voter v[3], *vp[3];
        for (int j = 0; j < 3; j++) {
            ibp__v1__voter__init(&v[j]);
            v[j].node = j == 0 ? "mon1" : j == 1 ? "mon2" : "mon3";
            v[j].local_seq = i + 1;
            v[j].batch_seq = i;
            v[j].status = up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
            vp[j] = &v[j];
        }
        Ibp__V1__Event ev;
        ibp__v1__event__init(&ev);
        ev.id = id;
        ev.kind = IBP__V1__EVENT_KIND__EVENT_KIND_STATUS;
        ev.key = &k;
        ev.status = v[0].status;
        ev.error = up ? "" : "timeout";
        ev.data_json = "{\"rtt_ms\":12}";
        ev.time_ms = t0 + (int64_t)key * 1000 + (up ? 120000 : 0);
        ev.epoch = i + 1;
        ev.n_voters = 3;
        ev.voters = vp;
        uint8_t *env = NULL;
        size_t len = 0;
        uint64_t seq = 0;
        if (ibp_signer_seal(c->s_cons, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, &ev.base, 0, &env,
                            &len, &seq, &e) != IBP_OK ||
            ibp_bus_publish_envelope(c->js, "ibp.events.m",
                                     IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_EVENT, "cons1", seq, env,
                                     len, id, 0, &last, NULL, &e) != IBP_OK)
            DIE("publish event: %s", e.msg);
        free(env);
    }
    return last;
}

static long long count(MYSQL *db, const char *sql)
{
    if (mysql_query(db, sql) != 0)
        DIE("%s: %s", sql, mysql_error(db));
    MYSQL_RES *res = mysql_store_result(db);
    MYSQL_ROW r = res ? mysql_fetch_row(res) : NULL;
    long long v = r && r[0] ? strtoll(r[0], NULL, 10) : -1;
    mysql_free_result(res);
    mysql_commit(db);
    return v;
}

int main(void)
{
    size_t nrows = getenv("IBP_BENCH_ROWS") ? strtoul(getenv("IBP_BENCH_ROWS"), NULL, 10) : 200000;
    size_t nevents =
        getenv("IBP_BENCH_EVENTS") ? strtoul(getenv("IBP_BENCH_EVENTS"), NULL, 10) : 10000;
    int rounds = getenv("IBP_BENCH_ROUNDS") ? atoi(getenv("IBP_BENCH_ROUNDS")) : 2;
    if (rounds < 1)
        rounds = 1;
    ctx c;
    memset(&c, 0, sizeof c);
    ibp_log_set_level(IBP_LOG_WARN);
    /* A buffer pool that holds the data set and a redo log that does not force
     * checkpoints every few thousand rows, as a production server's would
     * (the test servers' defaults are sized for fast starts). */
    setenv("IBP_TEST_MYSQL_ARGS", "--innodb-buffer-pool-size=256M --innodb-log-file-size=256M", 0);
    if (ibp_testenv_private_start(&c.srv) != 0) {
        ibp_testenv_private_stop(&c.srv);
        DIE("cannot start the servers");
    }
    ibp_err e;
    ibp_err_clear(&e);
    if (ibp_crypto_init() != IBP_OK || ibp_key_generate(&c.dns) != IBP_OK ||
        ibp_key_generate(&c.cons) != IBP_OK || ibp_roster_new(&c.roster) != IBP_OK ||
        ibp_roster_add(c.roster, "dns1", c.dns.pk, IBP_ROLE_DNS, &e) != IBP_OK ||
        ibp_roster_add(c.roster, "cons1", c.cons.pk, IBP_ROLE_CONSENSUS, &e) != IBP_OK)
        DIE("keys: %s", e.msg);
    if (ibp_testenv_mkdtemp(c.dir, sizeof c.dir) != 0)
        DIE("mkdtemp");
    char path[1200];
    snprintf(path, sizeof path, "%s/dns1.seq", c.dir);
    if (ibp_signer_new("dns1", &c.dns, path, &c.s_dns, &e) != IBP_OK)
        DIE("signer: %s", e.msg);
    snprintf(path, sizeof path, "%s/cons1.seq", c.dir);
    if (ibp_signer_new("cons1", &c.cons, path, &c.s_cons, &e) != IBP_OK)
        DIE("signer: %s", e.msg);
    if (ibp_bus_connect_url(c.srv.env.nats_auth_url, "persist-bench", &c.nc, &e) != IBP_OK)
        DIE("nats: %s", e.msg);
    natsConnection_JetStream(&c.js, c.nc, NULL);
    if (ibp_bus_ensure_streams(c.js, NULL, &e) != IBP_OK)
        DIE("streams: %s", e.msg);
    ibp_persist_db_opts_init(&c.dbo);
    c.dbo.host = c.srv.env.mysql_host;
    c.dbo.port = c.srv.env.mysql_port;
    c.dbo.user = c.srv.env.mysql_user;
    c.dbo.password = c.srv.env.mysql_password;
    MYSQL *edb = db_create(&c.srv.env, &c.dbo, "bench_events");
    row *rows = make_rows(nrows);
    printf("persist_bench: %zu rows in HitBatches of %d rows, %d messages (%d rows) per "
           "transaction, best of %d rounds (raw and persist alternate who goes first); MariaDB "
           "%s, innodb_flush_log_at_trx_commit=%lld, buffer pool %lld MiB, redo log %lld MiB\n",
           nrows, ROWS_PER_MSG, MSGS_PER_TX, ROWS_PER_TX, rounds, mysql_get_server_info(edb),
           count(edb, "SELECT @@innodb_flush_log_at_trx_commit"),
           count(edb, "SELECT @@innodb_buffer_pool_size DIV 1048576"),
           count(edb, "SELECT @@innodb_log_file_size DIV 1048576"));

    /* best[pass][0] raw, [1] persist, in rows/s */
    double best[2][2] = {{0, 0}, {0, 0}};
    const char *phase[2] = {"new", "updated"};
    for (int round = 0; round < rounds; round++) {
        char rawdb[32], pdb_name[32], durable[32];
        snprintf(rawdb, sizeof rawdb, "bench_raw_%d", round);
        snprintf(pdb_name, sizeof pdb_name, "bench_persist_%d", round);
        snprintf(durable, sizeof durable, "bench-%d", round);
        MYSQL *raw = db_create(&c.srv.env, &c.dbo, rawdb);
        MYSQL *pdb = db_create(&c.srv.env, &c.dbo, pdb_name);
        jsErrCode jerr = 0;
        js_PurgeStream(c.js, "HITS", NULL, &jerr); /* this round's messages only */
        for (int pass = 0; pass < 2; pass++) {
            double t_pub0 = now_s();
            uint64_t last = publish_rows(&c, rows, nrows);
            double t_pub = now_s() - t_pub0;
            double t_raw, t_p;
            if ((round + pass) % 2 == 0) {
                t_raw = raw_bulk(raw, rows, nrows);
                t_p = run_persist(&c, pdb_name, durable, IBP_PERSIST_HITS, last);
            } else {
                t_p = run_persist(&c, pdb_name, durable, IBP_PERSIST_HITS, last);
                t_raw = raw_bulk(raw, rows, nrows);
            }
            double raw_rps = (double)nrows / t_raw, p_rps = (double)nrows / t_p;
            printf("  round %d, %-7s keys: raw %6.0f rows/s (%.2f s), persist %6.0f rows/s "
                   "(%.2f s; published in %.2f s, not counted), ratio %.2f\n",
                   round + 1, phase[pass], raw_rps, t_raw, p_rps, t_p, t_pub, p_rps / raw_rps);
            fflush(stdout);
            if (raw_rps > best[pass][0])
                best[pass][0] = raw_rps;
            if (p_rps > best[pass][1])
                best[pass][1] = p_rps;
        }
        long long rs = count(raw, "SELECT CAST(SUM(hits) AS SIGNED) FROM requests");
        long long ps = count(pdb, "SELECT CAST(SUM(hits) AS SIGNED) FROM requests");
        if (rs != ps)
            DIE("the two databases disagree: raw SUM(hits) %lld, persist %lld", rs, ps);
        mysql_close(raw);
        mysql_close(pdb);
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *sfx = pass == 0 ? "" : "_update";
        printf("BENCH raw_bulk%s_rows_per_s %.0f rows/s (%s keys)\n", sfx, best[pass][0],
               phase[pass]);
        printf("BENCH persist%s_rows_per_s %.0f rows/s (%s keys)\n", sfx, best[pass][1],
               phase[pass]);
        printf("RATIO persist_vs_raw_bulk%s %.2f (target >= 0.6)\n", sfx,
               best[pass][1] / best[pass][0]);
    }
    fflush(stdout);

    double t_epub0 = now_s();
    uint64_t elast = publish_events(&c, nevents);
    double t_epub = now_s() - t_epub0;
    double t_e = run_persist(&c, "bench_events", "bench-events", IBP_PERSIST_EVENTS, elast);
    long long closed = count(edb, "SELECT COUNT(*) FROM member_events WHERE end_time IS NOT NULL");
    printf("BENCH events_per_s %.0f events/s (%zu Events: %lld outages opened and closed, %.2f s; "
           "published in %.2f s, not counted)\n",
           (double)nevents / t_e, nevents, closed, t_e, t_epub);
    printf("baseline: DESIGN.md §8 measured ~120k new rows/s and ~96k updated rows/s with "
           "array binding on this kind of machine (earlier runs here: ~93k and ~34k)\n");

    mysql_close(edb);
    free(rows);
    jsCtx_Destroy(c.js);
    natsConnection_Destroy(c.nc);
    ibp_signer_free(c.s_dns);
    ibp_signer_free(c.s_cons);
    ibp_roster_free(c.roster);
    ibp_key_wipe(&c.dns);
    ibp_key_wipe(&c.cons);
    ibp_testenv_rmtree(c.dir);
    ibp_testenv_private_stop(&c.srv);
    nats_Close();
    return 0;
}
